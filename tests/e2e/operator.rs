//! End-to-end tests of the operator: `serin` runs as a separate process
//! against the local control plane (`make cluster-up`), restricted to each
//! test's namespace, with the Kubernetes provider (Blue/Green), the way
//! Flagger's `test/kubernetes/*.sh` suites drive Flagger. Webhooks go to a
//! loadtester-like server in the test process (tests/e2e/support/hooks.rs).
//! A failing test prints the operator's logs, `kubectl describe canary` and
//! the namespace's events.
//!
//! This module: Deployment Blue/Green with gates, rollback, no-run and
//! restart. The other workload kinds and tracked resources are in
//! operator_targets.rs, operator restarts and invalid Canaries in
//! operator_resilience.rs; the shared builders in tests/e2e/support/podinfo.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use crate::support::operator::OperatorTest;
use crate::support::podinfo::{
    INTERVAL, REPO, RUN, SHORT, assert_deployment_initialized, assert_events_in_order,
    assert_promoted, blue_green, canary, deployment, image_of, pod_spec_of, podinfo_deployment,
    replicas, set_image, wait_replicas, webhook,
};
use serde_json::json;

/// Flagger's `test/kubernetes/test-deployment.sh`: initialization, a
/// confirm-rollout gate that holds the run, a pre-rollout hook, promotion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_blue_green_waits_for_the_gate_then_promotes() {
    let t = OperatorTest::start("bg-gate").await;
    let ns = t.ns().to_string();
    t.apply(&podinfo_deployment("6.0.0")).await;
    let hooks = webhook("gate", "confirm-rollout", &t.hooks.url("/gate/check"))
        + &webhook("pre", "pre-rollout", &t.hooks.url("/ok"))
        + "    metadata:\n      cmd: echo pre\n";
    t.apply(&canary(
        "podinfo",
        "Deployment",
        "podinfo",
        &blue_green(2, &hooks),
    ))
    .await;
    assert_deployment_initialized(&t).await;
    assert!(
        t.hooks.calls_to("/gate/check").is_empty(),
        "no gate is checked while initializing"
    );

    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    t.wait_phase("podinfo", "Waiting", 3 * INTERVAL + SHORT)
        .await;
    let held_until = Instant::now() + 3 * INTERVAL;
    while Instant::now() < held_until {
        assert_eq!(
            t.phase("podinfo").await,
            "Waiting",
            "the closed gate holds the run"
        );
        assert_eq!(
            replicas(&deployment(&t, "podinfo").await),
            0,
            "the target stays scaled down"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let checks = t.hooks.calls_to("/gate/check");
    assert!(
        checks.len() >= 3,
        "the gate is asked every interval: {checks:?}"
    );
    for call in &checks {
        assert_eq!(
            (call.field("name"), call.field("namespace")),
            ("podinfo", ns.as_str()),
            "{call:?}"
        );
    }
    assert_eq!(
        checks[0].field("phase"),
        "Initialized",
        "confirm-rollout gets the current phase"
    );
    assert!(
        checks.iter().any(|c| c.field("phase") == "Waiting"),
        "{checks:?}"
    );
    assert!(
        t.hooks.calls_to("/ok").is_empty(),
        "no pre-rollout hook before approval"
    );
    let halt = t
        .wait_event(
            &format!("Halt podinfo.{ns} advancement waiting for approval gate"),
            SHORT,
        )
        .await;
    assert_eq!(halt.type_, "Warning");

    t.hooks.open_gate("podinfo", &ns);
    let wait = t
        .kubectl(&[
            "wait",
            "canary/podinfo",
            "--for=condition=promoted",
            "--timeout=300s",
        ])
        .await;
    assert!(
        wait.status.success(),
        "kubectl wait: {}",
        String::from_utf8_lossy(&wait.stderr)
    );
    assert_promoted(&t, "6.0.1").await;

    let pre = t.hooks.calls_to("/ok");
    assert_eq!(pre.len(), 1, "the pre-rollout hook runs once: {pre:?}");
    let payload = &pre[0].payload;
    assert_eq!(
        (pre[0].field("name"), pre[0].field("namespace")),
        ("podinfo", ns.as_str())
    );
    assert_eq!(pre[0].field("phase"), "Progressing", "{payload}");
    assert!(!pre[0].field("checksum").is_empty(), "{payload}");
    assert_eq!(
        payload["metadata"],
        json!({ "cmd": "echo pre" }),
        "{payload}"
    );

    let expected = [
        format!("Initialization done! podinfo.{ns}"),
        format!("Halt podinfo.{ns} advancement waiting for approval gate"),
        "Confirm-rollout check gate passed".to_string(),
        format!("New revision detected! Scaling up podinfo.{ns}"),
        format!("Starting canary analysis for podinfo.{ns}"),
        "Pre-rollout check pre passed".to_string(),
        format!("Advance podinfo.{ns} canary iteration 1/2"),
        format!("Advance podinfo.{ns} canary iteration 2/2"),
        format!("Copying podinfo.{ns} template spec to podinfo-primary.{ns}"),
        format!("Promotion completed! Scaling down podinfo.{ns}"),
    ];
    assert_events_in_order(&t, "podinfo", &expected).await;
}

/// A `rollout` webhook that always fails: after `threshold` failed checks the
/// run is rolled back and the primary keeps the old image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_rollout_webhook_rolls_back() {
    let t = OperatorTest::start("bg-rollback").await;
    let ns = t.ns().to_string();
    t.apply(&podinfo_deployment("6.0.0")).await;
    let hooks = webhook("load", "rollout", &t.hooks.url("/fail"));
    t.apply(&canary(
        "podinfo",
        "Deployment",
        "podinfo",
        &blue_green(3, &hooks),
    ))
    .await;
    assert_deployment_initialized(&t).await;
    let initialized = t.status("podinfo").await;

    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    let status = t.wait_phase("podinfo", "Failed", RUN).await;

    let primary = deployment(&t, "podinfo-primary").await;
    assert_eq!(
        image_of(&pod_spec_of(&primary)),
        format!("{REPO}:6.0.0"),
        "the primary is untouched"
    );
    wait_replicas(&t, "podinfo", 0).await;
    assert_eq!(
        status["lastPromotedSpec"], initialized["lastPromotedSpec"],
        "{status}"
    );
    assert_ne!(
        status["lastAppliedSpec"], status["lastPromotedSpec"],
        "{status}"
    );
    let promoted = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Promoted");
    assert_eq!(
        promoted.map(|c| c["status"].clone()),
        Some(json!("False")),
        "{status}"
    );

    let failed = t
        .wait_event(&format!("Canary failed! Scaling down podinfo.{ns}"), SHORT)
        .await;
    assert_eq!(
        (failed.type_.as_str(), failed.reason.as_str()),
        ("Warning", "Synced")
    );
    let threshold = t
        .wait_event(
            &format!("Rolling back podinfo.{ns} failed checks threshold reached 2"),
            SHORT,
        )
        .await;
    assert_eq!(threshold.type_, "Warning");
    let halt = t
        .wait_event(
            &format!("Halt podinfo.{ns} advancement external check load failed"),
            SHORT,
        )
        .await;
    // Flagger's retrying client turns a 5xx into `POST <url> giving up after
    // 1 attempt(s)`, so the hook's body is not asserted here.
    assert_eq!(halt.type_, "Warning");
    assert_eq!(
        t.event_count(&format!(
            "Copying podinfo.{ns} template spec to podinfo-primary.{ns}"
        ))
        .await,
        0
    );

    let calls = t.hooks.calls_to("/fail");
    assert!(calls.len() >= 2, "{calls:?}");
    assert!(
        calls.iter().all(|c| c.field("phase") == "Progressing"),
        "{calls:?}"
    );
}

