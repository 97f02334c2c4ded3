//! `serin status NAME`: follows the canary until its run ends. One line per
//! change (`Progressing canary weight 10`); exit 0 for Succeeded (or idle
//! with no new revision pending), 1 for Failed, 2 on `--timeout`, 3 for
//! errors.

use std::io::Write;

use futures::StreamExt;
use kube::ResourceExt;

use crate::api::canary::{Canary, CanaryPhase};
use crate::cli::StatusArgs;

use super::get::sleep_until;
use super::human::flag_duration;
use super::watch::{self, Observed, Watched};
use super::{CtlError, Exit, Outcome, Session, canaries, connect, progress, revision};

/// Whether to keep waiting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Wait,
    Done(Exit),
}

/// The end of a run: idle phases end it unless a revision is pending,
/// which the operator has yet to pick up (the race after `kubectl set
/// image`); a Failed canary with a new revision starts a new run.
pub fn verdict(phase: CanaryPhase, pending: bool) -> Verdict {
    match phase {
        CanaryPhase::Succeeded | CanaryPhase::Initialized if !pending => Verdict::Done(Exit::Ok),
        CanaryPhase::Failed if !pending => Verdict::Done(Exit::Failed),
        CanaryPhase::Terminating | CanaryPhase::Terminated => Verdict::Done(Exit::Error),
        _ => Verdict::Wait,
    }
}

/// Phases in which a pending revision matters (the run is over).
fn idle(phase: CanaryPhase) -> bool {
    matches!(
        phase,
        CanaryPhase::Succeeded | CanaryPhase::Initialized | CanaryPhase::Failed
    )
}

/// The line printed for a state: the summary, and a pending revision.
pub fn line(canary: &Canary, pending: bool) -> String {
    let mut line = progress::summary(canary);
    if pending {
        line.push_str(", new revision pending");
    }
    line
}

pub async fn run(args: &StatusArgs, out: &mut dyn Write) -> Result<Outcome, CtlError> {
    let session = connect::connect(&args.connection).await?;
    let canary = canaries::get(&session, &args.name).await?;
    follow(&session, &canary, args, out).await
}

async fn follow(
    session: &Session,
    canary: &Canary,
    args: &StatusArgs,
    out: &mut dyn Write,
) -> Result<Outcome, CtlError> {
    let key = format!("{}.{}", canary.name_any(), session.namespace);
    let target_ref = canary.spec.target_ref.clone();
    let watched = Watched {
        events: false,
        primary: false,
        target: true,
    };
    let mut changes = watch::changes(session, &args.name, &target_ref, watched);
    let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut observed = Observed::default();
    let mut last_line = String::new();
    loop {
        tokio::select! {
            change = changes.next() => match change {
                None => return Ok(Outcome::with(Exit::Error, format!("the watch of {key} ended"))),
                Some(change) => observed.apply(change),
            },
            () = sleep_until(deadline) => {
                let waited = args.timeout.map(flag_duration).unwrap_or_default();
                return Ok(Outcome::with(
                    Exit::Timeout,
                    format!("timed out after {waited} waiting for {key}: {last_line}"),
                ));
            }
        }
        if !observed.ready(watched, &target_ref) {
            continue;
        }
        let Some(canary) = observed.canary.as_ref() else {
            return Ok(Outcome::with(Exit::Error, format!("{key} was deleted")));
        };
        let status = canary.status.clone().unwrap_or_default();
        let phase = status.phase();
        let pending = match observed.target.as_ref() {
            Some(target) if idle(phase) => {
                revision::pending(&session.client, &session.namespace, target, &status).await
            }
            _ => false,
        };
        let line = line(canary, pending);
        if line != last_line {
            writeln!(out, "{line}")?;
            out.flush()?;
            last_line = line;
        }
        match verdict(phase, pending) {
            Verdict::Wait => {}
            Verdict::Done(Exit::Error) => {
                return Ok(Outcome::with(
                    Exit::Error,
                    format!("{key} is being deleted"),
                ));
            }
            Verdict::Done(exit) => {
                return Ok(Outcome {
                    exit,
                    message: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::fixtures::podinfo;

    #[test]
    fn verdicts() {
        use CanaryPhase::*;
        let cases = [
            (Succeeded, false, Verdict::Done(Exit::Ok)),
            (Initialized, false, Verdict::Done(Exit::Ok)),
            (Failed, false, Verdict::Done(Exit::Failed)),
            // kubectl set image && serin status: Succeeded is the last run.
            (Succeeded, true, Verdict::Wait),
            (Initialized, true, Verdict::Wait),
            // A new revision after a failure starts a new run.
            (Failed, true, Verdict::Wait),
            (Progressing, false, Verdict::Wait),
            (Waiting, false, Verdict::Wait),
            (WaitingPromotion, false, Verdict::Wait),
            (Promoting, false, Verdict::Wait),
            (Finalising, false, Verdict::Wait),
            (Initializing, false, Verdict::Wait),
            (Unset, false, Verdict::Wait),
            (Terminating, false, Verdict::Done(Exit::Error)),
            (Terminated, false, Verdict::Done(Exit::Error)),
        ];
        for (phase, pending, want) in cases {
            assert_eq!(verdict(phase, pending), want, "{phase:?} pending {pending}");
        }
    }

    #[test]
    fn lines_follow_the_phase_and_weight() {
        let lines: Vec<String> = [
            ("Succeeded", 0, true),
            ("Progressing", 0, false),
            ("Progressing", 5, false),
            ("Promoting", 0, false),
            ("Finalising", 0, false),
            ("Succeeded", 0, false),
        ]
        .iter()
        .map(|(phase, weight, pending)| line(&podinfo(phase, *weight), *pending))
        .collect();
        assert_eq!(
            lines,
            [
                "Succeeded, new revision pending",
                "Progressing canary weight 0",
                "Progressing canary weight 5",
                "Promoting",
                "Finalising",
                "Succeeded",
            ]
        );
    }
}
