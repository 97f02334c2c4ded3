//! A `Canary` resource turned into the core's [`serin_actors::CanarySpec`]:
//! the one place where the Kubernetes shape meets the decision logic.

use kube::ResourceExt;
use serde::Serialize;
use std::sync::Arc;

use serin_actors::model::request as req;
use serin_actors::model::source::Source;
use serin_actors::model::spec as core;

use crate::api::Canary;
use crate::api::canary::{
    AbMatch, CanaryMetric, CanaryWebhook, HeaderMatch, REQUEST_ANNOTATION, Request, StringMatch,
};

/// Why a Canary cannot be driven.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum SpecError {
    #[error("canary has no name")]
    MissingName,
    #[error("webhook {name} has an unknown type {value:?}")]
    UnknownWebhookType { name: String, value: String },
}

/// The Canary's provider: `spec.provider`, else `-mesh-provider`.
pub fn provider_of(canary: &Canary, mesh_provider: &str) -> String {
    canary
        .spec
        .provider
        .as_ref()
        .map(wire_str)
        .unwrap_or_else(|| mesh_provider.to_string())
}

/// Builds the core spec; `mesh_provider` is the `-mesh-provider` flag, used
/// when the Canary sets no `spec.provider`.
pub fn canary_spec(
    canary: &Arc<Canary>,
    mesh_provider: &str,
) -> Result<core::CanarySpec, SpecError> {
    let name = canary.metadata.name.clone().ok_or(SpecError::MissingName)?;
    let namespace = canary
        .metadata
        .namespace
        .clone()
        .unwrap_or_else(|| "default".to_string());
    let spec = &canary.spec;
    let provider = provider_of(canary, mesh_provider);
    let a = &spec.analysis;
    let session_affinity = session_affinity(a.session_affinity.as_ref(), &provider);
    let webhooks = a
        .webhooks
        .iter()
        .flatten()
        .map(webhook)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(core::CanarySpec {
        name,
        namespace,
        target: core::TargetRef {
            kind: wire_str(&spec.target_ref.kind),
            name: spec.target_ref.name.clone(),
        },
        metrics_provider: provider.clone(),
        provider,
        analysis: core::AnalysisSpec {
            interval: a.interval.clone().unwrap_or_default(),
            threshold: a.threshold.unwrap_or(0),
            max_weight: a.max_weight.unwrap_or(0),
            step_weight: a.step_weight.unwrap_or(0),
            step_weights: a.step_weights.clone().unwrap_or_default(),
            step_weight_promotion: a.step_weight_promotion.unwrap_or(0),
            iterations: a.iterations.unwrap_or(0),
            mirror: a.mirror.unwrap_or(false),
            mirror_weight: a.mirror_weight.unwrap_or(0),
            match_conditions: a.r#match.iter().flatten().map(request_match).collect(),
            session_affinity,
            metrics: a.metrics.iter().flatten().map(metric).collect(),
            webhooks,
            alerts: a
                .alerts
                .iter()
                .flatten()
                .map(|alert| core::AlertRef {
                    name: alert.name.clone(),
                    severity: alert.severity.as_ref().map(wire_str).unwrap_or_default(),
                    provider_name: alert.provider_ref.name.clone(),
                    provider_namespace: alert.provider_ref.namespace.clone(),
                })
                .collect(),
        },
        progress_deadline_seconds: spec.progress_deadline_seconds,
        skip_analysis: spec.skip_analysis.unwrap_or(false),
        suspend: spec.suspend.unwrap_or(false),
        request: request(canary),
        source: Source::new(canary.metadata.generation.unwrap_or(0), canary.clone()),
    })
}

