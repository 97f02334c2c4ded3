//! Provider `nginx`: Flagger's Ingress router. The Canary's `ingressRef` is
//! cloned to `<ingress>-canary` with the apex Service's backends moved to
//! `<svc>-canary`; the split is expressed by ingress-nginx's canary
//! annotations on the clone. The user's Ingress is never written.

mod build;
#[cfg(test)]
mod tests;

use std::num::ParseIntError;
use std::sync::Arc;

use crate::k8s::write as k8s_write;
use k8s_openapi::api::networking::v1::Ingress;
use serde_json::Value;
use serin_actors::model::observe::Routes;
use serin_actors::ports::{PortError, PortFuture, RouterPort, Target};
use tokio::time::Instant;

use crate::api::Canary;
use crate::api::canary::DeploymentStrategy;
use crate::api::canary::key_of;
use crate::k8s::{Caches, KubeClients, cache};

pub use build::{AbRule, Desired, Keys, ab_rule, canary_ingress_name, read_routes};
pub use build::{route_annotations, routes_patch};

/// Why an nginx router call failed, in Flagger's words where it has them.
#[derive(Debug, thiserror::Error)]
pub enum NginxError {
    #[error("ingress selector is empty")]
    EmptySelector,
    #[error(
        "ingress {name}.{namespace} get query error: ingresses.networking.k8s.io \"{name}\" not found"
    )]
    IngressNotFound { name: String, namespace: String },
    #[error("backend {service} not found in ingress {ingress}")]
    BackendNotFound { service: String, ingress: String },
    #[error(transparent)]
    Canary(#[from] crate::router::CanaryError),
    #[error("failed to convert {value} to int: {source}")]
    BadWeight {
        value: String,
        #[source]
        source: ParseIntError,
    },
    #[error("ingress {name}.{namespace} create error: {source}")]
    Create {
        name: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("ingress {name}.{namespace} update error: {source}")]
    Update {
        name: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

impl From<NginxError> for PortError {
    fn from(err: NginxError) -> PortError {
        match err {
            // PortError::NotFound appends " not found" itself.
            NginxError::IngressNotFound { name, namespace } => PortError::NotFound(format!(
                "ingress {name}.{namespace} get query error: ingresses.networking.k8s.io \"{name}\""
            )),
            NginxError::Canary(err) => err.into(),
            other => PortError::Failed(other.to_string()),
        }
    }
}

/// A write the cache says is needed.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Create(Box<Ingress>),
    Patch { name: String, patch: Value },
}

#[derive(Clone)]
pub struct NginxRouter {
    inner: Arc<Inner>,
}

struct Inner {
    clients: KubeClients,
    caches: Caches,
    keys: Keys,
}

impl NginxRouter {
    /// `prefix` is `-ingress-annotations-prefix`.
    pub fn new(clients: KubeClients, caches: Caches, prefix: &str) -> NginxRouter {
        NginxRouter {
            inner: Arc::new(Inner {
                clients,
                caches,
                keys: Keys::new(prefix),
            }),
        }
    }
}

fn ingress_ref(canary: &Canary) -> Result<&str, NginxError> {
    match canary.spec.ingress_ref.as_ref() {
        Some(r) if !r.name.is_empty() => Ok(r.name.as_str()),
        _ => Err(NginxError::EmptySelector),
    }
}

fn ingress_of(caches: &Caches, namespace: &str, name: &str) -> Result<Arc<Ingress>, NginxError> {
    cache::get(&caches.ingresses, namespace, name).ok_or_else(|| NginxError::IngressNotFound {
        name: name.to_string(),
        namespace: namespace.to_string(),
    })
}

/// The A/B rule when the Canary runs an A/B test, else `None` (weights).
fn ab_of(canary: &Canary) -> Option<AbRule> {
    (canary.spec.deployment_strategy() == DeploymentStrategy::AbTesting)
        .then(|| ab_rule(canary.spec.analysis.r#match.as_deref().unwrap_or_default()))
}

/// Flagger's `Reconcile`: create the clone, or bring its spec, labels and
/// non-canary annotations in line with the user's Ingress.
pub fn plan_reconcile(
    caches: &Caches,
    keys: &Keys,
    canary: &Canary,
) -> Result<Option<Write>, NginxError> {
    let key = key_of(canary);
    let ns = key.namespace.as_str();
    let source = ingress_ref(canary)?;
    let user = ingress_of(caches, ns, source)?;
    let desired = Desired::build(&user, canary.spec.service_name(), keys)?;
    let name = canary_ingress_name(source);
    let Some(current) = cache::get(&caches.ingresses, ns, &name) else {
        let owner = crate::router::owner_of(canary)?;
        let ingress = desired.to_ingress(&name, ns, owner, keys);
        return Ok(Some(Write::Create(Box::new(ingress))));
    };
    Ok(desired
        .patch(&current, keys)
        .map(|patch| Write::Patch { name, patch }))
}

/// Flagger's `SetRoutes`; mirroring is not supported and ignored.
pub fn plan_routes(
    caches: &Caches,
    keys: &Keys,
    canary: &Canary,
    routes: Routes,
) -> Result<Option<Write>, NginxError> {
    let key = key_of(canary);
    let name = canary_ingress_name(ingress_ref(canary)?);
    let current = ingress_of(caches, &key.namespace, &name)?;
    let wanted = route_annotations(keys, ab_of(canary).as_ref(), routes.canary);
    Ok(routes_patch(&current, &wanted, keys).map(|patch| Write::Patch { name, patch }))
}

/// Flagger's `GetRoutes`, from the cached clone.
pub fn current_routes(caches: &Caches, keys: &Keys, canary: &Canary) -> Result<Routes, NginxError> {
    let key = key_of(canary);
    let name = canary_ingress_name(ingress_ref(canary)?);
    let current = ingress_of(caches, &key.namespace, &name)?;
    let ab = ab_of(canary).is_some();
    read_routes(current.metadata.annotations.as_ref(), keys, ab)
}

impl Inner {
    async fn write(&self, target: &Target, write: Write) -> Result<(), NginxError> {
        let ns = target.key.namespace.as_str();
        let client = self.clients.for_priority(target.priority);
        match write {
            Write::Create(ingress) => {
                let name = ingress.metadata.name.clone().unwrap_or_default();
                match k8s_write::create(client, ns, ingress.as_ref()).await {
                    Ok(true) => {
                        tracing::info!(canary = %target.key, "Ingress {name}.{ns} created");
                        super::wait_cached(&self.caches.ingresses, ns, &name).await;
                        Ok(())
                    }
                    // The cache lagged behind an earlier create.
                    Ok(false) => Ok(()),
                    Err(source) => Err(NginxError::Create {
                        name,
                        namespace: ns.to_string(),
                        source,
                    }),
                }
            }
            Write::Patch { name, patch } => {
                k8s_write::merge_patch::<Ingress>(client, ns, &name, &patch)
                    .await
                    .map_err(|source| NginxError::Update {
                        name,
                        namespace: ns.to_string(),
                        source,
                    })
            }
        }
    }
}

impl RouterPort for NginxRouter {
    fn reconcile(&self, target: &Target, deadline: Instant) -> PortFuture<()> {
        let (inner, target) = (self.inner.clone(), target.clone());
        super::run(deadline, async move {
            let canary = crate::router::canary_of(&target)?;
            match plan_reconcile(&inner.caches, &inner.keys, &canary)? {
                Some(Write::Patch { name, patch }) => {
                    let what = format!("{name}.{}", target.key.namespace);
                    inner.write(&target, Write::Patch { name, patch }).await?;
                    tracing::info!(canary = %target.key, "Ingress {what} updated");
                    Ok(())
                }
                Some(write) => inner.write(&target, write).await,
                None => Ok(()),
            }
        })
    }

    fn set_routes(&self, target: &Target, routes: Routes, deadline: Instant) -> PortFuture<()> {
        let (inner, target) = (self.inner.clone(), target.clone());
        super::run(deadline, async move {
            let canary = crate::router::canary_of(&target)?;
            match plan_routes(&inner.caches, &inner.keys, &canary, routes)? {
                Some(write) => inner.write(&target, write).await,
                None => Ok(()),
            }
        })
    }

    fn get_routes(&self, target: &Target, deadline: Instant) -> PortFuture<Routes> {
        let (inner, target) = (self.inner.clone(), target.clone());
        super::run(deadline, async move {
            let canary = crate::router::canary_of(&target)?;
            current_routes(&inner.caches, &inner.keys, &canary)
        })
    }
}
