//! The embedded demo: Flagger's NGINX walkthrough replayed on the in-memory
//! simulated cluster (`serin demo`), and a fleet of canaries at once
//! (`serin demo --canaries N`).

pub mod fleet;
pub mod render;
pub mod scenarios;

use serin_actors::Phase;

pub use scenarios::Scenario;

/// Why the demo did not finish as its fault profiles dictate.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the demo canary manifest is invalid: {0}")]
    Manifest(String),
    #[error("actor error: {0}")]
    Actor(String),
    #[error("{scenario}: stuck in phase {phase}")]
    Stuck {
        scenario: &'static str,
        phase: Phase,
    },
    #[error("{scenario}: ended {got}, expected {want}")]
    WrongEnd {
        scenario: &'static str,
        want: Phase,
        got: Phase,
    },
    #[error("{0} of the canaries ended in a phase their fault profile does not dictate")]
    Mismatches(usize),
    #[error("cannot start the actor system: {0}")]
    System(String),
}

/// Runs the given scenarios in order, printing each as it ends.
pub fn run_scenarios(scenarios: &[Scenario]) -> Result<(), DemoError> {
    for &scenario in scenarios {
        // A fresh actor system per scenario: paused time is per runtime.
        let system = actix::System::new();
        let outcome = system.block_on(scenarios::run(scenario))?;
        println!("{}", outcome.text);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const WALKTHROUGH: &str = include_str!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/flagger-compat/nginx-walkthrough.txt"
    ));

    /// The event or log lines of the walkthrough after `marker`, up to the
    /// first line that is not one (prose).
    fn walkthrough_lines(after: &str, first: &str) -> Vec<&'static str> {
        WALKTHROUGH
            .lines()
            .skip_while(|l| !l.contains(after))
            .skip_while(|l| !l.starts_with(first))
            .take_while(|l| {
                [
                    "New revision",
                    "Waiting for",
                    "Canary deployment",
                    "Starting canary",
                    "Pre-rollout",
                    "Advance",
                    "Halt",
                    "Copying",
                    "Routing",
                    "Promotion",
                    "Rolling back",
                    "Canary failed",
                ]
                .iter()
                .any(|p| l.starts_with(p))
            })
            .collect()
    }

    fn assert_in_order(scenario: Scenario, want: &[&str]) {
        let system = actix::System::new();
        let outcome = system.block_on(scenarios::run(scenario)).unwrap();
        let got: Vec<String> = outcome.events.iter().map(|e| e.message.clone()).collect();
        let mut rest = got.iter();
        for line in want {
            // Readiness lines carry replica counts of the simulated rollout,
            // and the walkthrough's pre-1.0 "Starting canary deployment" is
            // today's "Starting canary analysis": compare their stable prefix.
            let prefix = match line {
                l if l.starts_with("Waiting for") || l.starts_with("Canary deployment") => {
                    &l[..l.find(':').unwrap_or(l.len())]
                }
                l if l.starts_with("Starting canary deployment") => "Starting canary analysis",
                l => l,
            };
            let value_free = |s: &str| {
                s.split(|c: char| c.is_ascii_digit())
                    .next()
                    .map(str::to_owned)
                    .unwrap_or_default()
            };
            // The walkthrough quotes two Flagger versions' readiness texts.
            let readiness = |s: &str| s.contains("rollout to finish");
            let found = if readiness(line) {
                rest.any(|g| readiness(g))
            } else if line.starts_with("Halt") {
                rest.any(|g| value_free(g) == value_free(line))
            } else {
                rest.any(|g| g.to_lowercase().starts_with(&prefix.to_lowercase()))
            };
            assert!(
                found,
                "{scenario:?}: {line:?} missing or out of order in {got:#?}"
            );
        }
        assert_eq!(
            outcome.status.phase,
            if scenario == Scenario::Promote {
                Phase::Succeeded
            } else {
                Phase::Failed
            }
        );
    }

    #[test]
    fn promotion_follows_the_walkthrough() {
        let want = walkthrough_lines("describe canary/podinfo", "New revision detected");
        assert_eq!(want.len(), 17, "{want:#?}");
        assert_in_order(Scenario::Promote, &want);
    }

    #[test]
    fn rollback_on_errors_follows_the_walkthrough() {
        let want = walkthrough_lines("Automated rollback", "New revision detected");
        assert_eq!(want.len(), 13, "{want:#?}");
        assert_in_order(Scenario::RollbackErrors, &want);
    }

    #[test]
    fn rollback_on_latency_follows_the_walkthrough() {
        let want = walkthrough_lines("Custom metrics", "Starting canary deployment");
        assert_eq!(want.len(), 11, "{want:#?}");
        assert_in_order(Scenario::RollbackLatency, &want);
    }
}
