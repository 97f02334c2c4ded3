//! The event lines of Flagger's NGINX walkthrough, replayed through `tick`.

use super::sim::*;
use crate::model::observe::{MetricAnswer, Readiness};
use crate::model::spec::{AnalysisSpec, HookType};
use crate::model::status::Phase;

const WALKTHROUGH: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/flagger-compat/nginx-walkthrough.txt"
));

/// Lines strictly between the first line containing `start` (after `skip`
/// earlier matches) and the next line starting with `end`.
fn section(start: &str, skip: usize, end: &str) -> Vec<String> {
    WALKTHROUGH
        .lines()
        .skip_while({
            let mut seen = 0;
            move |line| {
                if line.contains(start) {
                    seen += 1;
                    return seen <= skip;
                }
                true
            }
        })
        .skip(1)
        .take_while(|line| !line.starts_with(end))
        .map(str::to_owned)
        .collect()
}

fn is_subsequence(needle: &[String], haystack: &[String]) -> bool {
    let mut it = haystack.iter();
    needle.iter().all(|line| it.any(|h| h == line))
}

fn walkthrough_spec(threshold: i32) -> AnalysisSpec {
    let mut analysis = canary_analysis(5, 50, threshold);
    analysis
        .webhooks
        .push(hook("acceptance-test", HookType::PreRollout));
    analysis.webhooks.push(hook("load-test", HookType::Rollout));
    analysis
}

#[test]
fn promotion_events() {
    let expected = section("Events:", 0, "Note that");
    assert_eq!(expected.len(), 17, "walkthrough section: {expected:?}");

    let mut world = World::initialized(podinfo(walkthrough_spec(5)));
    world.deploy("v2");
    world.tick();
    world.canary = Readiness::NotReady {
        message:
            "Waiting for podinfo.test rollout to finish: 0 of 1 updated replicas are available"
                .into(),
        stalled_since: None,
    };
    world.tick();
    world.canary = Readiness::Ready;
    while world.phase() != Phase::Promoting {
        world.tick();
    }
    world.primary = Readiness::NotReady {
        message:
            "Waiting for podinfo-primary.test rollout to finish: 1 of 2 updated replicas are available"
                .into(),
        stalled_since: None,
    };
    world.tick();
    world.primary = Readiness::Ready;
    world.run(5);
    assert_eq!(world.phase(), Phase::Succeeded);

    let produced = world.messages();
    assert!(
        is_subsequence(&expected, &produced),
        "expected {expected:#?}\nproduced {produced:#?}"
    );
    // The only line the walkthrough leaves out is the analysis start.
    let extra: Vec<&String> = produced.iter().filter(|l| !expected.contains(l)).collect();
    assert_eq!(extra, vec!["Starting canary analysis for podinfo.test"]);
}

#[test]
fn rollback_events() {
    let expected = section("jq .msg", 0, "Custom metrics");
    assert_eq!(expected.len(), 13, "walkthrough section: {expected:?}");

    let mut world = World::initialized(podinfo(walkthrough_spec(3)));
    world.deploy("v2");
    world.tick();
    world.canary = Readiness::NotReady {
        message: "Canary deployment podinfo.test not ready: waiting for rollout to finish: 0 of 1 updated replicas are available".into(),
        stalled_since: None,
    };
    world.tick();
    world.canary = Readiness::Ready;
    for _ in 0..4 {
        world.tick();
    }
    world.script_metric(
        "request-success-rate",
        vec![
            MetricAnswer::Value(53.42),
            MetricAnswer::Value(53.19),
            MetricAnswer::Value(48.05),
        ],
    );
    world.run(10);
    assert_eq!(world.phase(), Phase::Failed);
    assert_eq!(world.messages(), expected);
}

#[test]
fn custom_metric_rollback_events() {
    let expected = section("jq .msg", 1, "If you have alerting");
    assert_eq!(expected.len(), 11, "walkthrough section: {expected:?}");

    let mut analysis = canary_analysis(5, 50, 5);
    analysis.metrics.push(templated("latency", 0.5));
    let mut world = World::initialized(podinfo(analysis));
    world.script_metric("latency", vec![MetricAnswer::Value(0.2)]);
    world.deploy("v2");
    world.tick();
    for _ in 0..3 {
        world.tick();
    }
    world.script_metric(
        "latency",
        [1.2, 1.45, 1.6, 1.69, 1.7]
            .into_iter()
            .map(MetricAnswer::Value)
            .collect(),
    );
    world.run(10);
    assert_eq!(world.phase(), Phase::Failed);

    let produced = world.messages();
    // Flagger >= 1.0 says "Starting canary analysis"; the walkthrough line
    // "Starting canary deployment for" predates it.
    let (legacy, current): (Vec<String>, Vec<String>) = expected
        .into_iter()
        .partition(|l| l.starts_with("Starting canary deployment"));
    assert_eq!(legacy, vec!["Starting canary deployment for podinfo.test"]);
    assert!(
        is_subsequence(&current, &produced),
        "expected {current:#?}\nproduced {produced:#?}"
    );
    assert!(produced.contains(&"Starting canary analysis for podinfo.test".to_owned()));
}
