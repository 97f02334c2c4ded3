//! Flagger's NGINX walkthrough end to end on the local control plane with
//! the testbed's real Prometheus: `serin` runs as a process per test with
//! the walkthrough's Canary (`provider: nginx`), `serin-loadtester` runs the
//! webhooks, and the traffic simulator (tests/e2e/support/traffic.rs) plays
//! ingress-nginx's metrics from the canary Ingress' weight and each
//! revision's fault profile.
//!
//! This module: the simulator against Prometheus, promotion, and the two
//! automated rollbacks (HTTP 500s, latency). The lifecycle and A/B runs are
//! in nginx_lifecycle.rs, alerts in nginx_alerts.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::support;
use std::time::Duration;

use crate::support::nginx::chat::ChatReceiver;
use crate::support::nginx::loadtester::LoadTester;
use crate::support::nginx::rig::NginxTest;
use crate::support::nginx::{
    ab_canary, alert_provider, canary, deployment, halts, hpa, ingress, latency_canary,
    latency_template, promotion_events, with_alerts,
};
use crate::support::podinfo::{
    INIT, REPO, RUN, SHORT, assert_deployment_initialized, assert_events_in_order, image_of,
    pod_spec_of, replicas, wait_replicas,
};
use crate::support::traffic::{FAULT_ANNOTATION, Fault, PREFIX, SimulatorConfig, TrafficSimulator};
use crate::support::{TestCluster, eventually, query_value};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::PostParams;
use serde_json::json;
use tokio::io::AsyncWriteExt;

/// Flagger's builtin NGINX success-rate query (src/metrics/observers/).
fn nginx_success_rate(ns: &str) -> String {
    format!(
        r#"sum(rate(nginx_ingress_controller_requests{{namespace="{ns}",ingress="podinfo",canary!="",status!~"5.*"}}[1m])) / sum(rate(nginx_ingress_controller_requests{{namespace="{ns}",ingress="podinfo",canary!=""}}[1m])) * 100"#
    )
}

/// Without the operator: a hand-made canary Ingress at weight 20 and a
/// target whose revision fails half its requests; Prometheus answers
/// Flagger's builtin NGINX queries and the walkthrough's latency template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulator_series_reach_prometheus() {
    let tc = TestCluster::new("nginx-sim").await;
    let ns = tc.namespace.clone();
    let mut target = deployment();
    target["spec"]["template"]["metadata"]["annotations"][FAULT_ANNOTATION] =
        json!(Fault::errors(50.0).annotation());
    let mut primary = deployment();
    primary["metadata"]["name"] = json!("podinfo-primary");
    for path in [
        "/spec/selector/matchLabels/app",
        "/spec/template/metadata/labels/app",
    ] {
        *primary.pointer_mut(path).unwrap() = json!("podinfo-primary");
    }
    let mut canary_ing = ingress();
    canary_ing["metadata"]["name"] = json!("podinfo-canary");
    canary_ing["metadata"]["annotations"] = json!({
        format!("{PREFIX}/canary"): "true", format!("{PREFIX}/canary-weight"): "20" });
    *canary_ing
        .pointer_mut("/spec/rules/0/http/paths/0/backend/service/name")
        .unwrap() = json!("podinfo-canary");
    let post = PostParams::default();
    for d in [target, primary] {
        let d: Deployment = serde_json::from_value(d).unwrap();
        tc.api::<Deployment>().create(&post, &d).await.unwrap();
    }
    // Ingresses after the target is available, so no 503 enters the window.
    eventually("podinfo to be available", SHORT, || async {
        let d = tc.api::<Deployment>().get("podinfo").await.unwrap();
        match d.status.and_then(|s| s.available_replicas).unwrap_or(0) {
            0 => Err("no available replica".to_string()),
            _ => Ok(()),
        }
    })
    .await;
    for i in [ingress(), canary_ing] {
        let i: Ingress = serde_json::from_value(i).unwrap();
        tc.api::<Ingress>().create(&post, &i).await.unwrap();
    }
    let sim = TrafficSimulator::start(
        &tc.env,
        tc.client.clone(),
        SimulatorConfig::walkthrough(&ns),
    )
    .await;
    let seen = eventually("the simulator to route 20%", SHORT, || async {
        let seen = sim.observed();
        match seen.canary_share == 0.2 && seen.canary_available {
            true => Ok(seen),
            false => Err(format!("{seen:?}")),
        }
    })
    .await;
    assert_eq!(seen.upstream, format!("{ns}-podinfo-canary-80"));
    assert_eq!(seen.canary_fault, Some(Fault::errors(50.0)));
    let success_rate = nginx_success_rate(&ns);
    let sr = eventually("the NGINX success rate", SHORT, || {
        query_value(&tc.env, &success_rate)
    })
    .await;
    assert!((45.0..55.0).contains(&sr), "success rate {sr}");
    let duration = format!(
        r#"sum(rate(nginx_ingress_controller_response_duration_seconds_sum{{namespace="{ns}",ingress="podinfo",canary!=""}}[1m])) / sum(rate(nginx_ingress_controller_response_duration_seconds_count{{namespace="{ns}",ingress="podinfo",canary!=""}}[1m])) * 1000"#
    );
    let ms = eventually("the NGINX request duration", SHORT, || {
        query_value(&tc.env, &duration)
    })
    .await;
    assert!((40.0..60.0).contains(&ms), "request duration {ms} ms");
    let template = latency_template(&tc.env.prometheus_url);
    let latency = template["spec"]["query"]
        .as_str()
        .unwrap()
        .replace("{{ namespace }}", &ns)
        .replace("{{ target }}", "podinfo");
    let p99 = eventually("the latency template", SHORT, || {
        query_value(&tc.env, &latency)
    })
    .await;
    assert!((0.025..=0.05).contains(&p99), "p99 {p99} s");
}

