//! Reads of Canaries, typed and as the API server returns them.

use kube::Api;
use kube::api::{ApiResource, DynamicObject, ListParams};
use serde_json::Value;

use crate::api::canary::Canary;

use super::{CtlError, Session};

fn resource() -> ApiResource {
    ApiResource::erase::<Canary>(&())
}

/// The Canary as JSON, exactly as served (fields Serin does not know kept).
fn raw(object: DynamicObject) -> Result<Value, CtlError> {
    let mut value = serde_json::to_value(object).map_err(|e| CtlError::Encode(e.to_string()))?;
    // List items may come without their type; kubectl prints it.
    if value.get("apiVersion").is_none() {
        value["apiVersion"] = Value::from("flagger.app/v1beta1");
    }
    if value.get("kind").is_none() {
        value["kind"] = Value::from("Canary");
    }
    Ok(value)
}

/// The typed Canary of a raw one.
pub fn typed(value: &Value) -> Result<Canary, CtlError> {
    Ok(crate::api::from_value(value.clone())?)
}

/// One Canary, raw; `NotFound` names it.
pub async fn get_raw(session: &Session, name: &str) -> Result<Value, CtlError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(session.client.clone(), &session.namespace, &resource());
    match api.get_opt(name).await? {
        Some(object) => raw(object),
        None => Err(CtlError::NotFound {
            name: name.to_string(),
            namespace: session.namespace.clone(),
        }),
    }
}

/// One Canary, typed.
pub async fn get(session: &Session, name: &str) -> Result<Canary, CtlError> {
    typed(&get_raw(session, name).await?)
}

/// The Canaries of the session's namespace, or of all namespaces, raw.
pub async fn list_raw(session: &Session, all_namespaces: bool) -> Result<Vec<Value>, CtlError> {
    let api: Api<DynamicObject> = if all_namespaces {
        Api::all_with(session.client.clone(), &resource())
    } else {
        Api::namespaced_with(session.client.clone(), &session.namespace, &resource())
    };
    api.list(&ListParams::default())
        .await?
        .items
        .into_iter()
        .map(raw)
        .collect()
}
