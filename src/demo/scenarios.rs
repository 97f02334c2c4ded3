//! The walkthrough's three scenarios on the simulated cluster, under paused
//! tokio time so ten-second intervals pass instantly.

use std::time::Duration;

use serin_actors::actors::{ArbiterPool, Clock, GetState, RuntimeConfig, Services};
use serin_actors::model::spec::{CanarySpec, MetricSpec, TemplateRef, ThresholdRange};
use serin_actors::ports::CanaryKey;
use serin_actors::registry::Registry;
use serin_actors::sim::{Fault, SimCluster, SimConfig};
use serin_actors::{CanaryStatus, Event, Phase};

use super::DemoError;
use super::render::{AgedEvent, CanaryRow, canaries_table, describe};
use crate::api::{Canary, from_yaml_str};
use crate::canary_spec::canary_spec;

const CANARY_YAML: &str = include_str!("podinfo-canary.yaml");
/// 2020-08-14T11:00:00Z, the walkthrough's day.
const DEMO_EPOCH: i64 = 1_597_402_800;

/// One of the walkthrough's runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Promote,
    RollbackErrors,
    RollbackLatency,
}

impl Scenario {
    pub const ALL: [Scenario; 3] = [
        Scenario::Promote,
        Scenario::RollbackErrors,
        Scenario::RollbackLatency,
    ];

    pub fn parse(name: &str) -> Option<Scenario> {
        Scenario::ALL.into_iter().find(|s| s.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Scenario::Promote => "promote",
            Scenario::RollbackErrors => "rollback-errors",
            Scenario::RollbackLatency => "rollback-latency",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Scenario::Promote => "Automated canary promotion (podinfo:4.0.6)",
            Scenario::RollbackErrors => {
                "Automated rollback on HTTP 500s (failed checks threshold 3)"
            }
            Scenario::RollbackLatency => {
                "Automated rollback on latency from a custom metric (threshold 5)"
            }
        }
    }

    fn expected(self) -> Phase {
        match self {
            Scenario::Promote => Phase::Succeeded,
            _ => Phase::Failed,
        }
    }
}

/// What one scenario printed and where it ended.
pub struct Outcome {
    pub scenario: Scenario,
    pub status: CanaryStatus,
    pub events: Vec<Event>,
    pub text: String,
}

/// The demo canary's spec, parsed from the embedded manifest like any Canary.
pub fn demo_spec() -> Result<CanarySpec, DemoError> {
    let canary: Canary =
        from_yaml_str(CANARY_YAML).map_err(|e| DemoError::Manifest(e.to_string()))?;
    canary_spec(&std::sync::Arc::new(canary), "nginx")
        .map_err(|e| DemoError::Manifest(e.to_string()))
}

/// The analysis each scenario runs with, on top of the demo canary.
fn scenario_spec(scenario: Scenario) -> Result<CanarySpec, DemoError> {
    let mut spec = demo_spec()?;
    match scenario {
        Scenario::Promote => {}
        Scenario::RollbackErrors => spec.analysis.threshold = 3,
        Scenario::RollbackLatency => {
            spec.analysis.threshold = 5;
            // The MetricTemplate `latency` (a Prometheus histogram quantile, in seconds).
            spec.analysis.metrics.push(MetricSpec {
                name: "latency".into(),
                interval: "1m".into(),
                threshold_range: Some(ThresholdRange {
                    min: None,
                    max: Some(0.5),
                }),
                template_ref: Some(TemplateRef {
                    name: "latency".into(),
                    namespace: Some("test".into()),
                }),
                ..MetricSpec::default()
            });
        }
    }
    Ok(spec)
}

