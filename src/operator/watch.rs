//! One shared watch per kind, each feeding a reflector store (the
//! [`Caches`]) and telling the bridge what changed. Cached objects are
//! trimmed to what decisions need: no managedFields, and ConfigMaps and
//! Secrets keep a checksum instead of their data.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt::Debug;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::filtered::{Filtered, Watched};
use super::wants;
use crate::api::gateway::HTTPRoute;
use crate::api::istio::{DestinationRule, VirtualService};
use crate::api::smi::TrafficSplit;
use crate::api::{AlertProvider, Canary, MetricTemplate};
use crate::k8s::Caches;
use crate::k8s::cache::CHECKSUM_KEY;
use crate::k8s::interest::{Interest, Kind, Owner, Tracked};
use crate::workload::config;

/// What the bridge hears from the watches.
#[derive(Debug, Clone)]
pub enum Change {
    CanaryApplied(Arc<Canary>),
    CanaryDeleted(Arc<Canary>),
    /// The Canary watch relisted: drop canaries the store no longer has.
    CanariesRelisted,
    /// A Deployment or DaemonSet's spec changed (new generation).
    Workload {
        namespace: String,
        kind: &'static str,
        name: String,
    },
    /// A ConfigMap or Secret's checksum changed.
    Config {
        namespace: String,
        kind: config::ConfigKind,
        name: String,
    },
}

