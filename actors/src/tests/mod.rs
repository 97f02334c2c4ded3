//! Scenario tests ported from Flagger's scheduler tests.

mod failures;
mod gates;
mod requests;
mod scheduler;
mod sim;
mod walkthrough;
