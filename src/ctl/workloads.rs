//! The canary's target and its `-primary`: images and readiness for the
//! view, the pod template for the revision check.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use kube::{Api, Client, ResourceExt};

use crate::api::canary::{TargetKind, TargetRef};
use crate::workload::hash;

use super::CtlError;

/// A Deployment or DaemonSet, the kinds whose revisions Serin compares.
#[derive(Clone, Debug, PartialEq)]
pub enum Workload {
    Deployment(Deployment),
    DaemonSet(DaemonSet),
}

/// What the view shows of a workload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadView {
    pub name: String,
    /// `(container, image)` in the pod template's order.
    pub images: Vec<(String, String)>,
    pub ready: i32,
    pub desired: i32,
}

impl Workload {
    pub fn template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Workload::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Workload::DaemonSet(d) => d.spec.as_ref().map(|s| &s.template),
        }
    }

    /// The revision hash the operator computes for this workload
    /// (`src/workload/observe.rs`).
    pub fn spec_hash(&self) -> String {
        let template = self.template().cloned().unwrap_or_default();
        match self {
            Workload::Deployment(_) => hash::template_hash(&template),
            Workload::DaemonSet(_) => hash::daemonset_template_hash(&template),
        }
    }

    pub fn view(&self) -> WorkloadView {
        let (name, ready, desired) = match self {
            Workload::Deployment(d) => {
                let status = d.status.as_ref();
                (
                    d.name_any(),
                    status.and_then(|s| s.ready_replicas).unwrap_or(0),
                    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1),
                )
            }
            Workload::DaemonSet(d) => {
                let status = d.status.as_ref();
                (
                    d.name_any(),
                    status.map_or(0, |s| s.number_ready),
                    status.map_or(0, |s| s.desired_number_scheduled),
                )
            }
        };
        let images = self
            .template()
            .and_then(|t| t.spec.as_ref())
            .map(|spec| {
                spec.containers
                    .iter()
                    .map(|c| (c.name.clone(), c.image.clone().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default();
        WorkloadView {
            name,
            images,
            ready,
            desired,
        }
    }
}

/// Gets the workload `name` of the target's kind; `None` when it does not
/// exist or the kind is not a Deployment or DaemonSet.
pub async fn get(
    client: &Client,
    namespace: &str,
    target: &TargetRef,
    name: &str,
) -> Result<Option<Workload>, CtlError> {
    Ok(match target.kind {
        TargetKind::Deployment => Api::<Deployment>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(Workload::Deployment),
        TargetKind::DaemonSet => Api::<DaemonSet>::namespaced(client.clone(), namespace)
            .get_opt(name)
            .await?
            .map(Workload::DaemonSet),
        TargetKind::Service => None,
    })
}

/// The primary's name: `<target>-primary`.
pub fn primary_name(target: &TargetRef) -> String {
    format!("{}-primary", target.name)
}
