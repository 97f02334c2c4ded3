//! `MeshTest`: an `OperatorTest` for the Gateway API, Linkerd and Istio
//! routers, with Gateway API's, SMI's and Istio's real CRDs installed
//! (Istio's helpers are in `istio.rs`), podinfo and its HPA,
//! and the traffic simulator reading the Canary's routing object. On
//! failure it prints the simulator's last reading and the route.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use super::hooks::HookServer;
use super::nginx::{deployment, hpa};
use super::operator::{Operator, OperatorTest, install_crds};
use super::podinfo::yaml;
use super::third_party::{install_gateway_api, install_istio, install_smi};
use super::traffic::{Fault, SimulatorConfig, TrafficSimulator};
use super::{TestCluster, eventually, shared};

pub struct MeshTest {
    pub sim: TrafficSimulator,
    pub t: OperatorTest,
}

impl MeshTest {
    /// `simulator(namespace)` says what the simulator reads; `args` are
    /// extra operator flags (a later `-mesh-provider` overrides the rig's).
    pub async fn start(
        test: &str,
        args: &[&str],
        simulator: impl FnOnce(&str) -> SimulatorConfig,
    ) -> MeshTest {
        let tc = TestCluster::new(test).await;
        install_crds(&tc.client).await;
        // Before the operator starts, so its watches find the APIs served.
        install_gateway_api(&tc.client).await;
        install_smi(&tc.client).await;
        install_istio(&tc.client).await;
        let hooks = HookServer::start().await;
        let op = Operator::start(&tc.env, &tc.namespace, args).await;
        let config = simulator(&tc.namespace);
        let sim = TrafficSimulator::start(&tc.env, tc.client.clone(), config).await;
        let t = OperatorTest { op, hooks, tc };
        for obj in [deployment(), hpa()] {
            t.apply(&obj).await;
        }
        MeshTest { sim, t }
    }

    pub fn ns(&self) -> &str {
        self.t.ns()
    }

