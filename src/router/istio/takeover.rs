//! A VirtualService that was there before the Canary: its spec is saved in
//! [`ORIGINAL`] when Serin first rewrites it (kubectl's last-applied, when
//! present, already holds it), and put back by `revertOnDeletion`.
//!
//! Unlike Flagger, the saved spec is never overwritten by a later drift fix
//! (Flagger's would then hold its own routes), and Serin's own
//! VirtualService (owned by the Canary) saves nothing.

use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

use super::IstioError;
use crate::api::Canary;
use crate::api::canary::key_of;
use crate::api::istio::VirtualService;
use crate::k8s::write::FIELD_MANAGER;
use crate::router::Names;
use crate::workload::patch::merge_diff;

pub const ORIGINAL: &str = "flagger.kubernetes.io/original-configuration";
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Whether a spec change to `vs` must save its original first: a user's
/// object with neither annotation.
pub fn keeps_no_original(vs: &VirtualService, canary: &Canary) -> bool {
    let uid = canary.metadata.uid.as_deref();
    let owned = vs
        .metadata
        .owner_references
        .iter()
        .flatten()
        .any(|o| Some(o.uid.as_str()) == uid);
    let annotations = vs.metadata.annotations.as_ref();
    let has = |key: &str| annotations.is_some_and(|a| a.contains_key(key));
    !owned && !has(LAST_APPLIED) && !has(ORIGINAL)
}

fn api(client: &kube::Client, ns: &str) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        ns,
        &ApiResource::erase::<VirtualService>(&()),
    )
}

fn get_error(name: &str, ns: &str, source: kube::Error) -> IstioError {
    IstioError::Get {
        kind: "VirtualService",
        name: name.to_string(),
        namespace: ns.to_string(),
        source: Box::new(source),
    }
}

/// Adds the object's spec, read whole from the API server (the cache keeps
/// only the fields Serin models), to `patch` as [`ORIGINAL`].
pub async fn save_original(
    client: &kube::Client,
    ns: &str,
    name: &str,
    patch: &mut Value,
) -> Result<(), IstioError> {
    let vs = api(client, ns)
        .get(name)
        .await
        .map_err(|source| get_error(name, ns, source))?;
    let spec = vs.data.get("spec").cloned().unwrap_or_else(|| json!({}));
    patch["metadata"]["annotations"][ORIGINAL] = Value::String(spec.to_string());
    Ok(())
}

/// The spec to give back: kubectl's last-applied object's, else the saved one.
fn stored_spec(
    annotations: &serde_json::Map<String, Value>,
) -> Result<Option<Value>, &'static str> {
    let text = |key: &str| annotations.get(key).and_then(Value::as_str);
    if let Some(applied) = text(LAST_APPLIED) {
        let object: Value = serde_json::from_str(applied).map_err(|_| LAST_APPLIED)?;
        return Ok(Some(
            object.get("spec").cloned().unwrap_or_else(|| json!({})),
        ));
    }
    match text(ORIGINAL) {
        Some(saved) => serde_json::from_str(saved).map(Some).map_err(|_| ORIGINAL),
        None => Ok(None),
    }
}

/// Flagger's `Finalize`: the VirtualService's spec back as it was before
/// Serin (and the saved copy removed). Nothing to do when it is gone or
/// was never a user's.
pub async fn revert(client: &kube::Client, canary: &Canary) -> Result<(), IstioError> {
    let ns = key_of(canary).namespace;
    let name = Names::of(canary).apex;
    let vs = match api(client, &ns).get(&name).await {
        Ok(vs) => vs,
        Err(kube::Error::Api(status)) if status.is_not_found() => return Ok(()),
        Err(source) => return Err(get_error(&name, &ns, source)),
    };
    let object = serde_json::to_value(&vs).unwrap_or_default();
    let annotations = object["metadata"]["annotations"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let stored = stored_spec(&annotations).map_err(|annotation| IstioError::Unmarshal {
        name: name.clone(),
        namespace: ns.clone(),
        annotation,
    })?;
    let Some(stored) = stored else {
        tracing::warn!(
            canary = %key_of(canary),
            "VirtualService {name}.{ns} original configuration not found, unable to revert"
        );
        return Ok(());
    };
    let mut patch = merge_diff(&json!({"spec": object["spec"]}), &json!({"spec": stored}))
        .unwrap_or_else(|| json!({}));
    if annotations.contains_key(ORIGINAL) {
        patch["metadata"] = json!({"annotations": {ORIGINAL: null}});
    }
    if patch.as_object().is_none_or(|p| p.is_empty()) {
        return Ok(());
    }
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    api(client, &ns)
        .patch(&name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|source| IstioError::Update {
            kind: "VirtualService",
            name: name.clone(),
            namespace: ns.clone(),
            source: Box::new(source),
        })?;
    tracing::info!(canary = %key_of(canary), "VirtualService {name}.{ns} reverted to its original configuration");
    Ok(())
}
