//! Labels, annotations and owner references of the objects Serin generates.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};

use crate::api::Canary;

/// Keys Flux puts on objects it manages; copying them would make Flux
/// fight over the generated objects.
const TOOLKIT_MARKER: &str = "toolkit.fluxcd.io";

/// Annotations that stop Flux from reverting generated objects.
pub const FLUX_DISABLED: [(&str, &str); 2] = [
    ("kustomize.toolkit.fluxcd.io/reconcile", "disabled"),
    ("helm.toolkit.fluxcd.io/driftDetection", "disabled"),
];

/// Pod template annotation that forces a primary rollout on every promotion.
pub const FLAGGER_ID: &str = "flagger-id";

pub type Labels = BTreeMap<String, String>;

/// `includeLabelsByPrefix`: keys matching one prefix (`*` = all), never Flux's.
pub fn include_by_prefix(map: Option<&Labels>, prefixes: &[String]) -> Labels {
    map.into_iter()
        .flatten()
        .filter(|(k, _)| !k.contains(TOOLKIT_MARKER))
        .filter(|(k, _)| {
            prefixes
                .iter()
                .any(|p| p == "*" || (!p.is_empty() && k.starts_with(p.as_str())))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Every key but Flux's.
pub fn drop_toolkit(map: Option<&Labels>) -> Labels {
    map.into_iter()
        .flatten()
        .filter(|(k, _)| !k.contains(TOOLKIT_MARKER))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The labels with the selector label pointing at the primary's pods.
pub fn primary_labels(labels: &Labels, selector_label: &str, primary_value: &str) -> Labels {
    let mut out = labels.clone();
    out.insert(selector_label.to_string(), primary_value.to_string());
    out
}

/// Template annotations for the primary: Flux keys dropped, a fresh `flagger-id`.
pub fn primary_template_annotations(annotations: Option<&Labels>, id: &str) -> Labels {
    let mut out = drop_toolkit(annotations);
    out.insert(FLAGGER_ID.to_string(), id.to_string());
    out
}

/// A fresh random `flagger-id`.
pub fn new_flagger_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// `metav1.NewControllerRef(canary, flagger.app/v1beta1 Canary)`.
pub fn controller_ref(name: &str, uid: &str) -> OwnerReference {
    OwnerReference {
        api_version: "flagger.app/v1beta1".to_string(),
        kind: "Canary".to_string(),
        name: name.to_string(),
        uid: uid.to_string(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

/// The Canary's controller reference, or `None` when it has no uid yet.
pub fn canary_ref(canary: &Canary) -> Option<OwnerReference> {
    let name = canary.metadata.name.as_deref()?;
    let uid = canary.metadata.uid.as_deref()?;
    Some(controller_ref(name, uid))
}

/// Whether the object's controller is the Canary named `canary`.
pub fn owned_by_canary(meta: &ObjectMeta, canary: &str) -> bool {
    meta.owner_references
        .iter()
        .flatten()
        .find(|r| r.controller == Some(true))
        .is_some_and(|r| r.kind == "Canary" && r.name == canary)
}

/// The Flux-disabled annotations added to `annotations`.
pub fn with_flux_disabled(mut annotations: Labels) -> Labels {
    for (k, v) in FLUX_DISABLED {
        annotations.insert(k.to_string(), v.to_string());
    }
    annotations
}

/// The pod selector label Flagger keys everything on, and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectorLabel {
    pub key: String,
    pub value: String,
}

impl SelectorLabel {
    /// `<value>-primary`, the primary pods' label value.
    pub fn primary_value(&self) -> String {
        format!("{}-primary", self.value)
    }
}

/// The first of `candidates` present in the target's `spec.selector.matchLabels`.
pub fn selector_label(
    match_labels: Option<&Labels>,
    candidates: &[String],
) -> Option<SelectorLabel> {
    let labels = match_labels?;
    candidates.iter().find_map(|key| {
        labels.get(key).map(|value| SelectorLabel {
            key: key.clone(),
            value: value.clone(),
        })
    })
}

/// Go's `%v` of a `[]string`: `[app name app.kubernetes.io/name]`.
pub fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn include_by_prefix_filters_and_drops_flux_keys() {
        let labels = map(&[
            ("app", "podinfo"),
            ("team.io/owner", "a"),
            ("kustomize.toolkit.fluxcd.io/name", "x"),
        ]);
        let all = include_by_prefix(Some(&labels), &["*".to_string()]);
        assert_eq!(all, map(&[("app", "podinfo"), ("team.io/owner", "a")]));
        let team = include_by_prefix(Some(&labels), &["team.io".to_string()]);
        assert_eq!(team, map(&[("team.io/owner", "a")]));
        // Flagger's default prefix list is empty: nothing is copied.
        assert!(include_by_prefix(Some(&labels), &[String::new()]).is_empty());
        assert!(include_by_prefix(None, &["*".to_string()]).is_empty());
    }

    #[test]
    fn selector_label_takes_the_first_candidate_present() {
        let candidates: Vec<String> = ["app", "name", "app.kubernetes.io/name"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let labels = map(&[("app.kubernetes.io/name", "x"), ("name", "podinfo")]);
        let found = selector_label(Some(&labels), &candidates);
        assert_eq!(
            found,
            Some(SelectorLabel {
                key: "name".into(),
                value: "podinfo".into()
            })
        );
        assert_eq!(
            found.map(|s| s.primary_value()).as_deref(),
            Some("podinfo-primary")
        );
        assert_eq!(
            selector_label(Some(&map(&[("tier", "x")])), &candidates),
            None
        );
        assert_eq!(go_list(&candidates), "[app name app.kubernetes.io/name]");
    }

    #[test]
    fn primary_labels_replace_the_selector_value() {
        let labels = map(&[("app", "podinfo"), ("tier", "web")]);
        let out = primary_labels(&labels, "app", "podinfo-primary");
        assert_eq!(out, map(&[("app", "podinfo-primary"), ("tier", "web")]));
    }

    #[test]
    fn template_annotations_get_a_fresh_id() {
        let ann = map(&[
            ("flagger-id", "old"),
            ("helm.toolkit.fluxcd.io/x", "y"),
            ("a", "b"),
        ]);
        let out = primary_template_annotations(Some(&ann), "new");
        assert_eq!(out, map(&[("a", "b"), ("flagger-id", "new")]));
        let id = new_flagger_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.chars().nth(14), Some('4'));
    }

    #[test]
    fn ownership_needs_a_canary_controller_ref_with_the_name() {
        let mut meta = ObjectMeta::default();
        assert!(!owned_by_canary(&meta, "podinfo"));
        meta.owner_references = Some(vec![controller_ref("podinfo", "uid-1")]);
        assert!(owned_by_canary(&meta, "podinfo"));
        assert!(!owned_by_canary(&meta, "other"));
        let mut not_controller = controller_ref("podinfo", "uid-1");
        not_controller.controller = None;
        meta.owner_references = Some(vec![not_controller]);
        assert!(!owned_by_canary(&meta, "podinfo"));
    }
}
