//! What Serin reports about itself: Flagger's Prometheus series (so Flagger's
//! dashboards and alerts keep working) plus Serin's own, and the HTTP server
//! that exposes them.

pub mod http;
pub mod recorder;

pub use recorder::Recorder;
