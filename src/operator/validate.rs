//! What makes a Canary impossible to drive, found before an actor starts:
//! each problem becomes one message for a Warning event and the status
//! condition, and the other canaries carry on.

use kube::{Resource, ResourceExt};
use serin_actors::model::spec::CanarySpec;

use crate::api::Canary;
use crate::api::canary::TargetKind;
use crate::api::duration::parse_duration;
use crate::canary_spec::canary_spec;
use crate::k8s::{Caches, cache};
use crate::router;
use crate::settings::Settings;

/// Checks a Canary and maps it to the core spec.
pub fn validate(
    canary: &Canary,
    caches: &Caches,
    settings: &Settings,
) -> Result<CanarySpec, String> {
    let spec = canary_spec(canary, &settings.mesh_provider).map_err(|e| e.to_string())?;
    durations(canary)?;
    if settings.no_cross_namespace_refs {
        cross_namespace(canary)?;
    }
    if !router::supported(&spec.provider) {
        return Err(router::unsupported(&spec.provider));
    }
    target(canary, caches)?;
    shared_target(canary, caches)?;
    Ok(spec)
}

fn durations(canary: &Canary) -> Result<(), String> {
    let analysis = &canary.spec.analysis;
    if let Some(interval) = analysis.interval.as_deref() {
        parse_duration(interval).map_err(|e| format!("analysis.interval {interval:?}: {e}"))?;
    }
    for metric in analysis.metrics() {
        if let Some(interval) = metric.interval.as_deref() {
            parse_duration(interval)
                .map_err(|e| format!("metric {} interval {interval:?}: {e}", metric.name))?;
        }
    }
    for hook in analysis.webhooks() {
        hook.timeout()
            .map_err(|e| format!("webhook {} timeout: {e}", hook.name))?;
    }
    Ok(())
}

/// Flagger's `verifyCanary` under `-no-cross-namespace-refs`.
fn cross_namespace(canary: &Canary) -> Result<(), String> {
    let ns = canary.namespace().unwrap_or_default();
    let foreign = |other: &Option<String>| other.as_deref().is_some_and(|o| o != ns);
    for metric in canary.spec.analysis.metrics() {
        if let Some(r) = &metric.template_ref
            && foreign(&r.namespace)
        {
            return Err(format!(
                "can't access metric template {}.{}, cross-namespace references are blocked",
                r.name,
                r.namespace.as_deref().unwrap_or_default()
            ));
        }
    }
    for alert in canary.spec.analysis.alerts() {
        let r = &alert.provider_ref;
        if foreign(&r.namespace) {
            return Err(format!(
                "can't access alert provider {}.{}, cross-namespace references are blocked",
                r.name,
                r.namespace.as_deref().unwrap_or_default()
            ));
        }
    }
    if let Some(r) = &canary.spec.upstream_ref
        && foreign(&r.namespace)
    {
        return Err(format!(
            "can't access gloo upstream {}.{}, cross-namespace references are blocked",
            r.name,
            r.namespace.as_deref().unwrap_or_default()
        ));
    }
    Ok(())
}

/// The target exists and is a kind this build drives.
fn target(canary: &Canary, caches: &Caches) -> Result<(), String> {
    let ns = canary.namespace().unwrap_or_default();
    let t = &canary.spec.target_ref;
    let found = match t.kind {
        TargetKind::Deployment => cache::get(&caches.deployments, &ns, &t.name).is_some(),
        TargetKind::DaemonSet => cache::get(&caches.daemonsets, &ns, &t.name).is_some(),
        TargetKind::Service => {
            return Err(format!(
                "target kind Service ({}) is not supported by this version of Serin",
                t.name
            ));
        }
    };
    if found {
        Ok(())
    } else {
        let resource = match t.kind {
            TargetKind::DaemonSet => "daemonsets.apps",
            _ => "deployments.apps",
        };
        Err(format!("{resource} \"{}\" not found", t.name))
    }
}

/// Flagger warns "Bad things will happen!" when two Canaries share a
/// target; Serin drives the oldest and refuses the others.
fn shared_target(canary: &Canary, caches: &Caches) -> Result<(), String> {
    let ns = canary.namespace().unwrap_or_default();
    let t = &canary.spec.target_ref;
    let mine = (canary.creation_timestamp(), canary.name_any());
    let older = caches.canaries.state().into_iter().find(|other| {
        other.namespace().as_deref() == Some(ns.as_str())
            && other.name_any() != canary.name_any()
            && other.spec.target_ref.kind == t.kind
            && other.spec.target_ref.name == t.name
            && other.meta().deletion_timestamp.is_none()
            && (other.creation_timestamp(), other.name_any()) < mine
    });
    match older {
        Some(other) => Err(format!(
            "target {} {}.{} is already driven by canary {}.{}",
            t.kind.as_str(),
            t.name,
            ns,
            other.name_any(),
            ns
        )),
        None => Ok(()),
    }
}