/// After a promotion, changes outside the pod template (and re-applying the
/// promoted template) start no run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_pod_template_starts_no_run() {
    let t = OperatorTest::start("bg-noop").await;
    let ns = t.ns().to_string();
    t.apply(&podinfo_deployment("6.0.0")).await;
    t.apply(&canary(
        "podinfo",
        "Deployment",
        "podinfo",
        &blue_green(1, ""),
    ))
    .await;
    assert_deployment_initialized(&t).await;
    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    assert_promoted(&t, "6.0.1").await;
    let promoted = t.status("podinfo").await;

    let mut same = podinfo_deployment("6.0.1");
    same["metadata"]["labels"]["touched"] = json!("yes");
    t.apply(&same).await;
    let held_until = Instant::now() + 3 * INTERVAL + Duration::from_secs(5);
    while Instant::now() < held_until {
        let status = t.status("podinfo").await;
        assert_eq!(status["phase"], "Succeeded", "{status}");
        assert_eq!(
            status["lastAppliedSpec"], promoted["lastAppliedSpec"],
            "{status}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let detected: i32 = t
        .events()
        .await
        .iter()
        .filter(|e| e.message.starts_with("New revision detected"))
        .map(|e| e.count)
        .sum();
    assert_eq!(detected, 1, "only the 6.0.1 run was started");
    assert_eq!(replicas(&deployment(&t, "podinfo").await), 0);
    assert_eq!(
        t.event_count(&format!("Promotion completed! Scaling down podinfo.{ns}"))
            .await,
        1
    );
}

/// A new revision while Progressing restarts the analysis, and the newest
/// revision is promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_revision_during_analysis_restarts_it() {
    let t = OperatorTest::start("bg-restart").await;
    let ns = t.ns().to_string();
    t.apply(&podinfo_deployment("6.0.0")).await;
    t.apply(&canary(
        "podinfo",
        "Deployment",
        "podinfo",
        &blue_green(3, ""),
    ))
    .await;
    assert_deployment_initialized(&t).await;

    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    t.wait_event(&format!("Advance podinfo.{ns} canary iteration 1/3"), RUN)
        .await;
    assert_eq!(t.phase("podinfo").await, "Progressing");
    set_image(&t, "Deployment", "podinfo", "6.0.2").await;
    t.wait_event(
        &format!("New revision detected! Restarting analysis for podinfo.{ns}"),
        3 * INTERVAL + SHORT,
    )
    .await;
    assert_promoted(&t, "6.0.2").await;

    assert_eq!(
        t.event_count(&format!("New revision detected! Scaling up podinfo.{ns}"))
            .await,
        1
    );
    assert!(
        t.event_count(&format!("Starting canary analysis for podinfo.{ns}"))
            .await
            >= 2,
        "the analysis starts again after the restart"
    );
    assert_eq!(
        t.event_count(&format!("Promotion completed! Scaling down podinfo.{ns}"))
            .await,
        1
    );
}
