//! One shared watch per kind, each feeding a reflector store (the
//! [`Caches`]) and telling the bridge what changed. Cached objects are
//! trimmed to what decisions need: no managedFields, and ConfigMaps and
//! Secrets keep a checksum instead of their data.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, Store};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::api::{AlertProvider, Canary, MetricTemplate};
use crate::k8s::Caches;
use crate::k8s::cache::CHECKSUM_KEY;
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
pub fn start(
    client: &Client,
    namespace: Option<&str>,
    changes: mpsc::UnboundedSender<Change>,
    tasks: &mut JoinSet<()>,
) -> Caches {
    let w = Watcher { client, namespace };
    let canaries = w.spawn(tasks, trim::<Canary>, {
        let changes = changes.clone();
        move |event: &Event<Canary>| match event {
            Event::Apply(c) | Event::InitApply(c) => {
                let _ = changes.send(Change::CanaryApplied(Arc::new(c.clone())));
            }
            Event::Delete(c) => {
                let _ = changes.send(Change::CanaryDeleted(Arc::new(c.clone())));
            }
            Event::InitDone => {
                let _ = changes.send(Change::CanariesRelisted);
            }
            Event::Init => {}
        }
    });
    let deployments = w.spawn(
        tasks,
        trim::<Deployment>,
        generations(changes.clone(), "Deployment"),
    );
    let daemonsets = w.spawn(
        tasks,
        trim::<DaemonSet>,
        generations(changes.clone(), "DaemonSet"),
    );
    let configmaps = w.spawn(
        tasks,
        |cm: &mut ConfigMap| {
            let sum = config::configmap_checksum(cm);
            cm.data = Some(BTreeMap::from([(CHECKSUM_KEY.to_string(), sum)]));
            cm.binary_data = None;
            trim(cm);
        },
        checksums(changes.clone(), config::ConfigKind::ConfigMap),
    );
    let secrets = w.spawn(
        tasks,
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
    Caches {
        canaries,
        metric_templates: w.spawn(
            tasks,
            trim::<MetricTemplate>,
            |_: &Event<MetricTemplate>| {},
        ),
        alert_providers: w.spawn(tasks, trim::<AlertProvider>, |_: &Event<AlertProvider>| {}),
        deployments,
        daemonsets,
        hpas: w.spawn(tasks, trim::<HorizontalPodAutoscaler>, |_: &Event<_>| {}),
        services: w.spawn(tasks, trim::<Service>, |_: &Event<Service>| {}),
        ingresses: w.spawn(tasks, trim::<Ingress>, |_: &Event<Ingress>| {}),
        configmaps,
        secrets,
    }
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
    fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        match self.namespace {
            Some(ns) => Api::namespaced(self.client.clone(), ns),
            None => Api::all(self.client.clone()),
        }
    }

    /// One watch → modify → reflect → `on_event`, restarted with backoff on errors.
    fn spawn<K, M, F>(&self, tasks: &mut JoinSet<()>, modify: M, mut on_event: F) -> Store<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
            + Clone
            + Debug
            + DeserializeOwned
            + Send
            + Sync
            + 'static,
        M: FnMut(&mut K) + Send + Sync + 'static,
        F: FnMut(&Event<K>) + Send + 'static,
    {
        let (reader, writer) = reflector::store();
        let stream = watcher(self.api::<K>(), watcher::Config::default().any_semantic())
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
        // Kept for Services: the apex selector is restored from it on deletion.
        if K::kind(&()) != "Service" {
            annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        }
    }
}

/// Reports a workload whose `metadata.generation` moved (a spec change),
/// not its status churn.
fn generations<K: Resource>(
    changes: mpsc::UnboundedSender<Change>,
    kind: &'static str,
) -> impl FnMut(&Event<K>) + Send + 'static {
    let mut seen: HashMap<(String, String), i64> = HashMap::new();
    move |event| match event {
        Event::InitApply(o) => {
            seen.insert(id(o), o.meta().generation.unwrap_or(0));
        }
        Event::Apply(o) => {
            let generation = o.meta().generation.unwrap_or(0);
            if seen.insert(id(o), generation) != Some(generation) {
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
/// object) changed.
fn checksums<K: Resource + ChecksumOf>(
    changes: mpsc::UnboundedSender<Change>,
    kind: config::ConfigKind,
) -> impl FnMut(&Event<K>) + Send + 'static {
    let mut seen: HashMap<(String, String), String> = HashMap::new();
    move |event| match event {
        Event::InitApply(o) => {
            seen.insert(id(o), o.checksum());
        }
        Event::Apply(o) | Event::Delete(o) => {
            let sum = if matches!(event, Event::Delete(_)) {
                String::new()
            } else {
                o.checksum()
            };
            if seen.insert(id(o), sum.clone()).as_ref() != Some(&sum) {
                let (namespace, name) = id(o);
                let _ = changes.send(Change::Config {
                    namespace,
                    kind,
                    name,
                });
            }
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
