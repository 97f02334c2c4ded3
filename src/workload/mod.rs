//! Deployment and DaemonSet targets, their primaries, Services and HPAs,
//! with Flagger's rules.
//!
//! Reads come from the watch caches only, so a tick costs no read request;
//! writes are merge patches computed against the cached object and skipped
//! when nothing managed differs. The builders are pure functions
//! (`deployment`, `daemonset`, `services`, `hpa`, `config`, `readiness`...);
//! `reconcile`, `observe` and `scale` look objects up and send the requests.

pub mod config;
mod context;
mod daemonset;
mod deployment;
mod error;
pub mod hash;
mod hpa;
mod io;
pub mod metadata;
mod observe;
pub(crate) mod patch;
pub mod readiness;
mod reconcile;
mod scale;
mod services;
mod template;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, PodTemplateSpec, Secret, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serin_actors::model::observe::{Readiness, Revision};
use serin_actors::model::status::Timestamp;
use serin_actors::ports::{PortError, PortFuture, Target, WorkloadPort, WorkloadState};
use tokio::time::Instant;

use crate::api::Canary;
use crate::api::canary::{AutoscalerKind, CanaryService, CustomMetadata, TargetKind};
use crate::k8s::cache::get;
use crate::k8s::{Caches, KubeClients};
use crate::settings::Settings;

pub use config::{ConfigKind, ConfigRef};
pub use error::WorkloadError;
pub use metadata::{SelectorLabel, selector_label};

use config::Lookup;
use context::{Ctx, Workload, WorkloadKind, now};
use deployment::{Autoscaler, PrimaryInputs, primary_name};
use metadata::Labels;
use readiness::{Check, Role};
use services::ServicePlan;
use template::TemplateInputs;

/// The Kubernetes [`WorkloadPort`] for Deployment and DaemonSet targets.
#[derive(Clone)]
pub struct KubeWorkload {
    inner: Arc<Inner>,
}

struct Inner {
    clients: KubeClients,
    caches: Caches,
    settings: Arc<Settings>,
}

impl KubeWorkload {
    pub fn new(clients: KubeClients, caches: Caches, settings: Arc<Settings>) -> KubeWorkload {
        KubeWorkload {
            inner: Arc::new(Inner {
                clients,
                caches,
                settings,
            }),
        }
    }

    /// `revertOnDeletion`: give the target its replicas back and point the
    /// apex Service at it. Waiting for the target to be ready is the caller's.
    pub async fn finalize(&self, canary: &Canary) -> Result<(), WorkloadError> {
        let kind = match canary.spec.target_ref.kind {
            TargetKind::Deployment => "Deployment",
            TargetKind::DaemonSet => "DaemonSet",
            TargetKind::Service => "Service",
        };
        let ctx = self.inner.context(
            Arc::new(canary.clone()),
            kind,
            &canary.spec.target_ref.name,
            self.inner.clients.routine.clone(),
        )?;
        self.inner.finalize(&ctx).await
    }
}

/// Runs a call under the port's deadline.
fn run<T, F>(deadline: Instant, fut: F) -> PortFuture<T>
where
    T: Send + 'static,
    F: Future<Output = Result<T, WorkloadError>> + Send + 'static,
{
    Box::pin(async move {
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(result) => result.map_err(PortError::from),
            Err(_) => Err(PortError::Timeout),
        }
    })
}

impl WorkloadPort for KubeWorkload {
    fn bootstrap(&self, target: &Target, deadline: Instant) -> PortFuture<()> {
        let (inner, target) = (self.inner.clone(), target.clone());
        run(deadline, async move {
            let ctx = inner.target_context(&target)?;
            inner.bootstrap(&ctx).await
        })
    }

    fn observe(&self, target: &Target, deadline: Instant) -> PortFuture<WorkloadState> {
        let (inner, target) = (self.inner.clone(), target.clone());
        run(deadline, async move {
            let ctx = inner.target_context(&target)?;
            inner.observe(&ctx)
        })
    }

    fn scale_canary_up(&self, target: &Target, deadline: Instant) -> PortFuture<()> {
        let (inner, target) = (self.inner.clone(), target.clone());
        run(deadline, async move {
            let ctx = inner.target_context(&target)?;
            inner.scale_up(&ctx).await
        })
    }

    fn scale_canary_to_zero(&self, target: &Target, deadline: Instant) -> PortFuture<()> {
        let (inner, target) = (self.inner.clone(), target.clone());
        run(deadline, async move {
            let ctx = inner.target_context(&target)?;
            inner.scale_to_zero(&ctx).await
        })
    }

    fn promote(&self, target: &Target, deadline: Instant) -> PortFuture<()> {
        let (inner, target) = (self.inner.clone(), target.clone());
        run(deadline, async move {
            let ctx = inner.target_context(&target)?;
            inner.promote(&ctx).await
        })
    }

    fn reconcile_primary_scaler(&self, target: &Target, deadline: Instant) -> PortFuture<()> {
        let (inner, target) = (self.inner.clone(), target.clone());
        run(deadline, async move {
            let ctx = inner.target_context(&target)?;
            inner.reconcile_primary_hpa(&ctx, false).await
        })
    }
}
