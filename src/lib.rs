//! Serin: a progressive-delivery operator for Kubernetes that reads Flagger's
//! `flagger.app/v1beta1` resources.

pub mod api;
pub mod canary_spec;
pub mod cli;
pub mod demo;
pub mod logging;
pub mod telemetry;
