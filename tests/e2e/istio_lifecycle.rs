//! The Istio router's lifecycle end to end (Flagger's `test/istio`
//! `test-canary.sh` deletion step, `test-skip-analysis.sh`):
//! `revertOnDeletion` on objects Serin made, `skipAnalysis`, a rollback by
//! the `latency` MetricTemplate, and drift on
//! the VirtualService corrected mid-run without losing the weights. The
//! take-over of the user's objects is in `istio_takeover.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::support::eventually;
use crate::support::gateway::MeshTest;
use crate::support::istio::{add_hooks, hook, istio_canary};
use crate::support::nginx::halts;
use crate::support::podinfo::{
    INIT, INTERVAL, RUN, SHORT, assert_deployment_initialized, assert_promoted, deployment,
    image_of, pod_spec_of, replicas, wait_gone,
};
use crate::support::traffic::Fault;

/// The Canary's finalizers.
async fn finalizers(m: &MeshTest) -> Vec<String> {
    m.t.canaries()
        .get("podinfo")
        .await
        .unwrap()
        .metadata
        .finalizers
        .unwrap_or_default()
}

/// `revertOnDeletion` on what Serin made: the finalizer is there, deleting
/// the Canary gives the target its replicas back and lets the Canary go,
/// and the VirtualService and DestinationRules it owned are
/// garbage-collected with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_revert_on_deletion_restores_the_target() {
    let m = MeshTest::start_istio("istio-revert", |s| s).await;
    let ns = m.ns().to_string();
    let mut c = istio_canary(&m.t.hooks, "{iterations: 2}");
    c["spec"]["revertOnDeletion"] = json!(true);
    m.t.apply(&c).await;
    assert_deployment_initialized(&m.t).await;
    eventually("Flagger's finalizer on the Canary", SHORT, || async {
        let f = finalizers(&m).await;
        match f.contains(&"finalizer.flagger.app".to_string()) {
            true => Ok(()),
            false => Err(format!("{f:?}")),
        }
    })
    .await;
    assert_eq!(
        m.vs("podinfo").await["metadata"]["ownerReferences"][0]["kind"],
        "Canary"
    );
    let primary_replicas = replicas(&deployment(&m.t, "podinfo-primary").await);
    assert!(primary_replicas > 0);

    m.delete_canary().await;
    m.wait_target_back(primary_replicas).await;
    m.t.wait_event(&format!("Terminating canary podinfo.{ns}"), SHORT)
        .await;
    wait_gone(m.virtualservices(), "podinfo").await;
    for dr in ["podinfo-primary", "podinfo-canary"] {
        wait_gone(m.destinationrules(), dr).await;
    }
}

/// `test-skip-analysis.sh`: with `skipAnalysis` a new revision is promoted
/// at once, without a weight step; with `skipAnalysis: false` again, a
/// revision failing half its requests fails the run and the primary keeps
/// the promoted image.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_skip_analysis_promotes_then_analysis_fails_a_bad_revision() {
    let m = MeshTest::start_istio("istio-skip", |s| s).await;
    let ns = m.ns().to_string();
    let mut c = istio_canary(&m.t.hooks, "{maxWeight: 30, stepWeight: 10}");
    c["spec"]["skipAnalysis"] = json!(true);
    m.t.apply(&c).await;
    m.t.wait_phase("podinfo", "Initialized", INIT).await;
    m.wait_vs_weights(100, 0, SHORT).await;
    m.set_revision("6.0.1", None).await;
    assert_promoted(&m.t, "6.0.1").await;
    m.t.wait_event(
        &format!("Promotion completed! Canary analysis was skipped for podinfo.{ns}"),
        SHORT,
    )
    .await;
    let events = m.t.events().await;
    assert!(
        !events.iter().any(|e| e.message.starts_with("Advance")),
        "no step with skipAnalysis: {events:#?}"
    );
    m.wait_vs_weights(100, 0, SHORT).await;

    c["spec"]["skipAnalysis"] = json!(false);
    m.t.apply(&c).await;
    m.set_revision("6.0.2", Some(Fault::errors(50.0))).await;
    m.t.wait_phase("podinfo", "Failed", RUN).await;
    m.wait_vs_weights(100, 0, SHORT).await;
    m.t.wait_event(
        &format!("Rolling back podinfo.{ns} failed checks threshold reached 2"),
        SHORT,
    )
    .await;
    let primary = deployment(&m.t, "podinfo-primary").await;
    assert!(image_of(&pod_spec_of(&primary)).ends_with(":6.0.1"));
    assert!(replicas(&primary) > 0);
}

