//! Flagger's webhook payload JSON.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serin_actors::events::EventType;
use serin_actors::ports::WebhookCall;

/// `CanaryWebhookPayload`; a map serializes with sorted keys, as Go's does.
#[derive(Debug, Serialize)]
pub(super) struct Payload<'a> {
    name: &'a str,
    namespace: &'a str,
    phase: &'a str,
    checksum: &'a str,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: BTreeMap<String, String>,
}

pub(super) fn payload(call: &WebhookCall, now: SystemTime) -> Payload<'_> {
    let mut metadata = BTreeMap::new();
    if let Some(event) = &call.event {
        let millis = now
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let event_type = match event.event_type {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        metadata.insert("eventMessage".to_string(), event.message.clone());
        metadata.insert("eventType".to_string(), event_type.to_string());
        metadata.insert("timestamp".to_string(), millis.to_string());
    }
    // The hook's own keys never override the event's.
    for (key, value) in &call.hook.metadata {
        metadata.entry(key.clone()).or_insert_with(|| value.clone());
    }
    Payload {
        name: &call.key.name,
        namespace: &call.key.namespace,
        phase: call.phase.as_str(),
        checksum: &call.checksum,
        metadata,
    }
}
