//! Serin only: acting on a command-line request (`serin promote`, `abort`,
//! `retry`). A tick that finds a request it has not answered handles only
//! that request, so an off-schedule step never moves the analysis on.

use crate::effects::Effect;
use crate::events::{Severity, alert_text};
use crate::model::request::{HandledRequest, Request, RequestAction, RequestResult};
use crate::model::spec::CanarySpec;
use crate::model::status::Phase;

use super::context::{Ctx, Step};

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
        let phase = self.status.phase;
        let by = who(request);
        let repeated_of = |action: &RequestAction| {
            self.status
                .last_request
                .as_ref()
                .is_some_and(|last| last.action == action.as_str())
        };
        let (result, message) = match (&request.action, phase) {
            (RequestAction::Unreadable(err), _) => (RequestResult::Refused, err.clone()),
            (_, _) if spec.suspend => (
                RequestResult::Refused,
                format!("{} is paused (spec.suspend)", spec.canary_id()),
            ),
            (
                RequestAction::Promote,
                Phase::Progressing | Phase::Waiting | Phase::WaitingPromotion,
            ) => {
                let message = format!(
                    "Promotion of {} requested by {by}: skipping the rest of the analysis",
                    spec.canary_id()
                );
                self.normal(message.clone());
                self.promote();
                (RequestResult::Accepted, message)
            }
            (RequestAction::Promote, Phase::Promoting | Phase::Finalising) => (
                RequestResult::Repeated,
                format!("promotion of {} already under way", spec.canary_id()),
            ),
            (RequestAction::Promote, Phase::Succeeded) if repeated_of(&request.action) => (
                RequestResult::Repeated,
                format!("{} is already promoted", spec.canary_id()),
            ),
            (
                RequestAction::Abort,
                Phase::Progressing | Phase::Waiting | Phase::WaitingPromotion,
            ) => {
                let message = format!("Rolling back {}: abort requested by {by}", spec.canary_id());
                self.warning(message.clone());
                self.alert(alert_text::MANUAL_ROLLBACK, Severity::Warn, false);
                self.rollback();
                (RequestResult::Accepted, message)
            }
            (RequestAction::Abort, Phase::Failed) => (
                RequestResult::Repeated,
                format!("{} is already rolled back", spec.canary_id()),
            ),
            (RequestAction::Retry, Phase::Failed) => {
                let message = format!(
                    "Retry of {} requested by {by}: starting the analysis again",
                    spec.canary_id()
                );
                self.normal(message.clone());
                self.retry()?;
                (RequestResult::Accepted, message)
            }
            (
                RequestAction::Retry,
                Phase::Progressing | Phase::Waiting | Phase::WaitingPromotion,
            ) if repeated_of(&request.action) => (
                RequestResult::Repeated,
                format!(
                    "the analysis of {} is already running again",
                    spec.canary_id()
                ),
            ),
            (action, phase) => (RequestResult::Refused, refusal(spec, action, phase)),
        };
        if result == RequestResult::Refused {
            self.warning(format!(
                "{} of {} refused: {message}",
                request.action,
                spec.canary_id()
            ));
        }
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

fn who(request: &Request) -> &str {
    request.requested_by.as_deref().unwrap_or("an unknown user")
}

fn refusal(spec: &CanarySpec, action: &RequestAction, phase: Phase) -> String {
    let id = spec.canary_id();
    match (action, phase) {
        (RequestAction::Promote, _) => format!("{id} is {phase}: no analysis to promote"),
        (RequestAction::Abort, Phase::Promoting | Phase::Finalising) => {
            format!("{id} is {phase}: the promotion is under way")
        }
        (RequestAction::Abort, _) => format!("{id} is {phase}: no analysis to abort"),
        (RequestAction::Retry, Phase::Succeeded) => {
            format!("{id} is Succeeded: a succeeded analysis is not retried")
        }
        (RequestAction::Retry, _) => format!("{id} is {phase}: only a failed analysis is retried"),
        (RequestAction::Unreadable(err), _) => err.clone(),
    }
}
