//! The primary's pod template, derived from the target's.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};

use super::config::{ConfigKind, rename_tracked};
use super::hash::SCALE_TO_ZERO_KEY;
use super::metadata::{SelectorLabel, primary_labels, primary_template_annotations};

/// What turns the target's template into the primary's.
#[derive(Debug, Clone)]
pub struct TemplateInputs<'a> {
    pub target_name: &'a str,
    pub selector: &'a SelectorLabel,
    /// `-selector-labels`, for the anti-affinity/topology rewrite.
    pub selector_labels: &'a [String],
    /// Tracked configs whose references move to the `-primary` copies.
    pub tracked: &'a BTreeSet<(ConfigKind, String)>,
    pub flagger_id: &'a str,
}

/// Template labels (selector label → `-primary`), annotations with a fresh
/// `flagger-id`, tracked configs renamed, self-referencing label selectors
/// pointed at the primary, and never the DaemonSet scale-to-zero selector.
pub fn primary_template(target: &PodTemplateSpec, input: &TemplateInputs<'_>) -> PodTemplateSpec {
    let meta = target.metadata.clone().unwrap_or_default();
    let labels = primary_labels(
        &meta.labels.unwrap_or_default(),
        &input.selector.key,
        &input.selector.primary_value(),
    );
    let annotations = primary_template_annotations(meta.annotations.as_ref(), input.flagger_id);
    let mut spec = target.spec.clone().unwrap_or_default();
    rename_tracked(&mut spec, input.tracked);
    point_selectors_at_primary(&mut spec, input.selector_labels, input.target_name);
    if let Some(selector) = spec.node_selector.as_mut() {
        selector.remove(SCALE_TO_ZERO_KEY);
    }
    PodTemplateSpec {
        metadata: Some(ObjectMeta {
            labels: Some(labels),
            annotations: Some(annotations),
            ..meta_without_maps(target.metadata.as_ref())
        }),
        spec: Some(spec),
    }
}

fn meta_without_maps(meta: Option<&ObjectMeta>) -> ObjectMeta {
    ObjectMeta {
        labels: None,
        annotations: None,
        ..meta.cloned().unwrap_or_default()
    }
}

/// topologySpreadConstraints and podAntiAffinity selectors that match the
/// target by a selector-label key get the primary's value instead.
pub fn point_selectors_at_primary(spec: &mut PodSpec, selector_labels: &[String], target: &str) {
    let mut selectors: Vec<&mut LabelSelector> = Vec::new();
    for constraint in spec.topology_spread_constraints.iter_mut().flatten() {
        selectors.extend(constraint.label_selector.as_mut());
    }
    let anti = spec
        .affinity
        .as_mut()
        .and_then(|a| a.pod_anti_affinity.as_mut());
    if let Some(anti) = anti {
        for term in anti
            .preferred_during_scheduling_ignored_during_execution
            .iter_mut()
            .flatten()
        {
            selectors.extend(term.pod_affinity_term.label_selector.as_mut());
        }
        for term in anti
            .required_during_scheduling_ignored_during_execution
            .iter_mut()
            .flatten()
        {
            selectors.extend(term.label_selector.as_mut());
        }
    }
    for selector in selectors {
        for expr in selector.match_expressions.iter_mut().flatten() {
            if !selector_labels.contains(&expr.key) {
                continue;
            }
            if let Some(v) = expr.values.iter_mut().flatten().find(|v| *v == target) {
                v.push_str("-primary");
            }
        }
        for (key, value) in selector.match_labels.iter_mut().flatten() {
            if selector_labels.contains(key) && value == target {
                value.push_str("-primary");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{
        Affinity, PodAffinityTerm, PodAntiAffinity, TopologySpreadConstraint,
        WeightedPodAffinityTerm,
    };
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;
    use std::collections::BTreeMap;

    fn by_labels(key: &str, value: &str) -> LabelSelector {
        LabelSelector {
            match_labels: Some(BTreeMap::from([(key.to_string(), value.to_string())])),
            ..Default::default()
        }
    }

    #[test]
    fn affinity_and_topology_selectors_follow_the_primary() {
        let mut spec = PodSpec {
            topology_spread_constraints: Some(vec![TopologySpreadConstraint {
                label_selector: Some(by_labels("app", "podinfo")),
                ..Default::default()
            }]),
            affinity: Some(Affinity {
                pod_anti_affinity: Some(PodAntiAffinity {
                    preferred_during_scheduling_ignored_during_execution: Some(vec![
                        WeightedPodAffinityTerm {
                            weight: 1,
                            pod_affinity_term: PodAffinityTerm {
                                label_selector: Some(LabelSelector {
                                    match_expressions: Some(vec![LabelSelectorRequirement {
                                        key: "app".into(),
                                        operator: "In".into(),
                                        values: Some(vec!["other".into(), "podinfo".into()]),
                                    }]),
                                    ..Default::default()
                                }),
                                ..Default::default()
                            },
                        },
                    ]),
                    required_during_scheduling_ignored_during_execution: Some(vec![
                        PodAffinityTerm {
                            label_selector: Some(by_labels("tier", "podinfo")),
                            ..Default::default()
                        },
                    ]),
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        point_selectors_at_primary(&mut spec, &["app".to_string()], "podinfo");
        let topo = spec.topology_spread_constraints.unwrap_or_default();
        assert_eq!(
            topo[0].label_selector,
            Some(by_labels("app", "podinfo-primary"))
        );
        let anti = spec
            .affinity
            .and_then(|a| a.pod_anti_affinity)
            .unwrap_or_default();
        let preferred = anti
            .preferred_during_scheduling_ignored_during_execution
            .unwrap_or_default();
        let values = preferred[0]
            .pod_affinity_term
            .label_selector
            .clone()
            .and_then(|s| s.match_expressions)
            .unwrap_or_default()[0]
            .values
            .clone();
        assert_eq!(
            values,
            Some(vec!["other".to_string(), "podinfo-primary".to_string()])
        );
        // Not a selector-label key: untouched.
        let required = anti
            .required_during_scheduling_ignored_during_execution
            .unwrap_or_default();
        assert_eq!(
            required[0].label_selector,
            Some(by_labels("tier", "podinfo"))
        );
    }
}
