//! From watch events to canary actors: a Canary that appears or changes is
//! validated and upserted into the registry; a new target generation or a
//! changed tracked config wakes the actors that use it. Nothing here polls.

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
use super::validate::validate;
use super::watch::Change;
use crate::api::Canary;
use crate::api::canary::TargetKind;
use crate::k8s::events::KubeEvents;
use crate::k8s::{Caches, KubeClients, cache};
use crate::settings::Settings;
use crate::telemetry::Recorder;
use crate::workload::KubeWorkload;
use crate::workload::config::{self, ConfigKind};

/// How often dead actors (a panic kills an actix actor) are rebuilt.
const HEAL_EVERY: Duration = Duration::from_secs(5);
/// Retry delay when a canary's mailbox was full.
const BUSY_RETRY: Duration = Duration::from_secs(1);

/// What the bridge needs from the rest of the operator.
#[derive(Clone)]
pub struct Context {
    pub registry: Arc<Registry>,
    pub caches: Caches,
    pub settings: Arc<Settings>,
    pub clients: KubeClients,
    pub events: KubeEvents,
    pub workload: Arc<KubeWorkload>,
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
}

impl Bridge {
    pub fn new(ctx: Context, requeue: mpsc::UnboundedSender<Change>) -> Bridge {
        Bridge {
            ctx,
            requeue,
            invalid: HashMap::new(),
            known: BTreeMap::new(),
            finalizing: Arc::default(),
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
            } => self.workload_changed(&namespace, kind, &name).await,
            Change::Config {
                namespace,
                kind,
                name,
            } => self.config_changed(&namespace, kind, &name),
        }
    }

    async fn canary_applied(&mut self, canary: &Canary) {
        let key = key_of(canary);
        self.count(&key, true);
        let has_finalizer = canary.finalizers().iter().any(|f| f == FINALIZER);
        if canary.meta().deletion_timestamp.is_some() {
            self.forget(&key);
            if has_finalizer && self.finalizing.insert(key.clone()) {
                let (ctx, canary, finalizing) =
                    (self.ctx.clone(), canary.clone(), self.finalizing.clone());
                tokio::spawn(async move {
                    finalize::run(&ctx, &canary).await;
                    finalizing.remove(&key);
                });
            }
            return;
        }
        if let Err(err) = finalize::sync_finalizer(&self.ctx.clients, canary).await {
            tracing::warn!(canary = %key, error = %err, "updating the finalizer");
        }
        let spec = match validate(canary, &self.ctx.caches, &self.ctx.settings) {
            Ok(spec) => spec,
            Err(message) => return self.reject(canary, key, message).await,
        };
        let was_invalid = self.invalid.remove(&key).is_some() || conditions::has_invalid(canary);
        if was_invalid && let Err(err) = conditions::clear_invalid(&self.ctx.clients, canary).await
        {
            tracing::warn!(canary = %key, error = %err, "clearing the invalid condition");
        }
        if conditions::needs_initializing(canary) {
            // Flagger's syncHandler writes Initializing before the first tick.
            if let Err(err) = conditions::initializing(&self.ctx.clients, canary).await {
                tracing::warn!(canary = %key, error = %err, "writing the Initializing status");
            }
        }
        match self.ctx.registry.upsert(spec).await {
            Ok(outcome) => tracing::debug!(canary = %key, ?outcome, "Synced {key}"),
            Err(RegistryError::Busy(_)) => self.retry_later(canary),
            Err(err) => tracing::warn!(canary = %key, error = %err, "starting the canary"),
        }
    }

    /// Stops an invalid canary and says why, once per distinct message.
    async fn reject(&mut self, canary: &Canary, key: CanaryKey, message: String) {
        self.ctx.registry.delete(&key);
        if self.invalid.get(&key) == Some(&message) {
            return;
        }
        tracing::warn!(canary = %key, "invalid canary spec: {message}");
        if let Err(err) = self
            .ctx
            .events
            .publish(canary, &Event::warning(&message))
            .await
        {
            tracing::warn!(canary = %key, error = %err, "event not recorded");
        }
        if let Err(err) = conditions::set_invalid(&self.ctx.clients, canary, &message).await {
            tracing::warn!(canary = %key, error = %err, "writing the invalid condition");
        }
        self.invalid.insert(key, message);
    }

    fn retry_later(&self, canary: &Canary) {
        let requeue = self.requeue.clone();
        let canary = Box::new(canary.clone());
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

    async fn workload_changed(&mut self, namespace: &str, kind: &str, name: &str) {
        let users: Vec<Arc<Canary>> = self
            .ctx
            .caches
            .canaries
            .state()
            .into_iter()
            .filter(|c| {
                c.namespace().as_deref() == Some(namespace)
                    && c.spec.target_ref.kind.as_str() == kind
                    && c.spec.target_ref.name == name
            })
            .collect();
        for canary in users {
            self.wake_or_sync(&canary).await;
        }
    }

    fn config_changed(&mut self, namespace: &str, kind: ConfigKind, name: &str) {
        if !self.ctx.settings.config_tracking {
            return;
        }
        for canary in self.ctx.caches.canaries.state() {
            if canary.namespace().as_deref() != Some(namespace) {
                continue;
            }
            let uses = pod_spec_of(&self.ctx.caches, &canary).is_some_and(|pod| {
                config::referenced_configs(&pod)
                    .iter()
                    .any(|r| r.kind == kind && r.name == name)
            });
            if uses {
                self.wake(&key_of(&canary));
            }
        }
    }

    /// A running actor is told; a canary without one (its target was
    /// missing, say) goes through validation again.
    async fn wake_or_sync(&mut self, canary: &Canary) {
        let key = key_of(canary);
        if self.ctx.registry.addr(&key).is_some() {
            self.wake(&key);
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

pub fn key_of(canary: &Canary) -> CanaryKey {
    CanaryKey::new(canary.namespace().unwrap_or_default(), canary.name_any())
}

/// The pod template of the Canary's target, from the cache.
fn pod_spec_of(caches: &Caches, canary: &Canary) -> Option<k8s_openapi::api::core::v1::PodSpec> {
    let ns = canary.namespace().unwrap_or_default();
    let name = &canary.spec.target_ref.name;
    match canary.spec.target_ref.kind {
        TargetKind::Deployment => cache::get(&caches.deployments, &ns, name)
            .and_then(|d| d.spec.as_ref()?.template.spec.clone()),
        TargetKind::DaemonSet => cache::get(&caches.daemonsets, &ns, name)
            .and_then(|d| d.spec.as_ref()?.template.spec.clone()),
        TargetKind::Service => None,
    }
}
