//! Primary DaemonSet and the node-selector "scale to zero"
//! (`daemonset_controller.go`).

use k8s_openapi::api::apps::v1::{DaemonSet, DaemonSetSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use serde_json::{Value, json};

use super::deployment::{PrimaryInputs, primary_name};
use super::hash::SCALE_TO_ZERO_KEY;
use super::metadata::{drop_toolkit, include_by_prefix, primary_labels};
use super::patch::merge_diff;
use super::template::primary_template;

/// The update strategy type, when it is not RollingUpdate (Flagger refuses it).
pub fn unsupported_strategy(ds: &DaemonSet) -> Option<String> {
    let kind = ds.spec.as_ref()?.update_strategy.as_ref()?.type_.clone()?;
    (!kind.is_empty() && kind != "RollingUpdate").then_some(kind)
}

/// Whether the DaemonSet is parked on no node.
pub fn parked(ds: &DaemonSet) -> bool {
    ds.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.node_selector.as_ref())
        .and_then(|n| n.get(SCALE_TO_ZERO_KEY))
        .is_some_and(|v| v == "true")
}

/// Patch that parks (`true`) or releases (`false`) the DaemonSet.
pub fn park_patch(park: bool) -> Value {
    let value = if park { json!("true") } else { Value::Null };
    json!({"spec": {"template": {"spec": {"nodeSelector": {SCALE_TO_ZERO_KEY: value}}}}})
}

/// The primary DaemonSet created when it is missing.
pub fn new_primary_daemonset(target: &DaemonSet, input: &PrimaryInputs<'_>) -> DaemonSet {
    let spec = target.spec.clone().unwrap_or_default();
    let name = target.metadata.name.as_deref().unwrap_or_default();
    let sel = input.template.selector;
    DaemonSet {
        metadata: ObjectMeta {
            name: Some(primary_name(name)),
            namespace: Some(input.namespace.to_string()),
            labels: Some(primary_labels(
                &include_by_prefix(target.metadata.labels.as_ref(), input.include_prefixes),
                &sel.key,
                &sel.primary_value(),
            )),
            annotations: Some(drop_toolkit(target.metadata.annotations.as_ref())),
            owner_references: Some(vec![input.owner.clone()]),
            ..Default::default()
        },
        spec: Some(DaemonSetSpec {
            min_ready_seconds: spec.min_ready_seconds,
            revision_history_limit: spec.revision_history_limit,
            update_strategy: spec.update_strategy.clone(),
            selector: LabelSelector {
                match_labels: Some(
                    [(sel.key.clone(), sel.primary_value())]
                        .into_iter()
                        .collect(),
                ),
                match_expressions: None,
            },
            template: primary_template(&spec.template, &input.template),
        }),
        status: None,
    }
}

fn promotion_view(spec: &DaemonSetSpec) -> Value {
    json!({"spec": {
        "minReadySeconds": spec.min_ready_seconds,
        "revisionHistoryLimit": spec.revision_history_limit,
        "updateStrategy": spec.update_strategy,
        "template": spec.template,
    }})
}

/// The merge patch that copies the target's template and update strategy
/// onto the primary.
pub fn promotion_patch(
    target: &DaemonSet,
    primary: &DaemonSet,
    input: &PrimaryInputs<'_>,
) -> Option<Value> {
    let spec = target.spec.clone().unwrap_or_default();
    let desired = DaemonSetSpec {
        template: primary_template(&spec.template, &input.template),
        ..spec
    };
    let live = primary.spec.clone().unwrap_or_default();
    merge_diff(&promotion_view(&live), &promotion_view(&desired))
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::DaemonSetUpdateStrategy;

    #[test]
    fn strategy_must_be_rolling_update() {
        let mut ds = DaemonSet::default();
        assert_eq!(unsupported_strategy(&ds), None);
        ds.spec = Some(DaemonSetSpec {
            update_strategy: Some(DaemonSetUpdateStrategy {
                type_: Some("OnDelete".into()),
                rolling_update: None,
            }),
            ..Default::default()
        });
        assert_eq!(unsupported_strategy(&ds).as_deref(), Some("OnDelete"));
    }

    #[test]
    fn primary_daemonset_is_never_parked() {
        use crate::workload::config::ConfigKind;
        use crate::workload::metadata::{SelectorLabel, controller_ref};
        use crate::workload::template::TemplateInputs;
        use std::collections::BTreeSet;

        let target: DaemonSet = serde_json::from_value(json!({
            "metadata": {"name": "ds", "labels": {"name": "ds"}},
            "spec": {
                "selector": {"matchLabels": {"name": "ds"}},
                "updateStrategy": {"type": "RollingUpdate"},
                "template": {
                    "metadata": {"labels": {"name": "ds"}},
                    "spec": {"nodeSelector": {SCALE_TO_ZERO_KEY: "true"}, "containers": []}
                }
            }
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(parked(&target));
        let selector = SelectorLabel {
            key: "name".into(),
            value: "ds".into(),
        };
        let tracked: BTreeSet<(ConfigKind, String)> = BTreeSet::new();
        let labels = vec!["name".to_string()];
        let input = PrimaryInputs {
            namespace: "test",
            owner: controller_ref("ds", "u"),
            include_prefixes: &[],
            template: TemplateInputs {
                target_name: "ds",
                selector: &selector,
                selector_labels: &labels,
                tracked: &tracked,
                flagger_id: "id",
            },
        };
        let primary = new_primary_daemonset(&target, &input);
        assert!(!parked(&primary));
        assert_eq!(primary.metadata.name.as_deref(), Some("ds-primary"));
        let spec = primary.spec.clone().unwrap_or_default();
        assert_eq!(
            spec.selector.match_labels,
            Some(
                [("name".to_string(), "ds-primary".to_string())]
                    .into_iter()
                    .collect()
            )
        );
        assert_eq!(
            spec.update_strategy,
            target.spec.clone().and_then(|s| s.update_strategy)
        );
        // Re-promoting the same template only changes nothing but the id.
        assert_eq!(promotion_patch(&target, &primary, &input), None);
    }

    #[test]
    fn park_patches() {
        assert_eq!(
            park_patch(true),
            json!({"spec": {"template": {"spec": {"nodeSelector": {"flagger.app/scale-to-zero": "true"}}}}})
        );
        assert_eq!(
            park_patch(false),
            json!({"spec": {"template": {"spec": {"nodeSelector": {"flagger.app/scale-to-zero": null}}}}})
        );
        assert!(!parked(&DaemonSet::default()));
    }
}
