//! API cost of the operator, measured on the local control plane: requests
//! by verb while 100 canaries sit idle for 5 minutes, and for one canary
//! across a full Blue/Green analysis (tests/e2e/support/api_cost.rs).
//!
//! `cargo bench --bench api_cost` (testbed running, `source
//! target/testbed/env`). Fails if an idle canary made any request besides
//! the shared watch streams: that is Serin's target. A 10-canary version of
//! the same measurement runs in the end-to-end suite (tests/e2e/api_cost.rs),
//! so under `cargo test` this binary does nothing.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../tests/e2e/support/mod.rs"]
mod support;

use std::process::ExitCode;
use std::time::Duration;

use support::api_cost::{Plan, measure};

fn main() -> ExitCode {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "api_cost: measured by `cargo bench --bench api_cost`; its smoke runs in tests/e2e/api_cost.rs"
        );
        return ExitCode::SUCCESS;
    }
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let cost = runtime.block_on(measure(Plan {
        canaries: 100,
        idle: Duration::from_secs(300),
    }));
    cost.print();
    let idle = cost.idle_non_watch();
    if idle > 0 {
        eprintln!("FAIL: idle canaries made {idle} requests besides watches");
        return ExitCode::FAILURE;
    }
    println!("\nidle target met: 0 requests per canary beyond the watch streams");
    ExitCode::SUCCESS
}
