//! Whether the Canary CRD in the cluster is Serin's: Flagger's own prunes
//! Serin's status fields, and the command line's requests need
//! `status.lastRequest` to be answered once each.

use serde_json::Value;

/// The published schema of `flagger.app/v1beta1` (readable by any
/// authenticated user, no CRD permission needed).
const OPENAPI: &str = "/openapi/v3/apis/flagger.app/v1beta1";
const CANARY: &str = "app.flagger.v1beta1.Canary";

/// True unless the schema is read and lacks `status.lastRequest`: an
/// unreadable schema says nothing, and Serin's CRDs are the ones it ships.
pub async fn keeps_requests(client: &kube::Client) -> bool {
    let request = match http::Request::get(OPENAPI).body(Vec::new()) {
        Ok(request) => request,
        Err(_) => return true,
    };
    let keeps = match client.request::<Value>(request).await {
        Ok(doc) => schema_keeps_requests(&doc),
        Err(err) => {
            tracing::debug!(error = %err, "reading the Canary schema");
            None
        }
    };
    if keeps == Some(false) {
        tracing::warn!(
            "The Canary CRD in the cluster is not Serin's (its status has no lastRequest): \
             serin promote, abort and retry are ignored; install the CRDs of deploy/crds"
        );
    }
    keeps.unwrap_or(true)
}

/// `None` when the document does not describe the Canary's status.
pub fn schema_keeps_requests(doc: &Value) -> Option<bool> {
    let status = doc
        .get("components")?
        .get("schemas")?
        .get(CANARY)?
        .get("properties")?
        .get("status")?;
    let properties = status.get("properties")?;
    Some(properties.get("lastRequest").is_some())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(status: Value) -> Value {
        json!({"components": {"schemas": {CANARY: {"properties": {"status": status}}}}})
    }

    #[test]
    fn tells_serins_crd_from_flaggers() {
        let serins = doc(json!({"properties": {"phase": {}, "lastRequest": {}}}));
        let flaggers = doc(json!({"properties": {"phase": {}, "canaryWeight": {}}}));
        assert_eq!(schema_keeps_requests(&serins), Some(true));
        assert_eq!(schema_keeps_requests(&flaggers), Some(false));
        assert_eq!(schema_keeps_requests(&json!({"paths": {}})), None);
    }
}
