//! Manual gates and the other webhook types.

use super::sim::*;
use crate::events::Severity;
use crate::model::observe::{CheckRequest, WebhookAnswer};
use crate::model::spec::{AnalysisSpec, HookType};
use crate::model::status::Phase;

fn refused() -> WebhookAnswer {
    WebhookAnswer::Failed("Forbidden".into())
}

fn with_hook(mut analysis: AnalysisSpec, name: &str, kind: HookType) -> AnalysisSpec {
    analysis.webhooks.push(hook(name, kind));
    analysis
}

#[test]
fn confirm_rollout_waits_once_then_scales_up() {
    let analysis = with_hook(canary_analysis(10, 50, 5), "gate", HookType::ConfirmRollout);
    let mut world = World::initialized(podinfo(analysis));
    world.script_hook("gate", vec![refused(), refused(), WebhookAnswer::Ok]);
    world.deploy("v2");
    world.tick();
    assert_eq!(world.phase(), Phase::Waiting);
    world.tick();
    assert_eq!(world.phase(), Phase::Waiting);
    assert_eq!(
        world.messages(),
        vec!["Halt podinfo.test advancement waiting for approval gate"]
    );
    assert_eq!(world.alerts.len(), 1);
    assert_eq!(world.alerts[0].message, "Canary is waiting for approval.");
    assert_eq!(world.alerts[0].severity, Severity::Warn);
    // The gate is asked with the current phase, not Progressing.
    assert!(matches!(
        world.checks.last(),
        Some(CheckRequest::Webhook {
            phase: Phase::Waiting,
            ..
        })
    ));
    world.tick();
    assert_eq!(world.phase(), Phase::Progressing);
    assert_eq!(
        &world.messages()[1..],
        [
            "Confirm-rollout check gate passed",
            "New revision detected! Scaling up podinfo.test"
        ]
    );
}

#[test]
fn muted_gate_sends_no_alert() {
    let mut analysis = with_hook(canary_analysis(10, 50, 5), "gate", HookType::ConfirmRollout);
    analysis.webhooks[0].mute_alert = true;
    let mut world = World::initialized(podinfo(analysis));
    world.script_hook("gate", vec![refused()]);
    world.deploy("v2");
    world.tick();
    assert_eq!(world.phase(), Phase::Waiting);
    assert!(world.alerts.is_empty());
}

#[test]
fn confirm_traffic_increase_holds_the_weight() {
    let analysis = with_hook(
        canary_analysis(10, 50, 5),
        "traffic",
        HookType::ConfirmTrafficIncrease,
    );
    let mut world = World::initialized(podinfo(analysis));
    world.deploy("v2");
    world.tick();
    world.tick();
    assert_eq!(world.routes.canary, 10);
    world.script_hook("traffic", vec![refused(), WebhookAnswer::Ok]);
    world.tick();
    assert_eq!(world.routes.canary, 10);
    assert_eq!(world.status.failed_checks, 0);
    assert_eq!(
        world.warnings(),
        vec!["Halt podinfo.test advancement waiting for traffic increase approval traffic"]
    );
    world.tick();
    assert_eq!(world.routes.canary, 20);
}

#[test]
fn confirm_promotion_waits_with_analysis_running() {
    let analysis = with_hook(
        canary_analysis(25, 50, 5),
        "promote",
        HookType::ConfirmPromotion,
    );
    let mut world = World::initialized(podinfo(analysis));
    world.script_hook("promote", vec![refused()]);
    world.deploy("v2");
    world.run(3);
    assert_eq!(world.routes.canary, 50);
    world.tick();
    assert_eq!(world.phase(), Phase::WaitingPromotion);
    // Flagger quirk: the status weight drops to 0 while routes stay at max.
    assert_eq!(world.status.canary_weight, 0);
    assert_eq!(world.routes.canary, 50);
    world.checks.clear();
    world.tick();
    assert_eq!(world.phase(), Phase::WaitingPromotion);
    assert!(
        world
            .checks
            .iter()
            .any(|c| matches!(c, CheckRequest::Metric { .. }))
    );
    assert_eq!(
        world.warnings(),
        vec!["Halt podinfo.test advancement waiting for promotion approval promote"]
    );
    world.script_hook("promote", vec![WebhookAnswer::Ok]);
    world.tick();
    assert_eq!(world.phase(), Phase::Promoting);
    world.run(5);
    assert_eq!(world.phase(), Phase::Succeeded);
}

