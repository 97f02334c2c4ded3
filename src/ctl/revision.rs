//! Is a revision pending, one the operator has not picked up yet? Right
//! after `kubectl set image` the Canary may still read `Succeeded`; the
//! target's revision, hashed with the operator's own function, tells.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ConfigMap, PodSpec, Secret};
use kube::{Api, Client};

use crate::api::canary::CanaryStatus;
use crate::workload::config::{self, ConfigKind, Lookup};

use super::workloads::Workload;

/// The operator's rule (`revision_changed` in the core): the spec hash is
/// neither the last applied nor the last promoted one (going back to the
/// promoted spec starts no run), or nothing was applied yet.
pub fn spec_pending(spec_hash: &str, status: &CanaryStatus) -> bool {
    let applied = status.last_applied_spec.as_deref().unwrap_or_default();
    let promoted = status.last_promoted_spec.as_deref().unwrap_or_default();
    applied.is_empty() || (spec_hash != promoted && spec_hash != applied)
}

/// Tracked ConfigMaps and Secrets changed since the last sync. Only when
/// the status tracks some: an operator with config tracking off tracks
/// none, and a changed reference changes the spec hash anyway.
pub fn configs_pending(now: &BTreeMap<String, String>, status: &CanaryStatus) -> bool {
    match status.tracked_configs.as_ref() {
        Some(tracked) if !tracked.is_empty() => now != tracked,
        _ => false,
    }
}

/// Whether `target` holds a revision the status has not synced: its spec,
/// else (when the status tracks configs) the checksums of its configs.
pub async fn pending(
    client: &Client,
    namespace: &str,
    target: &Workload,
    status: &CanaryStatus,
) -> bool {
    if spec_pending(&target.spec_hash(), status) {
        return true;
    }
    if status
        .tracked_configs
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
    {
        return false;
    }
    let Some(pod) = target.template().and_then(|t| t.spec.as_ref()) else {
        return false;
    };
    match tracked_now(client, namespace, pod).await {
        Some(now) => configs_pending(&now, status),
        // Unreadable configs: the spec alone decides.
        None => false,
    }
}

/// `status.trackedConfigs` as the operator would compute it now; `None`
/// when a config can not be read or a mandatory one is missing.
async fn tracked_now(
    client: &Client,
    namespace: &str,
    pod: &PodSpec,
) -> Option<BTreeMap<String, String>> {
    let refs = config::referenced_configs(pod);
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut found = BTreeMap::new();
    for r in &refs {
        let lookup = match r.kind {
            ConfigKind::ConfigMap => {
                config::lookup_configmap(configmaps.get_opt(&r.name).await.ok()?.as_ref())
            }
            ConfigKind::Secret => {
                config::lookup_secret(secrets.get_opt(&r.name).await.ok()?.as_ref())
            }
        };
        found.insert(r.key(), lookup);
    }
    config::tracked_configs(&refs, namespace, |r| {
        found.get(&r.key()).cloned().unwrap_or(Lookup::Missing)
    })
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(applied: &str, promoted: &str) -> CanaryStatus {
        CanaryStatus {
            last_applied_spec: Some(applied.into()).filter(|s: &String| !s.is_empty()),
            last_promoted_spec: Some(promoted.into()).filter(|s: &String| !s.is_empty()),
            ..Default::default()
        }
    }

    #[test]
    fn the_operators_rule() {
        // Promoted and unchanged: idle.
        assert!(!spec_pending("a", &status("a", "a")));
        // kubectl set image: a new hash.
        assert!(spec_pending("b", &status("a", "a")));
        // A run of b is under way or failed: b is not new.
        assert!(!spec_pending("b", &status("b", "a")));
        // Back to the promoted spec after a failed b: no new run.
        assert!(!spec_pending("a", &status("b", "a")));
        // Nothing applied yet: the operator will initialise.
        assert!(spec_pending("a", &status("", "")));
    }

    #[test]
    fn configs_only_when_tracked() {
        let map =
            |v: &str| BTreeMap::from([("configmap/podinfo-config".to_string(), v.to_string())]);
        let mut s = status("a", "a");
        assert!(!configs_pending(&map("1"), &s), "tracking off");
        s.tracked_configs = Some(map("1"));
        assert!(!configs_pending(&map("1"), &s));
        assert!(configs_pending(&map("2"), &s));
    }
}