/// Runs one scenario from a fresh simulated cluster: podinfo 4.0.5 is
/// initialised, then 4.0.6 is rolled out with the scenario's fault.
pub async fn run(scenario: Scenario) -> Result<Outcome, DemoError> {
    tokio::time::pause();
    let sim = SimCluster::new(SimConfig {
        ready_delay: Duration::from_secs(15),
        ..SimConfig::default()
    });
    let services = Services::start(
        sim.ports(),
        RuntimeConfig::default(),
        Clock::starting_at(DEMO_EPOCH),
        &actix::Arbiter::current(),
    );
    let registry = Registry::new(services, ArbiterPool::current());
    let spec = scenario_spec(scenario)?;
    let key = CanaryKey::of(&spec);
    let interval = spec.analysis.interval();

    sim.deploy(&key, "podinfo-4.0.5");
    sim.set_hpa(&key, true);
    registry
        .upsert(spec)
        .await
        .map_err(|e| DemoError::Actor(e.to_string()))?;
    wait_for(&registry, &key, |s| s.phase == Phase::Initialized, 60).await?;
    let seen_before = sim.canary(&key).map_or(0, |c| c.events.len());

    match scenario {
        Scenario::Promote => {}
        Scenario::RollbackErrors => {}
        Scenario::RollbackLatency => sim.set_custom_metric(&key, "latency", 0.2),
    }
    sim.deploy(&key, "podinfo-4.0.6");
    registry
        .target_changed(&key)
        .map_err(|e| DemoError::Actor(e.to_string()))?;

    // Faults start once a fifth of the traffic reaches the canary, as when the
    // walkthrough's user starts sending bad requests, and the measured values
    // follow the walkthrough's.
    let error_rates = [46.58, 46.81, 51.95];
    let latencies = [1.20, 1.45, 1.60, 1.69, 1.70];
    let mut stamped: Vec<(Event, Duration)> = Vec::new();
    let start = tokio::time::Instant::now();
    let status = loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let canary = sim
            .canary(&key)
            .ok_or_else(|| DemoError::Actor("canary vanished".into()))?;
        for event in canary.events.iter().skip(seen_before + stamped.len()) {
            stamped.push((event.clone(), start.elapsed()));
        }
        let status = state(&registry, &key).await?;
        let halts = canary
            .events
            .iter()
            .skip(seen_before)
            .filter(|e| e.message.starts_with("Halt"))
            .count();
        if scenario == Scenario::RollbackErrors && status.canary_weight >= 20 {
            let error_rate = error_rates[halts.min(error_rates.len() - 1)];
            sim.set_fault(
                &key,
                "podinfo-4.0.6",
                Fault {
                    error_rate,
                    latency_ms: 50.0,
                },
            );
        }
        if scenario == Scenario::RollbackLatency && status.canary_weight >= 15 {
            sim.set_custom_metric(&key, "latency", latencies[halts.min(latencies.len() - 1)]);
        }
        if matches!(status.phase, Phase::Succeeded | Phase::Failed) {
            break status;
        }
        if start.elapsed() > 100 * interval {
            return Err(DemoError::Stuck {
                scenario: scenario.name(),
                phase: status.phase,
            });
        }
    };
    registry.shutdown();

    let now = start.elapsed();
    let aged: Vec<AgedEvent<'_>> = stamped
        .iter()
        .map(|(event, at)| AgedEvent {
            event,
            age_seconds: now.saturating_sub(*at).as_secs(),
        })
        .collect();
    let mut text = format!(
        "=== {} ===\n$ kubectl -n test describe canary/podinfo\n",
        scenario.title()
    );
    text.push_str(&describe(
        status.canary_weight,
        status.failed_checks,
        status.phase,
        &aged,
    ));
    text.push_str("\n$ kubectl get canaries --all-namespaces\n");
    text.push_str(&canaries_table(&[CanaryRow {
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        phase: status.phase,
        weight: status.canary_weight,
        last_transition_time: rfc3339(status.last_transition_time.map_or(DEMO_EPOCH, |t| t.0)),
    }]));
    if status.phase != scenario.expected() {
        return Err(DemoError::WrongEnd {
            scenario: scenario.name(),
            want: scenario.expected(),
            got: status.phase,
        });
    }
    Ok(Outcome {
        scenario,
        status,
        events: stamped.into_iter().map(|(e, _)| e).collect(),
        text,
    })
}

async fn state(registry: &Registry, key: &CanaryKey) -> Result<CanaryStatus, DemoError> {
    let addr = registry
        .addr(key)
        .ok_or_else(|| DemoError::Actor(format!("no actor for {key}")))?;
    let state = addr
        .send(GetState)
        .await
        .map_err(|e| DemoError::Actor(e.to_string()))?;
    Ok(state.status)
}

async fn wait_for(
    registry: &Registry,
    key: &CanaryKey,
    done: impl Fn(&CanaryStatus) -> bool,
    seconds: u64,
) -> Result<(), DemoError> {
    for _ in 0..seconds {
        if done(&state(registry, key).await?) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let phase = state(registry, key).await?.phase;
    Err(DemoError::Stuck {
        scenario: "initialisation",
        phase,
    })
}

/// Unix seconds as `2020-08-14T11:23:58Z` (days-from-civil, UTC).
pub fn rfc3339(unix: i64) -> String {
    let (days, secs) = (unix.div_euclid(86_400), unix.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(DEMO_EPOCH), "2020-08-14T11:00:00Z");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn the_embedded_canary_parses() {
        let spec = demo_spec().unwrap();
        assert_eq!(
            (spec.analysis.step_weight, spec.analysis.max_weight()),
            (5, 50)
        );
        assert_eq!(spec.analysis.interval(), Duration::from_secs(10));
    }
}
