//! Istio on a `MeshTest`: the VirtualService and DestinationRules Serin
//! writes (read as `networking.istio.io/v1beta1`, the version Flagger and
//! Serin write), their weights as Flagger's router reads them, and the
//! Canary and `latency` MetricTemplate of Flagger's `test/istio` suite.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind};
use serde_json::{Value, json};

use super::eventually;
use super::gateway::MeshTest;
use super::hooks::HookServer;
use super::podinfo::{INTERVAL, SHORT, deployment, replicas, wait_deployment_available, yaml};
use super::traffic::SimulatorConfig;

/// Flagger's annotation holding a taken-over VirtualService's spec.
pub const ORIGINAL_CONFIGURATION: &str = "flagger.kubernetes.io/original-configuration";

/// `kind`'s API in `networking.istio.io/v1beta1`.
fn resource(kind: &str, plural: &str) -> ApiResource {
    let gvk = GroupVersionKind::gvk("networking.istio.io", "v1beta1", kind);
    ApiResource::from_gvk_with_plural(&gvk, plural)
}

impl MeshTest {
    /// A `MeshTest` whose operator runs with `-mesh-provider istio`
    /// (Flagger's default, overriding the rig's `kubernetes`) and whose
    /// simulator reads the VirtualService `podinfo` (`simulator` adjusts
    /// that configuration: client classes, another VirtualService).
    pub async fn start_istio(
        test: &str,
        simulator: impl FnOnce(SimulatorConfig) -> SimulatorConfig,
    ) -> MeshTest {
        MeshTest::start(test, &["-mesh-provider", "istio"], |ns| {
            simulator(SimulatorConfig::virtualservice(ns, "podinfo"))
        })
        .await
    }

    /// The test namespace's VirtualServices.
    pub fn virtualservices(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.t.tc.client.clone(),
            self.ns(),
            &resource("VirtualService", "virtualservices"),
        )
    }

    /// The test namespace's DestinationRules.
    pub fn destinationrules(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.t.tc.client.clone(),
            self.ns(),
            &resource("DestinationRule", "destinationrules"),
        )
    }

    /// The VirtualService `name` as JSON, if it exists.
    pub async fn vs_opt(&self, name: &str) -> Option<Value> {
        self.virtualservices()
            .get_opt(name)
            .await
            .unwrap_or_else(|e| panic!("get VirtualService {name}: {e}"))
            .map(|vs| serde_json::to_value(vs).unwrap())
    }

    /// The VirtualService `name` as JSON.
    pub async fn vs(&self, name: &str) -> Value {
        self.vs_opt(name)
            .await
            .unwrap_or_else(|| panic!("the VirtualService {name} should exist"))
    }

    /// The DestinationRule `name` as JSON.
    pub async fn dr(&self, name: &str) -> Value {
        let dr = self
            .destinationrules()
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("the DestinationRule {name} should exist: {e}"));
        serde_json::to_value(dr).unwrap()
    }

    /// The (primary, canary) weights of the VirtualService `podinfo`, as
    /// Flagger's router reads them (see [`vs_weights`]).
    pub async fn vs_weights(&self) -> (i64, i64) {
        let vs = self.vs("podinfo").await;
        vs_weights(&vs).unwrap_or_else(|| panic!("no route to podinfo-canary: {vs:#}"))
    }

    /// Waits until the VirtualService `podinfo` splits `primary`/`canary`.
    pub async fn wait_vs_weights(&self, primary: i64, canary: i64, timeout: Duration) {
        eventually(
            &format!("the VirtualService at {primary}/{canary}"),
            timeout,
            || async {
                let vs = self.vs("podinfo").await;
                match vs_weights(&vs) {
                    Some(w) if w == (primary, canary) => Ok(()),
                    other => Err(format!("{other:?} in {:#}", vs["spec"])),
                }
            },
        )
        .await;
    }

    /// Deletes the Canary `podinfo` and waits until its finalizer, if any,
    /// has let it go.
    pub async fn delete_canary(&self) {
        self.t
            .canaries()
            .delete("podinfo", &DeleteParams::default())
            .await
            .unwrap();
        eventually(
            "the Canary to be finalized and deleted",
            3 * INTERVAL + SHORT,
            || async {
                match self.t.canaries().get_opt("podinfo").await {
                    Ok(None) => Ok(()),
                    Ok(Some(c)) => Err(format!(
                        "finalizers {:?}, status {}",
                        c.metadata.finalizers, c.data["status"]
                    )),
                    Err(e) => Err(e.to_string()),
                }
            },
        )
        .await;
    }

    /// Waits until the target has its replicas back (at least
    /// `primary_replicas`, the primary's; its HPA, resumed, may add more)
    /// and is Available.
    pub async fn wait_target_back(&self, primary_replicas: i32) {
        eventually("the target to get its replicas back", SHORT, || async {
            match replicas(&deployment(&self.t, "podinfo").await) {
                n if n >= primary_replicas => Ok(()),
                n => Err(format!("spec.replicas {n}")),
            }
        })
        .await;
        wait_deployment_available(&self.t, "podinfo").await;
    }

    /// Flagger's `latency` MetricTemplate of `test/istio` in the test's
    /// namespace, pointed at the testbed's Prometheus.
    pub async fn apply_istio_latency_template(&self) {
        self.t
            .apply(&latency_template(&self.t.tc.env.prometheus_url))
            .await;
    }
}

