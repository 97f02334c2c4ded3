//! From watch events to canary actors: a Canary that appears or changes is
//! validated and upserted into the registry; a new target generation or a
//! changed tracked config wakes the actors that use it, found through
//! reverse indexes ([`Index`]). Nothing here polls, and the bridge's own API
//! writes (finalizers, the `Valid` condition, the event of an invalid spec)
//! go through an [`Outbox`], so one slow write never holds up the wake-ups.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use kube::{Resource, ResourceExt};
use serin_actors::events::Event;
use serin_actors::ports::CanaryKey;
use serin_actors::registry::{Registry, RegistryError};
use tokio::sync::mpsc;

use super::conditions;
use super::finalize::{self, FINALIZER};
use super::index::{ConfigKey, Index, ObjectKey, TargetKey};
use super::outbox::Outbox;
use super::validate::validate;
use super::wants;
use super::watch::Change;
use crate::api::Canary;
use crate::api::canary::TargetKind;
pub use crate::api::canary::key_of;
use crate::k8s::events::KubeEvents;
use crate::k8s::interest::{Interest, Kind, Owner};
use crate::k8s::{Caches, KubeClients, cache};
use crate::settings::Settings;
use crate::telemetry::Recorder;
use crate::workload::KubeWorkload;
use crate::workload::config::{self, ConfigKind};

/// How often dead actors are rebuilt: a safety net, since a panicking step
/// restarts its own actor at once.
const HEAL_EVERY: Duration = Duration::from_secs(5);
/// The longest a change waits for the objects it needs to be fetched.
const FILL_WAIT: Duration = Duration::from_secs(30);
/// Retry delay when a canary's mailbox was full.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// What the bridge needs from the rest of the operator.
#[derive(Clone)]
pub struct Context {
    pub registry: Arc<Registry>,
    pub caches: Caches,
    /// What the filtered caches keep; its fetches are awaited before acting.
    pub interest: Arc<Interest>,
    pub settings: Arc<Settings>,
    pub clients: KubeClients,
    pub events: KubeEvents,
    pub workload: Arc<KubeWorkload>,
    /// For `revertOnDeletion` of the routing objects a Canary took over.
    pub routers: Arc<crate::router::Routers>,
    pub recorder: Option<Recorder>,
}

pub struct Bridge {
    ctx: Context,
    /// Replays a change later (full mailbox) through the same queue.
    requeue: mpsc::UnboundedSender<Change>,
    /// Last message reported for an invalid canary, so it is reported once.
    invalid: HashMap<CanaryKey, String>,
    /// Canaries per namespace, for `flagger_canary_total`.
    known: BTreeMap<String, BTreeSet<String>>,
    finalizing: Arc<dashmap::DashSet<CanaryKey>>,
    index: Index,
    outbox: Outbox,
}

impl Bridge {
    pub fn new(ctx: Context, requeue: mpsc::UnboundedSender<Change>) -> Bridge {
        Bridge {
            ctx,
            requeue,
            invalid: HashMap::new(),
            known: BTreeMap::new(),
            finalizing: Arc::default(),
            index: Index::default(),
            outbox: Outbox::default(),
        }
    }

