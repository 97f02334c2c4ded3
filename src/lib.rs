//! Serin: a progressive-delivery operator for Kubernetes that reads Flagger's
//! `flagger.app/v1beta1` resources.

pub mod api;
pub mod canary_spec;
pub mod cli;
pub mod ctl;
#[cfg(feature = "demo")]
pub mod demo;
pub mod k8s;
pub mod lint;
pub mod loadtester;
pub mod logging;
pub mod metrics;
pub mod notifier;
pub mod operator;
pub mod router;
pub mod settings;
pub mod telemetry;
pub mod webhook;
pub mod workload;
