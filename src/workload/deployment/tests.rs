use std::collections::BTreeSet;

use serde_json::json;

use super::*;
use crate::workload::config::ConfigKind;
use crate::workload::metadata::{SelectorLabel, controller_ref};

fn target() -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "podinfo",
            "namespace": "test",
            "labels": {"app": "podinfo", "team.io/owner": "a", "kustomize.toolkit.fluxcd.io/name": "x"},
            "annotations": {"team.io/note": "n", "kustomize.toolkit.fluxcd.io/checksum": "c"}
        },
        "spec": {
            "replicas": 0,
            "progressDeadlineSeconds": 60,
            "minReadySeconds": 3,
            "revisionHistoryLimit": 5,
            "strategy": {"type": "RollingUpdate"},
            "selector": {"matchLabels": {"app": "podinfo"}},
            "template": {
                "metadata": {"labels": {"app": "podinfo"}, "annotations": {"prometheus.io/scrape": "true"}},
                "spec": {
                    "containers": [{"name": "podinfo", "image": "podinfo:6.0.0",
                        "envFrom": [{"configMapRef": {"name": "podinfo-config"}}]}]
                }
            }
        }
    }))
    .unwrap_or_else(|e| panic!("{e}"))
}

fn with_inputs<T>(f: impl FnOnce(&PrimaryInputs<'_>) -> T) -> T {
    let selector = SelectorLabel {
        key: "app".into(),
        value: "podinfo".into(),
    };
    let tracked: BTreeSet<(ConfigKind, String)> =
        [(ConfigKind::ConfigMap, "podinfo-config".to_string())]
            .into_iter()
            .collect();
    let prefixes = vec!["team.io".to_string()];
    let labels = vec!["app".to_string()];
    let input = PrimaryInputs {
        namespace: "test",
        owner: controller_ref("podinfo", "uid-1"),
        include_prefixes: &prefixes,
        template: TemplateInputs {
            target_name: "podinfo",
            selector: &selector,
            selector_labels: &labels,
            tracked: &tracked,
            flagger_id: "id-1",
        },
    };
    f(&input)
}

#[test]
fn new_primary_deployment_follows_flagger() {
    let primary = with_inputs(|i| new_primary_deployment(&target(), i));
    let value = serde_json::to_value(&primary).unwrap_or_default();
    assert_eq!(
        value,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "podinfo-primary",
                "namespace": "test",
                "labels": {"app": "podinfo-primary", "team.io/owner": "a"},
                "annotations": {"team.io/note": "n"},
                "ownerReferences": [{
                    "apiVersion": "flagger.app/v1beta1", "kind": "Canary", "name": "podinfo",
                    "uid": "uid-1", "controller": true, "blockOwnerDeletion": true
                }]
            },
            "spec": {
                // A target already at zero still gives the primary one replica.
                "replicas": 1,
                "progressDeadlineSeconds": 60,
                "minReadySeconds": 3,
                "revisionHistoryLimit": 5,
                "strategy": {"type": "RollingUpdate"},
                "selector": {"matchLabels": {"app": "podinfo-primary"}},
                "template": {
                    "metadata": {
                        "labels": {"app": "podinfo-primary"},
                        "annotations": {"prometheus.io/scrape": "true", "flagger-id": "id-1"}
                    },
                    "spec": {
                        "containers": [{"name": "podinfo", "image": "podinfo:6.0.0",
                            "envFrom": [{"configMapRef": {"name": "podinfo-config-primary"}}]}]
                    }
                }
            }
        })
    );
}

#[test]
fn promotion_copies_template_and_replicas_only_without_autoscaler() {
    let primary = with_inputs(|i| new_primary_deployment(&target(), i));
    let mut changed = target();
    if let Some(spec) = changed.spec.as_mut() {
        spec.replicas = Some(3);
        if let Some(c) = spec.template.spec.as_mut().map(|s| &mut s.containers[0]) {
            c.image = Some("podinfo:6.0.1".into());
        }
    }
    let patch = with_inputs(|i| promotion_patch(&changed, &primary, i, false)).unwrap_or_default();
    assert_eq!(patch["spec"]["replicas"], json!(3));
    assert_eq!(
        patch["spec"]["template"]["spec"]["containers"][0]["image"],
        json!("podinfo:6.0.1")
    );
    // The same id as at creation: only the image and replicas changed.
    assert_eq!(
        patch["spec"]["template"]["metadata"],
        serde_json::Value::Null
    );
    let autoscaled =
        with_inputs(|i| promotion_patch(&changed, &primary, i, true)).unwrap_or_default();
    assert_eq!(autoscaled["spec"].get("replicas"), None);
}

#[test]
fn promotion_keeps_controller_annotations() {
    let mut primary = with_inputs(|i| new_primary_deployment(&target(), i));
    if let Some(a) = primary.metadata.annotations.as_mut() {
        a.insert("deployment.kubernetes.io/revision".into(), "4".into());
        a.insert("stale".into(), "x".into());
    }
    let patch = with_inputs(|i| promotion_patch(&target(), &primary, i, true)).unwrap_or_default();
    assert_eq!(patch["metadata"]["annotations"], json!({"stale": null}));
}

#[test]
fn scale_from_zero_rules() {
    assert_eq!(
        scale_from_zero_replicas(Some(3), &Autoscaler::None, Some(5)),
        3
    );
    assert_eq!(
        scale_from_zero_replicas(Some(0), &Autoscaler::None, Some(5)),
        5
    );
    assert_eq!(scale_from_zero_replicas(None, &Autoscaler::None, None), 1);
    let hpa = |min| Autoscaler::Hpa { min_replicas: min };
    assert_eq!(scale_from_zero_replicas(Some(0), &hpa(Some(2)), Some(5)), 2);
    assert_eq!(scale_from_zero_replicas(Some(0), &hpa(Some(1)), Some(5)), 1);
    assert_eq!(scale_from_zero_replicas(Some(0), &hpa(None), Some(5)), 1);
    assert_eq!(
        scale_from_zero_replicas(Some(0), &Autoscaler::Other, Some(5)),
        1
    );
    assert_eq!(replicas_patch(0), json!({"spec": {"replicas": 0}}));
}