/// Starts every watch on `tasks`; the stores fill as the lists arrive.
///
/// Canaries, MetricTemplates and AlertProviders are cached whole. The other
/// kinds keep only what a Canary uses ([`Interest`]), and start in order so
/// that what they keep is known before their lists arrive: workloads,
/// services, ingresses and autoscalers once the Canaries are listed, configs
/// once the workloads (whose pod templates name them) are.
pub fn start(
    client: &Client,
    namespace: Option<&str>,
    changes: mpsc::UnboundedSender<Change>,
    tasks: &mut JoinSet<()>,
) -> (Caches, Arc<Interest>) {
    let w = Watcher { client, namespace };
    let interest = Arc::new(Interest::default());
    let canaries_listed = tokio::sync::watch::Sender::new(false);
    let canaries = w.spawn(tasks, trim::<Canary>, {
        let (changes, interest) = (changes.clone(), interest.clone());
        let listed = canaries_listed.clone();
        let mut relisted: Option<HashSet<Owner>> = None;
        move |event: &Event<Canary>| match event {
            Event::Apply(c) | Event::InitApply(c) => {
                let owner = wants::canary_owner(c);
                if let Some(live) = relisted.as_mut() {
                    live.insert(owner.clone());
                }
                // Before the bridge hears of it, so it can wait for fills.
                interest.set(owner, wants::of_canary(c));
                let _ = changes.send(Change::CanaryApplied(Arc::new(c.clone())));
            }
            Event::Delete(c) => {
                interest.set(wants::canary_owner(c), BTreeSet::new());
                let _ = changes.send(Change::CanaryDeleted(Arc::new(c.clone())));
            }
            Event::Init => relisted = Some(HashSet::new()),
            Event::InitDone => {
                if let Some(live) = relisted.take() {
                    interest.retain_canaries(&live);
                }
                listed.send_replace(true);
                let _ = changes.send(Change::CanariesRelisted);
            }
        }
    });
    let deployments = w.filtered(
        trim::<Deployment>,
        workloads(
            interest.clone(),
            Kind::Deployment,
            generations(changes.clone(), "Deployment"),
            |d: &Deployment| d.spec.as_ref().and_then(|s| s.template.spec.clone()),
        ),
    );
    let daemonsets = w.filtered(
        trim::<DaemonSet>,
        workloads(
            interest.clone(),
            Kind::DaemonSet,
            generations(changes.clone(), "DaemonSet"),
            |d: &DaemonSet| d.spec.as_ref().and_then(|s| s.template.spec.clone()),
        ),
    );
    let hpas = w.filtered(trim::<HorizontalPodAutoscaler>, |_: &Event<_>| {});
    let services = w.filtered(trim::<Service>, |_: &Event<Service>| {});
    let ingresses = w.filtered(trim::<Ingress>, |_: &Event<Ingress>| {});
    let httproutes = w.filtered(trim::<HTTPRoute>, |_: &Event<HTTPRoute>| {});
    let trafficsplits = w.filtered(trim::<TrafficSplit>, |_: &Event<TrafficSplit>| {});
    let virtualservices = w.filtered(trim::<VirtualService>, |_: &Event<VirtualService>| {});
    let destinationrules = w.filtered(trim::<DestinationRule>, |_: &Event<DestinationRule>| {});
    let configmaps = w.filtered(
        |cm: &mut ConfigMap| {
            let sum = config::configmap_checksum(cm);
            cm.data = Some(BTreeMap::from([(CHECKSUM_KEY.to_string(), sum)]));
            cm.binary_data = None;
            trim(cm);
        },
        checksums(changes.clone(), config::ConfigKind::ConfigMap),
    );
    let secrets = w.filtered(
        |secret: &mut Secret| {
            let sum = config::secret_checksum(secret).unwrap_or_default();
            secret.string_data = None;
            secret.data = Some(BTreeMap::from([(
                CHECKSUM_KEY.to_string(),
                ByteString(sum.into_bytes()),
            )]));
            trim(secret);
        },
        checksums(changes, config::ConfigKind::Secret),
    );
    interest.connect(HashMap::from([
        (Kind::Deployment, tracked(&deployments)),
        (Kind::DaemonSet, tracked(&daemonsets)),
        (Kind::HorizontalPodAutoscaler, tracked(&hpas)),
        (Kind::Service, tracked(&services)),
        (Kind::Ingress, tracked(&ingresses)),
        (Kind::ConfigMap, tracked(&configmaps)),
        (Kind::Secret, tracked(&secrets)),
        (Kind::HttpRoute, tracked(&httproutes)),
        (Kind::TrafficSplit, tracked(&trafficsplits)),
        (Kind::VirtualService, tracked(&virtualservices)),
        (Kind::DestinationRule, tracked(&destinationrules)),
    ]));
    let caches = Caches {
        canaries,
        metric_templates: w.spawn(
            tasks,
            trim::<MetricTemplate>,
            |_: &Event<MetricTemplate>| {},
        ),
        alert_providers: w.spawn(tasks, trim::<AlertProvider>, |_: &Event<AlertProvider>| {}),
        deployments: deployments.store(),
        daemonsets: daemonsets.store(),
        hpas: hpas.store(),
        services: services.store(),
        ingresses: ingresses.store(),
        configmaps: configmaps.store(),
        secrets: secrets.store(),
        httproutes: httproutes.store(),
        trafficsplits: trafficsplits.store(),
        virtualservices: virtualservices.store(),
        destinationrules: destinationrules.store(),
    };
    let api = w.apis();
    let client = client.clone();
    tasks.spawn(async move {
        let mut phase = JoinSet::new();
        // A list that never comes is reported by `ready`.
        let _ = canaries_listed.subscribe().wait_for(|l| *l).await;
        phase.spawn(deployments.clone().run(api.of()));
        phase.spawn(daemonsets.clone().run(api.of()));
        phase.spawn(hpas.run(api.of()));
        phase.spawn(services.run(api.of()));
        phase.spawn(ingresses.run(api.of()));
        // Other projects' kinds: watched once their API is served.
        phase.spawn(once_served(
            client.clone(),
            HTTPRoute::api_version(&()).into_owned(),
            httproutes.run(api.of()),
        ));
        phase.spawn(once_served(
            client.clone(),
            TrafficSplit::api_version(&()).into_owned(),
            trafficsplits.run(api.of()),
        ));
        phase.spawn(once_served(
            client.clone(),
            VirtualService::api_version(&()).into_owned(),
            virtualservices.run(api.of()),
        ));
        phase.spawn(once_served(
            client,
            DestinationRule::api_version(&()).into_owned(),
            destinationrules.run(api.of()),
        ));
        deployments.listed().await;
        daemonsets.listed().await;
        phase.spawn(configmaps.run(api.of()));
        phase.spawn(secrets.run(api.of()));
        while phase.join_next().await.is_some() {}
    });
    (caches, interest)
}

fn tracked<K>(filtered: &Arc<Filtered<K>>) -> Arc<dyn Tracked>
where
    K: Watched,
{
    filtered.clone()
}

/// A workload's listener: records the configs its pod template references
/// as wanted (before `then` may wake a canary), and forgets them with it.
fn workloads<K: Resource>(
    interest: Arc<Interest>,
    kind: Kind,
    mut then: impl FnMut(&Event<K>) + Send + 'static,
    pod: impl Fn(&K) -> Option<PodSpec> + Send + 'static,
) -> impl FnMut(&Event<K>) + Send + 'static {
    move |event| {
        match event {
            Event::Apply(o) | Event::InitApply(o) => {
                let (ns, name) = id(o);
                let wants = wants::of_pod(&ns, pod(o).as_ref());
                interest.set(wants::workload_owner(kind, &ns, &name), wants);
            }
            Event::Delete(o) => {
                let (ns, name) = id(o);
                interest.set(wants::workload_owner(kind, &ns, &name), BTreeSet::new());
            }
            Event::Init | Event::InitDone => {}
        }
        then(event);
    }
}

