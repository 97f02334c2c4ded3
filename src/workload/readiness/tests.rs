use k8s_openapi::api::apps::v1::{
    DaemonSetSpec, DaemonSetStatus, DeploymentSpec, DeploymentStatus,
};
use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::*;

fn check(role: Role) -> Check<'static> {
    Check {
        role,
        namespace: "test",
        threshold: 100,
        deadline_seconds: 60,
        last_transition: Some(Timestamp(1_000)),
        now: Timestamp(1_030),
    }
}

fn deployment(name: &str, replicas: i32, status: DeploymentStatus) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some(name.into()),
            generation: Some(2),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            ..Default::default()
        }),
        status: Some(DeploymentStatus {
            observed_generation: Some(2),
            ..status
        }),
    }
}

fn cond(kind: &str, status: &str, reason: &str, updated: i64) -> DeploymentCondition {
    DeploymentCondition {
        type_: kind.into(),
        status: status.into(),
        reason: Some(reason.into()),
        last_update_time: Some(Time(
            k8s_openapi::jiff::Timestamp::from_second(updated).unwrap_or_default(),
        )),
        ..Default::default()
    }
}

#[test]
fn ready_deployment() {
    let d = deployment(
        "podinfo-primary",
        2,
        DeploymentStatus {
            replicas: Some(2),
            updated_replicas: Some(2),
            available_replicas: Some(2),
            ..Default::default()
        },
    );
    assert_eq!(
        deployment_readiness(&d, check(Role::Primary)),
        Readiness::Ready
    );
}

#[test]
fn primary_waits_for_available_replicas_with_flaggers_text() {
    let d = deployment(
        "podinfo-primary",
        1,
        DeploymentStatus {
            replicas: Some(1),
            updated_replicas: Some(1),
            available_replicas: Some(0),
            conditions: Some(vec![
                cond("Progressing", "True", "ReplicaSetUpdated", 900),
                cond("Available", "False", "MinimumReplicasUnavailable", 950),
            ]),
            ..Default::default()
        },
    );
    assert_eq!(
        deployment_readiness(&d, check(Role::Primary)),
        Readiness::NotReady {
            message: "podinfo-primary.test not ready: waiting for rollout to finish: 0 of 1 (readyThreshold 100%) updated replicas are available".into(),
            stalled_since: Some(Timestamp(950)),
        }
    );
}

#[test]
fn canary_messages_and_thresholds() {
    let d = deployment(
        "podinfo",
        4,
        DeploymentStatus {
            replicas: Some(4),
            updated_replicas: Some(4),
            available_replicas: Some(1),
            ..Default::default()
        },
    );
    let mut c = check(Role::Canary);
    c.threshold = 50;
    assert_eq!(
        deployment_readiness(&d, c),
        Readiness::NotReady {
            message: "canary deployment podinfo.test not ready: waiting for rollout to finish: 1 of 2 (readyThreshold 50%) updated replicas are available".into(),
            stalled_since: None,
        }
    );
    let updating = deployment(
        "podinfo",
        3,
        DeploymentStatus {
            replicas: Some(4),
            updated_replicas: Some(1),
            ..Default::default()
        },
    );
    assert!(matches!(
        deployment_readiness(&updating, check(Role::Canary)),
        Readiness::NotReady { message, .. } if message.ends_with("1 out of 3 new replicas have been updated")
    ));
    let terminating = deployment(
        "podinfo",
        1,
        DeploymentStatus {
            replicas: Some(3),
            updated_replicas: Some(1),
            available_replicas: Some(1),
            ..Default::default()
        },
    );
    assert!(matches!(
        deployment_readiness(&terminating, check(Role::Canary)),
        Readiness::NotReady { message, .. } if message.ends_with("2 old replicas are pending termination")
    ));
}

#[test]
fn generation_lag_and_deadline_exceeded() {
    let mut d = deployment("podinfo", 1, DeploymentStatus::default());
    d.metadata.generation = Some(3);
    assert!(matches!(
        deployment_readiness(&d, check(Role::Canary)),
        Readiness::Unobserved { message }
            if message.ends_with("observed deployment generation less than desired generation")
    ));
    let stuck = deployment(
        "podinfo",
        1,
        DeploymentStatus {
            conditions: Some(vec![cond(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                1,
            )]),
            ..Default::default()
        },
    );
    assert_eq!(
        deployment_readiness(&stuck, check(Role::Canary)),
        Readiness::Failed {
            message: "canary deployment podinfo.test not ready: deployment \"podinfo\" exceeded its progress deadline".into()
        }
    );
}

#[test]
fn canary_scaled_to_zero_is_ready() {
    let d = deployment(
        "podinfo",
        0,
        DeploymentStatus {
            replicas: Some(1),
            ..Default::default()
        },
    );
    assert_eq!(
        deployment_readiness(&d, check(Role::Canary)),
        Readiness::Ready
    );
}

fn daemonset(desired: i32, updated: i32, available: i32, parked: bool) -> DaemonSet {
    let selector = parked.then(|| {
        [(SCALE_TO_ZERO_KEY.to_string(), "true".to_string())]
            .into_iter()
            .collect()
    });
    DaemonSet {
        metadata: ObjectMeta {
            name: Some("ds".into()),
            generation: Some(1),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            template: PodTemplateSpec {
                metadata: None,
                spec: Some(PodSpec {
                    node_selector: selector,
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: Some(DaemonSetStatus {
            observed_generation: Some(1),
            desired_number_scheduled: desired,
            updated_number_scheduled: Some(updated),
            number_available: Some(available),
            ..Default::default()
        }),
    }
}

#[test]
fn daemonset_readiness_rules() {
    assert_eq!(
        daemonset_readiness(&daemonset(2, 2, 2, false), check(Role::Primary)),
        Readiness::Ready
    );
    assert_eq!(
        daemonset_readiness(&daemonset(2, 1, 1, false), check(Role::Primary)),
        Readiness::NotReady {
            message: "ds.test not ready: waiting for rollout to finish: 1 out of 2 new pods have been updated".into(),
            stalled_since: None,
        }
    );
    assert_eq!(
        daemonset_readiness(&daemonset(2, 2, 1, false), check(Role::Canary)),
        Readiness::NotReady {
            message: "canary damonset ds.test not ready with retryable true: waiting for rollout to finish: 1 of 2 (readyThreshold 100%) updated pods are available".into(),
            stalled_since: None,
        }
    );
    let mut late = check(Role::Canary);
    late.now = Timestamp(2_000);
    assert_eq!(
        daemonset_readiness(&daemonset(2, 1, 1, false), late),
        Readiness::Failed {
            message: "canary damonset ds.test not ready with retryable false: exceeded its progressDeadlineSeconds: 60".into()
        }
    );
    assert_eq!(
        daemonset_readiness(&daemonset(2, 0, 0, true), check(Role::Canary)),
        Readiness::Ready
    );
}

#[test]
fn pending_primary_is_not_ready() {
    assert_eq!(
        primary_pending("podinfo-primary", "test", "deployment"),
        Readiness::Unobserved {
            message: "podinfo-primary.test not ready: waiting for rollout to finish: observed deployment generation less than desired generation".into(),
        }
    );
}
