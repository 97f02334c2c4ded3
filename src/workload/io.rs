//! The few API requests the adapter makes: create, merge patch, replace,
//! GET. Every write names Serin as its field manager.

use std::fmt::Debug;

use k8s_openapi::NamespaceResourceScope;
use kube::api::Api;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::WorkloadError;

use crate::k8s::write::{self, post_params};

fn api<K>(client: &kube::Client, namespace: &str) -> Api<K>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(client.clone(), namespace)
}

fn is_status(err: &kube::Error, check: impl Fn(&kube::core::Status) -> bool) -> bool {
    matches!(err, kube::Error::Api(status) if check(status))
}

/// Creates the object; one that already exists (the cache lagged) is fine.
pub async fn create<K>(
    client: &kube::Client,
    namespace: &str,
    obj: &K,
    what: &str,
) -> Result<(), WorkloadError>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    match write::create(client, namespace, obj).await {
        Ok(true) => {
            tracing::info!("{what} created");
            Ok(())
        }
        Ok(false) => Ok(()),
        Err(err) => Err(WorkloadError::kube(format!("creating {what} failed"), err)),
    }
}

/// JSON merge patch.
pub async fn merge_patch<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    patch: &Value,
    what: &str,
) -> Result<(), WorkloadError>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
{
    write::merge_patch::<K>(client, namespace, name, patch)
        .await
        .map_err(|err| WorkloadError::kube(format!("updating {what} failed"), err))
}

/// Reads the full object (ConfigMap/Secret data is not in the cache).
pub async fn get_opt<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    what: &str,
) -> Result<Option<K>, WorkloadError>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned,
{
    api::<K>(client, namespace)
        .get_opt(name)
        .await
        .map_err(|err| WorkloadError::kube(format!("{what} get query error"), err))
}

/// Flagger's update-or-create for config copies: an unconditional replace,
/// or a create when the copy does not exist.
pub async fn replace_or_create<K>(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    obj: &K,
    what: &str,
) -> Result<(), WorkloadError>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned,
{
    match api::<K>(client, namespace)
        .replace(name, &post_params(), obj)
        .await
    {
        Ok(_) => {
            tracing::info!("{what} synced");
            Ok(())
        }
        Err(err) if is_status(&err, |s| s.is_not_found()) => {
            create(client, namespace, obj, what).await
        }
        Err(err) => Err(WorkloadError::kube(format!("updating {what} failed"), err)),
    }
}