    /// Runs until the watches are gone.
    pub async fn run(mut self, mut changes: mpsc::UnboundedReceiver<Change>) {
        let mut heal = tokio::time::interval(HEAL_EVERY);
        heal.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                change = changes.recv() => match change {
                    Some(change) => self.on_change(change).await,
                    None => return,
                },
                _ = heal.tick() => {
                    for key in self.ctx.registry.heal().await {
                        tracing::warn!(canary = %key, "actor rebuilt from the persisted status");
                        if let Some(recorder) = &self.ctx.recorder {
                            recorder.count_actor_restart();
                        }
                    }
                }
            }
        }
    }

    async fn on_change(&mut self, change: Change) {
        match change {
            Change::CanaryApplied(canary) => self.canary_applied(&canary).await,
            Change::CanaryDeleted(canary) => self.canary_deleted(&canary),
            Change::CanariesRelisted => self.relisted(),
            Change::Workload {
                namespace,
                kind,
                name,
            } => self.workload_changed(namespace, kind, name).await,
            Change::Config {
                namespace,
                kind,
                name,
            } => self.config_changed(namespace, kind, name),
        }
    }

    async fn canary_applied(&mut self, canary: &Arc<Canary>) {
        let mut owners = vec![wants::canary_owner(canary)];
        owners.extend(target_key(canary).map(|t| target_owner(&t)));
        if self.waits_for_fills(&owners, Change::CanaryApplied(canary.clone())) {
            return;
        }
        let key = key_of(canary);
        self.count(&key, true);
        self.index_uses(&key, canary);
        let has_finalizer = canary.finalizers().iter().any(|f| f == FINALIZER);
        if canary.meta().deletion_timestamp.is_some() {
            if has_finalizer && self.finalizing.insert(key.clone()) {
                let (ctx, canary, finalizing) =
                    (self.ctx.clone(), canary.clone(), self.finalizing.clone());
                tokio::spawn(async move {
                    finalize::run(&ctx, &canary).await;
                    finalizing.remove(&key);
                });
            } else if !has_finalizer {
                self.forget(&key);
            }
            return;
        }
        let (clients, c) = (self.ctx.clients.clone(), canary.clone());
        self.outbox.send(&key, async move {
            if let Err(err) = finalize::sync_finalizer(&clients, &c).await {
                tracing::warn!(canary = %key_of(&c), error = %err, "updating the finalizer");
            }
        });
        let spec = match validate(canary, &self.ctx.caches, &self.ctx.settings) {
            Ok(spec) => spec,
            Err(message) => return self.reject(canary, key, message),
        };
        let was_invalid = self.invalid.remove(&key).is_some() || conditions::has_invalid(canary);
        if was_invalid {
            let (clients, c) = (self.ctx.clients.clone(), canary.clone());
            self.outbox.send(&key, async move {
                if let Err(err) = conditions::clear_invalid(&clients, &c).await {
                    tracing::warn!(canary = %key_of(&c), error = %err, "clearing the invalid condition");
                }
            });
        }
        match self.ctx.registry.upsert(spec).await {
            Ok(outcome) => tracing::debug!(canary = %key, ?outcome, "Synced {key}"),
            Err(RegistryError::Busy(_)) => self.retry_later(canary),
            Err(err) => tracing::warn!(canary = %key, error = %err, "starting the canary"),
        }
    }

    /// Stops an invalid canary and says why, once per distinct message.
    fn reject(&mut self, canary: &Arc<Canary>, key: CanaryKey, message: String) {
        self.ctx.registry.delete(&key);
        if self.invalid.get(&key) == Some(&message) {
            return;
        }
        tracing::warn!(canary = %key, "invalid canary spec: {message}");
        let (events, clients, c) = (
            self.ctx.events.clone(),
            self.ctx.clients.clone(),
            canary.clone(),
        );
        let text = message.clone();
        self.outbox.send(&key, async move {
            let key = key_of(&c);
            if let Err(err) = events.publish(&c, &Event::warning(&text)).await {
                tracing::warn!(canary = %key, error = %err, "event not recorded");
            }
            if let Err(err) = conditions::set_invalid(&clients, &c, &text).await {
                tracing::warn!(canary = %key, error = %err, "writing the invalid condition");
            }
        });
        self.invalid.insert(key, message);
    }

    /// When objects `owners` use are still being fetched into the caches,
    /// replays `change` once they are there and says so.
    fn waits_for_fills(&self, owners: &[Owner], change: Change) -> bool {
        if !self.ctx.interest.pending(owners) {
            return false;
        }
        let (interest, requeue, owners, canaries) = (
            self.ctx.interest.clone(),
            self.requeue.clone(),
            owners.to_vec(),
            self.ctx.caches.canaries.clone(),
        );
        tokio::spawn(async move {
            // Fills give up on their own; the bound only guards the replay.
            let _ = tokio::time::timeout(FILL_WAIT, interest.settled(&owners)).await;
            if let Some(change) = replayed(change, &canaries) {
                let _ = requeue.send(change);
            }
        });
        true
    }

    fn retry_later(&self, canary: &Arc<Canary>) {
        let requeue = self.requeue.clone();
        let canary = canary.clone();
        tokio::spawn(async move {
            tokio::time::sleep(BUSY_RETRY).await;
            let _ = requeue.send(Change::CanaryApplied(canary));
        });
    }

    fn canary_deleted(&mut self, canary: &Canary) {
        let key = key_of(canary);
        self.forget(&key);
        self.count(&key, false);
        tracing::info!(canary = %key, "Deleting {key} from cache");
    }

    fn forget(&mut self, key: &CanaryKey) {
        self.ctx.registry.delete(key);
        self.ctx.events.forget(key);
        self.invalid.remove(key);
        self.index.remove(key);
        self.outbox.forget(key);
    }

    /// After a relist, drop what was deleted while the watch was down.
    fn relisted(&mut self) {
        let live: BTreeSet<CanaryKey> = self
            .ctx
            .caches
            .canaries
            .state()
            .iter()
            .map(|c| key_of(c))
            .collect();
        for key in self.ctx.registry.keys() {
            if !live.contains(&key) {
                self.forget(&key);
                self.count(&key, false);
            }
        }
    }

    /// Records the target and the configs its pod template references.
    fn index_uses(&mut self, key: &CanaryKey, canary: &Canary) {
        let target = target_key(canary);
        let configs = match (&target, self.ctx.settings.config_tracking) {
            (Some(target), true) => configs_of(&self.ctx.caches, target),
            _ => Vec::new(),
        };
        self.index.set(key, target, configs);
    }

    async fn workload_changed(&mut self, namespace: String, kind: &'static str, name: String) {
        let target = ObjectKey {
            namespace,
            kind,
            name,
        };
        let change = Change::Workload {
            namespace: target.namespace.clone(),
            kind,
            name: target.name.clone(),
        };
        if self.waits_for_fills(&[target_owner(&target)], change) {
            return;
        }
        for key in self.index.users_of_target(&target) {
            let Some(canary) = cache::get(&self.ctx.caches.canaries, &key.namespace, &key.name)
            else {
                continue;
            };
            // The new pod template may mount other configs.
            self.index_uses(&key, &canary);
            self.wake_or_sync(&key, &canary).await;
        }
    }

    fn config_changed(&mut self, namespace: String, kind: ConfigKind, name: String) {
        if !self.ctx.settings.config_tracking {
            return;
        }
        let config = ObjectKey {
            namespace,
            kind,
            name,
        };
        for key in self.index.users_of_config(&config) {
            self.wake(&key);
        }
    }

    /// A running actor is told; a canary without one (its target was
    /// missing, say) goes through validation again.
    async fn wake_or_sync(&mut self, key: &CanaryKey, canary: &Arc<Canary>) {
        if self.ctx.registry.addr(key).is_some() {
            self.wake(key);
        } else {
            self.canary_applied(canary).await;
        }
    }

    fn wake(&self, key: &CanaryKey) {
        match self.ctx.registry.target_changed(key) {
            Ok(()) => {}
            // A dead actor is rebuilt by heal and observes the change itself.
            Err(RegistryError::Gone(_)) | Err(RegistryError::Unknown(_)) => {}
            Err(err) => tracing::warn!(canary = %key, error = %err, "target change not delivered"),
        }
    }

    fn count(&mut self, key: &CanaryKey, present: bool) {
        let names = self.known.entry(key.namespace.clone()).or_default();
        let changed = if present {
            names.insert(key.name.clone())
        } else {
            names.remove(&key.name)
        };
        if changed && let Some(recorder) = &self.ctx.recorder {
            let count = i64::try_from(names.len()).unwrap_or(i64::MAX);
            recorder.set_total(&key.namespace, count);
        }
    }
}

