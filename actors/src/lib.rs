//! Serin core: domain model, ports and pure decision logic. No kube or HTTP dependency.
//!
//! - [`model`]: the Canary spec as Serin sees it, the persisted status and
//!   what the ports observe each tick.
//! - [`decision`]: Flagger's control loop as a pure function
//!   ([`decision::tick()`], see [`decision::tick`](mod@decision::tick) docs for the replay protocol).
//! - [`effects`] and [`events`]: the commands and Flagger-exact texts a tick emits.

pub mod decision;
pub mod duration;
pub mod effects;
pub mod events;
pub mod gofmt;
pub mod model;

pub use decision::{TickOutcome, TickStep, tick};
pub use effects::Effect;
pub use events::{Alert, Event, EventType, Severity};
pub use model::observe::{
    Answers, CheckRequest, MetricAnswer, Observations, Readiness, Revision, Routes, WebhookAnswer,
};
pub use model::spec::{AnalysisSpec, CanarySpec, HookType, MetricSpec, Strategy, WebhookSpec};
pub use model::status::{CanaryStatus, Phase, Timestamp};

pub mod actors;
pub mod ports;
pub mod registry;
#[cfg(feature = "sim")]
pub mod sim;
#[cfg(test)]
mod tests;
