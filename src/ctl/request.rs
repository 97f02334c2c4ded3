//! `serin promote|abort|retry NAME`: refuse what makes no sense, write the
//! `serin.dev/request` annotation (a JSON merge patch of the metadata,
//! nothing else), then wait for the operator's answer in
//! `status.lastRequest`.

use std::io::Write;

use futures::StreamExt;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;

use serin_actors::decision::requests::{Verdict, verdict};
use serin_actors::model::status::Phase;

use crate::api::canary::{Canary, REQUEST_ANNOTATION, Request, RequestAction, RequestStatus};
use crate::cli::RequestArgs;

use super::get::sleep_until;
use super::human::flag_duration;
use super::watch::{self, Observed, Watched};
use super::{CtlError, Exit, Outcome, canaries, connect};

/// The field manager of the client's writes.
pub const FIELD_MANAGER: &str = "serin";

/// Why `action` makes no sense for `canary` now, if it does not: the
/// operator's own rule (`serin_actors::decision::requests::verdict`), so
/// the command refuses before writing exactly what the operator would
/// refuse. What it would answer `Repeated` (a second promote, an abort of a
/// failed canary) goes through.
pub fn refusal(action: RequestAction, canary: &Canary) -> Option<String> {
    let name = canary.name_any();
    let key = format!("{name}.{}", canary.namespace().unwrap_or_default());
    if canary.spec.suspend() {
        return Some(format!("{key} is paused; run serin resume {name} first"));
    }
    let status = canary.status.as_ref();
    let phase = status.map(|s| s.phase()).unwrap_or_default();
    let last_action = status
        .and_then(|s| s.last_request.as_ref())
        .map(|last| last.action.as_str());
    let phase = Phase::parse(phase.as_str()).unwrap_or_default();
    match verdict(&key, &action.to_core(), phase, false, last_action) {
        Verdict::Refused(reason) => Some(reason),
        Verdict::Act | Verdict::Repeated(_) => None,
    }
}

/// The exit code of the operator's answer.
pub fn answer_exit(result: &str) -> Exit {
    match result {
        "Accepted" | "Repeated" => Exit::Ok,
        _ => Exit::Failed,
    }
}

/// The merge patch that writes `request`, and nothing else.
pub fn patch(request: &Request) -> Result<serde_json::Value, CtlError> {
    let value = serde_json::to_string(request).map_err(|e| CtlError::Encode(e.to_string()))?;
    Ok(json!({ "metadata": { "annotations": { REQUEST_ANNOTATION: value } } }))
}

/// Who the API server says the caller is; `None` when it will not say.
async fn whoami(client: &Client) -> Option<String> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .ok()?;
    review.status?.user_info?.username
}

pub async fn run(
    action: RequestAction,
    args: &RequestArgs,
    out: &mut dyn Write,
) -> Result<Outcome, CtlError> {
    let session = connect::connect(&args.connection).await?;
    let canary = canaries::get(&session, &args.name).await?;
    if let Some(reason) = refusal(action, &canary) {
        return Ok(Outcome::with(Exit::Failed, reason));
    }
    let request = Request {
        id: uuid::Uuid::new_v4().to_string(),
        action,
        requested_by: whoami(&session.client).await,
    };
    // The answer is read from the Canary's state, not from a transition,
    // so it cannot slip by between the write and the watch's first list.
    let watched = Watched {
        events: false,
        primary: false,
        target: false,
    };
    let mut changes = watch::changes(&session, &args.name, &canary.spec.target_ref, watched);
    let api: Api<Canary> = Api::namespaced(session.client.clone(), &session.namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..Default::default()
    };
    api.patch(&args.name, &params, &Patch::Merge(patch(&request)?))
        .await?;
    let deadline = tokio::time::Instant::now() + args.wait;
    let mut observed = Observed::default();
    loop {
        tokio::select! {
            change = changes.next() => match change {
                Some(change) => observed.apply(change),
                None => break,
            },
            () = sleep_until(Some(deadline)) => break,
        }
        if let Some(answer) = answered(&observed, &request.id) {
            writeln!(out, "{}", answer.message)?;
            return Ok(Outcome {
                exit: answer_exit(&answer.result),
                message: None,
            });
        }
    }
    Ok(Outcome::with(
        Exit::Timeout,
        format!(
            "no answer from the operator in {}; is it running?",
            flag_duration(args.wait)
        ),
    ))
}

/// The operator's answer to request `id`, once written.
fn answered<'a>(observed: &'a Observed, id: &str) -> Option<&'a RequestStatus> {
    observed
        .canary
        .as_ref()?
        .status
        .as_ref()?
        .last_request
        .as_ref()
        .filter(|r| r.id == id)
}

#[cfg(test)]
mod tests;
