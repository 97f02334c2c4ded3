//! The watch caches every adapter reads from: one shared watch per kind,
//! so an idle canary costs no API request.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::reflector::{ObjectRef, Store};

use crate::api::gateway::HTTPRoute;
use crate::api::istio::{DestinationRule, VirtualService};
use crate::api::smi::TrafficSplit;
use crate::api::{AlertProvider, Canary, MetricTemplate};

/// Reflector stores, filled by the operator's watches (`operator::watch`).
///
/// ConfigMaps and Secrets are stored without their data: the watch replaces
/// it by the checksum Flagger's config tracker computes, kept under
/// [`CHECKSUM_KEY`] in `data`; promotion reads the full object with a GET.
#[derive(Clone)]
pub struct Caches {
    pub canaries: Store<Canary>,
    pub metric_templates: Store<MetricTemplate>,
    pub alert_providers: Store<AlertProvider>,
    pub deployments: Store<Deployment>,
    pub daemonsets: Store<DaemonSet>,
    pub hpas: Store<HorizontalPodAutoscaler>,
    pub services: Store<Service>,
    /// For the `nginx` router: the user's Ingress and the generated canary one.
    pub ingresses: Store<Ingress>,
    pub configmaps: Store<ConfigMap>,
    pub secrets: Store<Secret>,
    /// For the `gatewayapi` routers (empty while the API server serves no
    /// Gateway API).
    pub httproutes: Store<HTTPRoute>,
    /// For the `linkerd` router (empty while no SMI API is served).
    pub trafficsplits: Store<TrafficSplit>,
    /// For the `istio` router (empty while Istio's API is not served).
    pub virtualservices: Store<VirtualService>,
    pub destinationrules: Store<DestinationRule>,
}

/// Key under which a cached ConfigMap/Secret keeps its checksum.
pub const CHECKSUM_KEY: &str = "serin.checksum";

/// Looks up `namespace/name` in a store.
pub fn get<K>(store: &Store<K>, namespace: &str, name: &str) -> Option<std::sync::Arc<K>>
where
    K: kube::Resource<DynamicType = ()> + Clone + 'static,
{
    store.get(&ObjectRef::new(name).within(namespace))
}

/// Stores filled from lists, for the adapters' tests.
#[cfg(test)]
pub mod testing {
    use kube::runtime::reflector::{Store, store::Writer};
    use kube::runtime::watcher;

    use super::Caches;

    pub fn store_of<K>(objects: Vec<K>) -> Store<K>
    where
        K: kube::Resource<DynamicType = ()> + Clone + 'static,
    {
        let mut writer = Writer::<K>::default();
        for object in objects {
            writer.apply_watcher_event(&watcher::Event::Apply(object));
        }
        writer.as_reader()
    }

    /// Every store empty; override the ones a test needs.
    pub fn empty() -> Caches {
        Caches {
            canaries: store_of(vec![]),
            metric_templates: store_of(vec![]),
            alert_providers: store_of(vec![]),
            deployments: store_of(vec![]),
            daemonsets: store_of(vec![]),
            hpas: store_of(vec![]),
            services: store_of(vec![]),
            ingresses: store_of(vec![]),
            configmaps: store_of(vec![]),
            secrets: store_of(vec![]),
            httproutes: store_of(vec![]),
            trafficsplits: store_of(vec![]),
            virtualservices: store_of(vec![]),
            destinationrules: store_of(vec![]),
        }
    }
}
