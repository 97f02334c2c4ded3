//! Providers `gatewayapi:v1` and `gatewayapi:v1beta1`: Flagger's Gateway API
//! router. One HTTPRoute named after the apex Service, owned by the Canary,
//! with `service.gatewayRefs` as parents (Gateways, or a Service for the
//! GAMMA mesh pattern Linkerd uses) and the split as the weights of the
//! `<svc>-primary` and `<svc>-canary` backends.
//!
//! `v1beta1` is Flagger's older router: no timeouts, no CORS, and no check
//! that the parents accepted the route.

mod build;
mod matches;
mod sticky;
#[cfg(test)]
mod tests;

use std::sync::Arc;
use std::time::Duration;

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};
use serin_actors::model::observe::Routes;
use serin_actors::model::status::SessionCookies;
use serin_actors::ports::{PortError, PortFuture, RouterPort, Target};
use tokio::time::Instant;

use crate::api::Canary;
use crate::api::canary::key_of;
use crate::api::gateway::{GROUP, HTTPRoute, HttpRouteSpec};
use crate::k8s::write::{FIELD_MANAGER, post_params};
use crate::k8s::{Caches, KubeClients, cache};
use crate::router::kept;
use crate::workload::metadata::{Labels, with_flux_disabled};
use crate::workload::patch::merge_diff;

pub use build::{Names, desired, normalize, read_routes};
pub use matches::{map_ab, map_matches, merge_matches};

/// How long `get_routes` waits for a gateway that accepted the route to
/// observe its latest generation.
const OBSERVE_WAIT: Duration = Duration::from_secs(3);

/// Which HTTPRoute API a Canary's provider writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V1Beta1,
}

impl Version {
    /// Flagger dispatches by prefix, `v1beta1` first.
    pub fn of(provider: &str) -> Option<Version> {
        if provider.starts_with("gatewayapi:v1beta1") {
            Some(Version::V1Beta1)
        } else if provider.starts_with("gatewayapi:v1") {
            Some(Version::V1)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Version::V1 => "v1",
            Version::V1Beta1 => "v1beta1",
        }
    }

    fn resource(self) -> ApiResource {
        ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(GROUP, self.as_str(), "HTTPRoute"),
            "httproutes",
        )
    }
}

