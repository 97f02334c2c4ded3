//! A watch that caches only the objects some owner wants ([`Interest`]):
//! every other object of the kind passes through, leaving a 64-bit hash of
//! its name so that wanting it later knows a fetch is worth it.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use futures::StreamExt;
use futures::future::BoxFuture;
use kube::api::Api;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::{self, ObjectRef, Store, store::Writer};
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use crate::k8s::interest::Tracked;

/// Bounds on a list page: keeps a relist of a big cluster from arriving in
/// one response.
const PAGE_SIZE: u32 = 500;

/// What a watched kind is: a namespaced object kube can list and watch.
pub trait Watched:
    Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
    + Clone
    + Debug
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
}

impl<K> Watched for K where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static
{
}

type Modify<K> = Box<dyn Fn(&mut K) + Send + Sync>;
type OnEvent<K> = Box<dyn FnMut(&Event<K>) + Send>;
type ApiOf<K> = Box<dyn Fn(&str) -> Api<K> + Send + Sync>;

pub struct Filtered<K: Resource<DynamicType = ()> + Clone + 'static> {
    state: Mutex<State<K>>,
    store: Store<K>,
    api: ApiOf<K>,
    modify: Modify<K>,
    /// Set at the first full list. Not `Store::wait_until_ready`: its
    /// oneshot wakes only the last of several waiters.
    listed: tokio::sync::watch::Sender<bool>,
}

struct State<K: Resource<DynamicType = ()> + Clone + 'static> {
    writer: Writer<K>,
    /// Owners per wanted `(namespace, name)`.
    wanted: HashMap<(String, String), u32>,
    /// Every object the watch has shown, wanted or not, by name hash.
    seen: HashSet<u64>,
    /// Between `Init` and `InitDone`: the writer builds a new store then.
    relisting: bool,
    on_event: OnEvent<K>,
}

impl<K> Filtered<K>
where
    K: Watched,
{
    /// `api(namespace)` reads one namespace (for fills); `modify` trims a
    /// kept object; `on_event` hears about kept objects only.
    pub fn new(
        api: impl Fn(&str) -> Api<K> + Send + Sync + 'static,
        modify: impl Fn(&mut K) + Send + Sync + 'static,
        on_event: impl FnMut(&Event<K>) + Send + 'static,
    ) -> Arc<Filtered<K>> {
        let (store, writer) = reflector::store();
        Arc::new(Filtered {
            state: Mutex::new(State {
                writer,
                wanted: HashMap::new(),
                seen: HashSet::new(),
                relisting: false,
                on_event: Box::new(on_event),
            }),
            store,
            api: Box::new(api),
            modify: Box::new(modify),
            listed: tokio::sync::watch::Sender::new(false),
        })
    }

    pub fn store(&self) -> Store<K> {
        self.store.clone()
    }

    /// Resolves once the watch has listed the kind.
    pub async fn listed(&self) {
        let _ = self.listed.subscribe().wait_for(|listed| *listed).await;
    }

    /// Watches `api` until the task is dropped; errors are retried with
    /// backoff and logged.
    pub async fn run(self: Arc<Self>, api: Api<K>) {
        let config = watcher::Config::default().page_size(PAGE_SIZE);
        let stream = watcher(api, config).default_backoff();
        let mut stream = std::pin::pin!(stream);
        while let Some(item) = stream.next().await {
            match item {
                Ok(event) => self.handle(event),
                Err(err) => tracing::warn!(kind = %K::kind(&()), error = %err, "watch error"),
            }
        }
    }

    /// One watch event: kept when wanted, otherwise only its name is noted.
    pub fn handle(&self, event: Event<K>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Event::InitApply(o) | Event::Apply(o) | Event::Delete(o) = &event {
            let id = name_hash(o);
            if matches!(event, Event::Delete(_)) {
                state.seen.remove(&id);
            } else {
                state.seen.insert(id);
            }
            if !state.wanted.contains_key(&key(o)) {
                return;
            }
        }
        match event {
            Event::Init => state.relisting = true,
            Event::InitDone => state.relisting = false,
            _ => {}
        }
        let event = match event {
            Event::InitApply(mut o) => {
                (self.modify)(&mut o);
                Event::InitApply(o)
            }
            Event::Apply(mut o) => {
                (self.modify)(&mut o);
                Event::Apply(o)
            }
            other => other,
        };
        state.writer.apply_watcher_event(&event);
        (state.on_event)(&event);
        if matches!(event, Event::InitDone) {
            self.listed.send_replace(true);
        }
    }

    /// A fetched object, unless the watch cached one meanwhile or nobody
    /// wants it any more. Listeners hear it as listed, not as a change.
    fn filled(&self, mut object: K) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !state.wanted.contains_key(&key(&object))
            || self.store.get(&ObjectRef::from_obj(&object)).is_some()
        {
            return;
        }
        (self.modify)(&mut object);
        state
            .writer
            .apply_watcher_event(&Event::Apply(object.clone()));
        if state.relisting {
            // Also into the store being rebuilt, or `InitDone` drops it.
            state
                .writer
                .apply_watcher_event(&Event::InitApply(object.clone()));
        }
        (state.on_event)(&Event::InitApply(object));
    }
}

