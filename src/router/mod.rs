//! Traffic routers, one provider per file, chosen per Canary by its
//! resolved provider (`spec.provider` or `-mesh-provider`).

pub mod gateway_api;
pub mod istio;
pub mod kubernetes;
pub mod nginx;
pub mod smi;

use std::sync::Arc;
use std::time::Duration;

use kube::runtime::reflector::Store;
use serin_actors::model::observe::Routes;
use serin_actors::ports::{PortError, PortFuture, RouterPort, Target};
use tokio::time::Instant;

use crate::k8s::{Caches, KubeClients};

/// Providers this build can route through (`smi:v1alpha2` and the Gateway
/// API versions also with a suffix, as Flagger matches them by prefix).
pub const SUPPORTED: &[&str] = &[
    "kubernetes",
    "nginx",
    "gatewayapi:v1",
    "gatewayapi:v1beta1",
    "linkerd",
    "smi:v1alpha2",
    "osm",
    "istio",
];

/// Whether `provider` has a router here (Flagger dispatches by prefix).
pub fn supported(provider: &str) -> bool {
    matches!(provider, "kubernetes" | "nginx")
        || gateway_api::Version::of(provider).is_some()
        || smi::handles(provider)
        || istio::handles(provider)
}

/// The split a drift fix keeps: the current one, unless the routing object
/// has lost it (no route with our backends), where Flagger's initial 100/0
/// applies.
pub fn kept(routes: Routes) -> Routes {
    match routes.primary + routes.canary {
        0 => Routes::default(),
        _ => routes,
    }
}

/// The three Services a Canary's routes send traffic to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Names {
    pub apex: String,
    pub primary: String,
    pub canary: String,
}

impl Names {
    pub fn of(canary: &crate::api::Canary) -> Names {
        let apex = canary.spec.service_name().to_string();
        Names {
            primary: format!("{apex}-primary"),
            canary: format!("{apex}-canary"),
            apex,
        }
    }
}

/// The Canary a router call is about, or why it has none to act on.
#[derive(Debug, thiserror::Error)]
pub enum CanaryError {
    #[error("canary {name}.{namespace} not found")]
    NotFound { name: String, namespace: String },
    #[error("canary {name}.{namespace} has no uid yet")]
    WithoutUid { name: String, namespace: String },
}

impl From<CanaryError> for PortError {
    fn from(err: CanaryError) -> PortError {
        match err {
            // PortError::NotFound appends " not found" itself.
            CanaryError::NotFound { name, namespace } => {
                PortError::NotFound(format!("canary {name}.{namespace}"))
            }
            other => PortError::Failed(other.to_string()),
        }
    }
}

/// The Canary the actor decided on (the step's source object).
pub fn canary_of(target: &Target) -> Result<Arc<crate::api::Canary>, CanaryError> {
    target
        .source
        .get::<crate::api::Canary>()
        .ok_or_else(|| CanaryError::NotFound {
            name: target.key.name.clone(),
            namespace: target.key.namespace.clone(),
        })
}

/// The owner reference generated routing objects carry (the Canary's).
pub fn owner_of(
    canary: &crate::api::Canary,
) -> Result<k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference, CanaryError> {
    crate::workload::metadata::canary_ref(canary).ok_or_else(|| {
        let key = crate::api::canary::key_of(canary);
        CanaryError::WithoutUid {
            name: key.name,
            namespace: key.namespace,
        }
    })
}

/// Dispatches each call to the router of the target's provider.
#[derive(Clone)]
pub struct Routers {
    kubernetes: Arc<kubernetes::KubernetesRouter>,
    nginx: Arc<nginx::NginxRouter>,
    gateway_api: Arc<gateway_api::GatewayApiRouter>,
    smi: Arc<smi::SmiRouter>,
    istio: Arc<istio::IstioRouter>,
}

impl Routers {
    /// `ingress_annotations_prefix` is `-ingress-annotations-prefix`.
    pub fn new(caches: Caches, clients: KubeClients, ingress_annotations_prefix: &str) -> Routers {
        Routers {
            kubernetes: Arc::new(kubernetes::KubernetesRouter::new()),
            nginx: Arc::new(nginx::NginxRouter::new(
                clients.clone(),
                caches.clone(),
                ingress_annotations_prefix,
            )),
            gateway_api: Arc::new(gateway_api::GatewayApiRouter::new(
                clients.clone(),
                caches.clone(),
            )),
            smi: Arc::new(smi::SmiRouter::new(clients.clone(), caches.clone())),
            istio: Arc::new(istio::IstioRouter::new(clients, caches)),
        }
    }

