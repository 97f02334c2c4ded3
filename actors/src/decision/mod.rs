//! Pure decision logic: no I/O, no clock, no async.

mod context;
mod hooks;
pub mod metrics;
pub mod requests;
mod strategy;
pub mod tick;
pub mod weights;

pub use tick::{TickOutcome, TickStep, tick};