impl<K> Tracked for Filtered<K>
where
    K: Watched,
{
    fn want(&self, namespace: &str, name: &str) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let count = state
            .wanted
            .entry((namespace.to_string(), name.to_string()))
            .or_default();
        *count += 1;
        *count == 1
            && state.seen.contains(&hash_of(namespace, name))
            && self
                .store
                .get(&ObjectRef::new(name).within(namespace))
                .is_none()
    }

    fn unwant(&self, namespace: &str, name: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let id = (namespace.to_string(), name.to_string());
        match state.wanted.get_mut(&id) {
            Some(count) if *count > 1 => {
                *count -= 1;
                return;
            }
            Some(_) => {
                state.wanted.remove(&id);
            }
            None => return,
        }
        if let Some(cached) = self.store.get(&ObjectRef::new(name).within(namespace)) {
            let event = Event::Delete(K::clone(&cached));
            state.writer.apply_watcher_event(&event);
            (state.on_event)(&event);
        }
    }

    fn fill(
        self: Arc<Self>,
        namespace: String,
        name: String,
    ) -> BoxFuture<'static, Result<(), kube::Error>> {
        Box::pin(async move {
            let api = (self.api)(&namespace);
            if let Some(object) = api.get_opt(&name).await? {
                self.filled(object);
            }
            Ok(())
        })
    }
}

fn key<K: Resource>(o: &K) -> (String, String) {
    (o.namespace().unwrap_or_default(), o.name_any())
}

fn name_hash<K: Resource>(o: &K) -> u64 {
    hash_of(o.meta().namespace.as_deref().unwrap_or(""), &o.name_any())
}

fn hash_of(namespace: &str, name: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    (namespace, name).hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;

    use super::*;

    fn cm(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("test".into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    fn filtered(heard: Arc<Mutex<Vec<String>>>) -> Arc<Filtered<ConfigMap>> {
        let client = crate::k8s::client::testing::unreachable().routine;
        Filtered::new(
            move |ns| Api::namespaced(client.clone(), ns),
            |cm: &mut ConfigMap| cm.data = None,
            move |event: &Event<ConfigMap>| {
                let what = match event {
                    Event::Apply(o) => format!("apply {}", o.name_any()),
                    Event::InitApply(o) => format!("listed {}", o.name_any()),
                    Event::Delete(o) => format!("delete {}", o.name_any()),
                    Event::Init => "init".into(),
                    Event::InitDone => "done".into(),
                };
                heard.lock().unwrap().push(what);
            },
        )
    }

    #[tokio::test]
    async fn keeps_only_what_is_wanted() {
        let heard = Arc::default();
        let f = filtered(Arc::clone(&heard));
        assert!(!f.want("test", "mine"), "never seen: nothing to fetch");
        f.handle(Event::Init);
        f.handle(Event::InitApply(cm("mine")));
        f.handle(Event::InitApply(cm("other")));
        f.handle(Event::InitDone);
        f.handle(Event::Apply(cm("other")));
        let names: Vec<String> = f.store().state().iter().map(|c| c.name_any()).collect();
        assert_eq!(names, vec!["mine".to_string()]);
        assert_eq!(*heard.lock().unwrap(), ["init", "listed mine", "done"]);

        assert!(f.want("test", "other"), "seen before it was wanted");
        assert!(!f.want("test", "other"), "a second owner fetches nothing");
        f.filled(cm("other"));
        assert!(
            f.store()
                .get(&ObjectRef::new("other").within("test"))
                .is_some()
        );
        f.unwant("test", "other");
        assert!(
            f.store()
                .get(&ObjectRef::new("other").within("test"))
                .is_some()
        );
        f.unwant("test", "other");
        assert!(
            f.store()
                .get(&ObjectRef::new("other").within("test"))
                .is_none()
        );
        assert_eq!(
            heard.lock().unwrap()[3..],
            ["listed other".to_string(), "delete other".to_string()]
        );
    }

    #[tokio::test]
    async fn every_waiter_hears_the_first_list() {
        let f = filtered(Arc::default());
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let f = f.clone();
                tokio::spawn(async move { f.listed().await })
            })
            .collect();
        tokio::task::yield_now().await;
        f.handle(Event::Init);
        f.handle(Event::InitDone);
        for waiter in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
                .await
                .expect("a waiter was not woken")
                .unwrap();
        }
    }

    #[tokio::test]
    async fn an_object_fetched_during_a_relist_survives_it() {
        let f = filtered(Arc::default());
        f.handle(Event::Init);
        f.handle(Event::InitApply(cm("late")));
        assert!(f.want("test", "late"));
        f.filled(cm("late"));
        assert!(
            f.store()
                .get(&ObjectRef::new("late").within("test"))
                .is_some()
        );
        f.handle(Event::InitDone);
        assert!(
            f.store()
                .get(&ObjectRef::new("late").within("test"))
                .is_some(),
            "the relist's new store lost the fetched object"
        );
    }

    #[tokio::test]
    async fn a_deleted_object_needs_no_fetch() {
        let f = filtered(Arc::default());
        f.handle(Event::Apply(cm("gone")));
        f.handle(Event::Delete(cm("gone")));
        assert!(!f.want("test", "gone"));
    }
}
