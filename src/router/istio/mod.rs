//! Provider `istio` (also an empty `-mesh-provider`): Flagger's Istio
//! router. DestinationRules `<svc>-primary` and `<svc>-canary` carry
//! `service.trafficPolicy`; the VirtualService named after the apex carries
//! the hosts, gateways and the routes with the split (pure builders in
//! `build.rs` and `sticky.rs`). A VirtualService that already exists is
//! taken over (its original spec saved, see `takeover.rs`) and, with
//! `revertOnDeletion`, given back when the Canary goes.

mod build;
mod sticky;
mod takeover;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::{Value, json};
use serin_actors::model::observe::Routes;
use serin_actors::model::status::SessionCookies;
use serin_actors::ports::{PortError, PortFuture, RouterPort, Target};
use tokio::time::Instant;

use crate::api::Canary;
use crate::api::canary::{CanaryService, key_of};
use crate::api::istio::{DestinationRule, VirtualService, VirtualServiceSpec};
use crate::k8s::write as k8s_write;
use crate::k8s::{Caches, KubeClients, cache};
use crate::router::{Names, kept};
use crate::workload::metadata::{Labels, with_flux_disabled};
use crate::workload::patch::merge_diff;

pub use build::{ab_requests, desired, destination_rule, is_tcp, merge_matches, read_routes};
pub use takeover::{LAST_APPLIED, ORIGINAL};

/// Flagger's default mesh: `istio`, and an empty provider.
pub fn handles(provider: &str) -> bool {
    provider == "istio" || provider.is_empty()
}

/// Why an Istio router call failed, in Flagger's words where it has them.
#[derive(Debug, thiserror::Error)]
pub enum IstioError {
    #[error(
        "VirtualService {name}.{namespace} cannot have hosts and gateways when delegation enabled"
    )]
    DelegationWithHosts { name: String, namespace: String },
    #[error(
        "Invalid request matching selectors: Istio has no suffix match (header {0}); use a regex"
    )]
    SuffixMatch(String),
    #[error("failed to parse canary interval: {0}")]
    Interval(String),
    #[error(
        "VirtualService {name}.{namespace} get query error virtualservices.networking.istio.io \"{name}\" not found"
    )]
    NotFound { name: String, namespace: String },
    #[error(
        "VirtualService {name}.{namespace} does not contain routes for {apex}-primary and {apex}-canary"
    )]
    NoRoutes {
        name: String,
        namespace: String,
        apex: String,
    },
    #[error(transparent)]
    Canary(#[from] crate::router::CanaryError),
    #[error("{kind} {name}.{namespace} get query error: {source}")]
    Get {
        kind: &'static str,
        name: String,
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{kind} {name}.{namespace} create error: {source}")]
    Create {
        kind: &'static str,
        name: String,
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("{kind} {name}.{namespace} update error: {source}")]
    Update {
        kind: &'static str,
        name: String,
        namespace: String,
        #[source]
        source: Box<kube::Error>,
    },
    #[error("VirtualService {name}.{namespace} failed to unMarshal annotation {annotation}")]
    Unmarshal {
        name: String,
        namespace: String,
        annotation: &'static str,
    },
}

impl From<IstioError> for PortError {
    fn from(err: IstioError) -> PortError {
        match err {
            // PortError::NotFound appends " not found" itself.
            IstioError::NotFound { name, namespace } => PortError::NotFound(format!(
                "VirtualService {name}.{namespace} get query error virtualservices.networking.istio.io \"{name}\""
            )),
            IstioError::Canary(err) => err.into(),
            other => PortError::Failed(other.to_string()),
        }
    }
}

/// A write the cache says is needed.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    CreateRule(Box<DestinationRule>),
    CreateService(Box<VirtualService>),
    PatchRule {
        name: String,
        patch: Value,
    },
    /// `save_original`: the object is a user's, taken over by this write;
    /// its spec as the API server has it goes into [`ORIGINAL`] first.
    PatchService {
        name: String,
        patch: Value,
        save_original: bool,
    },
}

fn service_of(canary: &Canary) -> CanaryService {
    canary.spec.service.clone().unwrap_or_default()
}

/// Flagger's `Reconcile`: both DestinationRules, then the VirtualService,
/// created or brought back in line (keeping the split it carries).
pub fn plan_reconcile(
    caches: &Caches,
    canary: &Canary,
    cookies: &SessionCookies,
) -> Result<Vec<Write>, IstioError> {
    let names = Names::of(canary);
    let mut writes = vec![];
    for name in [&names.canary, &names.primary] {
        writes.extend(plan_rule(caches, canary, name)?);
    }
    writes.extend(plan_service(caches, canary, cookies)?);
    Ok(writes)
}

