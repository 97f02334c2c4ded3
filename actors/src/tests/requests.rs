//! Serin only: command-line requests and the checks kept in the status.

use super::sim::*;
use crate::model::observe::MetricAnswer;
use crate::model::request::{Request, RequestAction, RequestResult};
use crate::model::spec::HookType;
use crate::model::status::Phase;

fn request(id: &str, action: RequestAction) -> Option<Request> {
    Some(Request {
        id: id.into(),
        action,
        requested_by: Some("alice".into()),
    })
}

fn result(world: &World) -> (RequestResult, String) {
    let last = world
        .status
        .last_request
        .clone()
        .unwrap_or_else(|| panic!("no answer"));
    (last.result, last.message)
}

fn progressing() -> World {
    let mut world = World::initialized(podinfo(canary_analysis(10, 50, 5)));
    world.deploy("v2");
    world.tick();
    world.tick();
    world.tick();
    assert_eq!(
        (world.phase(), world.routes.canary),
        (Phase::Progressing, 20)
    );
    world
}

#[test]
fn promote_skips_the_rest_of_the_analysis_once() {
    let mut world = progressing();
    let before = world.events.len();
    world.spec.request = request("r1", RequestAction::Promote);
    world.tick();
    assert_eq!(world.phase(), Phase::Promoting);
    assert_eq!(world.primary_spec, "v2");
    assert_eq!(
        world.messages()[before..],
        [
            "Promotion of podinfo.test requested by alice: skipping the rest of the analysis",
            "Copying podinfo.test template spec to podinfo-primary.test"
        ]
    );
    assert_eq!(result(&world).0, RequestResult::Accepted);
    // The same request is answered once; the promotion goes on as Flagger's.
    assert_eq!(world.run(5).last(), Some(&(Phase::Succeeded, 0)));
    assert_eq!(world.routes.canary, 0);
    let promoted = world
        .messages()
        .iter()
        .filter(|m| m.starts_with("Promotion of"))
        .count();
    assert_eq!(promoted, 1);
    // Asked again after the promotion: nothing to do, and said so quietly.
    world.spec.request = request("r2", RequestAction::Promote);
    world.tick();
    assert_eq!(result(&world).0, RequestResult::Repeated);
    assert_eq!(world.phase(), Phase::Succeeded);
}

#[test]
fn abort_rolls_back_now() {
    let mut world = progressing();
    world.spec.request = request("a1", RequestAction::Abort);
    world.tick();
    assert_eq!(world.phase(), Phase::Failed);
    assert_eq!(world.routes.canary, 0);
    assert!(!world.canary_up);
    assert!(
        world
            .warnings()
            .contains(&"Rolling back podinfo.test: abort requested by alice".to_string())
    );
    assert!(
        world
            .warnings()
            .contains(&"Canary failed! Scaling down podinfo.test".to_string())
    );
    assert_eq!(result(&world).0, RequestResult::Accepted);
    world.spec.request = request("a2", RequestAction::Abort);
    world.tick();
    assert_eq!(result(&world).0, RequestResult::Repeated);
}

#[test]
fn retry_runs_the_failed_revision_again() {
    let mut world = progressing();
    world.spec.request = request("a1", RequestAction::Abort);
    world.tick();
    // A failed revision is not picked up again by itself.
    world.tick();
    assert_eq!(world.phase(), Phase::Failed);
    world.spec.request = Some(Request {
        id: "t1".into(),
        action: RequestAction::Retry,
        requested_by: None,
    });
    world.tick();
    assert_eq!(world.phase(), Phase::Progressing);
    assert!(world.canary_up);
    assert!(
        world.messages().contains(
            &"Retry of podinfo.test requested by an unknown user: starting the analysis again"
                .to_string()
        )
    );
    assert_eq!(world.run(20).last(), Some(&(Phase::Succeeded, 0)));
    // Retrying a success makes no sense.
    world.spec.request = request("t2", RequestAction::Retry);
    world.tick();
    let (outcome, message) = result(&world);
    assert_eq!(outcome, RequestResult::Refused);
    assert_eq!(
        message,
        "podinfo.test is Succeeded: a succeeded analysis is not retried"
    );
    assert_eq!(
        world.warnings().last().map(String::as_str),
        Some(
            "retry of podinfo.test refused: podinfo.test is Succeeded: a succeeded analysis is not retried"
        )
    );
}

#[test]
fn requests_that_make_no_sense_are_refused() {
    let mut world = World::initialized(podinfo(canary_analysis(10, 50, 5)));
    world.spec.request = request("p1", RequestAction::Promote);
    world.tick();
    assert_eq!(
        result(&world),
        (
            RequestResult::Refused,
            "podinfo.test is Initialized: no analysis to promote".to_string()
        )
    );
    assert_eq!(world.phase(), Phase::Initialized);
    world.spec.request = request(
        "x1",
        RequestAction::Unreadable("annotation is not a request".into()),
    );
    world.tick();
    assert_eq!(result(&world).0, RequestResult::Refused);

    let mut world = progressing();
    world.spec.suspend = true;
    world.spec.request = request("s1", RequestAction::Abort);
    world.tick();
    assert_eq!(
        result(&world),
        (
            RequestResult::Refused,
            "podinfo.test is paused (spec.suspend)".to_string()
        )
    );
    assert_eq!(world.phase(), Phase::Progressing);
}

#[test]
fn a_request_step_does_not_move_the_analysis_on() {
    let mut world = progressing();
    world.spec.request = request("t1", RequestAction::Retry);
    world.tick();
    assert_eq!(result(&world).0, RequestResult::Refused);
    assert_eq!(
        (world.phase(), world.routes.canary),
        (Phase::Progressing, 20)
    );
    world.tick();
    assert_eq!(world.routes.canary, 30);
}

#[test]
fn checks_keep_each_metric_and_hook_result() {
    let mut analysis = canary_analysis(10, 50, 5);
    analysis.webhooks.push(hook("load-test", HookType::Rollout));
    analysis
        .webhooks
        .push(hook("gate", HookType::ConfirmPromotion));
    let mut world = World::initialized(podinfo(analysis));
    world.script_metric(
        "request-success-rate",
        vec![MetricAnswer::Value(99.5), MetricAnswer::Value(42.0)],
    );
    world.deploy("v2");
    world.tick();
    assert!(world.status.checks.is_empty());
    world.tick();
    world.tick();
    let checks = &world.status.checks;
    let names: Vec<(&str, &str, bool)> = checks
        .iter()
        .map(|c| (c.name.as_str(), c.kind.as_str(), c.passed))
        .collect();
    assert_eq!(
        names,
        [
            ("load-test", "rollout", true),
            ("request-success-rate", "metric", true),
            ("request-duration", "metric", true)
        ]
    );
    assert_eq!(checks[1].value, Some(99.5));
    assert_eq!((checks[1].min, checks[1].max), (Some(99.0), None));
    world.tick();
    let metric = &world.status.checks[1];
    assert_eq!((metric.value, metric.passed), (Some(42.0), false));
    assert_eq!(
        metric.message.as_deref(),
        Some("Halt podinfo.test advancement success rate 42.00% < 99%")
    );
}