#[test]
fn failed_checks_roll_back_while_waiting_for_promotion() {
    let analysis = with_hook(
        canary_analysis(50, 50, 1),
        "promote",
        HookType::ConfirmPromotion,
    );
    let mut world = World::initialized(podinfo(analysis));
    world.script_hook("promote", vec![refused()]);
    world.deploy("v2");
    world.run(3);
    assert_eq!(world.phase(), Phase::WaitingPromotion);
    world.script_metric(
        "request-success-rate",
        vec![crate::model::observe::MetricAnswer::Value(1.0)],
    );
    world.run(3);
    assert_eq!(world.phase(), Phase::Failed);
}

#[test]
fn rollback_webhook_aborts_the_run() {
    let analysis = with_hook(canary_analysis(10, 50, 5), "rollback", HookType::Rollback);
    let mut world = World::initialized(podinfo(analysis));
    world.script_hook("rollback", vec![refused()]);
    world.deploy("v2");
    world.tick();
    world.tick();
    assert_eq!(
        world.messages().last().map(String::as_str),
        Some("Advance podinfo.test canary weight 10")
    );
    assert!(
        world
            .messages()
            .contains(&"Rollback hook rollback not signaling a rollback".to_owned())
    );
    world.script_hook("rollback", vec![WebhookAnswer::Ok]);
    world.events.clear();
    world.tick();
    assert_eq!(world.phase(), Phase::Failed);
    assert_eq!(
        world.messages(),
        vec![
            "Rollback check rollback passed",
            "Rolling back podinfo.test manual webhook invoked",
            "Canary failed! Scaling down podinfo.test",
        ]
    );
    assert!(
        world
            .alerts
            .iter()
            .any(|a| a.message == "Rolling back manual webhook invoked")
    );
}

#[test]
fn pre_rollout_failure_counts_and_retries() {
    let analysis = with_hook(canary_analysis(10, 50, 5), "smoke", HookType::PreRollout);
    let mut world = World::initialized(podinfo(analysis));
    world.script_hook("smoke", vec![refused(), WebhookAnswer::Ok]);
    world.deploy("v2");
    world.tick();
    world.tick();
    assert_eq!(world.status.failed_checks, 1);
    assert_eq!(world.routes.canary, 0);
    world.tick();
    assert_eq!(world.routes.canary, 10);
    assert_eq!(
        world.messages(),
        vec![
            "New revision detected! Scaling up podinfo.test",
            "Starting canary analysis for podinfo.test",
            "Halt podinfo.test advancement pre-rollout check smoke failed Forbidden",
            "Starting canary analysis for podinfo.test",
            "Pre-rollout check smoke passed",
            "Advance podinfo.test canary weight 10",
        ]
    );
}

#[test]
fn post_rollout_hooks_run_after_success_and_failure() {
    let analysis = with_hook(canary_analysis(50, 50, 5), "notify", HookType::PostRollout);
    let mut world = World::initialized(podinfo(analysis));
    world.deploy("v2");
    world.run(10);
    assert_eq!(world.phase(), Phase::Succeeded);
    assert_eq!(world.post_rollout_runs, vec![Phase::Succeeded]);
    let messages = world.messages();
    assert_eq!(
        &messages[messages.len() - 2..],
        [
            "Post-rollout check notify passed",
            "Promotion completed! Scaling down podinfo.test"
        ]
    );
    assert_eq!(
        world.alerts.last().map(|a| a.message.as_str()),
        Some("Canary analysis completed successfully, promotion finished.")
    );
}
