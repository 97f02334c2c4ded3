//! Provider `linkerd` (and `smi:v1alpha2[:<mesh>]`, `osm`): an SMI
//! `TrafficSplit` named after the apex Service, owned by the Canary, whose
//! backends `<svc>-canary` and `<svc>-primary` carry the split. Linkerd's
//! SMI extension turns it into routes. Mirroring is not supported.

use std::sync::Arc;

use serde_json::{Value, json};
use serin_actors::model::observe::Routes;
use serin_actors::ports::{PortError, PortFuture, RouterPort, Target};
use tokio::time::Instant;

use super::Names;
use crate::api::Canary;
use crate::api::canary::key_of;
use crate::api::smi::{TrafficSplit, TrafficSplitBackend, TrafficSplitSpec};
use crate::k8s::write as k8s_write;
use crate::k8s::{Caches, KubeClients, cache};
use crate::workload::patch::merge_diff;

/// Whether `provider` routes through a `split.smi-spec.io/v1alpha2` TrafficSplit.
pub fn handles(provider: &str) -> bool {
    provider == "linkerd"
        || provider == "osm"
        || provider == "smi:v1alpha2"
        || provider.starts_with("smi:v1alpha2:")
}

/// Why an SMI router call failed, in Flagger's words.
#[derive(Debug, thiserror::Error)]
pub enum SmiError {
    #[error(
        "TrafficSplit {name}.{namespace} get query error: trafficsplits.split.smi-spec.io \"{name}\" not found"
    )]
    NotFound { name: String, namespace: String },
    #[error("TrafficSplit {name}.{namespace} does not contain routes for {primary} and {canary}")]
    NoRoutes {
        name: String,
        namespace: String,
        primary: String,
        canary: String,
    },
    #[error(transparent)]
    Canary(#[from] crate::router::CanaryError),
    #[error("TrafficSplit {name}.{namespace} create error: {source}")]
    Create {
        name: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    #[error("TrafficSplit {name}.{namespace} update error: {source}")]
    Update {
        name: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
}

impl From<SmiError> for PortError {
    fn from(err: SmiError) -> PortError {
        match err {
            SmiError::NotFound { name, namespace } => PortError::NotFound(format!(
                "TrafficSplit {name}.{namespace} get query error: trafficsplits.split.smi-spec.io \"{name}\""
            )),
            SmiError::Canary(err) => err.into(),
            other => PortError::Failed(other.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    Create(Box<TrafficSplit>),
    Patch { name: String, patch: Value },
}

/// The split's spec at `routes`: the root service is the first of
/// `service.hosts`, else the apex; the canary backend comes first.
pub fn desired(canary: &Canary, routes: Routes) -> TrafficSplitSpec {
    let names = Names::of(canary);
    let host = canary
        .spec
        .service
        .as_ref()
        .and_then(|s| s.hosts.as_ref())
        .and_then(|h| h.first())
        .cloned()
        .unwrap_or_else(|| names.apex.clone());
    TrafficSplitSpec {
        service: host,
        backends: vec![
            TrafficSplitBackend {
                service: names.canary,
                weight: routes.canary,
            },
            TrafficSplitBackend {
                service: names.primary,
                weight: routes.primary,
            },
        ],
    }
}

/// Flagger's `Reconcile`: create the split, or restore its spec (keeping
/// the weights it carries).
pub fn plan_reconcile(caches: &Caches, canary: &Canary) -> Result<Option<Write>, SmiError> {
    let key = key_of(canary);
    let names = Names::of(canary);
    let Some(current) = cache::get(&caches.trafficsplits, &key.namespace, &names.apex) else {
        let owner = crate::router::owner_of(canary)?;
        let mut split = TrafficSplit::new(&names.apex, desired(canary, Routes::default()));
        split.metadata.namespace = Some(key.namespace.clone());
        split.metadata.owner_references = Some(vec![owner]);
        return Ok(Some(Write::Create(Box::new(split))));
    };
    let routes = match weights(&current.spec, &names) {
        // A split without our backends gets Flagger's initial one back.
        r if r.primary + r.canary == 0 => Routes::default(),
        r => r,
    };
    let wanted = desired(canary, routes);
    Ok(patch(&current.spec, &wanted).map(|patch| Write::Patch {
        name: names.apex,
        patch,
    }))
}

/// Flagger's `SetRoutes`, written only when the weights differ.
pub fn plan_routes(
    caches: &Caches,
    canary: &Canary,
    routes: Routes,
) -> Result<Option<Write>, SmiError> {
    let current = split_of(caches, canary)?;
    let wanted = desired(canary, routes);
    Ok(patch(&current.spec, &wanted).map(|patch| Write::Patch {
        name: Names::of(canary).apex,
        patch,
    }))
}

fn patch(current: &TrafficSplitSpec, wanted: &TrafficSplitSpec) -> Option<Value> {
    merge_diff(&json!({ "spec": current }), &json!({ "spec": wanted }))
}

/// Flagger's `GetRoutes`: a split with neither backend is an error.
pub fn current_routes(caches: &Caches, canary: &Canary) -> Result<Routes, SmiError> {
    let names = Names::of(canary);
    let current = split_of(caches, canary)?;
    let routes = weights(&current.spec, &names);
    if routes.primary == 0 && routes.canary == 0 {
        return Err(SmiError::NoRoutes {
            name: names.apex,
            namespace: key_of(canary).namespace,
            primary: names.primary,
            canary: names.canary,
        });
    }
    Ok(routes)
}

fn weights(spec: &TrafficSplitSpec, names: &Names) -> Routes {
    let weight = |service: &str| {
        spec.backends
            .iter()
            .find(|b| b.service == service)
            .map_or(0, |b| b.weight)
    };
    Routes {
        primary: weight(&names.primary),
        canary: weight(&names.canary),
        mirrored: false,
    }
}

fn split_of(caches: &Caches, canary: &Canary) -> Result<Arc<TrafficSplit>, SmiError> {
    let key = key_of(canary);
    let name = Names::of(canary).apex;
    cache::get(&caches.trafficsplits, &key.namespace, &name).ok_or(SmiError::NotFound {
        name,
        namespace: key.namespace,
    })
}

#[derive(Clone)]
pub struct SmiRouter {
    inner: Arc<Inner>,
}

struct Inner {
    clients: KubeClients,
    caches: Caches,
}

impl SmiRouter {
    pub fn new(clients: KubeClients, caches: Caches) -> SmiRouter {
        SmiRouter {
            inner: Arc::new(Inner { clients, caches }),
        }
    }
}

impl Inner {
    async fn write(&self, target: &Target, write: Write) -> Result<(), SmiError> {
        let ns = target.key.namespace.as_str();
        let client = self.clients.for_priority(target.priority);
        match write {
            Write::Create(split) => {
                let name = split.metadata.name.clone().unwrap_or_default();
                match k8s_write::create(client, ns, split.as_ref()).await {
                    Ok(created) => {
                        if created {
                            tracing::info!(canary = %target.key, "TrafficSplit {name}.{ns} created");
                        }
                        // Also when the cache lags behind an earlier create.
                        super::wait_cached(&self.caches.trafficsplits, ns, &name).await;
                        Ok(())
                    }
                    Err(source) => Err(SmiError::Create {
                        name,
                        namespace: ns.to_string(),
                        source,
                    }),
                }
            }
            Write::Patch { name, patch } => {
                k8s_write::merge_patch::<TrafficSplit>(client, ns, &name, &patch)
                    .await
                    .map_err(|source| SmiError::Update {
                        name,
                        namespace: ns.to_string(),
                        source,
                    })
            }
        }
    }
}

impl RouterPort for SmiRouter {
    fn reconcile(&self, target: &Target, deadline: Instant) -> PortFuture<()> {
        let (inner, target) = (self.inner.clone(), target.clone());
        super::run(deadline, async move {
            let canary = crate::router::canary_of(&target)?;
            match plan_reconcile(&inner.caches, &canary)? {
                Some(Write::Patch { name, patch }) => {
                    let what = format!("{name}.{}", target.key.namespace);
                    inner.write(&target, Write::Patch { name, patch }).await?;
                    tracing::info!(canary = %target.key, "TrafficSplit {what} updated");
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
            match plan_routes(&inner.caches, &canary, routes)? {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::cache::testing::{empty, store_of};

    fn canary() -> Canary {
        serde_json::from_value(json!({
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": "podinfo", "namespace": "test", "uid": "u1"},
            "spec": {
                "provider": "linkerd",
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "podinfo"},
                "service": {"port": 9898},
                "analysis": {"interval": "15s", "threshold": 5, "stepWeights": [10, 20]}
            }
        }))
        .unwrap()
    }

    fn created(c: &Canary) -> TrafficSplit {
        match plan_reconcile(&empty(), c).unwrap() {
            Some(Write::Create(split)) => *split,
            other => panic!("expected a create, got {other:?}"),
        }
    }

    #[test]
    fn creates_the_split_owned_by_the_canary() {
        let split = created(&canary());
        let value = serde_json::to_value(&split).unwrap();
        assert_eq!(value["apiVersion"], "split.smi-spec.io/v1alpha2");
        assert_eq!(value["metadata"]["name"], "podinfo");
        assert_eq!(value["metadata"]["ownerReferences"][0]["kind"], "Canary");
        assert_eq!(
            value["spec"],
            json!({"service": "podinfo", "backends": [
                {"service": "podinfo-canary", "weight": 0},
                {"service": "podinfo-primary", "weight": 100}
            ]})
        );
    }

    #[test]
    fn weights_are_written_only_when_they_change() {
        let c = canary();
        let mut caches = empty();
        caches.trafficsplits = store_of(vec![created(&c)]);
        assert_eq!(plan_reconcile(&caches, &c).unwrap(), None);
        let at = |canary| Routes {
            primary: 100 - canary,
            canary,
            mirrored: false,
        };
        assert_eq!(plan_routes(&caches, &c, at(0)).unwrap(), None);
        let Some(Write::Patch { patch, .. }) = plan_routes(&caches, &c, at(10)).unwrap() else {
            panic!("no patch");
        };
        assert_eq!(
            patch,
            json!({"spec": {"backends": [
                {"service": "podinfo-canary", "weight": 10},
                {"service": "podinfo-primary", "weight": 90}
            ]}})
        );
        assert_eq!(current_routes(&caches, &c).unwrap(), at(0));
    }

    #[test]
    fn drift_is_corrected_keeping_the_split() {
        let c = canary();
        let mut split = created(&c);
        split.spec.service = "other".into();
        split.spec.backends[0].weight = 30;
        split.spec.backends[1].weight = 70;
        let mut caches = empty();
        caches.trafficsplits = store_of(vec![split]);
        let Some(Write::Patch { patch, .. }) = plan_reconcile(&caches, &c).unwrap() else {
            panic!("no patch");
        };
        assert_eq!(patch, json!({"spec": {"service": "podinfo"}}));
    }

    #[test]
    fn a_split_without_our_backends_is_an_error() {
        let c = canary();
        let mut split = created(&c);
        split.spec.backends.clear();
        let mut caches = empty();
        caches.trafficsplits = store_of(vec![split]);
        assert_eq!(
            current_routes(&caches, &c).unwrap_err().to_string(),
            "TrafficSplit podinfo.test does not contain routes for podinfo-primary and podinfo-canary"
        );
    }

    #[test]
    fn providers() {
        assert!(handles("linkerd") && handles("osm") && handles("smi:v1alpha2:linkerd"));
        assert!(!handles("smi:v1alpha1") && !handles("istio"));
    }
}
