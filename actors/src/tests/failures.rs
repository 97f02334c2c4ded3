//! Failed checks, rollbacks, restarts and readiness deadlines.

use super::sim::*;
use crate::effects::Effect;
use crate::events::Severity;
use crate::model::observe::{MetricAnswer, Readiness};
use crate::model::status::{Phase, Timestamp};

#[test]
fn rollback_after_the_threshold_on_the_next_tick() {
    let mut world = World::initialized(podinfo(canary_analysis(10, 50, 2)));
    world.deploy("v2");
    world.tick(); // detect
    world.tick(); // first step, no metrics
    world.script_metric("request-success-rate", vec![MetricAnswer::Value(50.0)]);
    world.tick();
    world.tick();
    assert_eq!(world.status.failed_checks, 2);
    assert_eq!(world.phase(), Phase::Progressing);
    assert_eq!(world.routes.canary, 10, "halts keep the weight");
    world.tick();
    assert_eq!(world.phase(), Phase::Failed);
    assert_eq!((world.routes.primary, world.routes.canary), (100, 0));
    assert!(!world.canary_up);
    assert_eq!(world.status.canary_weight, 0);
    assert_eq!(world.post_rollout_runs, vec![Phase::Failed]);
    let messages = world.messages();
    let tail = &messages[messages.len() - 2..];
    assert_eq!(
        tail,
        [
            "Rolling back podinfo.test failed checks threshold reached 2",
            "Canary failed! Scaling down podinfo.test"
        ]
    );
    assert!(
        world
            .alerts
            .iter()
            .any(|a| a.message == "Failed checks threshold reached 2"
                && a.severity == Severity::Error)
    );
}

#[test]
fn first_failing_check_halts_and_later_metrics_are_not_queried() {
    let mut analysis = canary_analysis(10, 50, 5);
    analysis
        .webhooks
        .push(hook("load-test", crate::model::spec::HookType::Rollout));
    let mut world = World::initialized(podinfo(analysis));
    world.deploy("v2");
    world.tick();
    world.tick();
    world.checks.clear();
    world.script_hook(
        "load-test",
        vec![crate::model::observe::WebhookAnswer::Failed("boom".into())],
    );
    world.tick();
    assert_eq!(
        world.checks.len(),
        1,
        "metrics skipped after a failing hook"
    );
    assert_eq!(
        world.warnings().last().map(String::as_str),
        Some("Halt podinfo.test advancement external check load-test failed boom")
    );
    assert_eq!(world.status.failed_checks, 1);
}

#[test]
fn restart_on_new_revision_during_analysis() {
    let mut world = World::initialized(podinfo(canary_analysis(10, 50, 5)));
    world.deploy("v2");
    world.tick();
    world.tick();
    world.tick();
    assert_eq!(world.routes.canary, 20);
    world.deploy("v3");
    world.tick();
    assert_eq!(
        world.messages().last().map(String::as_str),
        Some("New revision detected! Restarting analysis for podinfo.test")
    );
    assert_eq!(world.phase(), Phase::Progressing);
    assert_eq!((world.routes.primary, world.routes.canary), (100, 0));
    assert_eq!(world.status.canary_weight, 0);
    assert_eq!(world.status.last_applied_spec, "v3");
    world.tick();
    assert!(
        world
            .messages()
            .contains(&"Starting canary analysis for podinfo.test".to_owned())
    );
}

#[test]
fn config_change_is_a_new_revision() {
    let mut world = World::initialized(podinfo(canary_analysis(10, 50, 5)));
    world
        .revision
        .tracked_configs
        .insert("configmap/podinfo-config".into(), "abc".into());
    world.tick();
    assert_eq!(world.phase(), Phase::Progressing);
    assert_eq!(
        world.messages(),
        vec!["New revision detected! Scaling up podinfo.test"]
    );
}

