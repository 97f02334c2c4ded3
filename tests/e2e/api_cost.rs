//! A small run of `cargo bench --bench api_cost`: ten idle canaries make no
//! request besides the shared watch streams, and one Blue/Green run still
//! completes under the operator that measured them.

use std::time::Duration;

use crate::support::api_cost::{Plan, measure};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_canaries_make_no_requests_beyond_watches() {
    let cost = measure(Plan {
        canaries: 10,
        idle: Duration::from_secs(30),
    })
    .await;
    cost.print();
    assert_eq!(
        cost.idle_non_watch(),
        0,
        "idle canaries made requests besides watches: {:?}",
        cost.idle
    );
}