/// A canary answering in 1.5 s: the `test/istio` `latency` template (p99 of
/// Istio's destination histogram, `reporter` from `templateVariables`)
/// halts the analysis twice with its value, Serin rolls back and the
/// VirtualService returns to the primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_latency_template_rolls_back_a_slow_revision() {
    let m = MeshTest::start_istio("istio-latency", |s| s).await;
    let ns = m.ns().to_string();
    m.apply_istio_latency_template().await;
    let mut c = istio_canary(&m.t.hooks, "{maxWeight: 50, stepWeight: 10}");
    c["spec"]["analysis"]["metrics"][1] = json!({
        "name": "latency", "templateRef": {"name": "latency"},
        "thresholdRange": {"max": 500}, "interval": "1m",
        "templateVariables": {"reporter": "destination"}});
    m.t.apply(&c).await;
    assert_deployment_initialized(&m.t).await;
    m.set_revision("6.0.1", Some(Fault::latency(Duration::from_millis(1500))))
        .await;
    m.t.wait_phase("podinfo", "Failed", RUN).await;
    m.wait_vs_weights(100, 0, SHORT).await;
    let events = m.t.events().await;
    let (values, halts) = halts(
        &events,
        &format!("Halt podinfo.{ns} advancement latency "),
        " > 500",
    );
    assert!(
        values.iter().all(|v| (1000.0..=2500.0).contains(v)),
        "p99 within Istio's 1000..2500 ms bucket: {values:?}"
    );
    assert_eq!(halts, 2, "one halt per failed check: {events:#?}");
    m.t.wait_event(
        &format!("Rolling back podinfo.{ns} failed checks threshold reached 2"),
        SHORT,
    )
    .await;
    let primary = deployment(&m.t, "podinfo-primary").await;
    assert!(image_of(&pod_spec_of(&primary)).ends_with(":6.0.0"));
}

/// Someone edits the VirtualService mid-run (its hosts, `http[0].timeout`
/// and an apex label) while the run waits at 20% for its promotion gate:
/// the next reconcile puts the Canary's hosts, timeout and label back and
/// keeps the weights; the run then promotes once the gate opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn istio_drift_is_corrected_keeping_the_weights() {
    let m = MeshTest::start_istio("istio-drift", |s| s).await;
    let ns = m.ns().to_string();
    let mut c = istio_canary(&m.t.hooks, "{maxWeight: 20, stepWeight: 10}");
    c["spec"]["service"]["timeout"] = json!("30s");
    c["spec"]["service"]["hosts"] = json!(["app.example.com"]);
    c["spec"]["service"]["apex"] = json!({"labels": {"test": "labels-test"}});
    add_hooks(
        &mut c,
        &[hook(
            "promote-gate",
            "confirm-promotion",
            &m.t.hooks.url("/gate/check"),
        )],
    );
    m.t.apply(&c).await;
    assert_deployment_initialized(&m.t).await;
    m.set_revision("6.0.1", None).await;
    m.t.wait_event(
        &format!("Halt podinfo.{ns} advancement waiting for promotion approval promote-gate"),
        RUN,
    )
    .await;
    m.wait_vs_weights(80, 20, SHORT).await;
    let before = m.vs("podinfo").await;
    assert_eq!(before["spec"]["http"][0]["timeout"], "30s", "{before:#}");
    assert_eq!(before["metadata"]["labels"]["test"], "labels-test");
    // `kubectl edit`: new hosts and timeout, a label gone, the weights as
    // they are.
    let mut http = before["spec"]["http"].clone();
    http[0]["timeout"] = json!("99s");
    let edit = json!({"metadata": {"labels": {"test": null}},
                      "spec": {"hosts": ["evil.example.com"], "http": http}});
    m.virtualservices()
        .patch("podinfo", &PatchParams::default(), &Patch::Merge(&edit))
        .await
        .unwrap();
    let edited = m.vs("podinfo").await;
    assert_eq!(edited["spec"]["http"][0]["timeout"], "99s");
    let fixed = eventually("the drift to be corrected", 3 * INTERVAL, || async {
        let vs = m.vs("podinfo").await;
        let spec = &vs["spec"];
        match spec["hosts"] == json!(["app.example.com", "podinfo"])
            && spec["http"][0]["timeout"] == "30s"
            && vs["metadata"]["labels"]["test"] == "labels-test"
        {
            true => Ok(vs),
            false => Err(format!("{spec:#}")),
        }
    })
    .await;
    assert_eq!(
        crate::support::istio::vs_weights(&fixed),
        Some((80, 20)),
        "the weights survive the correction: {fixed:#}"
    );
    // Flagger's WaitingPromotion zeroes the status' weight; the route is
    // what counts.
    eventually("the simulator to send 20% to the canary", SHORT, || async {
        let seen = m.sim.observed();
        match (seen.canary_share - 0.2).abs() < 1e-6 {
            true => Ok(()),
            false => Err(format!("{seen:?}")),
        }
    })
    .await;
    assert_eq!(m.t.phase("podinfo").await, "WaitingPromotion");
    m.t.hooks.open_gate("podinfo", &ns);
    assert_promoted(&m.t, "6.0.1").await;
    m.wait_vs_weights(100, 0, SHORT).await;
    let vs = m.vs("podinfo").await;
    assert_eq!(vs["spec"]["http"][0]["timeout"], "30s");
}
