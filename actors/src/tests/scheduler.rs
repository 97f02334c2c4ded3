//! Flagger's `scheduler_*_test.go` scenarios, one tick per `advanceCanary` call.

use super::sim::*;
use crate::model::observe::Readiness;
use crate::model::spec::AnalysisSpec;
use crate::model::status::Phase;

/// Primary weights from the detection tick until promotion starts.
fn primary_weights(analysis: AnalysisSpec) -> Vec<i32> {
    let mut world = World::initialized(podinfo(analysis));
    world.deploy("v2");
    let mut weights = Vec::new();
    for _ in 0..20 {
        world.tick();
        if world.phase() != Phase::Progressing {
            break;
        }
        weights.push(world.routes.primary);
    }
    weights
}

fn step_weights(steps: &[i32]) -> AnalysisSpec {
    AnalysisSpec {
        step_weight: 0,
        step_weights: steps.to_vec(),
        ..canary_analysis(0, 0, 10)
    }
}

#[test]
fn primary_weight_sequences() {
    assert_eq!(
        primary_weights(canary_analysis(20, 50, 10)),
        vec![100, 80, 60, 40]
    );
    assert_eq!(
        primary_weights(canary_analysis(50, 100, 10)),
        vec![100, 50, 0]
    );
    assert_eq!(
        primary_weights(step_weights(&[1, 2, 10, 80])),
        vec![100, 99, 98, 90, 20]
    );
    assert_eq!(
        primary_weights(step_weights(&[1, 2, 10, 200])),
        vec![100, 99, 98, 90, 0]
    );
}

#[test]
fn init_waits_for_primary_then_parks_the_canary() {
    let mut world = World::new(podinfo(canary_analysis(10, 50, 5)));
    world.primary = Readiness::NotReady {
        message: "podinfo-primary.test not ready: waiting for rollout to finish".into(),
        stalled_since: None,
    };
    world.tick();
    assert_eq!(world.phase(), Phase::Initializing);
    world.primary = Readiness::Ready;
    world.tick();
    assert_eq!(world.phase(), Phase::Initialized);
    assert!(!world.canary_up);
    assert_eq!(world.status.last_applied_spec, "v1");
    assert_eq!(world.status.last_promoted_spec, "v1");
    assert_eq!(
        world.messages(),
        vec![
            "all the metrics providers are available!",
            "podinfo-primary.test not ready: waiting for rollout to finish",
            "all the metrics providers are available!",
            "Initialization done! podinfo.test",
        ]
    );
    assert_eq!(
        world.alerts.last().map(|a| a.message.as_str()),
        Some("New Deployment detected, initialization completed.")
    );
    // Steady state: nothing happens, nothing is written.
    let before = world.status.clone();
    let outcome = world.tick();
    assert!(outcome.effects.is_empty());
    assert_eq!(world.status, before);
}

#[test]
fn analysis_phases_with_step_weight_promotion() {
    let analysis = AnalysisSpec {
        step_weight_promotion: 50,
        ..canary_analysis(100, 100, 10)
    };
    let mut world = World::initialized(podinfo(analysis));
    world.deploy("v2");
    let mut phases = vec![(world.phase(), world.status.canary_weight)];
    phases.extend(world.run(10));
    assert_eq!(
        phases,
        vec![
            (Phase::Initialized, 0),
            (Phase::Progressing, 0),
            (Phase::Progressing, 100),
            (Phase::Promoting, 100),
            (Phase::Promoting, 50),
            (Phase::Finalising, 0),
            (Phase::Succeeded, 0),
        ]
    );
    assert!(
        world
            .messages()
            .contains(&"Advance podinfo.test primary weight 50".to_owned())
    );
    assert_eq!(world.status.last_promoted_spec, "v2");
    assert_eq!(world.primary_spec, "v2");
    assert!(!world.canary_up);
}

#[test]
fn blue_green_with_one_iteration() {
    let analysis = AnalysisSpec {
        iterations: 1,
        ..canary_analysis(0, 0, 10)
    };
    let mut world = World::initialized(podinfo(analysis));
    world.deploy("v2");
    let phases: Vec<Phase> = world.run(10).into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        phases,
        vec![
            Phase::Progressing,
            Phase::Progressing,
            Phase::Progressing,
            Phase::Promoting,
            Phase::Finalising,
            Phase::Succeeded,
        ]
    );
    let messages = world.messages();
    assert!(messages.contains(&"Advance podinfo.test canary iteration 1/1".to_owned()));
    assert!(messages.contains(&"Routing all traffic to canary".to_owned()));
}

#[test]
fn blue_green_with_mirroring() {
    let analysis = AnalysisSpec {
        iterations: 2,
        mirror: true,
        ..canary_analysis(0, 0, 10)
    };
    let mut world = World::initialized(podinfo(analysis));
    world.deploy("v2");
    world.tick();
    world.tick();
    assert!(world.routes.mirrored);
    assert_eq!((world.routes.primary, world.routes.canary), (100, 0));
    world.run(10);
    assert_eq!(world.phase(), Phase::Succeeded);
    assert!(
        world
            .messages()
            .contains(&"Stop traffic mirroring and route all traffic to canary".to_owned())
    );
}