/// The command line's request annotation; an unreadable one is still a
/// request (keyed by its text), which the canary's actor refuses, saying why.
fn request(canary: &Canary) -> Option<req::Request> {
    let raw = canary.annotations().get(REQUEST_ANNOTATION)?;
    Some(match Request::of(canary.annotations()) {
        Ok(Some(request)) => req::Request {
            id: request.id,
            action: request.action.to_core(),
            requested_by: request.requested_by.filter(|by| !by.is_empty()),
        },
        Ok(None) | Err(_) => req::Request {
            id: raw.clone(),
            action: req::RequestAction::Unreadable(format!(
                "annotation {REQUEST_ANNOTATION} is not a request: {raw:?}"
            )),
            requested_by: None,
        },
    })
}

/// The string a unit enum is written as in a manifest.
fn wire_str<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn webhook(hook: &CanaryWebhook) -> Result<core::WebhookSpec, SpecError> {
    let value = hook.type_.as_ref().map(wire_str).unwrap_or_default();
    let hook_type = core::HookType::parse(&value).ok_or_else(|| SpecError::UnknownWebhookType {
        name: hook.name.clone(),
        value: value.clone(),
    })?;
    Ok(core::WebhookSpec {
        name: hook.name.clone(),
        hook_type,
        url: hook.url.clone(),
        timeout: hook.timeout.clone().unwrap_or_default(),
        retries: hook.retries.unwrap_or(0),
        mute_alert: hook.mute_alert.unwrap_or(false),
        disable_tls: hook.disable_tls.unwrap_or(false),
        metadata: hook.metadata.clone().unwrap_or_default(),
    })
}

fn metric(m: &CanaryMetric) -> core::MetricSpec {
    core::MetricSpec {
        name: m.name.clone(),
        interval: m.interval.clone().unwrap_or_default(),
        threshold_range: m.threshold_range.as_ref().map(|r| core::ThresholdRange {
            min: r.min,
            max: r.max,
        }),
        threshold: m.threshold.unwrap_or(0.0),
        query: m.query.clone().unwrap_or_default(),
        template_ref: m.template_ref.as_ref().map(|t| core::TemplateRef {
            name: t.name.clone(),
            namespace: t.namespace.clone(),
        }),
        template_variables: m.template_variables.clone().unwrap_or_default(),
    }
}

fn request_match(m: &AbMatch) -> core::RequestMatch {
    core::RequestMatch {
        headers: m
            .headers
            .iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), header_match(v)?)))
            .collect(),
        query_params: m
            .query_params
            .iter()
            .flatten()
            .filter_map(|(k, v)| Some((k.clone(), string_match(v)?)))
            .collect(),
        source_labels: m.source_labels.clone().unwrap_or_default(),
    }
}

fn header_match(h: &HeaderMatch) -> Option<core::StringMatch> {
    // The CRD's oneOf allows exactly one of these.
    h.exact
        .clone()
        .map(core::StringMatch::Exact)
        .or_else(|| h.prefix.clone().map(core::StringMatch::Prefix))
        .or_else(|| h.suffix.clone().map(core::StringMatch::Suffix))
        .or_else(|| h.regex.clone().map(core::StringMatch::Regex))
}

fn string_match(s: &StringMatch) -> Option<core::StringMatch> {
    s.exact
        .clone()
        .map(core::StringMatch::Exact)
        .or_else(|| s.prefix.clone().map(core::StringMatch::Prefix))
        .or_else(|| s.regex.clone().map(core::StringMatch::Regex))
}

