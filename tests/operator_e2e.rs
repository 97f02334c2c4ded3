//! End-to-end tests of the operator: `serin` runs as a separate process
//! against the local control plane (`make cluster-up`), restricted to each
//! test's namespace, with the Kubernetes provider (Blue/Green), the way
//! Flagger's `test/kubernetes/*.sh` suites drive Flagger. Webhooks go to a
//! loadtester-like server in the test process (tests/support/hooks.rs).
//! A failing test prints the operator's logs, `kubectl describe canary` and
//! the namespace's events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Service};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams};
use serde_json::{Value, json};
use support::eventually;
use support::operator::OperatorTest;

const REPO: &str = "ghcr.io/stefanprodan/podinfo";
/// Flagger's minimum analysis interval, used by every Canary here.
const INTERVAL: Duration = Duration::from_secs(10);
const INIT: Duration = Duration::from_secs(180);
const RUN: Duration = Duration::from_secs(300);
const SHORT: Duration = Duration::from_secs(60);

// ---- manifests --------------------------------------------------------------

fn yaml(text: &str) -> Value {
    serde_saphyr::from_str(text).unwrap_or_else(|e| panic!("bad test YAML: {e}\n{text}"))
}

/// The podinfo Deployment of Flagger's e2e (selector `app: podinfo`, port
/// 9898), without `replicas` so re-applying it never undoes a scale to zero.
fn podinfo_deployment(tag: &str) -> Value {
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
fn podinfo_deployment_with_config(tag: &str) -> Value {
    let mut d = podinfo_deployment(tag);
    let pod = &mut d["spec"]["template"]["spec"];
    pod["volumes"] = json!([{ "name": "config", "configMap": { "name": "podinfo-config" } }]);
    pod["containers"][0]["volumeMounts"] =
        json!([{ "name": "config", "mountPath": "/etc/podinfo" }]);
    d
}

/// Flagger's test DaemonSet (selector `app.kubernetes.io/name: podinfo-ds`).
fn podinfo_daemonset(tag: &str) -> Value {
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

fn podinfo_hpa(max_replicas: i32, utilization: i32) -> Value {
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

fn podinfo_config(color: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": { "name": "podinfo-config" },
        "data": { "color": color }
    })
}

/// A Canary `name` for `kind`/`target` with the Kubernetes provider, port
/// 9898 and `analysis` (YAML of `spec.analysis`).
fn canary(name: &str, kind: &str, target: &str, analysis: &str) -> Value {
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
fn blue_green(iterations: u32, webhooks: &str) -> String {
    let hooks = if webhooks.trim().is_empty() {
        "webhooks: []".to_string()
    } else {
        format!("webhooks:\n{webhooks}")
    };
    format!("interval: 10s\nthreshold: 2\niterations: {iterations}\n{hooks}\n")
}

/// One `analysis.webhooks` item (YAML, indented for [`blue_green`]).
fn webhook(name: &str, kind: &str, url: &str) -> String {
    format!("  - name: {name}\n    type: {kind}\n    url: {url}\n    timeout: 5s\n")
}

// ---- cluster reads and writes ----------------------------------------------

async fn deployment(t: &OperatorTest, name: &str) -> Deployment {
    let api: Api<Deployment> = t.tc.api();
    api.get(name)
        .await
        .unwrap_or_else(|e| panic!("get deployment {name}: {e}"))
}

fn replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

fn pod_spec_of(d: &Deployment) -> Value {
    serde_json::to_value(&d.spec.as_ref().unwrap().template.spec).unwrap()
}

fn image_of(pod_spec: &Value) -> String {
    pod_spec["containers"][0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// `kubectl set image`: changes only the container image.
async fn set_image(t: &OperatorTest, kind: &str, name: &str, tag: &str) {
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

async fn selector(t: &OperatorTest, service: &str) -> BTreeMap<String, String> {
    let api: Api<Service> = t.tc.api();
    let svc = api
        .get(service)
        .await
        .unwrap_or_else(|e| panic!("service {service} should exist: {e}"));
    svc.spec.and_then(|s| s.selector).unwrap_or_default()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

async fn wait_deployment_available(t: &OperatorTest, name: &str) {
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

async fn wait_replicas(t: &OperatorTest, name: &str, want: i32) {
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

async fn wait_gone<K>(api: Api<K>, name: &str)
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
async fn assert_deployment_initialized(t: &OperatorTest) {
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
async fn assert_promoted(t: &OperatorTest, tag: &str) {
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
async fn assert_events_in_order(t: &OperatorTest, canary: &str, expected: &[String]) {
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

// ---- scenarios --------------------------------------------------------------

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

/// Flagger's `test/kubernetes/test-daemonset.sh`: DaemonSet Blue/Green with
/// the scale-to-zero node selector.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_blue_green_promotes() {
    let t = OperatorTest::start("ds-bg").await;
    let ns = t.ns().to_string();
    t.apply(&podinfo_daemonset("6.0.0")).await;
    t.apply(&canary(
        "podinfo-ds",
        "DaemonSet",
        "podinfo-ds",
        &blue_green(1, ""),
    ))
    .await;
    t.wait_phase("podinfo-ds", "Initialized", INIT).await;

    let api: Api<DaemonSet> = t.tc.api();
    let primary = api
        .get("podinfo-ds-primary")
        .await
        .expect("primary DaemonSet");
    let status = primary.status.clone().unwrap_or_default();
    assert!(status.desired_number_scheduled > 0, "{status:?}");
    assert_eq!(
        status.number_ready, status.desired_number_scheduled,
        "the primary is ready: {status:?}"
    );
    let primary_sel = labels(&[("app.kubernetes.io/name", "podinfo-ds-primary")]);
    assert_eq!(selector(&t, "podinfo-ds").await, primary_sel);
    assert_eq!(selector(&t, "podinfo-ds-primary").await, primary_sel);
    assert_eq!(
        selector(&t, "podinfo-ds-canary").await,
        labels(&[("app.kubernetes.io/name", "podinfo-ds")])
    );
    let scaled_down = |ds: &DaemonSet| {
        let spec = serde_json::to_value(&ds.spec.as_ref().unwrap().template.spec).unwrap();
        spec["nodeSelector"]["flagger.app/scale-to-zero"] == "true"
    };
    assert!(
        scaled_down(&api.get("podinfo-ds").await.unwrap()),
        "the target gets the scale-to-zero selector"
    );
    eventually(
        "the target DaemonSet to schedule no pods",
        SHORT,
        || async {
            let s = api
                .get("podinfo-ds")
                .await
                .unwrap()
                .status
                .unwrap_or_default();
            if s.desired_number_scheduled == 0 {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        },
    )
    .await;

    set_image(&t, "DaemonSet", "podinfo-ds", "6.0.1").await;
    t.wait_phase("podinfo-ds", "Succeeded", RUN).await;
    let primary = api.get("podinfo-ds-primary").await.unwrap();
    let spec = serde_json::to_value(&primary.spec.as_ref().unwrap().template.spec).unwrap();
    assert_eq!(image_of(&spec), format!("{REPO}:6.0.1"));
    assert!(
        scaled_down(&api.get("podinfo-ds").await.unwrap()),
        "the target is scaled down again"
    );
    t.wait_event(
        &format!("Promotion completed! Scaling down podinfo-ds.{ns}"),
        SHORT,
    )
    .await;
}

/// `revertOnDeletion`: deleting the Canary gives the target its replicas
/// back, and what the operator generated is garbage-collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revert_on_deletion_restores_the_target() {
    let t = OperatorTest::start("revert").await;
    let ns = t.ns().to_string();
    t.apply(&podinfo_deployment("6.0.0")).await;
    let mut c = canary("podinfo", "Deployment", "podinfo", &blue_green(1, ""));
    c["spec"]["revertOnDeletion"] = json!(true);
    t.apply(&c).await;
    assert_deployment_initialized(&t).await;
    let finalizers = t
        .canaries()
        .get("podinfo")
        .await
        .unwrap()
        .metadata
        .finalizers
        .unwrap_or_default();
    assert!(
        finalizers.contains(&"finalizer.flagger.app".to_string()),
        "{finalizers:?}"
    );
    let primary_replicas = replicas(&deployment(&t, "podinfo-primary").await);

    t.canaries()
        .delete("podinfo", &DeleteParams::default())
        .await
        .unwrap();
    eventually(
        "the Canary to be finalized and deleted",
        3 * INTERVAL + SHORT,
        || async {
            match t.canaries().get_opt("podinfo").await {
                Ok(None) => Ok(()),
                Ok(Some(c)) => Err(format!("status {}", c.data["status"])),
                Err(e) => Err(e.to_string()),
            }
        },
    )
    .await;
    wait_replicas(&t, "podinfo", primary_replicas).await;
    wait_deployment_available(&t, "podinfo").await;
    t.wait_event(&format!("Terminating canary podinfo.{ns}"), SHORT)
        .await;
    wait_gone(t.tc.api::<Deployment>(), "podinfo-primary").await;
    for svc in ["podinfo", "podinfo-primary", "podinfo-canary"] {
        wait_gone(t.tc.api::<Service>(), svc).await;
    }
}

/// Flagger's `test/kubernetes/test-hpa.sh`: the primary HPA follows the
/// target's HPA at promotion.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hpa_primary_follows_target_autoscaler() {
    let t = OperatorTest::start("hpa").await;
    t.apply(&podinfo_deployment("6.0.0")).await;
    t.apply(&podinfo_hpa(4, 99)).await;
    let mut c = canary("podinfo", "Deployment", "podinfo", &blue_green(1, ""));
    c["spec"]["autoscalerRef"] = json!({ "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler", "name": "podinfo" });
    t.apply(&c).await;
    t.wait_phase("podinfo", "Initialized", INIT).await;

    let api: Api<HorizontalPodAutoscaler> = t.tc.api();
    let spec = api.get("podinfo-primary").await.expect("primary HPA").spec;
    assert_eq!(
        (
            spec.scale_target_ref.kind.as_str(),
            spec.scale_target_ref.name.as_str()
        ),
        ("Deployment", "podinfo-primary")
    );
    assert_eq!((spec.min_replicas, spec.max_replicas), (Some(2), 4));
    assert_eq!(
        api.get("podinfo").await.unwrap().spec.scale_target_ref.name,
        "podinfo"
    );

    t.apply(&podinfo_hpa(6, 50)).await;
    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    assert_promoted(&t, "6.0.1").await;
    eventually(
        "the primary HPA to get the target's new spec",
        SHORT,
        || async {
            let spec =
                serde_json::to_value(api.get("podinfo-primary").await.unwrap().spec).unwrap();
            let utilization = &spec["metrics"][0]["resource"]["target"]["averageUtilization"];
            if spec["maxReplicas"] == 6 && *utilization == 50 {
                Ok(())
            } else {
                Err(spec.to_string())
            }
        },
    )
    .await;
}

/// Config tracking: the primary mounts a `-primary` copy of the ConfigMap,
/// and a change of its data starts a run that updates the copy.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_map_change_starts_a_run() {
    let t = OperatorTest::start("configmap").await;
    let ns = t.ns().to_string();
    t.apply(&podinfo_config("blue")).await;
    t.apply(&podinfo_deployment_with_config("6.0.0")).await;
    t.apply(&canary(
        "podinfo",
        "Deployment",
        "podinfo",
        &blue_green(1, ""),
    ))
    .await;
    assert_deployment_initialized(&t).await;

    let status = t.status("podinfo").await;
    let before = status["trackedConfigs"]["configmap/podinfo-config"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(
        before.len(),
        16,
        "a 16-hex checksum for configmap/podinfo-config: {status}"
    );
    let cms: Api<ConfigMap> = t.tc.api();
    let color = |cm: ConfigMap| {
        cm.data
            .unwrap_or_default()
            .get("color")
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(
        color(
            cms.get("podinfo-config-primary")
                .await
                .expect("the primary copy")
        ),
        "blue"
    );
    let volume = |d: &Deployment| {
        pod_spec_of(d)["volumes"][0]["configMap"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(
        volume(&deployment(&t, "podinfo-primary").await),
        "podinfo-config-primary"
    );
    assert_eq!(
        volume(&deployment(&t, "podinfo").await),
        "podinfo-config",
        "the target keeps its own"
    );

    t.apply(&podinfo_config("green")).await;
    t.wait_event(
        &format!("New revision detected! Scaling up podinfo.{ns}"),
        3 * INTERVAL + SHORT,
    )
    .await;
    let status = t.wait_phase("podinfo", "Succeeded", RUN).await;
    let after = status["trackedConfigs"]["configmap/podinfo-config"]
        .as_str()
        .unwrap_or_default();
    assert!(
        after.len() == 16 && after != before,
        "the checksum follows the data: {status}"
    );
    assert_eq!(
        color(cms.get("podinfo-config-primary").await.unwrap()),
        "green"
    );
    assert_eq!(
        volume(&deployment(&t, "podinfo-primary").await),
        "podinfo-config-primary"
    );
    wait_replicas(&t, "podinfo", 0).await;
}

/// `kill -9` of the operator in the middle of an analysis: the restarted
/// operator finishes the run without repeating or skipping an iteration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_analysis_resumes_the_run() {
    let mut t = OperatorTest::start("sigkill").await;
    let ns = t.ns().to_string();
    t.apply(&podinfo_deployment("6.0.0")).await;
    t.apply(&canary(
        "podinfo",
        "Deployment",
        "podinfo",
        &blue_green(4, ""),
    ))
    .await;
    assert_deployment_initialized(&t).await;

    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    t.wait_event(&format!("Advance podinfo.{ns} canary iteration 1/4"), RUN)
        .await;
    eventually(
        "status.iterations to record the first iteration",
        SHORT,
        || async {
            let status = t.status("podinfo").await;
            match status["iterations"].as_i64() {
                Some(i) if i >= 1 => Ok(()),
                _ => Err(status.to_string()),
            }
        },
    )
    .await;
    assert_eq!(t.phase("podinfo").await, "Progressing");
    t.op.kill_hard().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    t.op.restart().await;

    assert_promoted(&t, "6.0.1").await;
    let events = t.events().await;
    for i in 1..=4 {
        let message = format!("Advance podinfo.{ns} canary iteration {i}/4");
        let seen: Vec<_> = events.iter().filter(|e| e.message == message).collect();
        assert_eq!(seen.len(), 1, "one Event for {message:?}: {events:#?}");
        assert_eq!(seen[0].count, 1, "{message:?} happened once: {events:#?}");
    }
    assert_eq!(
        t.event_count(&format!("New revision detected! Scaling up podinfo.{ns}"))
            .await,
        1
    );
    assert_eq!(
        t.event_count(&format!("Starting canary analysis for podinfo.{ns}"))
            .await,
        1
    );
}

/// A Canary whose target is missing gets a Warning naming the problem and
/// does not stop a valid Canary in the same namespace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_canary_does_not_block_a_valid_one() {
    let mut t = OperatorTest::start("invalid").await;
    t.apply(&podinfo_deployment("6.0.0")).await;
    t.apply(&canary(
        "broken",
        "Deployment",
        "podinfo-missing",
        &blue_green(1, ""),
    ))
    .await;
    t.apply(&canary(
        "podinfo",
        "Deployment",
        "podinfo",
        &blue_green(1, ""),
    ))
    .await;

    let warning = eventually("a Warning event on canary broken", INIT, || async {
        let events = t.events().await;
        match events
            .iter()
            .find(|e| e.object == "broken" && e.type_ == "Warning")
        {
            Some(e) => Ok(e.clone()),
            None => {
                tokio::time::sleep(Duration::from_millis(750)).await;
                Err(format!("{events:?}"))
            }
        }
    })
    .await;
    assert!(
        warning.message.contains("podinfo-missing") && warning.message.contains("not found"),
        "the Warning names the missing target: {warning:?}"
    );
    assert_deployment_initialized(&t).await;
    assert_ne!(t.phase("broken").await, "Initialized");
    let api: Api<Deployment> = t.tc.api();
    assert!(
        api.get_opt("podinfo-missing-primary")
            .await
            .unwrap()
            .is_none()
    );
    assert!(t.op.is_running(), "the operator keeps running");
    assert!(t.op.healthy().await, "/healthz still answers");
}