#[test]
fn canary_with_mirroring_mirrors_one_tick_first() {
    let analysis = AnalysisSpec {
        mirror: true,
        ..canary_analysis(10, 20, 10)
    };
    let mut world = World::initialized(podinfo(analysis));
    world.deploy("v2");
    world.tick();
    world.tick();
    assert!(world.routes.mirrored);
    assert_eq!(world.routes.canary, 0);
    world.tick();
    assert!(!world.routes.mirrored);
    assert_eq!(world.routes.canary, 10);
    let messages = world.messages();
    assert!(messages.contains(&"Advance podinfo.test canary weight 0".to_owned()));
    // The mirror tick is analysed: metrics were queried before the shift.
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.starts_with("Starting canary analysis"))
            .count(),
        1
    );
}

#[test]
fn ab_testing_iterates_then_promotes() {
    let analysis = AnalysisSpec {
        iterations: 2,
        match_conditions: vec![Default::default()],
        ..canary_analysis(0, 0, 10)
    };
    let mut world = World::initialized(podinfo(analysis));
    world.deploy("v2");
    world.run(10);
    assert_eq!(world.phase(), Phase::Succeeded);
    let messages = world.messages();
    assert!(messages.contains(&"Advance podinfo.test canary iteration 1/2".to_owned()));
    assert!(messages.contains(&"Advance podinfo.test canary iteration 2/2".to_owned()));
    assert!(!messages.contains(&"Routing all traffic to canary".to_owned()));
}

#[test]
fn skip_analysis_promotes_once_the_canary_is_ready() {
    let mut spec = podinfo(canary_analysis(10, 50, 5));
    spec.skip_analysis = true;
    let mut world = World::initialized(spec);
    world.deploy("v2");
    world.tick();
    assert_eq!(world.phase(), Phase::Progressing);
    world.tick();
    assert_eq!(world.phase(), Phase::Succeeded);
    assert_eq!(world.primary_spec, "v2");
    assert!(!world.canary_up);
    assert_eq!(
        world.messages(),
        vec![
            "New revision detected! Scaling up podinfo.test",
            "Copying podinfo.test template spec to podinfo-primary.test",
            "Promotion completed! Canary analysis was skipped for podinfo.test",
        ]
    );
}

#[test]
fn suspend_freezes_everything() {
    let mut spec = podinfo(canary_analysis(10, 50, 5));
    spec.suspend = true;
    let mut world = World::initialized(podinfo(canary_analysis(10, 50, 5)));
    world.spec = spec;
    world.deploy("v2");
    let before = world.status.clone();
    world.tick();
    assert_eq!(world.status, before);
    assert_eq!(
        world.messages(),
        vec!["skipping canary run as object is suspended"]
    );
}

#[test]
fn kubernetes_provider_forces_blue_green() {
    let mut spec = podinfo(canary_analysis(10, 50, 5));
    spec.provider = "kubernetes".into();
    let mut world = World::initialized(spec);
    world.deploy("v2");
    world.tick();
    world.tick();
    let messages = world.messages();
    assert!(messages.contains(
        &"Progressive traffic is not supported when using the kubernetes provider".to_owned()
    ));
    assert!(messages.contains(&"Setting canaryAnalysis.iterations: 10".to_owned()));
    assert!(messages.contains(&"Advance podinfo.test canary iteration 1/10".to_owned()));
    world.run(20);
    assert_eq!(world.phase(), Phase::Succeeded);
    assert!(
        !world
            .messages()
            .contains(&"Routing all traffic to canary".to_owned())
    );
}

#[test]
fn session_affinity_cookies_live_for_one_run() {
    use crate::model::spec::SessionAffinity;
    let mut analysis = canary_analysis(10, 20, 10);
    analysis.session_affinity = Some(SessionAffinity {
        cookie_name: "flagger-cookie".into(),
        primary_cookie_name: Some("flagger-primary".into()),
    });
    let mut world = World::initialized(podinfo(analysis));
    assert_eq!(world.status.session.canary, None);
    world.deploy("v2");
    world.tick();
    world.tick();
    assert!(world.routes.canary > 0);
    // The seed the world hands every tick: the first half for the canary.
    let canary = Some("flagger-cookie=abcdefghij".to_owned());
    assert_eq!(world.status.session.canary, canary);
    assert_eq!(
        world.status.session.primary.as_deref(),
        Some("flagger-primary=KLMNOPQRST")
    );
    world.tick();
    assert_eq!(
        world.status.session.canary, canary,
        "kept for the whole run"
    );
    world.run(20);
    assert_eq!(world.phase(), Phase::Succeeded);
    assert_eq!(world.status.session.canary, None);
    assert_eq!(
        world.status.session.previous, canary,
        "left for the router to expire"
    );
}
