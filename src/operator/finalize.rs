//! `revertOnDeletion`: the finalizer `finalizer.flagger.app`, and what
//! deleting such a Canary does (Flagger's `finalizer.go`): the canary's
//! actor writes `Terminating` (it is the status' one writer), the target gets
//! its replicas back, the apex Service its selector, a taken-over Istio
//! VirtualService its original spec, then the finalizer goes.

use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use serin_actors::events::Event;
use serin_actors::registry::RegistryError;

use super::bridge::{Context, key_of};
use crate::api::Canary;
use crate::api::canary::TargetKind;
use crate::k8s::{KubeClients, cache};

pub const FINALIZER: &str = "finalizer.flagger.app";

/// Adds the finalizer when `revertOnDeletion` is set, removes it when not.
pub async fn sync_finalizer(clients: &KubeClients, canary: &Canary) -> Result<(), kube::Error> {
    let has = canary.finalizers().iter().any(|f| f == FINALIZER);
    let wants = canary.spec.revert_on_deletion();
    if has == wants {
        return Ok(());
    }
    let mut finalizers: Vec<String> = canary
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    if wants {
        finalizers.push(FINALIZER.to_string());
    } else {
        tracing::info!(canary = %key_of(canary), "{} opting out, deleting finalizers", key_of(canary));
    }
    patch_finalizers(clients, canary, finalizers).await
}

/// A merge patch of the whole list, guarded by the resourceVersion so a
/// concurrent edit of the list is not lost.
async fn patch_finalizers(
    clients: &KubeClients,
    canary: &Canary,
    finalizers: Vec<String>,
) -> Result<(), kube::Error> {
    let api: Api<Canary> = Api::namespaced(
        clients.routine.clone(),
        &canary.namespace().unwrap_or_default(),
    );
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": canary.resource_version(),
        }
    });
    api.patch(
        &canary.name_any(),
        &PatchParams::default(),
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
}

/// The deletion flow; errors are logged and retried on the next watch event.
pub async fn run(ctx: &Context, canary: &Canary) {
    let key = key_of(canary);
    if let Err(err) = finalize(ctx, canary).await {
        tracing::warn!(canary = %key, error = %err, "finalizing failed, retrying on the next update");
        return;
    }
    tracing::info!(
        canary = %key,
        "Canary {key} has been successfully processed and marked for deletion"
    );
}

#[derive(Debug, thiserror::Error)]
enum FinalizeError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Terminate(RegistryError),
    #[error("{0}")]
    Workload(String),
    #[error("{0}")]
    Router(String),
}

async fn finalize(ctx: &Context, canary: &Canary) -> Result<(), FinalizeError> {
    let key = key_of(canary);
    match ctx.registry.terminate(&key).await {
        Ok(()) => {}
        // An invalid Canary has no actor, so nobody drove it: nothing to
        // record but the revert.
        Err(RegistryError::Unknown(_)) => {
            tracing::info!(canary = %key, "no actor to write Terminating (the canary was never driven)");
        }
        Err(err) => return Err(FinalizeError::Terminate(err)),
    }
    ctx.workload
        .finalize(canary)
        .await
        .map_err(|e| FinalizeError::Workload(e.to_string()))?;
    wait_for_target(ctx, canary).await;
    let provider = crate::canary_spec::provider_of(canary, &ctx.settings.mesh_provider);
    ctx.routers
        .finalize(canary, &provider)
        .await
        .map_err(FinalizeError::Router)?;
    let finalizers: Vec<String> = canary
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    // The object may have moved on since this event; use its latest version.
    let fresh = cache::get(&ctx.caches.canaries, &key.namespace, &key.name);
    let latest = fresh.as_deref().unwrap_or(canary);
    patch_finalizers(&ctx.clients, latest, finalizers).await?;
    publish(ctx, canary, format!("Terminated canary {key}")).await;
    Ok(())
}

async fn publish(ctx: &Context, canary: &Canary, message: String) {
    if let Err(err) = ctx.events.publish(canary, &Event::normal(message)).await {
        tracing::warn!(canary = %key_of(canary), error = %err, "event not recorded");
    }
}

/// Flagger waits for the target with backoff 3 s ×2, capped at the
/// analysis interval, 4 steps; a target still not ready is logged.
async fn wait_for_target(ctx: &Context, canary: &Canary) {
    let cap = canary.spec.analysis.interval();
    let mut delay = Duration::from_secs(3);
    for _ in 0..4 {
        if target_ready(ctx, canary) {
            return;
        }
        tokio::time::sleep(delay.min(cap)).await;
        delay *= 2;
    }
    tracing::warn!(canary = %key_of(canary), "canary not ready during finalizing");
}

fn target_ready(ctx: &Context, canary: &Canary) -> bool {
    let ns = canary.namespace().unwrap_or_default();
    let name = &canary.spec.target_ref.name;
    match canary.spec.target_ref.kind {
        TargetKind::Deployment => cache::get(&ctx.caches.deployments, &ns, name).is_none_or(|d| {
            let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let status = d.status.clone().unwrap_or_default();
            status.updated_replicas.unwrap_or(0) >= want
                && status.available_replicas.unwrap_or(0) >= want
        }),
        TargetKind::DaemonSet => cache::get(&ctx.caches.daemonsets, &ns, name).is_none_or(|d| {
            let status = d.status.clone().unwrap_or_default();
            status.updated_number_scheduled.unwrap_or(0) >= status.desired_number_scheduled
                && status.number_available.unwrap_or(0) >= status.desired_number_scheduled
        }),
        TargetKind::Service => true,
    }
}
