//! What Serin manages, so that the watches of workloads, services,
//! ingresses, autoscalers and configs cache only that: memory grows with the
//! canaries, not with the cluster.
//!
//! Each owner (a Canary, or a workload whose pod template references
//! configs) declares the objects it uses; a watched kind keeps an object
//! while at least one owner wants it. An object the watch saw before anyone
//! wanted it is fetched once (a fill); the bridge waits for an owner's fills
//! before acting on it.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

use futures::future::BoxFuture;

/// The kinds whose watches are filtered by interest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Deployment,
    DaemonSet,
    Service,
    HorizontalPodAutoscaler,
    Ingress,
    ConfigMap,
    Secret,
    HttpRoute,
    TrafficSplit,
    VirtualService,
    DestinationRule,
}

/// One object an owner uses.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Want {
    pub kind: Kind,
    pub namespace: String,
    pub name: String,
}

impl Want {
    pub fn new(kind: Kind, namespace: &str, name: impl Into<String>) -> Want {
        Want {
            kind,
            namespace: namespace.to_string(),
            name: name.into(),
        }
    }
}

/// Who wants objects.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// A Canary, for its target, primary, services, ingresses and autoscaler.
    Canary { namespace: String, name: String },
    /// A workload Serin manages, for the configs its pod template references.
    Workload {
        kind: Kind,
        namespace: String,
        name: String,
    },
}

/// A watched kind, as the interest registry drives it.
pub trait Tracked: Send + Sync {
    /// One more owner wants `namespace/name`; true when the watch saw the
    /// object before anyone wanted it, so it must be fetched.
    fn want(&self, namespace: &str, name: &str) -> bool;
    /// One owner fewer; with none left the object leaves the cache.
    fn unwant(&self, namespace: &str, name: &str);
    /// Fetches the object into the cache (nothing when it does not exist).
    fn fill(
        self: Arc<Self>,
        namespace: String,
        name: String,
    ) -> BoxFuture<'static, Result<(), kube::Error>>;
}

/// Attempts of one fill before it gives up (the object then stays
/// uncached until its next watch event).
const FILL_ATTEMPTS: u32 = 3;

pub struct Interest {
    kinds: OnceLock<HashMap<Kind, Arc<dyn Tracked>>>,
    owners: Mutex<HashMap<Owner, BTreeSet<Want>>>,
    pending: Mutex<HashSet<Want>>,
    /// Bumped when a fill ends, for [`Interest::settled`].
    fills_done: tokio::sync::watch::Sender<u64>,
}

