//! Flagger's defaults, read through the accessor methods.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::*;
use crate::api::from_yaml_str;

fn canary(analysis: &str) -> Canary {
    let yaml = format!(
        "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: podinfo\nspec:\n  targetRef:\n    apiVersion: apps/v1\n    kind: Deployment\n    name: podinfo\n  service:\n    port: 9898\n  analysis:\n{analysis}"
    );
    from_yaml_str(&yaml).unwrap()
}

#[test]
fn empty_analysis_uses_flagger_defaults() {
    let c = canary("    {}\n");
    let a = &c.spec.analysis;
    assert_eq!(a.interval(), Duration::from_secs(60));
    assert_eq!(a.threshold(), 1);
    assert_eq!(a.max_weight(), 100);
    assert_eq!(a.primary_ready_threshold(), 100);
    assert_eq!(a.canary_ready_threshold(), 100);
    assert_eq!(a.step_weight_promotion(), 0);
    assert_eq!(c.spec.progress_deadline_seconds(), 600);
    assert_eq!(c.spec.deployment_strategy(), DeploymentStrategy::Canary);
    assert_eq!(c.spec.service_name(), "podinfo");
    let svc = c.spec.service.as_ref().unwrap();
    assert_eq!(svc.port_name(), "http");
    assert_eq!(svc.target_port(), IntOrString::Int(9898));
    assert_eq!(svc.gateways(), ["mesh"]);
    // Defaults are not written back.
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["spec"]["analysis"], serde_json::json!({}));
    assert_eq!(json["spec"]["service"], serde_json::json!({ "port": 9898 }));
}

#[test]
fn interval_is_clamped_and_falls_back() {
    assert_eq!(
        canary("    interval: 5s\n").spec.analysis.interval(),
        Duration::from_secs(10)
    );
    assert_eq!(
        canary("    interval: 1m30s\n").spec.analysis.interval(),
        Duration::from_secs(90)
    );
    assert_eq!(
        canary("    interval: soon\n").spec.analysis.interval(),
        Duration::from_secs(60)
    );
}

#[test]
fn threshold_and_weights() {
    let a = canary("    threshold: -3\n    maxWeight: 0\n")
        .spec
        .analysis;
    assert_eq!((a.threshold(), a.max_weight()), (1, 100));
    let a = canary("    stepWeights: [1, 2, 10, 80]\n    maxWeight: 50\n")
        .spec
        .analysis;
    assert_eq!(a.max_weight(), 80);
    let a = canary("    stepWeights: [1, 200]\n").spec.analysis;
    assert_eq!(a.max_weight(), 100);
    let a = canary("    maxWeight: 30\n    stepWeight: 10\n")
        .spec
        .analysis;
    assert_eq!(a.max_weight(), 30);
}

#[test]
fn strategy_detection() {
    let ab = "    iterations: 10\n    match:\n    - headers:\n        x-canary:\n          exact: insider\n";
    assert_eq!(
        canary(ab).spec.deployment_strategy(),
        DeploymentStrategy::AbTesting
    );
    let bg = "    iterations: 10\n";
    assert_eq!(
        canary(bg).spec.deployment_strategy(),
        DeploymentStrategy::BlueGreen
    );
    assert_eq!(DeploymentStrategy::AbTesting.as_str(), "ab-testing");
}

#[test]
fn metric_webhook_and_alert_defaults() {
    let c = canary(
        "    metrics:\n    - name: request-success-rate\n    - name: latency\n      interval: 30s\n      templateRef:\n        name: latency\n    webhooks:\n    - name: a\n      url: http://x/\n    - name: b\n      type: \"\"\n      url: http://x/\n      timeout: \"s\"\n    - name: c\n      type: pre-rollout\n      url: http://x/\n      timeout: 2m\n    alerts:\n    - name: on-call\n      providerRef:\n        name: slack\n",
    );
    let a = &c.spec.analysis;
    assert_eq!(a.metrics()[0].interval(), "1m");
    assert!(a.metrics()[0].is_builtin());
    assert_eq!(
        a.metrics()[1].interval_duration(),
        Ok(Duration::from_secs(30))
    );
    let tref = a.metrics()[1].template_ref.as_ref().unwrap();
    assert_eq!(tref.namespace_or("test"), "test");
    let hooks = a.webhooks();
    assert_eq!(hooks[0].webhook_type(), WebhookType::Rollout);
    assert_eq!(hooks[0].timeout(), Ok(Duration::from_secs(10)));
    assert_eq!(hooks[1].webhook_type(), WebhookType::Rollout);
    assert_eq!(hooks[1].type_, Some(WebhookType::Unset));
    assert_eq!(hooks[1].timeout(), Ok(Duration::from_secs(10)));
    assert_eq!(hooks[2].timeout(), Ok(Duration::from_secs(120)));
    assert_eq!(a.alerts()[0].severity(), AlertSeverity::Unset);
}

#[test]
fn session_affinity_and_target_port() {
    let c = canary("    sessionAffinity:\n      cookieName: flagger-cookie\n");
    let sa = c.spec.analysis.session_affinity.unwrap();
    assert_eq!(sa.max_age(), 86400);
    let yaml = "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: x\nspec:\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: x}\n  service: {port: 80, targetPort: http, portName: grpc}\n  analysis: {}\n";
    let c: Canary = from_yaml_str(yaml).unwrap();
    let svc = c.spec.service.unwrap();
    assert_eq!(svc.target_port(), IntOrString::String("http".into()));
    assert_eq!(svc.port_name(), "grpc");
}

#[test]
fn status_round_trips_phase_and_conditions() {
    let yaml = "apiVersion: flagger.app/v1beta1\nkind: Canary\nmetadata:\n  name: x\nspec:\n  targetRef: {apiVersion: apps/v1, kind: Deployment, name: x}\n  analysis: {}\nstatus:\n  phase: Succeeded\n  canaryWeight: 0\n  failedChecks: 0\n  iterations: 0\n  lastAppliedSpec: 5b9b4b8f8b\n  lastPromotedSpec: 5b9b4b8f8b\n  lastTransitionTime: \"2024-01-01T00:00:00Z\"\n  trackedConfigs:\n    configmap/podinfo-config: 7c9a1f0e3d2b4a5c\n  conditions:\n  - type: Promoted\n    status: \"True\"\n    reason: Succeeded\n    message: Canary analysis completed successfully, promotion finished.\n    lastUpdateTime: \"2024-01-01T00:00:00Z\"\n    lastTransitionTime: \"2024-01-01T00:00:00Z\"\n";
    let c: Canary = from_yaml_str(yaml).unwrap();
    let status = c.status.as_ref().unwrap();
    assert_eq!(status.phase(), CanaryPhase::Succeeded);
    assert_eq!(
        status.promoted_condition().unwrap().status,
        ConditionStatus::True
    );
    let back = serde_json::to_value(&c).unwrap();
    assert_eq!(back["status"]["lastTransitionTime"], "2024-01-01T00:00:00Z");
    assert_eq!(
        back["status"]["trackedConfigs"]["configmap/podinfo-config"],
        "7c9a1f0e3d2b4a5c"
    );
    let phase: CanaryPhase = serde_json::from_value(serde_json::json!("")).unwrap();
    assert_eq!(phase, CanaryPhase::Unset);
    assert!(serde_json::from_value::<CanaryPhase>(serde_json::json!("Paused")).is_err());
}
