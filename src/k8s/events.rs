//! Kubernetes events on the Canary the way Flagger's client-go recorder
//! writes them: core/v1 Events, reason `Synced`, source `flagger`, with a
//! repeated message counted on one Event (`x3 over 2m` in kubectl).
//!
//! kube-runtime's `Recorder` keys its series on reason and action but not
//! the message, so with Flagger's single reason every message after the
//! first would be folded into the first one; hence this small writer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use k8s_openapi::api::core::v1::{Event as K8sEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource};
use serde_json::json;
use serin_actors::events::{Event, EventType, REASON};
use serin_actors::model::source::Source;
use serin_actors::ports::{CanaryKey, EventSink, PortError, PortFuture};
use tokio::time::Instant;

use crate::api::Canary;
use crate::k8s::KubeClients;

/// Flagger's event source component; `kubectl describe` shows it as "From".
pub const COMPONENT: &str = "flagger";

/// client-go's correlator window: an identical event within it is counted.
const AGGREGATE_WINDOW: Duration = Duration::from_secs(600);

/// Bound on remembered series, so a long-running operator stays small.
const MAX_SERIES: usize = 4096;

/// (canary, is warning, message): what client-go's correlator compares.
type SeriesKey = (CanaryKey, bool, String);

#[derive(Clone)]
struct Series {
    name: String,
    count: i32,
    last: Timestamp,
}

#[derive(Clone)]
pub struct KubeEvents {
    clients: KubeClients,
    instance: String,
    series: Arc<Mutex<HashMap<SeriesKey, Series>>>,
}

impl KubeEvents {
    pub fn new(clients: KubeClients, instance: String) -> KubeEvents {
        KubeEvents {
            clients,
            instance,
            series: Arc::default(),
        }
    }

    /// Records an event on a Canary object the caller already holds (the
    /// operator's own events: invalid spec, termination).
    pub async fn publish(&self, canary: &Canary, event: &Event) -> Result<(), kube::Error> {
        let reference = canary.object_ref(&());
        let key = CanaryKey::new(
            canary.metadata.namespace.clone().unwrap_or_default(),
            canary.metadata.name.clone().unwrap_or_default(),
        );
        self.write(&key, reference, event).await
    }

    async fn write(
        &self,
        key: &CanaryKey,
        reference: ObjectReference,
        event: &Event,
    ) -> Result<(), kube::Error> {
        log(key, event);
        let api: Api<K8sEvent> = Api::namespaced(self.clients.routine.clone(), &key.namespace);
        let now = Timestamp::now();
        let warning = event.event_type == EventType::Warning;
        let series_key = (key.clone(), warning, event.message.clone());
        let previous = self
            .series
            .lock()
            .ok()
            .and_then(|map| map.get(&series_key).cloned());
        if let Some(mut series) = previous
            .filter(|s| now.duration_since(s.last).as_secs() < AGGREGATE_WINDOW.as_secs() as i64)
        {
            series.count += 1;
            series.last = now;
            let patch = json!({ "count": series.count, "lastTimestamp": Time(now) });
            match api
                .patch(&series.name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    self.remember(series_key, series);
                    return Ok(());
                }
                // The Event expired or was deleted: write a new one.
                Err(kube::Error::Api(e)) if e.code == 404 => {}
                Err(err) => return Err(err),
            }
        }
        let name = format!("{}.{:x}", key.name, now.as_nanosecond().unsigned_abs());
        let body = K8sEvent {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                namespace: Some(key.namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: reference,
            reason: Some(REASON.to_string()),
            message: Some(event.message.clone()),
            type_: Some(if warning { "Warning" } else { "Normal" }.to_string()),
            source: Some(EventSource {
                component: Some(COMPONENT.to_string()),
                host: None,
            }),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: None::<MicroTime>,
            reporting_component: Some(COMPONENT.to_string()),
            reporting_instance: Some(self.instance.clone()),
            ..K8sEvent::default()
        };
        api.create(&PostParams::default(), &body).await?;
        self.remember(
            series_key,
            Series {
                name,
                count: 1,
                last: now,
            },
        );
        Ok(())
    }

    fn remember(&self, key: SeriesKey, series: Series) {
        if let Ok(mut map) = self.series.lock() {
            if map.len() >= MAX_SERIES {
                let cutoff = series.last;
                map.retain(|_, s| {
                    cutoff.duration_since(s.last).as_secs() < AGGREGATE_WINDOW.as_secs() as i64
                });
            }
            if map.len() < MAX_SERIES {
                map.insert(key, series);
            }
        }
    }

    /// Forgets the series of a deleted Canary.
    pub fn forget(&self, key: &CanaryKey) {
        if let Ok(mut map) = self.series.lock() {
            map.retain(|(k, _, _), _| k != key);
        }
    }
}

/// Every event is also a log line, as Flagger logs them.
fn log(key: &CanaryKey, event: &Event) {
    match event.event_type {
        EventType::Normal => tracing::info!(canary = %key, "{}", event.message),
        EventType::Warning => tracing::warn!(canary = %key, "{}", event.message),
    }
}

impl EventSink for KubeEvents {
    fn record(
        &self,
        key: &CanaryKey,
        source: &Source,
        event: &Event,
        deadline: Instant,
    ) -> PortFuture<()> {
        let this = self.clone();
        let key = key.clone();
        let event = event.clone();
        let canary = source.get::<Canary>();
        async move {
            let canary = canary.ok_or_else(|| PortError::NotFound(format!("canary {key}")))?;
            let reference = canary.object_ref(&());
            tokio::time::timeout_at(deadline, this.write(&key, reference, &event))
                .await
                .map_err(|_| PortError::Timeout)?
                .map_err(|err| PortError::Failed(err.to_string()))
        }
        .boxed()
    }
}
