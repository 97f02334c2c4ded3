//! The writes adapters share: create (an object that already exists because
//! the cache lagged is fine) and JSON merge patch, both naming Serin as the
//! field manager.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

pub const FIELD_MANAGER: &str = "serin";

/// Create/replace parameters naming Serin as the field manager.
pub fn post_params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(FIELD_MANAGER.to_string()),
    }
}

/// `Ok(true)` when created, `Ok(false)` when it already existed.
pub async fn create<K>(client: &kube::Client, namespace: &str, obj: &K) -> Result<bool, kube::Error>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    match api.create(&post_params(), obj).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(false),
        Err(err) => Err(err),
    }
}

pub async fn merge_patch<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    patch: &Value,
) -> Result<(), kube::Error>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
{
    let params = PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    };
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.patch(name, &params, &Patch::Merge(patch))
        .await
        .map(|_| ())
}