fn plan_rule(caches: &Caches, canary: &Canary, name: &str) -> Result<Option<Write>, IstioError> {
    let ns = key_of(canary).namespace;
    let wanted = destination_rule(&service_of(canary), name);
    let Some(current) = cache::get(&caches.destinationrules, &ns, name) else {
        let mut rule = DestinationRule::new(name, wanted);
        rule.metadata.namespace = Some(ns);
        rule.metadata.owner_references = Some(vec![crate::router::owner_of(canary)?]);
        return Ok(Some(Write::CreateRule(Box::new(rule))));
    };
    Ok(
        merge_diff(&json!({"spec": current.spec}), &json!({"spec": wanted})).map(|patch| {
            Write::PatchRule {
                name: name.to_string(),
                patch,
            }
        }),
    )
}

/// The VirtualService's labels and annotations: the apex metadata, Flux
/// told to keep off, and annotations already there kept (kubectl's
/// last-applied and the saved original among them).
fn metadata(canary: &Canary, current: Option<&VirtualService>) -> (Labels, Labels) {
    let apex = service_of(canary).apex.unwrap_or_default();
    let labels = apex.labels.unwrap_or_default();
    let mut annotations = with_flux_disabled(apex.annotations.unwrap_or_default());
    for (k, v) in current
        .and_then(|c| c.metadata.annotations.as_ref())
        .into_iter()
        .flatten()
    {
        annotations.entry(k.clone()).or_insert_with(|| v.clone());
    }
    (labels, annotations)
}

fn view(labels: &Labels, annotations: &Labels, spec: &VirtualServiceSpec) -> Value {
    json!({
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": spec,
    })
}

fn plan_service(
    caches: &Caches,
    canary: &Canary,
    cookies: &SessionCookies,
) -> Result<Option<Write>, IstioError> {
    let key = key_of(canary);
    let names = Names::of(canary);
    let Some(current) = cache::get(&caches.virtualservices, &key.namespace, &names.apex) else {
        let spec = desired(canary, Routes::default(), cookies)?;
        let (labels, annotations) = metadata(canary, None);
        let mut vs = VirtualService::new(&names.apex, spec);
        vs.metadata.namespace = Some(key.namespace.clone());
        vs.metadata.labels = Some(labels);
        vs.metadata.annotations = Some(annotations);
        vs.metadata.owner_references = Some(vec![crate::router::owner_of(canary)?]);
        return Ok(Some(Write::CreateService(Box::new(vs))));
    };
    let wanted = desired(canary, kept(read_routes(&current.spec, canary)), cookies)?;
    let (labels, annotations) = metadata(canary, Some(&current));
    let before = view(
        &current.metadata.labels.clone().unwrap_or_default(),
        &current.metadata.annotations.clone().unwrap_or_default(),
        &current.spec,
    );
    let Some(patch) = merge_diff(&before, &view(&labels, &annotations, &wanted)) else {
        return Ok(None);
    };
    let save_original =
        patch.get("spec").is_some() && takeover::keeps_no_original(&current, canary);
    Ok(Some(Write::PatchService {
        name: names.apex,
        patch,
        save_original,
    }))
}

/// Flagger's `SetRoutes`: the routes for `routes`, written only if they differ.
pub fn plan_routes(
    caches: &Caches,
    canary: &Canary,
    routes: Routes,
    cookies: &SessionCookies,
) -> Result<Option<Write>, IstioError> {
    let current = service_in(caches, canary)?;
    let wanted = desired(canary, routes, cookies)?;
    let routes_of = |s: &VirtualServiceSpec| json!({"spec": {"http": s.http, "tcp": s.tcp}});
    Ok(
        merge_diff(&routes_of(&current.spec), &routes_of(&wanted)).map(|patch| {
            Write::PatchService {
                name: Names::of(canary).apex,
                patch,
                save_original: false,
            }
        }),
    )
}

/// Flagger's `GetRoutes`: a VirtualService with neither weight is an error.
pub fn current_routes(caches: &Caches, canary: &Canary) -> Result<Routes, IstioError> {
    let current = service_in(caches, canary)?;
    let routes = read_routes(&current.spec, canary);
    if routes.primary == 0 && routes.canary == 0 {
        let key = key_of(canary);
        let apex = Names::of(canary).apex;
        return Err(IstioError::NoRoutes {
            name: apex.clone(),
            namespace: key.namespace,
            apex,
        });
    }
    Ok(routes)
}