#[test]
fn detection_tick_only_scales_up() {
    let mut world = World::initialized(podinfo(canary_analysis(10, 50, 5)));
    world.canary_up = false;
    world.deploy("v2");
    let outcome = world.tick();
    assert!(world.canary_up);
    assert_eq!(world.routes.canary, 0);
    assert!(
        world
            .checks
            .iter()
            .all(|c| !matches!(c, crate::model::observe::CheckRequest::Metric { .. }))
    );
    assert!(outcome.effects.contains(&Effect::ScaleCanaryUp));
    assert_eq!(world.status.last_applied_spec, "v2");
    assert_eq!(
        world.status.last_transition_time,
        Some(Timestamp(world.now - TICK_SECONDS))
    );
}

#[test]
fn reverting_to_the_promoted_spec_starts_no_run() {
    let mut world = World::initialized(podinfo(canary_analysis(10, 50, 1)));
    world.deploy("v2");
    world.tick();
    world.tick();
    world.script_metric("request-success-rate", vec![MetricAnswer::Value(10.0)]);
    world.run(5);
    assert_eq!(world.phase(), Phase::Failed);
    world.deploy("v1");
    world.tick();
    world.tick();
    assert_eq!(world.phase(), Phase::Failed);
    assert_eq!(world.status.last_applied_spec, "v1");
    // Re-applying the failed spec after the revert is a new run.
    world.deploy("v2");
    world.tick();
    assert_eq!(world.phase(), Phase::Progressing);
}

#[test]
fn canary_progress_deadline_rolls_back() {
    let mut world = World::initialized(podinfo(canary_analysis(10, 50, 5)));
    world.deploy("v2");
    world.tick();
    let since = Timestamp(world.now);
    let message = "canary deployment podinfo.test not ready: waiting for rollout to finish: 0 of 1 (readyThreshold 100%) updated replicas are available";
    world.canary = Readiness::NotReady {
        message: message.into(),
        stalled_since: Some(since),
    };
    world.tick();
    assert_eq!(world.phase(), Phase::Progressing, "within the deadline");
    world.now = since.0 + 601;
    world.tick();
    assert_eq!(world.phase(), Phase::Failed);
    let messages = world.messages();
    assert_eq!(
        &messages[messages.len() - 2..],
        [message, "Canary failed! Scaling down podinfo.test"]
    );
}

#[test]
fn primary_failure_during_promotion_keeps_the_canary_serving() {
    let mut world = World::initialized(podinfo(canary_analysis(50, 50, 5)));
    world.deploy("v2");
    world.run(3);
    assert_eq!(world.phase(), Phase::Promoting);
    world.primary = Readiness::Failed {
        message: "deployment \"podinfo-primary\" exceeded its progress deadline".into(),
    };
    world.tick();
    assert_eq!(world.phase(), Phase::Failed);
    assert_eq!(world.status.canary_weight, 100);
    assert_eq!((world.routes.primary, world.routes.canary), (0, 100));
    assert!(world.messages().contains(
        &"Promotion of podinfo.test failed, primary not ready: deployment \"podinfo-primary\" exceeded its progress deadline"
            .to_owned()
    ));
}

/// A check right after the canary was scaled up, before the Deployment
/// controller observed it, is the controller catching up, not trouble: no
/// Warning event (Flagger's operators see Warnings only for real problems),
/// an info log, and the run goes on at the next tick.
#[test]
fn an_unobserved_scale_up_is_noted_not_warned_about() {
    let mut world = World::initialized(podinfo(canary_analysis(10, 50, 5)));
    world.deploy("v2");
    world.tick();
    assert_eq!(world.phase(), Phase::Progressing);
    let message = "canary deployment podinfo.test not ready: waiting for rollout to finish: observed deployment generation less than desired generation";
    world.canary = Readiness::Unobserved {
        message: message.into(),
    };
    let before = world.events.len();
    let outcome = world.tick();
    assert_eq!(world.phase(), Phase::Progressing);
    assert_eq!(world.events.len(), before, "no event: {:?}", world.events);
    assert!(
        outcome
            .effects
            .contains(&crate::effects::Effect::Note(message.to_string())),
        "{:?}",
        outcome.effects
    );
    world.canary = Readiness::Ready;
    world.tick();
    assert_eq!(world.status.canary_weight, 10);
}
