//! Primary Deployment: creation, promotion and the scaling rules
//! (`deployment_controller.go`).

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use serde_json::{Value, json};

use super::metadata::{drop_toolkit, include_by_prefix, primary_labels};
use super::patch::merge_diff;
use super::template::{TemplateInputs, primary_template};

/// Annotations the Deployment controller keeps on the primary itself.
const CONTROLLER_ANNOTATIONS: &str = "deployment.kubernetes.io/";

/// `<target>-primary`.
pub fn primary_name(target: &str) -> String {
    format!("{target}-primary")
}

/// Inputs shared by the primary builders.
#[derive(Debug, Clone)]
pub struct PrimaryInputs<'a> {
    pub namespace: &'a str,
    pub owner: OwnerReference,
    pub include_prefixes: &'a [String],
    pub template: TemplateInputs<'a>,
}

impl PrimaryInputs<'_> {
    fn labels(&self, target: &ObjectMeta) -> super::metadata::Labels {
        let sel = self.template.selector;
        primary_labels(
            &include_by_prefix(target.labels.as_ref(), self.include_prefixes),
            &sel.key,
            &sel.primary_value(),
        )
    }

    fn selector(&self) -> LabelSelector {
        let sel = self.template.selector;
        LabelSelector {
            match_labels: Some(
                [(sel.key.clone(), sel.primary_value())]
                    .into_iter()
                    .collect(),
            ),
            match_expressions: None,
        }
    }
}

/// The primary Deployment created when it is missing.
pub fn new_primary_deployment(target: &Deployment, input: &PrimaryInputs<'_>) -> Deployment {
    let spec = target.spec.clone().unwrap_or_default();
    let name = target.metadata.name.as_deref().unwrap_or_default();
    // The target may already be parked at zero: the primary never is.
    let replicas = spec.replicas.filter(|r| *r > 0).unwrap_or(1);
    Deployment {
        metadata: ObjectMeta {
            name: Some(primary_name(name)),
            namespace: Some(input.namespace.to_string()),
            labels: Some(input.labels(&target.metadata)),
            annotations: Some(drop_toolkit(target.metadata.annotations.as_ref())),
            owner_references: Some(vec![input.owner.clone()]),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            progress_deadline_seconds: spec.progress_deadline_seconds,
            min_ready_seconds: spec.min_ready_seconds,
            revision_history_limit: spec.revision_history_limit,
            replicas: Some(replicas),
            strategy: spec.strategy.clone(),
            selector: input.selector(),
            template: primary_template(&spec.template, &input.template),
            ..Default::default()
        }),
        status: None,
    }
}

/// The fields promotion manages, as a JSON view.
fn promotion_view(meta: &ObjectMeta, spec: &DeploymentSpec, replicas: bool) -> Value {
    let mut view = json!({
        "metadata": {"labels": meta.labels, "annotations": meta.annotations},
        "spec": {
            "progressDeadlineSeconds": spec.progress_deadline_seconds,
            "minReadySeconds": spec.min_ready_seconds,
            "revisionHistoryLimit": spec.revision_history_limit,
            "strategy": spec.strategy,
            "template": spec.template,
        }
    });
    if replicas {
        view["spec"]["replicas"] = json!(spec.replicas);
    }
    view
}

/// The merge patch that copies the target onto the primary; replicas only
/// without an autoscaler.
pub fn promotion_patch(
    target: &Deployment,
    primary: &Deployment,
    input: &PrimaryInputs<'_>,
    autoscaled: bool,
) -> Option<Value> {
    let spec = target.spec.clone().unwrap_or_default();
    let mut annotations =
        include_by_prefix(target.metadata.annotations.as_ref(), input.include_prefixes);
    annotations.extend(
        primary
            .metadata
            .annotations
            .iter()
            .flatten()
            .filter(|(k, _)| k.starts_with(CONTROLLER_ANNOTATIONS))
            .map(|(k, v)| (k.clone(), v.clone())),
    );
    let meta = ObjectMeta {
        labels: Some(input.labels(&target.metadata)),
        annotations: Some(annotations),
        ..Default::default()
    };
    let desired = DeploymentSpec {
        template: primary_template(&spec.template, &input.template),
        ..spec
    };
    let live = primary.spec.clone().unwrap_or_default();
    merge_diff(
        &promotion_view(&primary.metadata, &live, !autoscaled),
        &promotion_view(&meta, &desired, !autoscaled),
    )
}

/// The target's autoscaler, as ScaleFromZero sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Autoscaler {
    None,
    Hpa {
        min_replicas: Option<i32>,
    },
    /// A kind whose minimum Serin does not read (KEDA ScaledObject).
    Other,
}

/// Flagger's ScaleFromZero: the target's replicas if set; else the
/// primary's (no autoscaler) or the HPA's minimum above 1; else 1.
pub fn scale_from_zero_replicas(
    target: Option<i32>,
    autoscaler: &Autoscaler,
    primary: Option<i32>,
) -> i32 {
    if let Some(r) = target.filter(|r| *r > 0) {
        return r;
    }
    match autoscaler {
        Autoscaler::None => primary.filter(|r| *r > 0).unwrap_or(1),
        Autoscaler::Hpa { min_replicas } => min_replicas.filter(|m| *m > 1).unwrap_or(1),
        Autoscaler::Other => 1,
    }
}

/// `{"spec":{"replicas":n}}`.
pub fn replicas_patch(replicas: i32) -> Value {
    json!({"spec": {"replicas": replicas}})
}

#[cfg(test)]
mod tests;
