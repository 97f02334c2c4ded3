//! The primary HorizontalPodAutoscaler (`hpa_reconciler.go`, autoscaling/v2).

use k8s_openapi::api::autoscaling::v2::{
    CrossVersionObjectReference, HorizontalPodAutoscaler, HorizontalPodAutoscalerSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde_json::{Value, json};

use super::metadata::drop_toolkit;
use super::patch::merge_diff;
use crate::api::canary::ScalerReplicas;

/// The primary HPA's spec: the target's, aimed at the primary workload,
/// with `primaryScalerReplicas` overriding min/max.
pub fn primary_hpa_spec(
    target: &HorizontalPodAutoscaler,
    primary_workload: &str,
    overrides: Option<&ScalerReplicas>,
) -> HorizontalPodAutoscalerSpec {
    let spec = target.spec.clone();
    let min = overrides.and_then(|o| o.min_replicas).or(spec.min_replicas);
    let max = overrides
        .and_then(|o| o.max_replicas)
        .unwrap_or(spec.max_replicas);
    HorizontalPodAutoscalerSpec {
        scale_target_ref: CrossVersionObjectReference {
            name: primary_workload.to_string(),
            kind: spec.scale_target_ref.kind.clone(),
            api_version: spec.scale_target_ref.api_version.clone(),
        },
        min_replicas: min,
        max_replicas: max,
        metrics: spec.metrics,
        behavior: spec.behavior,
    }
}

/// The primary HPA `<hpa>-primary`, owned by the Canary.
pub fn new_primary_hpa(
    target: &HorizontalPodAutoscaler,
    namespace: &str,
    owner: OwnerReference,
    primary_workload: &str,
    overrides: Option<&ScalerReplicas>,
) -> HorizontalPodAutoscaler {
    let name = target.metadata.name.as_deref().unwrap_or_default();
    HorizontalPodAutoscaler {
        metadata: ObjectMeta {
            name: Some(format!("{name}-primary")),
            namespace: Some(namespace.to_string()),
            labels: Some(drop_toolkit(target.metadata.labels.as_ref())),
            owner_references: Some(vec![owner]),
            ..Default::default()
        },
        spec: primary_hpa_spec(target, primary_workload, overrides),
        status: None,
    }
}

fn view(
    labels: &Option<std::collections::BTreeMap<String, String>>,
    spec: &HorizontalPodAutoscalerSpec,
) -> Value {
    json!({
        "metadata": {"labels": labels},
        "spec": {
            "scaleTargetRef": spec.scale_target_ref,
            // The API server defaults a missing minimum to 1.
            "minReplicas": spec.min_replicas.unwrap_or(1),
            "maxReplicas": spec.max_replicas,
            "metrics": spec.metrics,
            "behavior": spec.behavior,
        }
    })
}

/// The merge patch that syncs the primary HPA with `desired`, or `None`.
pub fn hpa_patch(
    live: &HorizontalPodAutoscaler,
    desired: &HorizontalPodAutoscaler,
) -> Option<Value> {
    let live_spec = &live.spec;
    let desired_spec = &desired.spec;
    merge_diff(
        &view(&live.metadata.labels, live_spec),
        &view(&desired.metadata.labels, desired_spec),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workload::metadata::controller_ref;
    use std::collections::BTreeMap;

    fn target() -> HorizontalPodAutoscaler {
        serde_json::from_value(json!({
            "metadata": {"name": "podinfo", "labels": {"app": "podinfo", "kustomize.toolkit.fluxcd.io/name": "x"}},
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "minReplicas": 2,
                "maxReplicas": 4,
                "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 99}}}]
            }
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn primary_hpa_targets_the_primary() {
        let hpa = new_primary_hpa(
            &target(),
            "test",
            controller_ref("podinfo", "u"),
            "podinfo-primary",
            None,
        );
        assert_eq!(hpa.metadata.name.as_deref(), Some("podinfo-primary"));
        assert_eq!(
            hpa.metadata.labels,
            Some(BTreeMap::from([("app".to_string(), "podinfo".to_string())]))
        );
        let spec = hpa.spec.clone();
        assert_eq!(spec.scale_target_ref.name, "podinfo-primary");
        assert_eq!(spec.scale_target_ref.kind, "Deployment");
        assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 4));
        assert_eq!(spec.metrics, target().spec.metrics);
        assert_eq!(hpa_patch(&hpa, &hpa.clone()), None);
    }

    #[test]
    fn overrides_and_changes_patch_the_primary() {
        let overrides = ScalerReplicas {
            min_replicas: Some(3),
            max_replicas: Some(10),
        };
        let live = new_primary_hpa(
            &target(),
            "test",
            controller_ref("podinfo", "u"),
            "podinfo-primary",
            None,
        );
        let desired = new_primary_hpa(
            &target(),
            "test",
            controller_ref("podinfo", "u"),
            "podinfo-primary",
            Some(&overrides),
        );
        assert_eq!(
            hpa_patch(&live, &desired),
            Some(json!({"spec": {"minReplicas": 3, "maxReplicas": 10}}))
        );
    }
}