/// The cookies the core keeps for `analysis.sessionAffinity`, for the
/// routers that use them as Flagger's do: Istio and Gateway API (whose
/// `v1beta1` router has no primary cookie). Other providers ignore it, and
/// their Canaries' status gets no cookie.
fn session_affinity(
    affinity: Option<&crate::api::canary::SessionAffinity>,
    provider: &str,
) -> Option<core::SessionAffinity> {
    let affinity = affinity?;
    let primary = provider == "istio"
        || crate::router::gateway_api::Version::of(provider)
            == Some(crate::router::gateway_api::Version::V1);
    let cookies = primary || crate::router::gateway_api::Version::of(provider).is_some();
    cookies.then(|| core::SessionAffinity {
        cookie_name: affinity.cookie_name.clone(),
        primary_cookie_name: affinity
            .primary_cookie_name
            .clone()
            .filter(|n| primary && !n.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::from_yaml_str;

    fn shared_canaries() -> Vec<(String, Canary)> {
        let dir = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../shared/flagger-compat/manifests"
        );
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            if text.lines().any(|l| l == "kind: Canary") {
                out.push((
                    path.display().to_string(),
                    from_yaml_str::<Canary>(&text).unwrap(),
                ));
            }
        }
        out
    }

    #[test]
    fn every_shared_canary_becomes_a_core_spec() {
        let canaries = shared_canaries();
        assert!(canaries.len() > 10, "expected the shared Canary manifests");
        for (file, canary) in canaries {
            let spec = canary_spec(&Arc::new(canary.clone()), "nginx")
                .unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(spec.name, canary.metadata.name.clone().unwrap(), "{file}");
            assert_eq!(spec.target.name, canary.spec.target_ref.name, "{file}");
            assert_eq!(
                spec.analysis.webhooks.len(),
                canary.spec.analysis.webhooks.as_ref().map_or(0, Vec::len)
            );
            assert_eq!(
                spec.analysis.metrics.len(),
                canary.spec.analysis.metrics.as_ref().map_or(0, Vec::len)
            );
        }
    }

    #[test]
    fn session_cookies_only_for_routers_that_keep_them() {
        let (_, canary) = shared_canaries()
            .into_iter()
            .find(|(_, c)| c.spec.analysis.session_affinity.is_some())
            .unwrap();
        let mut canary = canary;
        canary.spec.provider = None;
        if let Some(a) = canary.spec.analysis.session_affinity.as_mut() {
            a.primary_cookie_name = Some("primary".into());
        }
        let canary = Arc::new(canary);
        let affinity = |mesh: &str| {
            canary_spec(&canary, mesh)
                .unwrap()
                .analysis
                .session_affinity
        };
        let v1 = affinity("gatewayapi:v1").unwrap();
        assert_eq!(v1.primary_cookie_name.as_deref(), Some("primary"));
        assert_eq!(affinity("istio").unwrap(), v1);
        let beta = affinity("gatewayapi:v1beta1").unwrap();
        assert_eq!(beta.cookie_name, v1.cookie_name);
        assert_eq!(beta.primary_cookie_name, None);
        assert_eq!(affinity("nginx"), None);
        assert_eq!(affinity("linkerd"), None);
    }

    #[test]
    fn nginx_tutorial_canary_maps_its_analysis() {
        let (_, canary) = shared_canaries()
            .into_iter()
            .find(|(f, _)| f.contains("nginx-progressive-delivery--canary-podinfo"))
            .unwrap();
        let spec = canary_spec(&Arc::new(canary.clone()), "kubernetes").unwrap();
        assert_eq!(spec.provider, "nginx");
        assert_eq!(spec.target.kind, "Deployment");
        assert_eq!(spec.analysis.max_weight(), 50);
        assert_eq!(spec.analysis.step_weight, 5);
        assert_eq!(spec.analysis.strategy(), core::Strategy::Canary);
        let hooks: Vec<_> = spec
            .analysis
            .webhooks
            .iter()
            .map(|w| (w.name.as_str(), w.hook_type))
            .collect();
        assert_eq!(
            hooks,
            [
                ("acceptance-test", core::HookType::PreRollout),
                ("load-test", core::HookType::Rollout)
            ]
        );
    }

    #[test]
    fn mesh_provider_applies_when_the_canary_names_none() {
        let (_, mut canary) = shared_canaries().into_iter().next().unwrap();
        canary.spec.provider = None;
        assert_eq!(
            canary_spec(&Arc::new(canary.clone()), "kubernetes")
                .unwrap()
                .provider,
            "kubernetes"
        );
    }
}
