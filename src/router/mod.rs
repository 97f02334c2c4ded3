//! Traffic routers, one provider per file, chosen per Canary by its
//! resolved provider (`spec.provider` or `-mesh-provider`).

pub mod kubernetes;
pub mod nginx;

use std::sync::Arc;

use serin_actors::model::observe::Routes;
use serin_actors::ports::{PortError, PortFuture, RouterPort, Target};
use tokio::time::Instant;

use crate::k8s::{Caches, KubeClients};

/// Providers this build can route through.
pub const SUPPORTED: &[&str] = &["kubernetes", "nginx"];

/// Whether `provider` has a router here (Flagger dispatches by prefix).
pub fn supported(provider: &str) -> bool {
    SUPPORTED.contains(&provider)
}

/// Dispatches each call to the router of the target's provider.
#[derive(Clone)]
pub struct Routers {
    kubernetes: Arc<kubernetes::KubernetesRouter>,
    nginx: Arc<nginx::NginxRouter>,
}

impl Routers {
    /// `ingress_annotations_prefix` is `-ingress-annotations-prefix`.
    pub fn new(caches: Caches, clients: KubeClients, ingress_annotations_prefix: &str) -> Routers {
        Routers {
            kubernetes: Arc::new(kubernetes::KubernetesRouter::new()),
            nginx: Arc::new(nginx::NginxRouter::new(
                clients,
                caches,
                ingress_annotations_prefix,
            )),
        }
    }

    fn pick(&self, target: &Target) -> Result<&dyn RouterPort, PortError> {
        match target.provider.as_str() {
            "kubernetes" => Ok(self.kubernetes.as_ref()),
            "nginx" => Ok(self.nginx.as_ref()),
            other => Err(PortError::Failed(unsupported(other))),
        }
    }
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
