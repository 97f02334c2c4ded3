//! The podinfo workloads, Canaries and cluster helpers of the operator
//! end-to-end tests (tests/operator_*e2e.rs): Flagger's e2e manifests as
//! JSON values, reads and writes through the test's client, and the waits
//! and assertions the scenarios share.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::{Value, json};

use super::operator::OperatorTest;
use super::traffic::{FAULT_ANNOTATION, Fault};
use super::{TestCluster, eventually};

pub const REPO: &str = "ghcr.io/stefanprodan/podinfo";
/// Flagger's minimum analysis interval, used by every Canary here.
pub const INTERVAL: Duration = Duration::from_secs(10);
pub const INIT: Duration = Duration::from_secs(180);
pub const RUN: Duration = Duration::from_secs(300);
pub const SHORT: Duration = Duration::from_secs(60);

// ---- manifests --------------------------------------------------------------

pub fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("bad test YAML: {e}\n{text}"))
}

/// The podinfo Deployment of Flagger's e2e (selector `app: podinfo`, port
/// 9898), without `replicas` so re-applying it never undoes a scale to zero.
pub fn podinfo_deployment(tag: &str) -> Value {
    yaml(&format!(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: podinfo
  labels:
    app: podinfo
spec:
  revisionHistoryLimit: 5
  progressDeadlineSeconds: 60
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
  selector:
    matchLabels:
      app: podinfo
  template:
    metadata:
      labels:
        app: podinfo
    spec:
      containers:
        - name: podinfod
          image: {REPO}:{tag}
          ports:
            - name: http
              containerPort: 9898
              protocol: TCP
"#
    ))
}

/// `podinfo_deployment` mounting ConfigMap `podinfo-config`.
pub fn podinfo_deployment_with_config(tag: &str) -> Value {
    let mut d = podinfo_deployment(tag);
    let pod = &mut d["spec"]["template"]["spec"];
    pod["volumes"] = json!([{ "name": "config", "configMap": { "name": "podinfo-config" } }]);
    pod["containers"][0]["volumeMounts"] =
        json!([{ "name": "config", "mountPath": "/etc/podinfo" }]);
    d
}

/// Flagger's test DaemonSet (selector `app.kubernetes.io/name: podinfo-ds`).
pub fn podinfo_daemonset(tag: &str) -> Value {
    yaml(&format!(
        r#"
apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: podinfo-ds
  labels:
    app.kubernetes.io/name: podinfo-ds
spec:
  revisionHistoryLimit: 5
  updateStrategy:
    type: RollingUpdate
  selector:
    matchLabels:
      app.kubernetes.io/name: podinfo-ds
  template:
    metadata:
      labels:
        app.kubernetes.io/name: podinfo-ds
    spec:
      containers:
        - name: podinfod
          image: {REPO}:{tag}
          ports:
            - name: http
              containerPort: 9898
              protocol: TCP
"#
    ))
}

pub fn podinfo_hpa(max_replicas: i32, utilization: i32) -> Value {
    yaml(&format!(
        r#"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: podinfo
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  minReplicas: 2
  maxReplicas: {max_replicas}
  metrics:
    - type: Resource
      resource:
        name: cpu
        target:
          type: Utilization
          averageUtilization: {utilization}
"#
    ))
}

pub fn podinfo_config(color: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "podinfo-config" },
        "data": { "color": color }
    })
}

/// A Canary `name` for `kind`/`target` with the Kubernetes provider, port
/// 9898 and `analysis` (YAML of `spec.analysis`).
pub fn canary(name: &str, kind: &str, target: &str, analysis: &str) -> Value {
    let mut c = yaml(&format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: {name}
spec:
  provider: kubernetes
  targetRef:
    apiVersion: apps/v1
    kind: {kind}
    name: {target}
  progressDeadlineSeconds: 60
  service:
    port: 9898
    portDiscovery: true
"#
    ));
    c["spec"]["analysis"] = yaml(analysis);
    c
}

/// `analysis` with `interval: 10s`, `threshold: 2`, `iterations` and the
/// given webhooks (YAML list items, already indented by two spaces).
pub fn blue_green(iterations: u32, webhooks: &str) -> String {
    let hooks = if webhooks.trim().is_empty() {
        "webhooks: []".to_string()
    } else {
        format!("webhooks:\n{webhooks}")
    };
    format!("interval: 10s\nthreshold: 2\niterations: {iterations}\n{hooks}\n")
}