/// How often an API that is not served yet is looked for again.
const DISCOVERY_INTERVAL: std::time::Duration = std::time::Duration::from_secs(60);
/// How soon discovery is retried after an error other than "not served".
const DISCOVERY_RETRY: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs `watch` once the API server serves `api_version` (its CRDs may be
/// installed after Serin starts); one discovery request a minute until then.
async fn once_served(client: Client, api_version: String, watch: impl Future<Output = ()>) {
    let mut logged = false;
    loop {
        match client.list_api_group_resources(&api_version).await {
            Ok(_) => break,
            // Not served: its CRDs may come later.
            Err(kube::Error::Api(status)) if status.code == 404 => {
                if !logged {
                    tracing::info!(api_version = %api_version,
                        "API not served; its routers are unavailable until it is");
                    logged = true;
                }
                tokio::time::sleep(DISCOVERY_INTERVAL).await;
            }
            // Any other failure says nothing about the API: ask again soon.
            Err(err) => {
                tracing::warn!(api_version = %api_version, error = %err, "API discovery");
                tokio::time::sleep(DISCOVERY_RETRY).await;
            }
        }
    }
    watch.await
}

/// How long the first lists may take before the operator gives up, as
/// Flagger does when its informers do not sync.
pub const SYNC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(120);

/// Waits until every store has its first full list; `Err` names the kind
/// that did not sync (the watch logs why, e.g. a forbidden list).
pub async fn ready(caches: &Caches) -> Result<(), &'static str> {
    async fn one<K>(store: &Store<K>, kind: &'static str) -> Result<(), &'static str>
    where
        K: Resource<DynamicType = ()> + Clone + 'static,
    {
        match tokio::time::timeout(SYNC_TIMEOUT, store.wait_until_ready()).await {
            Ok(Ok(())) => Ok(()),
            _ => Err(kind),
        }
    }
    one(&caches.canaries, "Canary").await?;
    one(&caches.metric_templates, "MetricTemplate").await?;
    one(&caches.alert_providers, "AlertProvider").await?;
    one(&caches.deployments, "Deployment").await?;
    one(&caches.daemonsets, "DaemonSet").await?;
    one(&caches.hpas, "HorizontalPodAutoscaler").await?;
    one(&caches.services, "Service").await?;
    one(&caches.ingresses, "Ingress").await?;
    one(&caches.configmaps, "ConfigMap").await?;
    one(&caches.secrets, "Secret").await
}

struct Watcher<'a> {
    client: &'a Client,
    namespace: Option<&'a str>,
}

impl Watcher<'_> {
    /// A watch that keeps only wanted objects; started later with [`Filtered::run`].
    fn filtered<K, M, F>(&self, modify: M, on_event: F) -> Arc<Filtered<K>>
    where
        K: Watched,
        M: Fn(&mut K) + Send + Sync + 'static,
        F: FnMut(&Event<K>) + Send + 'static,
    {
        let client = self.client.clone();
        Filtered::new(
            move |ns| Api::namespaced(client.clone(), ns),
            modify,
            on_event,
        )
    }

    fn apis(&self) -> Apis {
        Apis {
            client: self.client.clone(),
            namespace: self.namespace.map(str::to_string),
        }
    }

    /// One watch → modify → reflect → `on_event`, restarted with backoff on errors.
    fn spawn<K, M, F>(&self, tasks: &mut JoinSet<()>, modify: M, mut on_event: F) -> Store<K>
    where
        K: Watched,
        M: FnMut(&mut K) + Send + Sync + 'static,
        F: FnMut(&Event<K>) + Send + 'static,
    {
        let (reader, writer) = reflector::store();
        let stream = watcher(
            self.apis().of::<K>(),
            watcher::Config::default().any_semantic(),
        )
        .default_backoff()
        .modify(modify)
        .reflect(writer);
        tasks.spawn(drive(
            stream,
            move |e| on_event(e),
            K::kind(&()).to_string(),
        ));
        reader
    }
}

/// What the delayed watches list: the operator's namespace, or all.
struct Apis {
    client: Client,
    namespace: Option<String>,
}

impl Apis {
    fn of<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match &self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }
}

async fn drive<K, S, F>(stream: S, mut on_event: F, kind: String)
where
    S: Stream<Item = Result<Event<K>, watcher::Error>>,
    F: FnMut(&Event<K>),
{
    let mut stream = std::pin::pin!(stream);
    while let Some(item) = stream.next().await {
        match item {
            Ok(event) => on_event(&event),
            // The backoff retries; say why the cache may be stale meanwhile.
            Err(err) => tracing::warn!(kind = %kind, error = %err, "watch error"),
        }
    }
}

