//! Traffic routers, one provider per file, chosen per Canary by its
//! resolved provider (`spec.provider` or `-mesh-provider`).

pub mod kubernetes;

use std::sync::Arc;

use serin_actors::model::observe::Routes;
use serin_actors::ports::{PortError, PortFuture, RouterPort, Target};
use tokio::time::Instant;

use crate::k8s::Caches;

/// Providers this build can route through.
pub const SUPPORTED: &[&str] = &["kubernetes"];

/// Whether `provider` has a router here (Flagger dispatches by prefix).
pub fn supported(provider: &str) -> bool {
    SUPPORTED.contains(&provider)
}

/// Dispatches each call to the router of the target's provider.
#[derive(Clone)]
pub struct Routers {
    kubernetes: Arc<kubernetes::KubernetesRouter>,
}

impl Routers {
    pub fn new(caches: Caches) -> Routers {
        Routers {
            kubernetes: Arc::new(kubernetes::KubernetesRouter::new(caches)),
        }
    }

    fn pick(&self, target: &Target) -> Result<&dyn RouterPort, PortError> {
        match target.provider.as_str() {
            "kubernetes" => Ok(self.kubernetes.as_ref()),
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
