//! CanaryKey → actor address, the bridge between reconcile and the actors.
//!
//! Only the registry holds strong `Addr`s to canary actors, so removing an
//! entry and then sending [`Shutdown`] really stops a supervised actor. No
//! dashmap guard is held across an `.await` (clippy.toml enforces it): every
//! async path clones the entry out first.

use std::sync::Arc;

use actix::{Addr, Supervisor};
use dashmap::DashMap;
use dashmap::mapref::entry::Entry as MapEntry;
use tokio::time::Instant;

use crate::actors::{
    ArbiterPool, CanaryActor, Services, Shutdown, SpecChanged, Stats, TargetChanged, Terminate,
};
use crate::model::spec::CanarySpec;
use crate::model::status::CanaryStatus;
use crate::ports::{CanaryKey, PortError};

/// What [`Registry::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upsert {
    Started,
    /// The previous actor had died; a new one resumes from the persisted status.
    Rebuilt,
    Updated,
    Unchanged,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {
    #[error("canary {0} is not registered")]
    Unknown(CanaryKey),
    /// The actor's mailbox is full; reconcile should requeue.
    #[error("mailbox of canary {0} is full")]
    Busy(CanaryKey),
    /// The actor died; [`Registry::heal`] or the next upsert rebuilds it.
    #[error("actor of canary {0} is gone")]
    Gone(CanaryKey),
    #[error("loading the status of {key}: {source}")]
    Load { key: CanaryKey, source: PortError },
    #[error("writing the Terminating status of {key}: {source}")]
    Terminate { key: CanaryKey, source: PortError },
}

#[derive(Clone)]
struct Entry {
    addr: Addr<CanaryActor>,
    spec: Arc<CanarySpec>,
}

pub struct Registry {
    entries: DashMap<CanaryKey, Entry>,
    services: Services,
    pool: ArbiterPool,
}

impl Registry {
    pub fn new(services: Services, pool: ArbiterPool) -> Registry {
        Registry {
            entries: DashMap::new(),
            services,
            pool,
        }
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Every registered canary.
    pub fn keys(&self) -> Vec<CanaryKey> {
        self.entries.iter().map(|e| e.key().clone()).collect()
    }

    pub fn addr(&self, key: &CanaryKey) -> Option<Addr<CanaryActor>> {
        self.entries.get(key).map(|e| e.addr.clone())
    }

    /// Starts the actor of a new Canary, forwards a changed spec, or rebuilds
    /// a dead actor from the persisted status.
    pub async fn upsert(&self, spec: CanarySpec) -> Result<Upsert, RegistryError> {
        let key = CanaryKey::of(&spec);
        let spec = Arc::new(spec);
        let current = self.entries.get(&key).map(|e| e.clone());
        match current {
            Some(entry) if entry.addr.connected() => {
                if entry.spec == spec {
                    return Ok(Upsert::Unchanged);
                }
                entry
                    .addr
                    .try_send(SpecChanged(spec.clone()))
                    .map_err(|_| RegistryError::Busy(key.clone()))?;
                self.entries.insert(
                    key,
                    Entry {
                        addr: entry.addr,
                        spec,
                    },
                );
                Ok(Upsert::Updated)
            }
            _ => {
                let status = self.load_status(&key).await?;
                Ok(self.start(key, spec, status))
            }
        }
    }

    /// Rebuilds every dead actor; returns the keys it rebuilt.
    pub async fn heal(&self) -> Vec<CanaryKey> {
        let dead: Vec<(CanaryKey, Arc<CanarySpec>)> = self
            .entries
            .iter()
            .filter(|e| !e.addr.connected())
            .map(|e| (e.key().clone(), e.spec.clone()))
            .collect();
        let mut rebuilt = Vec::new();
        for (key, spec) in dead {
            match self.load_status(&key).await {
                Ok(status) => {
                    if self.start(key.clone(), spec, status) == Upsert::Rebuilt {
                        rebuilt.push(key);
                    }
                }
                Err(err) => tracing::warn!(canary = %key, error = %err, "rebuild postponed"),
            }
        }
        rebuilt
    }

    /// A watch saw the target (or a tracked config) change.
    pub fn target_changed(&self, key: &CanaryKey) -> Result<(), RegistryError> {
        let addr = self
            .addr(key)
            .ok_or_else(|| RegistryError::Unknown(key.clone()))?;
        addr.try_send(TargetChanged).map_err(|err| match err {
            actix::dev::SendError::Full(_) => RegistryError::Busy(key.clone()),
            actix::dev::SendError::Closed(_) => RegistryError::Gone(key.clone()),
        })
    }

    /// Forgets the Canary and stops its actor. Returns false if unknown.
    pub fn delete(&self, key: &CanaryKey) -> bool {
        let Some((_, entry)) = self.entries.remove(key) else {
            return false;
        };
        // Queue Shutdown, then drop the last strong Addr: the supervisor
        // restarts on stop while an Addr is alive, so it must be gone first.
        entry.addr.do_send(Shutdown);
        drop(entry);
        true
    }

    /// Stops every canary actor and the arbiters the pool created.
    pub fn shutdown(&self) {
        let keys: Vec<CanaryKey> = self.entries.iter().map(|e| e.key().clone()).collect();
        for key in keys {
            self.delete(&key);
        }
        self.pool.stop();
    }

    /// The persisted status; `None` for a Canary no operator wrote yet.
    async fn load_status(&self, key: &CanaryKey) -> Result<Option<CanaryStatus>, RegistryError> {
        let deadline = Instant::now() + self.services.config.call_timeout;
        self.services
            .status
            .load(key, deadline)
            .await
            .map_err(|source| RegistryError::Load {
                key: key.clone(),
                source,
            })
    }

    /// The Canary is being deleted: its actor stops stepping and writes the
    /// `Terminating` status (it is the status' one writer). Returns once
    /// that is persisted.
    pub async fn terminate(&self, key: &CanaryKey) -> Result<(), RegistryError> {
        let addr = self
            .addr(key)
            .ok_or_else(|| RegistryError::Unknown(key.clone()))?;
        addr.send(Terminate)
            .await
            .map_err(|_| RegistryError::Gone(key.clone()))?
            .map_err(|source| RegistryError::Terminate {
                key: key.clone(),
                source,
            })
    }

    /// Starts an actor unless a live one appeared while the status loaded.
    fn start(&self, key: CanaryKey, spec: Arc<CanarySpec>, status: Option<CanaryStatus>) -> Upsert {
        let arbiter = self.pool.pick(&key);
        let services = self.services.clone();
        let launch = |spec: Arc<CanarySpec>| {
            let actor_spec = spec.clone();
            let addr = Supervisor::start_in_arbiter(&arbiter, move |_| {
                CanaryActor::new(actor_spec, status, services)
            });
            Entry { addr, spec }
        };
        match self.entries.entry(key) {
            MapEntry::Occupied(mut slot) => {
                if slot.get().addr.connected() {
                    return Upsert::Unchanged;
                }
                slot.insert(launch(spec));
                Stats::bump(&self.services.stats.rebuilds);
                Upsert::Rebuilt
            }
            MapEntry::Vacant(slot) => {
                // Also when the entry was deleted while the status loaded.
                slot.insert(launch(spec));
                Upsert::Started
            }
        }
    }
}
