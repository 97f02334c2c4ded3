//! Canaries for the client's unit tests.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use crate::api::canary::{Canary, CanaryPhase, CanaryStatus};

/// 2026-11-29T09:52:29Z, the time the fixtures' runs last moved.
pub fn t0() -> Timestamp {
    "2026-11-29T09:52:29Z".parse().unwrap()
}

/// `t0` plus `seconds`.
pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(t0().as_second() + seconds).unwrap()
}

/// The NGINX walkthrough's Canary `podinfo.test` (interval 10s, threshold
/// 5, stepWeight 5 up to 50, two metrics, two webhooks) in `phase` at
/// `weight`; `""` for a canary without a status.
pub fn podinfo(phase: &str, weight: i32) -> Canary {
    canary_with(phase, weight, "stepWeight: 5\nmaxWeight: 50")
}

/// [`podinfo`] with `traffic` (YAML lines of `spec.analysis`) for the
/// step settings.
pub fn canary_with(phase: &str, weight: i32, traffic: &str) -> Canary {
    let traffic: String = traffic.lines().map(|l| format!("    {l}\n")).collect();
    let yaml = format!(
        r#"
apiVersion: flagger.app/v1beta1
kind: Canary
metadata:
  name: podinfo
  namespace: test
spec:
  provider: nginx
  targetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: podinfo
  service:
    port: 80
  analysis:
    interval: 10s
    threshold: 5
{traffic}    metrics:
      - name: request-success-rate
        thresholdRange:
          min: 99
        interval: 1m
      - name: request-duration
        thresholdRange:
          max: 500
        interval: 1m
    webhooks:
      - name: acceptance-test
        type: pre-rollout
        url: http://flagger-loadtester.test/
      - name: load-test
        url: http://flagger-loadtester.test/
      - name: notify
        type: event
        url: http://flagger-loadtester.test/
"#
    );
    let mut canary: Canary = crate::api::from_yaml_str(&yaml).unwrap();
    if !phase.is_empty() {
        let phase: CanaryPhase = serde_json::from_value(serde_json::json!(phase)).unwrap();
        canary.status = Some(CanaryStatus {
            phase: Some(phase),
            canary_weight: Some(weight),
            failed_checks: Some(0),
            iterations: Some(0),
            last_applied_spec: Some("applied".into()),
            last_promoted_spec: Some("promoted".into()),
            last_transition_time: Some(Time(t0())),
            ..Default::default()
        });
    }
    canary
}
