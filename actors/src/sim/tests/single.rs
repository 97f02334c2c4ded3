//! One canary driven end to end by its actor.

use std::time::Duration;

use tokio::time::sleep;

use super::*;
use crate::events::text;
use crate::model::status::Phase;
use crate::ports::CanaryKey;
use crate::registry::Upsert;
use crate::sim::Fault;

const WALKTHROUGH: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/flagger-compat/nginx-walkthrough.txt"
));

/// The 17 event lines under the walkthrough's first `Events:`.
fn walkthrough_events() -> Vec<String> {
    WALKTHROUGH
        .lines()
        .skip_while(|l| !l.contains("Events:"))
        .skip(1)
        .take_while(|l| !l.starts_with("Note that"))
        .map(str::to_owned)
        .collect()
}

fn walkthrough_spec() -> crate::model::spec::CanarySpec {
    let mut analysis = analysis(5, 50, 5);
    analysis
        .webhooks
        .push(hook("acceptance-test", HookType::PreRollout));
    analysis.webhooks.push(hook("load-test", HookType::Rollout));
    spec("test", "podinfo", analysis)
}

/// Steps until `phase` (or `limit` intervals), returning the phase reached.
async fn run_until(h: &Harness, key: &CanaryKey, phase: Phase, limit: usize) -> Phase {
    for _ in 0..limit {
        sleep(MINUTE).await;
        if h.state(key).await.status.phase == phase {
            break;
        }
    }
    h.state(key).await.status.phase
}

#[actix::test]
async fn promotes_with_the_walkthrough_events() {
    // Rollouts take longer than one interval, so the "Waiting for" lines appear.
    let sim_config = SimConfig {
        ready_delay: Duration::from_secs(90),
        ..SimConfig::default()
    };
    let h = harness(sim_config, RuntimeConfig::default());
    let key = CanaryKey::new("test", "podinfo");
    h.sim.deploy(&key, "v1");
    assert_eq!(
        h.registry.upsert(walkthrough_spec()).await,
        Ok(Upsert::Started)
    );
    assert_eq!(
        h.registry.upsert(walkthrough_spec()).await,
        Ok(Upsert::Unchanged)
    );
    sleep(Duration::from_secs(1)).await;

    let idle = h.state(&key).await;
    assert_eq!(idle.status.phase, Phase::Initialized);
    assert!(!idle.ticking, "an idle canary has no timer");
    let init_events = h.sim.canary(&key).unwrap().events.len();

    // Nothing happens while idle, however long we wait.
    sleep(10 * MINUTE).await;
    assert_eq!(h.sim.canary(&key).unwrap().observe_calls, 1);

    h.sim.deploy(&key, "v2");
    h.registry.target_changed(&key).unwrap();
    let deployed_at = h.sim.elapsed();
    assert_eq!(
        run_until(&h, &key, Phase::Succeeded, 30).await,
        Phase::Succeeded
    );

    let canary = h.sim.canary(&key).unwrap();
    let mut produced = canary.messages()[init_events..].to_vec();
    // Flagger emits this too; the docs excerpt leaves it out.
    let starting = text::starting_analysis(&walkthrough_spec());
    assert_eq!(produced.iter().filter(|m| **m == starting).count(), 1);
    produced.retain(|m| *m != starting);
    assert_eq!(produced, walkthrough_events());
    assert_eq!(
        canary.weights(),
        vec![5, 10, 15, 20, 25, 30, 35, 40, 45, 50, 0]
    );
    // Each weight step lands exactly one interval after the previous one.
    let times: Vec<Duration> = canary.route_log.iter().map(|(t, _)| *t).collect();
    for pair in times[..10].windows(2) {
        assert_eq!(pair[1] - pair[0], MINUTE);
    }
    assert!(times[0] > deployed_at);
    assert_eq!(canary.primary_hash, "v2");
    assert!(!canary.canary_scaled_up);
    let hooks: Vec<&str> = canary.hook_log.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(hooks[0], "acceptance-test");
    assert_eq!(hooks.iter().filter(|n| **n == "load-test").count(), 10);

    let done = h.state(&key).await;
    assert!(!done.ticking, "the timer stops once the run is over");
    assert_eq!(canary.status.as_ref(), Some(&done.status));
}