impl Default for Interest {
    fn default() -> Self {
        Interest {
            kinds: OnceLock::new(),
            owners: Mutex::default(),
            pending: Mutex::default(),
            fills_done: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Interest {
    /// Connects the watched kinds (once; they hold the registry too).
    pub fn connect(&self, kinds: HashMap<Kind, Arc<dyn Tracked>>) {
        let _ = self.kinds.set(kinds);
    }

    /// Records what `owner` uses now, replacing what it used before.
    pub fn set(self: &Arc<Self>, owner: Owner, wants: BTreeSet<Want>) {
        let old = {
            let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
            if wants.is_empty() {
                owners.remove(&owner)
            } else {
                owners.insert(owner, wants.clone())
            }
        }
        .unwrap_or_default();
        // Outside the owners lock: dropping a workload drops its configs,
        // which comes back here.
        for want in wants.difference(&old) {
            if let Some(kind) = self.kind(want.kind)
                && kind.want(&want.namespace, &want.name)
            {
                self.fill(kind.clone(), want.clone());
            }
        }
        for want in old.difference(&wants) {
            if let Some(kind) = self.kind(want.kind) {
                kind.unwant(&want.namespace, &want.name);
            }
        }
    }

    /// Drops every Canary owner not in `live` (after the Canary watch relisted).
    pub fn retain_canaries(self: &Arc<Self>, live: &HashSet<Owner>) {
        let gone: Vec<Owner> = self
            .owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .filter(|o| matches!(o, Owner::Canary { .. }) && !live.contains(o))
            .cloned()
            .collect();
        for owner in gone {
            self.set(owner, BTreeSet::new());
        }
    }

    /// Whether an object one of `owners` uses is still being fetched.
    pub fn pending(&self, owners: &[Owner]) -> bool {
        let pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        if pending.is_empty() {
            return false;
        }
        let all = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
        owners
            .iter()
            .filter_map(|o| all.get(o))
            .any(|wants| wants.iter().any(|w| pending.contains(w)))
    }

    /// Resolves once no object of `owners` is being fetched.
    pub async fn settled(&self, owners: &[Owner]) {
        let mut done = self.fills_done.subscribe();
        while self.pending(owners) {
            if done.changed().await.is_err() {
                return;
            }
        }
    }

    fn kind(&self, kind: Kind) -> Option<&Arc<dyn Tracked>> {
        self.kinds.get()?.get(&kind)
    }

    fn fill(self: &Arc<Self>, kind: Arc<dyn Tracked>, want: Want) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        self.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(want.clone());
        let this = self.clone();
        runtime.spawn(async move {
            for attempt in 0..FILL_ATTEMPTS {
                let fetched = kind
                    .clone()
                    .fill(want.namespace.clone(), want.name.clone())
                    .await;
                match fetched {
                    Ok(()) => break,
                    Err(err) => {
                        tracing::warn!(kind = ?want.kind, namespace = %want.namespace, name = %want.name,
                            error = %err, "fetching an object a canary uses");
                        tokio::time::sleep(Duration::from_secs(1 << attempt)).await;
                    }
                }
            }
            this.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&want);
            this.fills_done.send_modify(|n| *n += 1);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A kind that records calls; `seen` objects need a fill when wanted.
    #[derive(Default)]
    struct Recorder {
        seen: HashSet<String>,
        wanted: Mutex<HashMap<String, u32>>,
        filled: Mutex<Vec<String>>,
    }

    impl Tracked for Recorder {
        fn want(&self, _: &str, name: &str) -> bool {
            let mut wanted = self.wanted.lock().unwrap();
            let n = wanted.entry(name.to_string()).or_default();
            *n += 1;
            *n == 1 && self.seen.contains(name)
        }
        fn unwant(&self, _: &str, name: &str) {
            let mut wanted = self.wanted.lock().unwrap();
            if let Some(n) = wanted.get_mut(name) {
                *n -= 1;
                if *n == 0 {
                    wanted.remove(name);
                }
            }
        }
        fn fill(
            self: Arc<Self>,
            _: String,
            name: String,
        ) -> BoxFuture<'static, Result<(), kube::Error>> {
            Box::pin(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                self.filled.lock().unwrap().push(name);
                Ok(())
            })
        }
    }

    fn canary(name: &str) -> Owner {
        Owner::Canary {
            namespace: "test".into(),
            name: name.into(),
        }
    }

    fn wants(names: &[&str]) -> BTreeSet<Want> {
        names
            .iter()
            .map(|n| Want::new(Kind::Deployment, "test", *n))
            .collect()
    }

    fn setup(seen: &[&str]) -> (Arc<Interest>, Arc<Recorder>) {
        let recorder = Arc::new(Recorder {
            seen: seen.iter().map(|s| s.to_string()).collect(),
            ..Recorder::default()
        });
        let interest = Arc::new(Interest::default());
        let kind: Arc<dyn Tracked> = recorder.clone();
        interest.connect(HashMap::from([(Kind::Deployment, kind)]));
        (interest, recorder)
    }

    #[tokio::test]
    async fn objects_seen_before_they_were_wanted_are_fetched_once() {
        let (interest, recorder) = setup(&["app"]);
        interest.set(canary("a"), wants(&["app", "app-primary"]));
        interest.set(canary("b"), wants(&["app"]));
        assert!(interest.pending(&[canary("a")]));
        assert!(interest.pending(&[canary("b")]), "b uses the same object");
        interest.settled(&[canary("a")]).await;
        assert!(!interest.pending(&[canary("a"), canary("b")]));
        assert_eq!(*recorder.filled.lock().unwrap(), vec!["app".to_string()]);
    }

    #[tokio::test]
    async fn an_object_leaves_when_its_last_owner_does() {
        let (interest, recorder) = setup(&[]);
        interest.set(canary("a"), wants(&["app", "app-primary"]));
        interest.set(canary("b"), wants(&["app"]));
        interest.set(canary("a"), wants(&["app"]));
        assert_eq!(
            *recorder.wanted.lock().unwrap(),
            HashMap::from([("app".to_string(), 2)])
        );
        interest.retain_canaries(&HashSet::from([canary("b")]));
        assert_eq!(
            *recorder.wanted.lock().unwrap(),
            HashMap::from([("app".to_string(), 1)])
        );
        interest.set(canary("b"), BTreeSet::new());
        assert!(recorder.wanted.lock().unwrap().is_empty());
        assert!(
            recorder.filled.lock().unwrap().is_empty(),
            "nothing was seen"
        );
    }
}