fn service_in(caches: &Caches, canary: &Canary) -> Result<Arc<VirtualService>, IstioError> {
    let key = key_of(canary);
    let name = Names::of(canary).apex;
    cache::get(&caches.virtualservices, &key.namespace, &name).ok_or(IstioError::NotFound {
        name,
        namespace: key.namespace,
    })
}

#[derive(Clone)]
pub struct IstioRouter {
    inner: Arc<Inner>,
}

struct Inner {
    clients: KubeClients,
    caches: Caches,
}

impl IstioRouter {
    pub fn new(clients: KubeClients, caches: Caches) -> IstioRouter {
        IstioRouter {
            inner: Arc::new(Inner { clients, caches }),
        }
    }

    /// `revertOnDeletion`: the VirtualService gets its original spec back.
    pub async fn finalize(&self, canary: &Canary) -> Result<(), IstioError> {
        takeover::revert(&self.inner.clients.routine, canary).await
    }
}

impl Inner {
    async fn write(&self, target: &Target, write: Write) -> Result<(), IstioError> {
        let ns = target.key.namespace.as_str();
        let client = self.clients.for_priority(target.priority);
        let canary = &target.key;
        match write {
            Write::CreateRule(rule) => {
                let name = rule.metadata.name.clone().unwrap_or_default();
                let created = k8s_write::create(client, ns, rule.as_ref())
                    .await
                    .map_err(|source| create_error("DestinationRule", &name, ns, source))?;
                if created {
                    tracing::info!(canary = %canary, "DestinationRule {name}.{ns} created");
                }
                super::wait_cached(&self.caches.destinationrules, ns, &name).await;
            }
            Write::CreateService(vs) => {
                let name = vs.metadata.name.clone().unwrap_or_default();
                let created = k8s_write::create(client, ns, vs.as_ref())
                    .await
                    .map_err(|source| create_error("VirtualService", &name, ns, source))?;
                if created {
                    tracing::info!(canary = %canary, "VirtualService {name}.{ns} created");
                }
                super::wait_cached(&self.caches.virtualservices, ns, &name).await;
            }
            Write::PatchRule { name, patch } => {
                k8s_write::merge_patch::<DestinationRule>(client, ns, &name, &patch)
                    .await
                    .map_err(|source| update_error("DestinationRule", &name, ns, source))?;
                tracing::info!(canary = %canary, "DestinationRule {name}.{ns} updated");
            }
            Write::PatchService {
                name,
                mut patch,
                save_original,
            } => {
                if save_original {
                    takeover::save_original(client, ns, &name, &mut patch).await?;
                }
                k8s_write::merge_patch::<VirtualService>(client, ns, &name, &patch)
                    .await
                    .map_err(|source| update_error("VirtualService", &name, ns, source))?;
            }
        }
        Ok(())
    }
}

fn create_error(kind: &'static str, name: &str, ns: &str, source: kube::Error) -> IstioError {
    IstioError::Create {
        kind,
        name: name.to_string(),
        namespace: ns.to_string(),
        source: Box::new(source),
    }
}

fn update_error(kind: &'static str, name: &str, ns: &str, source: kube::Error) -> IstioError {
    IstioError::Update {
        kind,
        name: name.to_string(),
        namespace: ns.to_string(),
        source: Box::new(source),
    }
}

impl RouterPort for IstioRouter {
    fn reconcile(&self, target: &Target, deadline: Instant) -> PortFuture<()> {
        let (inner, target) = (self.inner.clone(), target.clone());
        super::run(deadline, async move {
            let canary = crate::router::canary_of(&target)?;
            for write in plan_reconcile(&inner.caches, &canary, &target.session)? {
                let updated = match &write {
                    Write::PatchService { name, .. } => Some(name.clone()),
                    _ => None,
                };
                inner.write(&target, write).await?;
                if let Some(name) = updated {
                    let ns = &target.key.namespace;
                    tracing::info!(canary = %target.key, "VirtualService {name}.{ns} updated");
                }
            }
            Ok::<(), IstioError>(())
        })
    }

    fn set_routes(&self, target: &Target, routes: Routes, deadline: Instant) -> PortFuture<()> {
        let (inner, target) = (self.inner.clone(), target.clone());
        super::run(deadline, async move {
            let canary = crate::router::canary_of(&target)?;
            match plan_routes(&inner.caches, &canary, routes, &target.session)? {
                Some(write) => inner.write(&target, write).await,
                None => Ok(()),
            }
        })
    }

    fn get_routes(&self, target: &Target, deadline: Instant) -> PortFuture<Routes> {
        let (inner, target) = (self.inner.clone(), target.clone());
        super::run(deadline, async move {
            let canary = crate::router::canary_of(&target)?;
            current_routes(&inner.caches, &canary)
        })
    }
}