/// The Canary's target workload, when it is one that has a pod template.
fn target_key(canary: &Canary) -> Option<TargetKey> {
    let kind = match canary.spec.target_ref.kind {
        TargetKind::Deployment => "Deployment",
        TargetKind::DaemonSet => "DaemonSet",
        TargetKind::Service => return None,
    };
    Some(ObjectKey {
        namespace: canary.namespace().unwrap_or_default(),
        kind,
        name: canary.spec.target_ref.name.clone(),
    })
}

/// What to replay of a change that waited: a Canary as the cache has it
/// now (a newer version may have waited beside it, and replays may come in
/// any order), or nothing once it is gone (its deletion was handled).
fn replayed(change: Change, canaries: &kube::runtime::reflector::Store<Canary>) -> Option<Change> {
    match change {
        Change::CanaryApplied(canary) => {
            let ns = canary.namespace().unwrap_or_default();
            cache::get(canaries, &ns, &canary.name_any()).map(Change::CanaryApplied)
        }
        other => Some(other),
    }
}

/// The owner of the configs a target's pod template references.
fn target_owner(target: &TargetKey) -> Owner {
    let kind = if target.kind == "DaemonSet" {
        Kind::DaemonSet
    } else {
        Kind::Deployment
    };
    wants::workload_owner(kind, &target.namespace, &target.name)
}

/// The ConfigMaps and Secrets the target's cached pod template references.
fn configs_of(caches: &Caches, target: &TargetKey) -> Vec<ConfigKey> {
    let (ns, name) = (&target.namespace, &target.name);
    let pod = match target.kind {
        "Deployment" => cache::get(&caches.deployments, ns, name)
            .and_then(|d| d.spec.as_ref()?.template.spec.clone()),
        "DaemonSet" => cache::get(&caches.daemonsets, ns, name)
            .and_then(|d| d.spec.as_ref()?.template.spec.clone()),
        _ => None,
    };
    pod.map(|pod| {
        config::referenced_configs(&pod)
            .into_iter()
            .map(|r| ObjectKey {
                namespace: ns.clone(),
                kind: r.kind,
                name: r.name,
            })
            .collect()
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::k8s::cache::testing::store_of;

    fn canary(name: &str, version: &str) -> Canary {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "flagger.app/v1beta1",
            "kind": "Canary",
            "metadata": {"name": name, "namespace": "test", "resourceVersion": version},
            "spec": {
                "targetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "analysis": {"interval": "1m", "threshold": 5}
            }
        }))
        .unwrap()
    }

    #[test]
    fn a_replayed_canary_is_the_newest_or_none() {
        let store = store_of(vec![canary("newer", "7")]);
        let Some(Change::CanaryApplied(c)) = replayed(
            Change::CanaryApplied(Arc::new(canary("newer", "5"))),
            &store,
        ) else {
            panic!("a canary still there is replayed");
        };
        assert_eq!(c.metadata.resource_version.as_deref(), Some("7"));
        assert!(
            replayed(Change::CanaryApplied(Arc::new(canary("gone", "3"))), &store).is_none(),
            "a deleted canary must not come back"
        );
    }
}