    /// The HTTPRoute `name` as JSON (`v1`).
    pub async fn route(&self, name: &str) -> Value {
        let gvk = GroupVersionKind::gvk("gateway.networking.k8s.io", "v1", "HTTPRoute");
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.t.tc.client.clone(),
            self.ns(),
            &ApiResource::from_gvk_with_plural(&gvk, "httproutes"),
        );
        let route = api
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("the HTTPRoute {name} should exist: {e}"));
        serde_json::to_value(route).unwrap()
    }

    /// The TrafficSplit `name` as JSON (`v1alpha2`).
    pub async fn split(&self, name: &str) -> Value {
        let gvk = GroupVersionKind::gvk("split.smi-spec.io", "v1alpha2", "TrafficSplit");
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.t.tc.client.clone(),
            self.ns(),
            &ApiResource::from_gvk_with_plural(&gvk, "trafficsplits"),
        );
        let split = api
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("the TrafficSplit {name} should exist: {e}"));
        serde_json::to_value(split).unwrap()
    }

    /// The (primary, canary) weights of the route's rule with both backends.
    pub async fn route_weights(&self) -> (i64, i64) {
        let route = self.route("podinfo").await;
        let rules = route["spec"]["rules"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let weighted = rules
            .iter()
            .rev()
            .find(|r| r["backendRefs"].as_array().is_some_and(|b| b.len() == 2))
            .unwrap_or_else(|| panic!("no weighted rule: {route:#}"));
        let weight = |name: &str| {
            weighted["backendRefs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|b| b["name"] == name)
                .and_then(|b| b["weight"].as_i64())
                .unwrap_or_else(|| panic!("no backend {name}: {route:#}"))
        };
        (weight("podinfo-primary"), weight("podinfo-canary"))
    }

    /// Waits until the route's weighted rule splits `primary`/`canary`.
    pub async fn wait_route_weights(&self, primary: i64, canary: i64, timeout: Duration) {
        eventually(
            &format!("the HTTPRoute at {primary}/{canary}"),
            timeout,
            || async {
                match self.route_weights().await {
                    w if w == (primary, canary) => Ok(()),
                    other => Err(format!("{other:?}")),
                }
            },
        )
        .await;
    }

    /// `kubectl set image deployment/podinfo podinfod=<repo>:<tag>` plus the
    /// simulator's fault annotation on the pod template (`None` removes it).
    pub async fn set_revision(&self, tag: &str, fault: Option<Fault>) {
        super::podinfo::set_revision(&self.t, tag, fault).await;
    }

    /// Applies Flagger's Gateway API tutorial MetricTemplates `error-rate`
    /// and `latency` (Istio's series) into the test's namespace, pointed at
    /// the testbed's Prometheus.
    pub async fn apply_gateway_templates(&self) {
        for file in [
            "docs-gitbook-tutorials-gatewayapi-progressive-delivery--metrictemplate-error-rate-912954.yaml",
            "docs-gitbook-tutorials-gatewayapi-progressive-delivery--metrictemplate-latency-a72b6a.yaml",
        ] {
            let mut t = manifest(file);
            t["metadata"].as_object_mut().unwrap().remove("namespace");
            t["spec"]["provider"]["address"] = json!(self.t.tc.env.prometheus_url);
            self.t.apply(&t).await;
        }
    }
}

impl Drop for MeshTest {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "---- simulator's last reading ----\n{:#?}",
                self.sim.observed()
            );
            let istio = self
                .t
                .tc
                .env
                .tool("kubectl")
                .args(["-n", self.ns(), "get", "virtualservices,destinationrules"])
                .args(["-o", "yaml"])
                .output();
            if let Ok(out) = istio
                && out.status.success()
            {
                eprintln!(
                    "---- Istio objects ----\n{}",
                    String::from_utf8_lossy(&out.stdout)
                );
            }
        }
    }
}

/// A manifest of `../shared/flagger-compat/manifests/`.
pub fn manifest(file: &str) -> Value {
    let path = shared(&format!("flagger-compat/manifests/{file}"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    yaml(&text)
}

/// The Gateway API tutorial's Canary, as the e2e suites run it: `provider`,
/// parent `gateway` in `istio-ingress`, host `www.example.com`, port 9898,
/// apex metadata and a request header, interval 10s, `analysis` merged in
/// (YAML under `spec.analysis`), the `error-rate` and `latency` templates
/// and a load-test webhook on the test's hook server.
pub fn gateway_canary(provider: &str, hooks: &HookServer, analysis: &str) -> Value {
    let mut c = yaml(&format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
  provider: {provider}
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  autoscalerRef:
    apiVersion: autoscaling/v2
    kind: HorizontalPodAutoscaler
    name: podinfo
  progressDeadlineSeconds: 60
  service:
    port: 9898
    targetPort: 9898
    hosts:
      - www.example.com
    gatewayRefs:
      - name: gateway
        namespace: istio-ingress
    apex:
      labels:
        test: label
      annotations:
        test: annotation
    headers:
      request:
        add:
          x-served-by: serin
  analysis:
    interval: 10s
    threshold: 2
    metrics:
      - name: error-rate
        templateRef:
          name: error-rate
        thresholdRange:
          max: 1
        interval: 1m
      - name: latency
        templateRef:
          name: latency
        thresholdRange:
          max: 0.5
        interval: 30s
    webhooks:
      - name: load-test
        url: {url}
        timeout: 5s
        metadata:
          cmd: "hey -z 2m -q 10 -c 2 -host www.example.com http://gateway-istio.istio-ingress/"
"#,
        url = hooks.url("/ok"),
    ));
    let extra = yaml(analysis);
    for (k, v) in extra.as_object().into_iter().flatten() {
        c["spec"]["analysis"][k] = v.clone();
    }
    c
}
