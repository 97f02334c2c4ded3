//! The `externalmetrics` provider against the real aggregation layer: the
//! test harness serves `external.metrics.k8s.io` behind an APIService
//! (support/external_metrics.rs), the provider reads it through the API
//! server, and a Canary whose metric violates its threshold is rolled back
//! while one within it is promoted.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use serin::api::MetricProvider;
use serin::metrics::externalmetrics::ExternalMetrics as Provider;
use serin::metrics::http::HttpClients;
use serin::metrics::provider::{Config, Credentials, QueryError};

use crate::support::TestCluster;
use crate::support::external_metrics::{ExternalMetrics, Metric};
use crate::support::operator::OperatorTest;
use crate::support::podinfo::{
    INIT, RUN, SHORT, assert_events_in_order, assert_promoted, canary, podinfo_deployment,
    set_image, wait_replicas, yaml,
};

fn deadline() -> tokio::time::Instant {
    tokio::time::Instant::now() + std::time::Duration::from_secs(20)
}

/// What Flagger's provider reads through the API server: the value, the
/// adapter's 404, no values, and the availability check.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn externalmetrics_reads_through_the_aggregation_layer() {
    let tc = TestCluster::new("extmetrics-read").await;
    let ns = tc.namespace.clone();
    let harness = ExternalMetrics::for_namespace(&tc.client, &ns).await;
    harness.set(&ns, "queue", Metric::Values(vec!["3Mi".into(), "1".into()]));
    harness.set(&ns, "gone", Metric::NotFound);
    let spec: MetricProvider = serde_json::from_value(json!({"type": "externalmetrics"})).unwrap();
    let http = HttpClients::new();
    let config = Config {
        spec: &spec,
        metric_interval: "1m",
        credentials: Credentials(None),
        http: &http,
        kube: &tc.client,
    };
    let provider = Provider::new(&config).unwrap();

    let value = provider
        .run_query(
            &format!("{ns}/queue?labelSelector=tier+in+(b,a),app%3Dweb"),
            deadline(),
        )
        .await;
    assert_eq!(value, Ok(3.0 * 1024.0 * 1024.0));
    assert_eq!(
        harness.selectors(&ns, "queue"),
        vec!["app=web,tier in (a,b)"]
    );
    assert_eq!(
        provider.run_query(&format!("{ns}/gone"), deadline()).await,
        Err(QueryError::Failed(
            "error querying external metrics API: the server could not find the metric gone for external metrics".into()
        ))
    );
    assert_eq!(
        provider.run_query(&format!("{ns}/unset"), deadline()).await,
        Err(QueryError::NoValues(
            "no external metrics found: no values found".into()
        ))
    );
    assert_eq!(provider.is_online(deadline()).await, Ok(()));
}

fn template() -> Value {
    yaml(
        r#"
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: queue-depth
spec:
  provider:
    type: externalmetrics
  query: "{{ namespace }}/queue_depth?labelSelector=app%3D{{ target }}"
"#,
    )
}

fn podinfo_canary(iterations: u32) -> Value {
    canary(
        "podinfo",
        "Deployment",
        "podinfo",
        &format!(
            r#"
interval: 10s
threshold: 2
iterations: {iterations}
metrics:
  - name: queue-depth
    templateRef:
      name: queue-depth
    thresholdRange:
      max: 1
    interval: 1m
"#
        ),
    )
}

/// A queue depth of 1500m (1.5) against `max: 1`: two halts, then the
/// rollback with Flagger's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn externalmetrics_over_the_threshold_rolls_back() {
    let t = OperatorTest::start("extmetrics-rollback").await;
    let ns = t.ns().to_string();
    let harness = ExternalMetrics::for_namespace(&t.tc.client, &ns).await;
    harness.set_value(&ns, "queue_depth", "1500m");
    t.apply(&template()).await;
    t.apply(&podinfo_deployment("6.0.0")).await;
    t.apply(&podinfo_canary(3)).await;
    t.wait_phase("podinfo", "Initialized", INIT).await;

    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    t.wait_phase("podinfo", "Failed", RUN).await;
    let halt = format!("Halt podinfo.{ns} advancement queue-depth 1.50 > 1");
    let expected = [
        format!("New revision detected! Scaling up podinfo.{ns}"),
        format!("Starting canary analysis for podinfo.{ns}"),
        halt.clone(),
        format!("Rolling back podinfo.{ns} failed checks threshold reached 2"),
        format!("Canary failed! Scaling down podinfo.{ns}"),
    ];
    assert_events_in_order(&t, "podinfo", &expected).await;
    assert_eq!(t.event_count(&halt).await, 2, "{:#?}", t.events().await);
    wait_replicas(&t, "podinfo", 0).await;
    let selectors = harness.selectors(&ns, "queue_depth");
    assert!(
        !selectors.is_empty() && selectors.iter().all(|s| s == "app=podinfo"),
        "{selectors:?}"
    );
}

/// A queue depth of 0.5 passes every check: the new revision is promoted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn externalmetrics_within_the_threshold_promotes() {
    let t = OperatorTest::start("extmetrics-promote").await;
    let ns = t.ns().to_string();
    let harness = ExternalMetrics::for_namespace(&t.tc.client, &ns).await;
    harness.set_value(&ns, "queue_depth", "0.5");
    t.apply(&template()).await;
    t.apply(&podinfo_deployment("6.0.0")).await;
    t.apply(&podinfo_canary(2)).await;
    t.wait_phase("podinfo", "Initialized", INIT).await;

    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    t.wait_phase("podinfo", "Succeeded", RUN).await;
    assert_promoted(&t, "6.0.1").await;
    t.wait_event(
        &format!("Promotion completed! Scaling down podinfo.{ns}"),
        SHORT,
    )
    .await;
    let events = t.events().await;
    assert!(
        !events.iter().any(|e| e.message.starts_with("Halt")),
        "{events:#?}"
    );
    assert!(!harness.selectors(&ns, "queue_depth").is_empty());
}
