//! The `keptn` provider on the local control plane, with minimal Keptn CRDs
//! (tests/crds/keptn-metrics.yaml): the test plays the Keptn controller,
//! writing a KeptnMetric's value or an Analysis's verdict into its status.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use serin::api::MetricProvider;
use serin::metrics::http::HttpClients;
use serin::metrics::keptn::Keptn;
use serin::metrics::provider::{Config, Credentials};

use crate::support::operator::OperatorTest;
use crate::support::podinfo::{
    INIT, RUN, SHORT, assert_events_in_order, canary, podinfo_deployment, set_image, wait_replicas,
    yaml,
};
use crate::support::third_party::install_keptn;
use crate::support::{TestCluster, eventually};

fn keptn_api(client: &Client, ns: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("metrics.keptn.sh", "v1beta1", kind);
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::from_gvk_with_plural(&gvk, plural),
    )
}

/// Creates the KeptnMetric `name` and writes `value` into its status.
async fn keptn_metric(client: &Client, ns: &str, name: &str, value: &str) {
    let api = keptn_api(client, ns, "KeptnMetric", "keptnmetrics");
    let params = PatchParams::apply("serin-e2e").force();
    let metric = json!({
        "apiVersion": "metrics.keptn.sh/v1beta1", "kind": "KeptnMetric",
        "metadata": {"name": name},
        "spec": {"provider": {"name": "prometheus"}, "query": "histogram_quantile(0.99, x)",
            "fetchIntervalSeconds": 10},
    });
    api.patch(name, &params, &Patch::Apply(&metric))
        .await
        .unwrap();
    let status = json!({"status": {"value": value}});
    api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}

/// A KeptnMetric at 250 against `max: 100`: two halts, then the rollback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keptn_metric_out_of_range_rolls_back() {
    let t = OperatorTest::start("keptn-rollback").await;
    let ns = t.ns().to_string();
    install_keptn(&t.tc.client).await;
    keptn_metric(&t.tc.client, &ns, "podinfo-latency", "250").await;
    t.apply(&yaml(
        r#"
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: keptn-latency
spec:
  provider:
    type: keptn
  query: keptnmetric/{{ namespace }}/{{ target }}-latency
"#,
    ))
    .await;
    t.apply(&podinfo_deployment("6.0.0")).await;
    t.apply(&canary(
        "podinfo",
        "Deployment",
        "podinfo",
        r#"
interval: 10s
threshold: 2
iterations: 3
metrics:
  - name: latency
    templateRef:
      name: keptn-latency
    thresholdRange:
      max: 100
    interval: 1m
"#,
    ))
    .await;
    t.wait_phase("podinfo", "Initialized", INIT).await;

    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    t.wait_phase("podinfo", "Failed", RUN).await;
    let halt = format!("Halt podinfo.{ns} advancement latency 250.00 > 100");
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
}

/// The Analysis form: the provider creates an Analysis, the "controller"
/// completes it with a pass, the provider answers 1 and deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keptn_analysis_is_created_judged_and_deleted() {
    let tc = TestCluster::new("keptn-analysis").await;
    let ns = tc.namespace.clone();
    install_keptn(&tc.client).await;
    let analyses = keptn_api(&tc.client, &ns, "Analysis", "analyses");
    let controller = {
        let analyses = analyses.clone();
        tokio::spawn(async move {
            let created: DynamicObject =
                eventually("the provider to create an Analysis", SHORT, || async {
                    let list = analyses
                        .list(&ListParams::default())
                        .await
                        .map_err(|e| e.to_string())?;
                    list.items
                        .into_iter()
                        .next()
                        .ok_or_else(|| "none yet".into())
                })
                .await;
            let name = created.metadata.name.clone().unwrap();
            let status = json!({"status": {"state": "Completed", "pass": true}});
            analyses
                .patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                .await
                .unwrap();
            created
        })
    };
    let spec: MetricProvider = serde_json::from_value(json!({"type": "keptn"})).unwrap();
    let http = HttpClients::new();
    let config = Config {
        spec: &spec,
        metric_interval: "1m",
        credentials: Credentials(None),
        http: &http,
        kube: &tc.client,
    };
    let provider = Keptn::new(&config).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let query = format!("analysis/{ns}/podinfo-slo/5m/workload=podinfo;stage=canary");
    assert_eq!(provider.run_query(&query, deadline).await, Ok(1.0));

    let created = controller.await.unwrap();
    let name = created.metadata.name.unwrap();
    assert!(name.starts_with("podinfo-slo-"), "{name}");
    let expected: Value = json!({
        "analysisDefinition": {"name": "podinfo-slo"},
        "timeframe": {"recent": "5m"},
        "args": {"workload": "podinfo", "stage": "canary"},
    });
    assert_eq!(created.data["spec"], expected);
    eventually("the Analysis to be deleted", SHORT, || async {
        match analyses.get_opt(&name).await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // The metric form reads through the same client.
    keptn_metric(&tc.client, &ns, "rate", "0.25").await;
    let value = provider
        .run_query(&format!("keptnmetric/{ns}/rate"), deadline)
        .await;
    assert_eq!(value, Ok(0.25));
    let missing = provider
        .run_query(&format!("keptnmetric/{ns}/missing"), deadline)
        .await
        .unwrap_err();
    assert_eq!(
        missing.to_string(),
        format!(
            "could not retrieve KeptnMetric {ns}/missing: keptnmetrics.metrics.keptn.sh \"missing\" not found"
        )
    );
}