/// The walkthrough's promotion: events in order, weights 5..50 on the
/// canary Ingress, the primary on the new image, Succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_walkthrough_promotes_a_healthy_revision() {
    let n = NginxTest::start("nginx-promote").await;
    let ns = n.ns().to_string();
    n.t.apply(&canary(&n.lt, 10)).await;
    assert_deployment_initialized(&n.t).await;
    let ing = n.canary_ingress().await;
    assert_eq!(
        ing.get("canary").map(String::as_str),
        Some("true"),
        "{ing:?}"
    );
    assert_eq!(
        ing.get("canary-weight").map(String::as_str),
        Some("0"),
        "{ing:?}"
    );
    eventually(
        "the simulator to see podinfo-canary's backend",
        SHORT,
        || async {
            let seen = n.sim.observed();
            match seen.upstream == format!("{ns}-podinfo-canary-80") {
                true => Ok(()),
                false => Err(format!("{seen:?}")),
            }
        },
    )
    .await;
    n.assert_kubectl_row("Initialized", "0").await;

    n.set_revision("6.0.1", None).await;
    // During the run the Ingress, the status and kubectl agree on the weight.
    eventually("kubectl to show the run at weight 25", RUN, || async {
        let (status, weight, _) = n.kubectl_get_canaries().await;
        let ingress = n.canary_ingress().await.get("canary-weight").cloned();
        match (status.as_str(), weight.as_str(), ingress.as_deref()) {
            ("Progressing", "25", Some("25")) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    n.t.wait_phase("podinfo", "Succeeded", RUN).await;
    assert_events_in_order(&n.t, "podinfo", &promotion_events(&ns)).await;
    let events = n.t.events().await;
    let halted: Vec<_> = events
        .iter()
        .filter(|e| e.message.starts_with("Halt"))
        .collect();
    assert!(
        halted.is_empty(),
        "a healthy revision never halts: {halted:#?}"
    );
    // A check before the controller saw the scale-up is not a Warning.
    let unobserved: Vec<_> = events
        .iter()
        .filter(|e| {
            e.message
                .contains("generation less than desired generation")
        })
        .collect();
    assert!(unobserved.is_empty(), "{unobserved:#?}");
    let primary = support::podinfo::deployment(&n.t, "podinfo-primary").await;
    assert_eq!(image_of(&pod_spec_of(&primary)), format!("{REPO}:6.0.1"));
    wait_replicas(&n.t, "podinfo", 0).await;
    n.wait_ingress_weight(0, SHORT).await;
    n.assert_kubectl_row("Succeeded", "0").await;
}

/// Waits for Failed, then checks the primary kept 6.0.0, the target is at
/// zero, the canary Ingress and kubectl show weight 0, and that the run
/// ended with `threshold` halts, the rollback and `Canary failed!`.
async fn assert_rolled_back(
    n: &NginxTest,
    halt_prefix: &str,
    halt_suffix: &str,
    threshold: i32,
) -> Vec<f64> {
    let ns = n.ns().to_string();
    n.t.wait_phase("podinfo", "Failed", RUN).await;
    let events = n.t.events().await;
    let (values, count) = halts(&events, halt_prefix, halt_suffix);
    assert_eq!(count, threshold, "one halt per failed check: {events:#?}");
    let expected = [
        format!("New revision detected! Scaling up podinfo.{ns}"),
        format!("Starting canary analysis for podinfo.{ns}"),
        "Pre-rollout check acceptance-test passed".to_string(),
        format!("Advance podinfo.{ns} canary weight 5"),
        format!("Rolling back podinfo.{ns} failed checks threshold reached {threshold}"),
        format!("Canary failed! Scaling down podinfo.{ns}"),
    ];
    assert_events_in_order(&n.t, "podinfo", &expected).await;
    for warning in &expected[4..] {
        let e = events.iter().find(|e| &e.message == warning).unwrap();
        assert_eq!(e.type_, "Warning", "{e:?}");
    }
    assert!(
        !events
            .iter()
            .any(|e| e.message.contains("canary weight 10")),
        "halts do not advance the weight: {events:#?}"
    );
    let primary = support::podinfo::deployment(&n.t, "podinfo-primary").await;
    assert_eq!(
        image_of(&pod_spec_of(&primary)),
        format!("{REPO}:6.0.0"),
        "primary untouched"
    );
    assert_eq!(
        replicas(&support::podinfo::deployment(&n.t, "podinfo").await),
        0
    );
    n.wait_ingress_weight(0, SHORT).await;
    n.assert_kubectl_row("Failed", "0").await;
    values
}

/// The walkthrough's automated rollback: half the canary's requests fail,
/// `Halt ... success rate <x>% < 99%` three times, rollback (the
/// walkthrough's `threshold reached 3`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_walkthrough_rolls_back_on_http_500s() {
    let n = NginxTest::start("nginx-errors").await;
    let ns = n.ns().to_string();
    n.t.apply(&canary(&n.lt, 3)).await;
    n.t.wait_phase("podinfo", "Initialized", INIT).await;
    n.set_revision("6.0.1", Some(Fault::errors(50.0))).await;
    n.wait_ingress_weight(5, RUN).await;
    n.assert_kubectl_row("Progressing", "5").await;
    let prefix = format!("Halt podinfo.{ns} advancement success rate ");
    let rates = assert_rolled_back(&n, &prefix, "% < 99%", 3).await;
    for rate in rates {
        assert!((40.0..60.0).contains(&rate), "success rate {rate}%");
    }
}

/// The walkthrough's custom metric: the `latency` MetricTemplate (p99 of
/// podinfo's histogram, max 0.5 s) with a canary answering in 1.5 s:
/// `Halt ... latency <v> > 0.5` five times, then the rollback. The builtin
/// `request-duration` is left out here: it would halt first (the walkthrough
/// shows only the template's halts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_walkthrough_rolls_back_on_latency() {
    let n = NginxTest::start("nginx-latency").await;
    let ns = n.ns().to_string();
    n.t.apply(&latency_template(&n.t.tc.env.prometheus_url))
        .await;
    n.t.apply(&latency_canary(&n.lt, 5)).await;
    n.t.wait_phase("podinfo", "Initialized", INIT).await;
    n.set_revision("6.0.1", Some(Fault::latency(Duration::from_millis(1500))))
        .await;
    let prefix = format!("Halt podinfo.{ns} advancement latency ");
    let values = assert_rolled_back(&n, &prefix, " > 0.5", 5).await;
    for v in values {
        assert!(v > 1.0, "latency {v}");
    }
}

/// Every manifest the scenarios apply passes the API server's validation
/// (`kubectl apply --dry-run=server`) with Serin's CRDs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn walkthrough_manifests_are_accepted() {
    let tc = TestCluster::new("nginx-manifests").await;
    support::operator::install_crds(&tc.client).await;
    let lt = LoadTester::start().await;
    let chat = ChatReceiver::start().await;
    let manifests = [
        deployment(),
        hpa(),
        ingress(),
        latency_template(&tc.env.prometheus_url),
        alert_provider("slack", "slack", &chat.url("/slack")),
        alert_provider("teams", "msteams", &chat.url("/teams")),
        canary(&lt, 10),
        latency_canary(&lt, 5),
        ab_canary(&lt),
        with_alerts(canary(&lt, 3)),
    ];
    for manifest in manifests {
        let mut child = tokio::process::Command::from(tc.env.tool("kubectl"))
            .args(["-n", &tc.namespace, "apply", "--dry-run=server", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(manifest.to_string().as_bytes())
            .await
            .unwrap();
        drop(stdin);
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success(),
            "{}\nrejected: {}",
            manifest,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
