//! The end-to-end suite: every test that needs the local control plane
//! (`make cluster-up`, tests/cluster/) in one binary, so they run side by
//! side against the one API server and Prometheus (`make test` raises the
//! number of test threads for it). Each test works in a namespace of its own
//! and runs its own `serin` process; nothing here may change what another
//! test sees (cluster-scoped objects are only Serin's own CRDs, applied with
//! the same content by every test that needs them).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod api_cost;
mod cli;
mod cli_requests;
mod cluster_smoke;
mod crds;
mod datadog;
mod external_metrics;
mod gatewayapi;
mod helm;
mod helm_rbac;
mod istio;
mod istio_lifecycle;
mod istio_routing;
mod istio_simulator;
mod istio_takeover;
mod keptn;
mod leader;
mod linkerd;
mod mesh_manifests;
mod nginx;
mod nginx_alerts;
mod nginx_lifecycle;
mod operator;
mod operator_resilience;
mod operator_targets;
mod simulator;