    fn pick(&self, target: &Target) -> Result<&dyn RouterPort, PortError> {
        match target.provider.as_str() {
            "kubernetes" => Ok(self.kubernetes.as_ref()),
            "nginx" => Ok(self.nginx.as_ref()),
            p if gateway_api::Version::of(p).is_some() => Ok(self.gateway_api.as_ref()),
            p if smi::handles(p) => Ok(self.smi.as_ref()),
            p if istio::handles(p) => Ok(self.istio.as_ref()),
            other => Err(PortError::Failed(unsupported(other))),
        }
    }
}

impl Routers {
    /// `revertOnDeletion` for the provider's routing objects: Istio gives a
    /// taken-over VirtualService its original spec back; the others' objects
    /// are the Canary's own and go with it.
    pub async fn finalize(
        &self,
        canary: &crate::api::Canary,
        provider: &str,
    ) -> Result<(), String> {
        if istio::handles(provider) {
            self.istio
                .finalize(canary)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// What the provider's router cannot express, found before an actor starts
/// (Flagger finds it at each `Reconcile`): the same message either way.
pub fn check(canary: &crate::api::Canary, provider: &str) -> Result<(), String> {
    if let Some(affinity) = &canary.spec.analysis.session_affinity
        && affinity.primary_cookie_name.as_deref() == Some(affinity.cookie_name.as_str())
    {
        return Err("can't use the same cookie name for both primary and cookie name; please update them to be different".into());
    }
    if let Some(version) = gateway_api::Version::of(provider) {
        let routes = serin_actors::model::observe::Routes::default();
        let cookies = serin_actors::model::status::SessionCookies::default();
        gateway_api::desired(canary, version, routes, &cookies).map_err(|e| e.to_string())?;
    }
    if istio::handles(provider) {
        let cookies = serin_actors::model::status::SessionCookies::default();
        istio::desired(canary, Routes::default(), &cookies).map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The error text for a provider Serin has no router for.
pub fn unsupported(provider: &str) -> String {
    format!(
        "provider {provider} is not supported by this version of Serin (supported: {})",
        SUPPORTED.join(", ")
    )
}

impl RouterPort for Routers {
    fn reconcile(&self, target: &Target, deadline: Instant) -> PortFuture<()> {
        match self.pick(target) {
            Ok(router) => router.reconcile(target, deadline),
            Err(err) => Box::pin(async move { Err(err) }),
        }
    }

    fn set_routes(&self, target: &Target, routes: Routes, deadline: Instant) -> PortFuture<()> {
        match self.pick(target) {
            Ok(router) => router.set_routes(target, routes, deadline),
            Err(err) => Box::pin(async move { Err(err) }),
        }
    }

    fn get_routes(&self, target: &Target, deadline: Instant) -> PortFuture<Routes> {
        match self.pick(target) {
            Ok(router) => router.get_routes(target, deadline),
            Err(err) => Box::pin(async move { Err(err) }),
        }
    }
}

/// How long a router waits for an object it created to reach the cache, so
/// the `get_routes` that follows in the same tick finds it.
const CACHE_WAIT: Duration = Duration::from_secs(2);

/// Waits, at most [`CACHE_WAIT`], until `namespace/name` is in `store`.
async fn wait_cached<K>(store: &Store<K>, namespace: &str, name: &str)
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    let until = Instant::now() + CACHE_WAIT;
    while crate::k8s::cache::get(store, namespace, name).is_none() && Instant::now() < until {
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Runs a router call under the port's deadline.
fn run<T, E, F>(deadline: Instant, fut: F) -> PortFuture<T>
where
    T: Send + 'static,
    E: Into<PortError>,
    F: Future<Output = Result<T, E>> + Send + 'static,
{
    Box::pin(async move {
        match tokio::time::timeout_at(deadline, fut).await {
            Ok(result) => result.map_err(Into::into),
            Err(_) => Err(PortError::Timeout),
        }
    })
}