/// Why a Gateway API router call failed, in Flagger's words where it has them.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("GatewayRefs must be specified when using Gateway API as a provider.")]
    NoGatewayRefs,
    #[error("Invalid request matching selectors: {0}")]
    InvalidMatch(String),
    #[error(
        "HTTPRoute {name}.{namespace} get error: httproutes.gateway.networking.k8s.io \"{name}\" not found"
    )]
    NotFound { name: String, namespace: String },
    #[error(
        "HTTPRoute {name}.{namespace} parent {parent} is not ready (status: {status}, observed generation: {observed}, current generation: {current})"
    )]
    ParentNotReady {
        name: String,
        namespace: String,
        parent: String,
        status: String,
        observed: i64,
        current: i64,
    },
    #[error("failed to parse canary interval: {0}")]
    Interval(String),
    #[error("provider {0} is not a Gateway API provider")]
    NotGatewayApi(String),
    #[error(transparent)]
    Canary(#[from] crate::router::CanaryError),
    #[error("HTTPRoute {name}.{namespace} create error: {source}")]
    Create {
        name: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("HTTPRoute {name}.{namespace} update error: {source}")]
    Update {
        name: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

impl GatewayError {
    /// The parents accepted the route, only not its latest generation yet.
    fn is_lagging(&self) -> bool {
        matches!(self, GatewayError::ParentNotReady { status, observed, current, .. }
            if status == "True" && observed < current)
    }
}

impl From<GatewayError> for PortError {
    fn from(err: GatewayError) -> PortError {
        match err {
            // PortError::NotFound appends " not found" itself.
            GatewayError::NotFound { name, namespace } => PortError::NotFound(format!(
                "HTTPRoute {name}.{namespace} get error: httproutes.gateway.networking.k8s.io \"{name}\""
            )),
            GatewayError::Canary(err) => err.into(),
            other => PortError::Failed(other.to_string()),
        }
    }
}

/// A write the cache says is needed.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Create(Value),
    Patch { name: String, patch: Value },
}

#[derive(Clone)]
pub struct GatewayApiRouter {
    inner: Arc<Inner>,
}

struct Inner {
    clients: KubeClients,
    caches: Caches,
}

impl GatewayApiRouter {
    pub fn new(clients: KubeClients, caches: Caches) -> GatewayApiRouter {
        GatewayApiRouter {
            inner: Arc::new(Inner { clients, caches }),
        }
    }
}

/// The route's labels and annotations: the apex metadata, Flux told to keep
/// off, and annotations other controllers added kept.
fn metadata(canary: &Canary, current: Option<&HTTPRoute>) -> (Labels, Labels) {
    let apex = canary
        .spec
        .service
        .as_ref()
        .and_then(|s| s.apex.clone())
        .unwrap_or_default();
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

fn view(labels: &Labels, annotations: &Labels, spec: &HttpRouteSpec) -> Value {
    json!({
        "metadata": {"labels": labels, "annotations": annotations},
        "spec": {
            "parentRefs": spec.parent_refs,
            "hostnames": spec.hostnames,
            "rules": spec.rules,
        },
    })
}

/// The cached route's managed fields; weights and mirroring are what
/// `set_routes` owns, so `reconcile` keeps the current ones.
fn current_view(route: &HTTPRoute) -> (Labels, Labels, HttpRouteSpec) {
    let mut spec = route.spec.clone();
    normalize(&mut spec);
    (
        route.metadata.labels.clone().unwrap_or_default(),
        route.metadata.annotations.clone().unwrap_or_default(),
        spec,
    )
}

fn version_of(provider: &str) -> Result<Version, GatewayError> {
    Version::of(provider).ok_or_else(|| GatewayError::NotGatewayApi(provider.to_string()))
}

/// Flagger's `Reconcile`: create the route, or bring it back in line with
/// the Canary (drift), keeping the split it carries.
pub fn plan_reconcile(
    caches: &Caches,
    canary: &Canary,
    provider: &str,
    cookies: &SessionCookies,
) -> Result<Option<Write>, GatewayError> {
    let version = version_of(provider)?;
    let key = key_of(canary);
    let names = Names::of(canary);
    let current = cache::get(&caches.httproutes, &key.namespace, &names.apex);
    let Some(current) = current else {
        let spec = desired(canary, version, Routes::default(), cookies)?;
        let owner = crate::router::owner_of(canary)?;
        let (labels, annotations) = metadata(canary, None);
        let route = json!({
            "apiVersion": format!("{GROUP}/{}", version.as_str()),
            "kind": "HTTPRoute",
            "metadata": {
                "name": names.apex,
                "namespace": key.namespace,
                "labels": labels,
                "annotations": annotations,
                "ownerReferences": [owner],
            },
            "spec": spec,
        });
        return Ok(Some(Write::Create(route)));
    };
    let (labels, annotations, spec) = current_view(&current);
    let wanted = desired(canary, version, kept(read_routes(&spec, &names)), cookies)?;
    let (want_labels, want_annotations) = metadata(canary, Some(&current));
    Ok(merge_diff(
        &view(&labels, &annotations, &spec),
        &view(&want_labels, &want_annotations, &wanted),
    )
    .map(|patch| Write::Patch {
        name: names.apex,
        patch,
    }))
}

/// Flagger's `SetRoutes`: the rules for `routes`, written only if they differ.
pub fn plan_routes(
    caches: &Caches,
    canary: &Canary,
    provider: &str,
    routes: Routes,
    cookies: &SessionCookies,
) -> Result<Option<Write>, GatewayError> {
    let version = version_of(provider)?;
    let current = route_of(caches, canary)?;
    let (_, _, spec) = current_view(&current);
    let wanted = desired(canary, version, routes, cookies)?;
    let rules = |s: &HttpRouteSpec| json!({ "spec": { "rules": s.rules } });
    Ok(
        merge_diff(&rules(&spec), &rules(&wanted)).map(|patch| Write::Patch {
            name: Names::of(canary).apex,
            patch,
        }),
    )
}

/// Flagger's `GetRoutes`; `v1` first checks that every parent accepted the
/// route's current generation.
pub fn current_routes(
    caches: &Caches,
    canary: &Canary,
    provider: &str,
) -> Result<Routes, GatewayError> {
    let version = version_of(provider)?;
    let route = route_of(caches, canary)?;
    if version == Version::V1 {
        parents_ready(&route)?;
    }
    let (_, _, spec) = current_view(&route);
    Ok(read_routes(&spec, &Names::of(canary)))
}

fn route_of(caches: &Caches, canary: &Canary) -> Result<Arc<HTTPRoute>, GatewayError> {
    let key = key_of(canary);
    let name = Names::of(canary).apex;
    cache::get(&caches.httproutes, &key.namespace, &name).ok_or(GatewayError::NotFound {
        name,
        namespace: key.namespace,
    })
}

/// A parent whose `Accepted` condition is not True for this generation
/// stops the step, as in Flagger 1.42+. A parent with no status yet passes.
fn parents_ready(route: &HTTPRoute) -> Result<(), GatewayError> {
    let current = route.metadata.generation.unwrap_or(0);
    let mut spec = route.spec.clone();
    let raw = spec.parent_refs.clone();
    normalize(&mut spec);
    let statuses = route.status.as_ref().map(|s| s.parents.as_slice());
    for (parent, raw) in spec.parent_refs.iter().zip(&raw) {
        for status in statuses.into_iter().flatten() {
            let mut seen = status.parent_ref.clone();
            seen.group.get_or_insert_with(|| GROUP.to_string());
            seen.kind.get_or_insert_with(|| "Gateway".to_string());
            if &seen != parent {
                continue;
            }
            for c in status.conditions.iter().filter(|c| c.type_ == "Accepted") {
                let observed = c.observed_generation.unwrap_or(0);
                if c.status != "True" || observed < current {
                    return Err(GatewayError::ParentNotReady {
                        name: route.metadata.name.clone().unwrap_or_default(),
                        namespace: route.metadata.namespace.clone().unwrap_or_default(),
                        parent: raw.name.clone(),
                        status: c.status.clone(),
                        observed,
                        current,
                    });
                }
            }
        }
    }
    Ok(())
}

impl Inner {
    async fn write(
        &self,
        target: &Target,
        version: Version,
        write: Write,
    ) -> Result<(), GatewayError> {
        let ns = target.key.namespace.as_str();
        let client = self.clients.for_priority(target.priority);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &version.resource());
        match write {
            Write::Create(route) => {
                let name = route
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let create_err = |source| GatewayError::Create {
                    name: name.clone(),
                    namespace: ns.to_string(),
                    source,
                };
                let object: DynamicObject = serde_json::from_value(route)
                    .map_err(|e| create_err(kube::Error::SerdeError(e)))?;
                match api.create(&post_params(), &object).await {
                    Ok(_) => {
                        tracing::info!(canary = %target.key, "HTTPRoute {name}.{ns} created");
                        super::wait_cached(&self.caches.httproutes, ns, &name).await;
                        Ok(())
                    }
                    // The cache lags behind an earlier create (or a restart's list).
                    Err(kube::Error::Api(status)) if status.is_already_exists() => {
                        super::wait_cached(&self.caches.httproutes, ns, &name).await;
                        Ok(())
                    }
                    Err(source) => Err(create_err(source)),
                }
            }
            Write::Patch { name, patch } => {
                let params = PatchParams {
                    field_manager: Some(FIELD_MANAGER.to_string()),
                    ..PatchParams::default()
                };
                api.patch(&name, &params, &Patch::Merge(&patch))
                    .await
                    .map(|_| ())
                    .map_err(|source| GatewayError::Update {
                        name,
                        namespace: ns.to_string(),
                        source,
                    })
            }
        }
    }
}

impl RouterPort for GatewayApiRouter {
    fn reconcile(&self, target: &Target, deadline: Instant) -> PortFuture<()> {
        let (inner, target) = (self.inner.clone(), target.clone());
        super::run(deadline, async move {
            let canary = crate::router::canary_of(&target)?;
            let version = version_of(&target.provider)?;
            match plan_reconcile(&inner.caches, &canary, &target.provider, &target.session)? {
                Some(Write::Patch { name, patch }) => {
                    let what = format!("{name}.{}", target.key.namespace);
                    let write = Write::Patch { name, patch };
                    inner.write(&target, version, write).await?;
                    tracing::info!(canary = %target.key, "HTTPRoute {what} updated");
                    Ok(())
                }
                Some(write) => inner.write(&target, version, write).await,
                None => Ok(()),
            }
        })
    }

    fn set_routes(&self, target: &Target, routes: Routes, deadline: Instant) -> PortFuture<()> {
        let (inner, target) = (self.inner.clone(), target.clone());
        super::run(deadline, async move {
            let canary = crate::router::canary_of(&target)?;
            let version = version_of(&target.provider)?;
            match plan_routes(
                &inner.caches,
                &canary,
                &target.provider,
                routes,
                &target.session,
            )? {
                Some(write) => inner.write(&target, version, write).await,
                None => Ok(()),
            }
        })
    }

    fn get_routes(&self, target: &Target, deadline: Instant) -> PortFuture<Routes> {
        let (inner, target) = (self.inner.clone(), target.clone());
        super::run(deadline, async move {
            let canary = crate::router::canary_of(&target)?;
            // A step right after our own write (a wake-up) would otherwise
            // find the gateway a generation behind: give it a moment.
            let until = Instant::now() + OBSERVE_WAIT;
            loop {
                match current_routes(&inner.caches, &canary, &target.provider) {
                    Err(err) if err.is_lagging() && Instant::now() < until => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    other => return other,
                }
            }
        })
    }
}
