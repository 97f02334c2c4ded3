//! The Canary's core/v1 Events, as the view lists them.

use k8s_openapi::api::core::v1::Event;
use k8s_openapi::jiff::Timestamp;
use kube::api::ListParams;
use kube::{Api, Client};

use super::CtlError;

/// One Event, reduced to what the view shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventLine {
    /// The last time it happened.
    pub time: Option<Timestamp>,
    pub type_: String,
    pub message: String,
    /// How often it happened (`count`, or `series.count`), at least 1.
    pub count: i32,
}

impl EventLine {
    pub fn of(event: &Event) -> EventLine {
        let series = event.series.as_ref().and_then(|s| s.count).unwrap_or(0);
        let series_time = event
            .series
            .as_ref()
            .and_then(|s| s.last_observed_time.as_ref())
            .map(|t| t.0);
        EventLine {
            time: event
                .last_timestamp
                .as_ref()
                .map(|t| t.0)
                .or(series_time)
                .or(event.event_time.as_ref().map(|t| t.0))
                .or(event.first_timestamp.as_ref().map(|t| t.0))
                .or(event.metadata.creation_timestamp.as_ref().map(|t| t.0)),
            type_: event.type_.clone().unwrap_or_default(),
            message: event.message.clone().unwrap_or_default(),
            count: event.count.unwrap_or(1).max(series).max(1),
        }
    }
}

/// The field selector of a Canary's Events.
pub fn selector(name: &str) -> String {
    format!("involvedObject.kind=Canary,involvedObject.name={name}")
}

/// The Canary's Events, oldest first.
pub async fn list(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<Vec<EventLine>, CtlError> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().fields(&selector(name)))
        .await?;
    Ok(sorted(list.items.iter().map(EventLine::of).collect()))
}

/// Oldest first; Events without a time first.
pub fn sorted(mut events: Vec<EventLine>) -> Vec<EventLine> {
    events.sort_by_key(|e| e.time);
    events
}