#[actix::test]
async fn rolls_back_when_the_canary_errors() {
    let h = harness(SimConfig::default(), RuntimeConfig::default());
    let key = CanaryKey::new("test", "podinfo");
    h.sim.deploy(&key, "v1");
    let mut spec = spec("test", "podinfo", analysis(10, 50, 3));
    spec.analysis.webhooks.push(hook("events", HookType::Event));
    h.registry.upsert(spec.clone()).await.unwrap();
    sleep(Duration::from_secs(1)).await;

    h.sim.deploy(&key, "v2");
    h.registry.target_changed(&key).unwrap();
    // Healthy until weight 20, then the new revision starts failing requests.
    for _ in 0..10 {
        sleep(MINUTE).await;
        if h.sim.canary(&key).unwrap().routes.canary == 20 {
            break;
        }
    }
    h.sim.set_fault(
        &key,
        "v2",
        Fault {
            error_rate: 12.0,
            latency_ms: 40.0,
        },
    );
    assert_eq!(run_until(&h, &key, Phase::Failed, 10).await, Phase::Failed);

    let canary = h.sim.canary(&key).unwrap();
    assert_eq!(canary.weights(), vec![10, 20, 0]);
    assert_eq!(canary.primary_hash, "v1", "never promoted");
    assert!(!canary.canary_scaled_up);
    let messages = canary.messages();
    let rate_warning = text::success_rate_below(&spec, 88.0, 99.0);
    assert_eq!(messages.iter().filter(|m| **m == rate_warning).count(), 3);
    assert!(messages.contains(&text::rolling_back_threshold(&spec, 3)));
    assert_eq!(messages.last(), Some(&text::canary_failed(&spec)));
    // Every event was also forwarded to the event webhook.
    let forwarded = canary
        .hook_log
        .iter()
        .filter(|(n, _)| n == "events")
        .count();
    assert_eq!(forwarded, messages.len());
    let failed: Vec<i32> = canary.status_log.iter().map(|s| s.failed_checks).collect();
    assert_eq!(
        failed.iter().max(),
        Some(&3),
        "persisted failed checks: {failed:?}"
    );
    let state = h.state(&key).await;
    assert_eq!(state.status.phase, Phase::Failed);
    assert!(!state.ticking);
}

#[actix::test]
async fn delete_stops_the_supervised_actor() {
    let h = harness(SimConfig::default(), RuntimeConfig::default());
    let key = CanaryKey::new("test", "podinfo");
    h.sim.deploy(&key, "v1");
    h.registry
        .upsert(spec("test", "podinfo", analysis(10, 50, 3)))
        .await
        .unwrap();
    let weak = h.registry.addr(&key).unwrap().downgrade();
    sleep(Duration::from_secs(1)).await;
    assert!(h.registry.delete(&key));
    assert!(!h.registry.delete(&key));
    sleep(Duration::from_secs(1)).await;
    assert!(
        weak.upgrade().is_none(),
        "the supervisor did not restart it"
    );
    assert!(h.registry.target_changed(&key).is_err());
}

#[actix::test]
async fn a_request_is_answered_at_once_mid_run() {
    let h = harness(SimConfig::default(), RuntimeConfig::default());
    let key = CanaryKey::new("test", "podinfo");
    h.sim.deploy(&key, "v1");
    let spec = spec("test", "podinfo", analysis(10, 50, 5));
    h.registry.upsert(spec.clone()).await.unwrap();
    sleep(Duration::from_secs(1)).await;
    h.sim.deploy(&key, "v2");
    h.registry.target_changed(&key).unwrap();
    sleep(MINUTE * 2 + Duration::from_secs(1)).await;
    let running = h.state(&key).await;
    assert_eq!(running.status.phase, Phase::Progressing);
    let weights = h.sim.canary(&key).unwrap().weights();

    let mut promote = spec.clone();
    promote.request = Some(crate::model::request::Request {
        id: "r1".into(),
        action: crate::model::request::RequestAction::Promote,
        requested_by: Some("alice".into()),
    });
    assert_eq!(
        h.registry.upsert(promote.clone()).await,
        Ok(Upsert::Updated)
    );
    // Well inside the interval, and the weight did not step on the way.
    sleep(Duration::from_secs(1)).await;
    let answered = h.state(&key).await;
    assert_eq!(answered.status.phase, Phase::Promoting);
    assert_eq!(
        answered.status.last_request.map(|r| r.id),
        Some("r1".into())
    );
    assert_eq!(h.sim.canary(&key).unwrap().weights(), weights);
    assert_eq!(h.sim.canary(&key).unwrap().primary_hash, "v2");
    assert_eq!(
        run_until(&h, &key, Phase::Succeeded, 5).await,
        Phase::Succeeded
    );
    // The same request seen again (a restart, a resync) is not acted on twice.
    assert_eq!(h.registry.upsert(promote).await, Ok(Upsert::Unchanged));
}
