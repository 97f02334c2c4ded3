//! Flagger's rollout readiness checks (`deployment_ready.go`,
//! `daemonset_ready.go`) over cached objects, with its event texts.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, DeploymentCondition};
use serin_actors::model::observe::Readiness;
use serin_actors::model::status::Timestamp;

use super::hash::SCALE_TO_ZERO_KEY;

/// Which side of the canary a workload is; the event text differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Primary,
    Canary,
}

/// What the check needs besides the object.
#[derive(Debug, Clone, Copy)]
pub struct Check<'a> {
    pub role: Role,
    pub namespace: &'a str,
    /// `primaryReadyThreshold` or `canaryReadyThreshold`, in percent.
    pub threshold: i32,
    /// The Canary's `progressDeadlineSeconds`.
    pub deadline_seconds: i32,
    /// The Canary's `status.lastTransitionTime` (DaemonSet deadline).
    pub last_transition: Option<Timestamp>,
    pub now: Timestamp,
}

/// `int32(float32(n) * float32(threshold)/100)`, Go's truncation included.
fn required(n: i32, threshold: i32) -> i32 {
    (n as f32 * (threshold as f32 / 100.0)) as i32
}

fn condition<'a>(d: &'a Deployment, kind: &str) -> Option<&'a DeploymentCondition> {
    d.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == kind)
}

/// Why a Deployment is not ready, or `None` when it is.
enum NotReady {
    /// The controller has not caught up with the spec yet.
    Unobserved(String),
    Waiting {
        reason: String,
        stalled_since: Option<Timestamp>,
    },
    Failed(String),
}

fn deployment_state(d: &Deployment, threshold: i32) -> Option<NotReady> {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    let status = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    if generation > status.observed_generation.unwrap_or(0) {
        return Some(NotReady::Unobserved(
            "waiting for rollout to finish: observed deployment generation less than desired generation".into(),
        ));
    }
    let progress = condition(d, "Progressing");
    // Stuck when replicas have been missing since lastUpdateTime.
    let stalled_since = progress
        .and_then(|_| condition(d, "Available"))
        .filter(|c| {
            c.status == "False" && c.reason.as_deref() == Some("MinimumReplicasUnavailable")
        })
        .and_then(|c| c.last_update_time.as_ref())
        .map(|t| Timestamp(t.0.as_second()));
    if progress.is_some_and(|c| c.reason.as_deref() == Some("ProgressDeadlineExceeded")) {
        return Some(NotReady::Failed(format!(
            "deployment \"{name}\" exceeded its progress deadline"
        )));
    }
    let updated = status.updated_replicas.unwrap_or(0);
    let replicas = status.replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let wanted = d.spec.as_ref().and_then(|s| s.replicas);
    let required = required(updated, threshold);
    let reason = if let Some(wanted) = wanted.filter(|w| updated < *w) {
        format!(
            "waiting for rollout to finish: {updated} out of {wanted} new replicas have been updated"
        )
    } else if replicas > updated {
        format!(
            "waiting for rollout to finish: {} old replicas are pending termination",
            replicas - updated
        )
    } else if available < required {
        format!(
            "waiting for rollout to finish: {available} of {required} (readyThreshold {threshold}%) updated replicas are available"
        )
    } else {
        return None;
    };
    Some(NotReady::Waiting {
        reason,
        stalled_since,
    })
}

/// Readiness of the primary or canary Deployment.
pub fn deployment_readiness(d: &Deployment, check: Check<'_>) -> Readiness {
    let name = d.metadata.name.as_deref().unwrap_or_default();
    // A parked canary is not rolling out.
    if check.role == Role::Canary && d.spec.as_ref().and_then(|s| s.replicas) == Some(0) {
        return Readiness::Ready;
    }
    let prefix = match check.role {
        Role::Primary => format!("{name}.{} not ready", check.namespace),
        Role::Canary => format!("canary deployment {name}.{} not ready", check.namespace),
    };
    match deployment_state(d, check.threshold) {
        None => Readiness::Ready,
        Some(NotReady::Unobserved(reason)) => Readiness::Unobserved {
            message: format!("{prefix}: {reason}"),
        },
        Some(NotReady::Waiting {
            reason,
            stalled_since,
        }) => Readiness::NotReady {
            message: format!("{prefix}: {reason}"),
            stalled_since,
        },
        Some(NotReady::Failed(reason)) => Readiness::Failed {
            message: format!("{prefix}: {reason}"),
        },
    }
}

/// Readiness of the primary or canary DaemonSet; the deadline runs from the
/// Canary's last transition, as in Flagger.
pub fn daemonset_readiness(ds: &DaemonSet, check: Check<'_>) -> Readiness {
    let name = ds.metadata.name.as_deref().unwrap_or_default();
    let parked = ds
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.node_selector.as_ref())
        .is_some_and(|n| n.contains_key(SCALE_TO_ZERO_KEY));
    if check.role == Role::Canary && parked {
        return Readiness::Ready;
    }
    let message = |retryable: bool, reason: &str| match check.role {
        Role::Primary => format!("{name}.{} not ready: {reason}", check.namespace),
        Role::Canary => format!(
            "canary damonset {name}.{} not ready with retryable {retryable}: {reason}",
            check.namespace
        ),
    };
    let status = ds.status.clone().unwrap_or_default();
    if ds.metadata.generation.unwrap_or(0) > status.observed_generation.unwrap_or(0) {
        return Readiness::Unobserved {
            message: message(
                true,
                "waiting for rollout to finish: observed daemonset generation less than desired generation",
            ),
        };
    }
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    let required = required(desired, check.threshold);
    let outdated = updated < desired;
    let unavailable = available < required;
    if !outdated && !unavailable {
        return Readiness::Ready;
    }
    let since = check.last_transition.unwrap_or(check.now);
    if since.plus_seconds(i64::from(check.deadline_seconds)) < check.now {
        let reason = format!(
            "exceeded its progressDeadlineSeconds: {}",
            check.deadline_seconds
        );
        return Readiness::Failed {
            message: message(false, &reason),
        };
    }
    let reason = if outdated {
        format!(
            "waiting for rollout to finish: {updated} out of {desired} new pods have been updated"
        )
    } else {
        format!(
            "waiting for rollout to finish: {available} of {required} (readyThreshold {}%) updated pods are available",
            check.threshold
        )
    };
    Readiness::NotReady {
        message: message(true, &reason),
        stalled_since: None,
    }
}

/// The primary has not reached the cache yet: it was just created.
pub fn primary_pending(primary: &str, namespace: &str, kind: &str) -> Readiness {
    Readiness::Unobserved {
        message: format!(
            "{primary}.{namespace} not ready: waiting for rollout to finish: observed {kind} generation less than desired generation"
        ),
    }
}

#[cfg(test)]
mod tests;
