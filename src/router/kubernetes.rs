//! Provider `kubernetes`: Blue/Green through the apex Service, which always
//! selects the primary pods. There are no weights to set; like Flagger's
//! `NopRouter`, the routes report all traffic on the canary while
//! iterations are counting, so the analysis sees the canary as live.

use futures::FutureExt;
use serin_actors::model::observe::Routes;
use serin_actors::ports::{PortFuture, RouterPort, Target};
use tokio::time::Instant;

/// Stateless: the routes follow the status the step started from.
#[derive(Default)]
pub struct KubernetesRouter;

impl KubernetesRouter {
    pub fn new() -> KubernetesRouter {
        KubernetesRouter
    }
}

/// Flagger's `NopRouter.GetRoutes`.
pub fn routes_for(iterations: i32) -> Routes {
    if iterations > 0 {
        Routes {
            primary: 0,
            canary: 100,
            mirrored: false,
        }
    } else {
        Routes::default()
    }
}

impl RouterPort for KubernetesRouter {
    fn set_routes(&self, _target: &Target, _routes: Routes, _deadline: Instant) -> PortFuture<()> {
        async { Ok(()) }.boxed()
    }

    fn get_routes(&self, target: &Target, _deadline: Instant) -> PortFuture<Routes> {
        let routes = routes_for(target.iterations);
        async move { Ok(routes) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_flaggers_nop_router() {
        assert_eq!(routes_for(0), Routes::default());
        assert_eq!(routes_for(2).canary, 100);
        assert_eq!(routes_for(2).primary, 0);
    }
}
