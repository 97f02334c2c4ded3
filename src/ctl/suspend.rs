//! `serin pause|resume NAME`: Flagger's `spec.suspend`, as a JSON merge
//! patch.

use std::io::Write;

use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

use crate::api::canary::Canary;
use crate::cli::NameArgs;

use super::request::FIELD_MANAGER;
use super::{CtlError, Outcome, canaries, connect};

/// What to print when the canary already is as asked, else `None`.
pub fn already(key: &str, suspended: bool, pause: bool) -> Option<String> {
    match (suspended, pause) {
        (true, true) => Some(format!("{key} is already paused")),
        (false, false) => Some(format!("{key} is not paused")),
        _ => None,
    }
}

pub async fn run(args: &NameArgs, pause: bool, out: &mut dyn Write) -> Result<Outcome, CtlError> {
    let session = connect::connect(&args.connection).await?;
    let canary = canaries::get(&session, &args.name).await?;
    let key = format!("{}.{}", args.name, session.namespace);
    if let Some(message) = already(&key, canary.spec.suspend(), pause) {
        writeln!(out, "{message}")?;
        return Ok(Outcome::ok());
    }
    let api: Api<Canary> = Api::namespaced(session.client.clone(), &session.namespace);
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..Default::default()
    };
    api.patch(
        &args.name,
        &params,
        &Patch::Merge(json!({ "spec": { "suspend": pause } })),
    )
    .await?;
    let done = if pause { "paused" } else { "resumed" };
    writeln!(out, "{key} {done}")?;
    Ok(Outcome::ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twice_is_harmless() {
        assert_eq!(
            already("podinfo.test", true, true).as_deref(),
            Some("podinfo.test is already paused")
        );
        assert_eq!(
            already("podinfo.test", false, false).as_deref(),
            Some("podinfo.test is not paused")
        );
        assert_eq!(already("podinfo.test", false, true), None);
        assert_eq!(already("podinfo.test", true, false), None);
    }
}
