//! Flagger's NGINX walkthrough end to end (see nginx.rs): the lifecycle
//! of `test/nginx/test-lifecycle.sh` and A/B testing by header, as in
//! `test/nginx/test-canary.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use crate::support::eventually;
use crate::support::nginx::rig::NginxTest;
use crate::support::nginx::{ab_canary, canary};
use crate::support::podinfo::{
    INIT, INTERVAL, REPO, RUN, SHORT, assert_events_in_order, deployment, image_of, pod_spec_of,
    replicas, wait_replicas,
};
use crate::support::traffic::Fault;

/// After a failed run, returning the target to the primary's image starts
/// no run; a new healthy image is then promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_lifecycle_failure_revert_then_promotion() {
    let n = NginxTest::start("nginx-lifecycle").await;
    let ns = n.ns().to_string();
    // The walkthrough's Canary with stepWeight 10: the promotion at the end
    // takes 5 steps to maxWeight 50 instead of 10 (the walkthrough's weights
    // are checked by nginx::nginx_walkthrough_promotes_a_healthy_revision).
    let mut c = canary(&n.lt, 3);
    c["spec"]["analysis"]["stepWeight"] = serde_json::json!(10);
    n.t.apply(&c).await;
    n.t.wait_phase("podinfo", "Initialized", INIT).await;
    n.set_revision("6.0.1", Some(Fault::errors(50.0))).await;
    n.t.wait_phase("podinfo", "Failed", RUN).await;
    let scaling_up = format!("New revision detected! Scaling up podinfo.{ns}");
    assert_eq!(n.t.event_count(&scaling_up).await, 1);

    // Back to the primary's template (image 6.0.0, no fault): no run. Six
    // intervals also take the failed run's errors out of the queries' 1m
    // window before the next run.
    n.set_revision("6.0.0", None).await;
    let until = Instant::now() + 6 * INTERVAL;
    while Instant::now() < until {
        assert_eq!(
            n.t.phase("podinfo").await,
            "Failed",
            "reverting starts no run"
        );
        assert_eq!(
            replicas(&deployment(&n.t, "podinfo").await),
            0,
            "the target stays at 0"
        );
        let weight = n.canary_ingress().await.get("canary-weight").cloned();
        assert_eq!(weight.as_deref(), Some("0"));
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert_eq!(
        n.t.event_count(&scaling_up).await,
        1,
        "no new revision detected"
    );
    n.assert_kubectl_row("Failed", "0").await;

    n.set_revision("6.0.2", None).await;
    // `wait_phase` would stop at the current Failed phase: wait for the run.
    eventually("the new image to start a run", SHORT, || async {
        match n.t.phase("podinfo").await.as_str() {
            "Progressing" => Ok(()),
            other => Err(other.to_string()),
        }
    })
    .await;
    n.t.wait_phase("podinfo", "Succeeded", RUN).await;
    assert_eq!(n.t.event_count(&scaling_up).await, 2);
    let primary = deployment(&n.t, "podinfo-primary").await;
    assert_eq!(image_of(&pod_spec_of(&primary)), format!("{REPO}:6.0.2"));
    wait_replicas(&n.t, "podinfo", 0).await;
    n.wait_ingress_weight(0, SHORT).await;
    n.assert_kubectl_row("Succeeded", "0").await;
}

/// A/B testing: `x-user: insider` (exact), 3 iterations. During the run the
/// canary Ingress routes the header (weight 0 for everyone else), the
/// simulator sends its insiders to the canary; afterwards the header
/// annotations are gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_ab_testing_routes_insiders_then_promotes() {
    let n = NginxTest::start("nginx-ab").await;
    let ns = n.ns().to_string();
    n.t.apply(&ab_canary(&n.lt)).await;
    n.t.wait_phase("podinfo", "Initialized", INIT).await;
    n.set_revision("6.0.1", None).await;

    let during = eventually(
        "the canary Ingress to route x-user: insider",
        RUN,
        || async {
            let a = n.canary_ingress().await;
            let header = (a.get("canary-by-header"), a.get("canary-by-header-value"));
            match header {
                (Some(h), Some(v)) if h == "x-user" && v == "insider" => Ok(a),
                _ => Err(format!("{a:?}")),
            }
        },
    )
    .await;
    assert_eq!(
        during.get("canary").map(String::as_str),
        Some("true"),
        "{during:?}"
    );
    assert_eq!(
        during.get("canary-weight").map(String::as_str),
        Some("0"),
        "only insiders go to the canary (Flagger keeps canary-weight 0): {during:?}"
    );
    eventually(
        "the simulator to send its insiders to the canary",
        SHORT,
        || async {
            let seen = n.sim.observed();
            match seen.canary_share == 0.2 {
                true => Ok(()),
                false => Err(format!("{seen:?}")),
            }
        },
    )
    .await;
    n.assert_kubectl_row("Progressing", "0").await;

    n.t.wait_phase("podinfo", "Succeeded", RUN).await;
    let mut expected = vec![
        format!("New revision detected! Scaling up podinfo.{ns}"),
        format!("Starting canary analysis for podinfo.{ns}"),
        "Pre-rollout check acceptance-test passed".to_string(),
    ];
    expected.extend((1..=3).map(|i| format!("Advance podinfo.{ns} canary iteration {i}/3")));
    expected.extend([
        format!("Copying podinfo.{ns} template spec to podinfo-primary.{ns}"),
        "Routing all traffic to primary".to_string(),
        format!("Promotion completed! Scaling down podinfo.{ns}"),
    ]);
    assert_events_in_order(&n.t, "podinfo", &expected).await;
    let events = n.t.events().await;
    assert!(
        !events.iter().any(|e| e.message.contains("canary weight")),
        "A/B testing shifts no weight: {events:#?}"
    );
    let primary = deployment(&n.t, "podinfo-primary").await;
    assert_eq!(image_of(&pod_spec_of(&primary)), format!("{REPO}:6.0.1"));
    wait_replicas(&n.t, "podinfo", 0).await;
    let after = n.canary_ingress().await;
    assert_eq!(
        after.get("canary").map(String::as_str),
        Some("true"),
        "{after:?}"
    );
    assert_eq!(
        after.get("canary-weight").map(String::as_str),
        Some("0"),
        "{after:?}"
    );
    for key in [
        "canary-by-header",
        "canary-by-header-value",
        "canary-by-header-pattern",
        "canary-by-cookie",
    ] {
        assert!(
            !after.contains_key(key),
            "{key} is reset after the run: {after:?}"
        );
    }
    assert_eq!(n.sim.observed().canary_share, 0.0);
    n.assert_kubectl_row("Succeeded", "0").await;
}
