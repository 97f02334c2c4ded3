//! Serin's domain types: spec, persisted status and per-tick observations.

pub mod observe;
pub mod request;
pub mod source;
pub mod spec;
pub mod status;