/// One `analysis.webhooks` item (YAML, indented for [`blue_green`]).
pub fn webhook(name: &str, kind: &str, url: &str) -> String {
    format!("  - name: {name}\n    type: {kind}\n    url: {url}\n    timeout: 5s\n")
}

// ---- cluster reads and writes ----------------------------------------------

pub async fn deployment(t: &OperatorTest, name: &str) -> Deployment {
    let api: Api<Deployment> = t.tc.api();
    api.get(name)
        .await
        .unwrap_or_else(|e| panic!("get deployment {name}: {e}"))
}

pub fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn pod_spec_of(d: &Deployment) -> Value {
    serde_json::to_value(&d.spec.as_ref().unwrap().template.spec).unwrap()
}

pub fn image_of(pod_spec: &Value) -> String {
    pod_spec["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `kubectl set image deployment/podinfo podinfod=<repo>:<tag>` plus the
/// traffic simulator's fault annotation on the pod template (`None`
/// removes it).
pub async fn set_revision(t: &OperatorTest, tag: &str, fault: Option<Fault>) {
    let patch = json!({ "spec": { "template": {
        "metadata": { "annotations": { FAULT_ANNOTATION: fault.map(|f| f.annotation()) } },
        "spec": { "containers": [{ "name": "podinfod", "image": format!("{REPO}:{tag}") }] }
    }}});
    t.tc.api::<Deployment>()
        .patch(
            "podinfo",
            &PatchParams::default(),
            &Patch::Strategic(&patch),
        )
        .await
        .unwrap_or_else(|e| panic!("set the revision of podinfo: {e}"));
}

/// `kubectl set image`: changes only the container image.
pub async fn set_image(t: &OperatorTest, kind: &str, name: &str, tag: &str) {
    let patch = json!({ "spec": { "template": { "spec": {
        "containers": [{ "name": "podinfod", "image": format!("{REPO}:{tag}") }]
    }}}});
    let params = PatchParams::default();
    let result = match kind {
        "DaemonSet" => {
            t.tc.api::<DaemonSet>()
                .patch(name, &params, &Patch::Strategic(&patch))
                .await
                .map(|_| ())
        }
        _ => {
            t.tc.api::<Deployment>()
                .patch(name, &params, &Patch::Strategic(&patch))
                .await
                .map(|_| ())
        }
    };
    result.unwrap_or_else(|e| panic!("set image of {kind} {name}: {e}"));
}

pub async fn selector(t: &OperatorTest, service: &str) -> BTreeMap<String, String> {
    let api: Api<Service> = t.tc.api();
    let svc = api
        .get(service)
        .await
        .unwrap_or_else(|e| panic!("service {service} should exist: {e}"));
    svc.spec.and_then(|s| s.selector).unwrap_or_default()
}

pub fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub async fn wait_deployment_available(t: &OperatorTest, name: &str) {
    eventually(
        &format!("deployment {name} to be Available"),
        SHORT,
        || async {
            let d = deployment(t, name).await;
            let status = d.status.clone().unwrap_or_default();
            let available = status
                .conditions
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Available" && c.status == "True");
            match (available, status.ready_replicas.unwrap_or(0)) {
                (true, ready) if ready >= 1 => Ok(()),
                other => Err(format!("available, ready: {other:?}")),
            }
        },
    )
    .await;
}

pub async fn wait_replicas(t: &OperatorTest, name: &str, want: i32) {
    eventually(
        &format!("deployment {name} to have spec.replicas {want}"),
        SHORT,
        || async {
            let got = replicas(&deployment(t, name).await);
            if got == want {
                Ok(())
            } else {
                Err(format!("spec.replicas {got}"))
            }
        },
    )
    .await;
}

pub async fn wait_gone<K>(api: Api<K>, name: &str)
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    eventually(&format!("{name} to be deleted"), SHORT, || async {
        match api.get_opt(name).await {
            Ok(None) => Ok(()),
            Ok(Some(_)) => Err("still there".to_string()),
            Err(e) => Err(e.to_string()),
        }
    })
    .await;
}

/// Phase Initialized, status hashes, the `Promoted` condition, the primary
/// Available, the three Services with Flagger's selectors, the target at 0.
pub async fn assert_deployment_initialized(t: &OperatorTest) {
    let status = t.wait_phase("podinfo", "Initialized", INIT).await;
    let applied = status["lastAppliedSpec"].as_str().unwrap_or_default();
    assert!(!applied.is_empty(), "lastAppliedSpec is set: {status}");
    assert_eq!(
        status["lastPromotedSpec"].as_str(),
        Some(applied),
        "{status}"
    );
    let promoted = status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "Promoted");
    assert_eq!(
        promoted.map(|c| c["status"].clone()),
        Some(json!("True")),
        "{status}"
    );
    wait_deployment_available(t, "podinfo-primary").await;
    let primary = labels(&[("app", "podinfo-primary")]);
    assert_eq!(
        selector(t, "podinfo").await,
        primary,
        "apex service selects the primary"
    );
    assert_eq!(selector(t, "podinfo-primary").await, primary);
    assert_eq!(
        selector(t, "podinfo-canary").await,
        labels(&[("app", "podinfo")])
    );
    wait_replicas(t, "podinfo", 0).await;
    let ns = t.ns();
    t.wait_event(&format!("Initialization done! podinfo.{ns}"), SHORT)
        .await;
}