/// Drops what no decision reads.
fn trim<K: Resource<DynamicType = ()>>(object: &mut K) {
    object.meta_mut().managed_fields = None;
    if let Some(annotations) = object.meta_mut().annotations.as_mut() {
        // Kept for Services and VirtualServices: what `revertOnDeletion`
        // restores, and a taken-over VirtualService's sign it has an original.
        if !matches!(K::kind(&()).as_ref(), "Service" | "VirtualService") {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
}

/// Whether a watch event carries a new version of what `seen` remembers: any
/// change for an `Apply`; for an `InitApply` only a change of an object seen
/// before (a relist after the watch lost its place), not the first list.
fn moved<V: PartialEq>(listed: bool, before: Option<V>, now: &V) -> bool {
    match (listed, before) {
        (true, Some(before)) => before != *now,
        (true, None) => false,
        (false, before) => before.as_ref() != Some(now),
    }
}

/// Reports a workload whose `metadata.generation` moved (a spec change),
/// not its status churn, also when a relist is what shows it.
fn generations<K: Resource>(
    changes: mpsc::UnboundedSender<Change>,
    kind: &'static str,
) -> impl FnMut(&Event<K>) + Send + 'static {
    let mut seen: HashMap<(String, String), i64> = HashMap::new();
    move |event| match event {
        Event::InitApply(o) | Event::Apply(o) => {
            let generation = o.meta().generation.unwrap_or(0);
            let listed = matches!(event, Event::InitApply(_));
            if moved(listed, seen.insert(id(o), generation), &generation) {
                let (namespace, name) = id(o);
                let _ = changes.send(Change::Workload {
                    namespace,
                    kind,
                    name,
                });
            }
        }
        Event::Delete(o) => {
            seen.remove(&id(o));
        }
        Event::Init | Event::InitDone => {}
    }
}

/// Reports a ConfigMap/Secret whose checksum (already in the trimmed
/// object) changed, also when a relist is what shows it.
fn checksums<K: Resource + ChecksumOf>(
    changes: mpsc::UnboundedSender<Change>,
    kind: config::ConfigKind,
) -> impl FnMut(&Event<K>) + Send + 'static {
    let mut seen: HashMap<(String, String), String> = HashMap::new();
    move |event| match event {
        Event::InitApply(o) | Event::Apply(o) => {
            let sum = o.checksum();
            let listed = matches!(event, Event::InitApply(_));
            if moved(listed, seen.insert(id(o), sum.clone()), &sum) {
                let (namespace, name) = id(o);
                let _ = changes.send(Change::Config {
                    namespace,
                    kind,
                    name,
                });
            }
        }
        Event::Delete(o) => {
            seen.remove(&id(o));
            let (namespace, name) = id(o);
            let _ = changes.send(Change::Config {
                namespace,
                kind,
                name,
            });
        }
        Event::Init | Event::InitDone => {}
    }
}

trait ChecksumOf {
    fn checksum(&self) -> String;
}

impl ChecksumOf for ConfigMap {
    fn checksum(&self) -> String {
        cached_checksum(self.data.as_ref())
    }
}

impl ChecksumOf for Secret {
    fn checksum(&self) -> String {
        self.data
            .as_ref()
            .and_then(|d| d.get(CHECKSUM_KEY))
            .map(|b| String::from_utf8_lossy(&b.0).into_owned())
            .unwrap_or_default()
    }
}

/// The checksum a trimmed ConfigMap/Secret carries.
pub fn cached_checksum(data: Option<&BTreeMap<String, String>>) -> String {
    data.and_then(|d| d.get(CHECKSUM_KEY))
        .cloned()
        .unwrap_or_default()
}

fn id<K: Resource>(o: &K) -> (String, String) {
    (o.namespace().unwrap_or_default(), o.name_any())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use kube::api::ObjectMeta;

    use super::*;

    fn deployment(generation: i64) -> Deployment {
        Deployment {
            metadata: ObjectMeta {
                name: Some("podinfo".into()),
                namespace: Some("test".into()),
                generation: Some(generation),
                ..ObjectMeta::default()
            },
            ..Deployment::default()
        }
    }

    #[test]
    fn a_new_generation_is_reported_also_when_a_relist_shows_it() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let mut listener = generations::<Deployment>(tx, "Deployment");
        let mut heard = || {
            let mut n = 0;
            while rx.try_recv().is_ok() {
                n += 1;
            }
            n
        };
        listener(&Event::Init);
        listener(&Event::InitApply(deployment(1)));
        listener(&Event::InitDone);
        assert_eq!(heard(), 0, "the first list is no change");
        listener(&Event::Apply(deployment(1)));
        assert_eq!(heard(), 0, "status churn is no change");
        listener(&Event::Apply(deployment(2)));
        assert_eq!(heard(), 1);
        // The watch lost its place; the relist carries generation 3.
        listener(&Event::Init);
        listener(&Event::InitApply(deployment(3)));
        listener(&Event::InitDone);
        assert_eq!(heard(), 1, "a change seen only in a relist still wakes");
        listener(&Event::Init);
        listener(&Event::InitApply(deployment(3)));
        assert_eq!(heard(), 0);
    }
}