/// The (primary, canary) weights of a VirtualService as Flagger's
/// `GetRoutes` reads them: the last `http[]` route with a destination
/// `podinfo-canary` (with session affinity that is the weighted route, after
/// the sticky ones); a destination missing from it weighs 0.
pub fn vs_weights(vs: &Value) -> Option<(i64, i64)> {
    let http = vs["spec"]["http"].as_array()?;
    let destinations = |r: &Value| r["route"].as_array().cloned().unwrap_or_default();
    let weighted = http.iter().rev().find(|r| {
        destinations(r)
            .iter()
            .any(|d| d["destination"]["host"] == "podinfo-canary")
    })?;
    let weight = |host: &str| {
        destinations(weighted)
            .iter()
            .find(|d| d["destination"]["host"] == host)
            .and_then(|d| d["weight"].as_i64())
            .unwrap_or(0)
    };
    Some((weight("podinfo-primary"), weight("podinfo-canary")))
}

/// The `route[]` of `http[index]` as (host, weight) pairs.
pub fn destinations(vs: &Value, index: usize) -> Vec<(String, i64)> {
    vs["spec"]["http"][index]["route"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            (
                d["destination"]["host"].as_str().unwrap_or_default().into(),
                d["weight"].as_i64().unwrap_or(0),
            )
        })
        .collect()
}

/// An empty list or no list at all (Flagger omits empty `hosts` and
/// `gateways`).
pub fn is_empty_list(v: &Value) -> bool {
    v.is_null() || v.as_array().is_some_and(|a| a.is_empty())
}

/// Flagger's `test/istio` `latency` MetricTemplate: the p99 of Istio's
/// request duration for `reporter` given by the metric's
/// `templateVariables`, pointed at `prometheus`.
pub fn latency_template(prometheus: &str) -> Value {
    yaml(&format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: MetricTemplate
metadata:
  name: latency
spec:
  provider:
    type: prometheus
    address: {prometheus}
  query: |
    histogram_quantile(
        0.99,
        sum(
            rate(
                istio_request_duration_milliseconds_bucket{{
                    reporter="{{{{ variables.reporter }}}}",
                    destination_workload_namespace="{{{{ namespace }}}}",
                    destination_workload=~"{{{{ target }}}}"
                }}[{{{{ interval }}}}]
            )
        ) by (le)
    )
"#
    ))
}

/// The Canary of Flagger's `test/istio` suite as these tests run it: no
/// `provider` (the operator's `-mesh-provider istio` applies), podinfo and
/// its HPA, port 9898, interval 10s, threshold 2, Istio's builtin
/// `request-success-rate` and `request-duration`, a load-test webhook on
/// the test's hook server; `analysis` (YAML of `spec.analysis`) is merged
/// in, key by key.
pub fn istio_canary(hooks: &HookServer, analysis: &str) -> Value {
    let mut c = yaml(&format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
spec:
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
  analysis:
    interval: 10s
    threshold: 2
    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
      - name: request-duration
        thresholdRange:
          max: 500
        interval: 30s
    webhooks:
      - name: load-test
        url: {url}
        timeout: 5s
        metadata:
          type: cmd
          cmd: "hey -z 10m -q 10 -c 2 http://podinfo-canary.test:9898/"
"#,
        url = hooks.url("/ok"),
    ));
    let extra = yaml(analysis);
    for (k, v) in extra.as_object().into_iter().flatten() {
        c["spec"]["analysis"][k] = v.clone();
    }
    c
}

/// A webhook item for `spec.analysis.webhooks`.
pub fn hook(name: &str, kind: &str, url: &str) -> Value {
    json!({"name": name, "type": kind, "url": url, "timeout": "15s",
           "metadata": {"hook": name}})
}

/// Appends `hooks` to the Canary's webhooks.
pub fn add_hooks(c: &mut Value, hooks: &[Value]) {
    c["spec"]["analysis"]["webhooks"]
        .as_array_mut()
        .unwrap()
        .extend(hooks.iter().cloned());
}

/// Flagger's builtin Istio success rate for `target`.
pub fn istio_success_rate(ns: &str, target: &str) -> String {
    format!(
        r#"sum(rate(istio_requests_total{{reporter="destination",destination_workload_namespace="{ns}",destination_workload=~"{target}",response_code!~"5.*"}}[1m])) / sum(rate(istio_requests_total{{reporter="destination",destination_workload_namespace="{ns}",destination_workload=~"{target}"}}[1m])) * 100"#
    )
}

#[cfg(test)]
mod tests {
    // Benches include this file too, compiled with cfg(test) but no test
    // harness, so the tests below vanish there and leave the import unused.
    #[allow(unused_imports)]
    use super::*;

    #[test]
    fn weights_as_flaggers_get_routes() {
        let d = |host: &str, w: i64| json!({"destination": {"host": host}, "weight": w});
        // A/B: the first route holds the weights, the second only the primary.
        let ab = json!({"spec": {"http": [
            {"route": [d("podinfo-primary", 0), d("podinfo-canary", 100)]},
            {"route": [d("podinfo-primary", 100)]}]}});
        assert_eq!(vs_weights(&ab), Some((0, 100)));
        // Session affinity: the weighted route comes after the sticky one.
        let sticky = json!({"spec": {"http": [
            {"route": [d("podinfo-primary", 0), d("podinfo-canary", 100)]},
            {"route": [d("podinfo-primary", 90), d("podinfo-canary", 10)]}]}});
        assert_eq!(vs_weights(&sticky), Some((90, 10)));
        assert_eq!(destinations(&sticky, 1)[1], ("podinfo-canary".into(), 10));
        let user = json!({"spec": {"http": [{"route": [{"destination": {"host": "podinfo"}}]}]}});
        assert_eq!(vs_weights(&user), None);
        assert!(is_empty_list(&json!(null)) && is_empty_list(&json!([])));
        assert!(!is_empty_list(&json!(["mesh"])));
    }
}
