//! Serin only: acting on a command-line request (`serin promote`, `abort`,
//! `retry`). A tick that finds a request it has not answered handles only
//! that request, so an off-schedule step never moves the analysis on.
//!
//! [`verdict`] is the rule, shared with the command line, which refuses
//! before writing what the operator would refuse.

use crate::effects::Effect;
use crate::events::{Severity, alert_text};
use crate::model::request::{HandledRequest, Request, RequestAction, RequestResult};
use crate::model::status::Phase;

use super::context::{Ctx, Step};

/// What a request gets, before anything is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Act on it.
    Act,
    /// What it asks for is under way or done already; the text says so.
    Repeated(String),
    /// It makes no sense now; the text says why.
    Refused(String),
}

/// The rule for `action` on canary `id` (`podinfo.test`) in `phase`;
/// `last_action` is the action of the last answered request, so a second
/// promote after the first is a repeat, not a mistake.
pub fn verdict(
    id: &str,
    action: &RequestAction,
    phase: Phase,
    suspended: bool,
    last_action: Option<&str>,
) -> Verdict {
    use Phase::*;
    let analysing = matches!(phase, Progressing | Waiting | WaitingPromotion);
    let repeated = last_action == Some(action.as_str());
    match action {
        RequestAction::Unreadable(err) => Verdict::Refused(err.clone()),
        _ if suspended => Verdict::Refused(format!("{id} is paused (spec.suspend)")),
        RequestAction::Promote if analysing => Verdict::Act,
        RequestAction::Promote if matches!(phase, Promoting | Finalising) => {
            Verdict::Repeated(format!("promotion of {id} already under way"))
        }
        RequestAction::Promote if phase == Succeeded && repeated => {
            Verdict::Repeated(format!("{id} is already promoted"))
        }
        RequestAction::Promote => {
            Verdict::Refused(format!("{id} is {phase}: no analysis to promote"))
        }
        RequestAction::Abort if analysing => Verdict::Act,
        RequestAction::Abort if phase == Failed => {
            Verdict::Repeated(format!("{id} is already rolled back"))
        }
        RequestAction::Abort if matches!(phase, Promoting | Finalising) => {
            Verdict::Refused(format!("{id} is {phase}: the promotion is under way"))
        }
        RequestAction::Abort => Verdict::Refused(format!("{id} is {phase}: no analysis to abort")),
        RequestAction::Retry if phase == Failed => Verdict::Act,
        RequestAction::Retry if analysing && repeated => {
            Verdict::Repeated(format!("the analysis of {id} is already running again"))
        }
        RequestAction::Retry if phase == Succeeded => Verdict::Refused(format!(
            "{id} is Succeeded: a succeeded analysis is not retried"
        )),
        RequestAction::Retry => Verdict::Refused(format!(
            "{id} is {phase}: only a failed analysis is retried"
        )),
    }
}

impl Ctx<'_> {
    /// The spec's request, unless the status says it was answered.
    pub fn unanswered_request(&self) -> Option<&Request> {
        let request = self.spec.request.as_ref()?;
        let answered = self
            .status
            .last_request
            .as_ref()
            .is_some_and(|last| last.id == request.id);
        (!answered).then_some(request)
    }

    /// Answers `request`; the effects of an accepted one are Flagger's own
    /// (promotion, rollback, a new run).
    pub fn handle_request(&mut self, request: &Request) -> Step<()> {
        let spec = self.spec;
        let id = spec.canary_id();
        let last_action = self.status.last_request.as_ref().map(|l| l.action.as_str());
        let by = request.requested_by.as_deref().unwrap_or("an unknown user");
        let verdict = verdict(
            &id,
            &request.action,
            self.status.phase,
            spec.suspend,
            last_action,
        );
        let (result, message) = match verdict {
            Verdict::Act => (RequestResult::Accepted, self.act(&request.action, &id, by)?),
            Verdict::Repeated(message) => (RequestResult::Repeated, message),
            Verdict::Refused(message) => {
                self.warning(format!("{} of {id} refused: {message}", request.action));
                (RequestResult::Refused, message)
            }
        };
        self.answer(HandledRequest {
            id: request.id.clone(),
            action: request.action.as_str().to_owned(),
            requested_by: request.requested_by.clone(),
            result,
            message,
            at: self.now,
        });
        Ok(())
    }

    /// Does what an accepted request asks; returns the event's text.
    fn act(&mut self, action: &RequestAction, id: &str, by: &str) -> Step<String> {
        Ok(match action {
            RequestAction::Promote => {
                let message = format!(
                    "Promotion of {id} requested by {by}: skipping the rest of the analysis"
                );
                self.normal(message.clone());
                self.promote();
                message
            }
            RequestAction::Abort => {
                let message = format!("Rolling back {id}: abort requested by {by}");
                self.warning(message.clone());
                self.alert(alert_text::MANUAL_ROLLBACK, Severity::Warn, false);
                self.rollback();
                message
            }
            RequestAction::Retry => {
                let message =
                    format!("Retry of {id} requested by {by}: starting the analysis again");
                self.normal(message.clone());
                self.retry()?;
                message
            }
            // `verdict` refuses these.
            RequestAction::Unreadable(err) => err.clone(),
        })
    }

    /// A new run of the revision that failed, gated by `confirm-rollout`
    /// like a new revision.
    fn retry(&mut self) -> Step<()> {
        if self.confirm_rollout()? {
            self.alert(alert_text::NEW_REVISION, Severity::Info, true);
            self.effect(Effect::ScaleCanaryUp);
            self.sync_status(Phase::Progressing, 0, 0, 0);
            self.clear_checks();
        }
        Ok(())
    }
}