/// Succeeded, the primary on `tag`, the target at 0, hashes equal.
pub async fn assert_promoted(t: &OperatorTest, tag: &str) {
    let status = t.wait_phase("podinfo", "Succeeded", RUN).await;
    assert_eq!(
        status["lastPromotedSpec"], status["lastAppliedSpec"],
        "{status}"
    );
    let primary = deployment(t, "podinfo-primary").await;
    assert_eq!(image_of(&pod_spec_of(&primary)), format!("{REPO}:{tag}"));
    wait_replicas(t, "podinfo", 0).await;
}

/// Each message appears as an Event, and they were logged in this order
/// (Event timestamps have one-second resolution; the log keeps the order).
pub async fn assert_events_in_order(t: &OperatorTest, canary: &str, expected: &[String]) {
    let events = t.events().await;
    let mut last_time = None;
    for message in expected {
        let event = events
            .iter()
            .find(|e| &e.message == message && e.object == canary)
            .unwrap_or_else(|| panic!("no event {message:?}; events: {events:#?}"));
        assert_eq!(event.reason, "Synced", "{event:?}");
        assert!(
            event.first >= last_time,
            "event {message:?} is older than the one before it: {events:#?}"
        );
        last_time = event.first;
    }
    let logged = t.op.messages(&t.key(canary));
    let mut from = 0;
    for message in expected {
        match logged[from..].iter().position(|m| m == message) {
            Some(i) => from += i + 1,
            None => panic!(
                "{message:?} was not logged after the messages before it; logged: {logged:#?}"
            ),
        }
    }
}

/// The target `podinfo` (with `fault`) and its primary `podinfo-primary`;
/// returns once the target has an available replica.
pub async fn podinfo_pair(tc: &TestCluster, fault: Option<Fault>) {
    let mut target = podinfo_deployment("6.0.0");
    if let Some(f) = fault {
        target["spec"]["template"]["metadata"]["annotations"][FAULT_ANNOTATION] =
            json!(f.annotation());
    }
    let mut primary = podinfo_deployment("6.0.0");
    primary["metadata"]["name"] = json!("podinfo-primary");
    primary["metadata"]["labels"]["app"] = json!("podinfo-primary");
    primary["spec"]["selector"]["matchLabels"]["app"] = json!("podinfo-primary");
    primary["spec"]["template"]["metadata"]["labels"]["app"] = json!("podinfo-primary");
    for d in [target, primary] {
        let d: Deployment = serde_json::from_value(d).unwrap();
        tc.api::<Deployment>()
            .create(&PostParams::default(), &d)
            .await
            .unwrap();
    }
    eventually("podinfo to be available", SHORT, || async {
        let d = tc.api::<Deployment>().get("podinfo").await.unwrap();
        match d.status.and_then(|s| s.available_replicas).unwrap_or(0) {
            0 => Err("no available replica".to_string()),
            _ => Ok(()),
        }
    })
    .await;
}
