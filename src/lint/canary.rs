//! The operator's checks of one Canary (`operator::validate` without the
//! cluster): the core spec mapping, durations, the router of its provider.

use std::sync::Arc;

use serin_actors::model::spec::MetricSource;

use super::document::Doc;
use super::report::Finding;
use crate::api::Canary;
use crate::api::canary::TargetKind;
use crate::api::duration::parse_duration;
use crate::canary_spec::{SpecError, canary_spec, provider_of};
use crate::router;

pub(crate) fn check(doc: &Doc, canary: &Canary, mesh_provider: &str, out: &mut Vec<Finding>) {
    let analysis = &canary.spec.analysis;
    match canary_spec(&Arc::new(canary.clone()), mesh_provider) {
        Ok(spec) => {
            for (i, metric) in spec.analysis.metrics.iter().enumerate() {
                if metric.source() == MetricSource::Unusable {
                    out.push(doc.error(
                        &format!("spec.analysis.metrics[{i}]"),
                        "neither a builtin metric (request-success-rate, request-duration), a query nor a templateRef: every check of it fails",
                    ));
                }
            }
        }
        Err(err) => {
            let field = match &err {
                SpecError::MissingName => "metadata.name".to_string(),
                SpecError::UnknownWebhookType { name, .. } => {
                    let i = analysis.webhooks().iter().position(|h| &h.name == name);
                    format!("spec.analysis.webhooks[{}].type", i.unwrap_or(0))
                }
            };
            out.push(doc.error(&field, err.to_string()));
        }
    }
    durations(doc, canary, out);
    mirror_ports(doc, canary, out);
    if canary.spec.target_ref.kind == TargetKind::Service {
        out.push(doc.warning(
            "spec.targetRef.kind",
            "target kind Service is not supported by this version of Serin; the operator refuses this Canary",
        ));
    }
    let provider = provider_of(canary, mesh_provider);
    if !router::supported(&provider) {
        let from = if canary.spec.provider.is_some() {
            ""
        } else {
            " (the mesh provider, as spec.provider is unset)"
        };
        out.push(doc.warning(
            "spec.provider",
            format!(
                "{}{from}; Flagger accepts it, the Serin operator refuses this Canary",
                router::unsupported(&provider)
            ),
        ));
    } else if let Err(message) = router::check(canary, &provider) {
        out.push(doc.error(router_field(&message), message));
    }
}

/// The intervals and timeouts the operator parses before it starts.
fn durations(doc: &Doc, canary: &Canary, out: &mut Vec<Finding>) {
    let analysis = &canary.spec.analysis;
    if let Some(interval) = analysis.interval.as_deref()
        && let Err(e) = parse_duration(interval)
    {
        out.push(doc.error("spec.analysis.interval", e.to_string()));
    }
    for (i, metric) in analysis.metrics().iter().enumerate() {
        if let Err(e) = metric.interval_duration() {
            out.push(doc.error(
                &format!("spec.analysis.metrics[{i}].interval"),
                e.to_string(),
            ));
        }
    }
    for (i, hook) in analysis.webhooks().iter().enumerate() {
        if let Err(e) = hook.timeout() {
            out.push(doc.error(
                &format!("spec.analysis.webhooks[{i}].timeout"),
                e.to_string(),
            ));
        }
    }
}

/// The CRD's one CEL rule (`x-kubernetes-validations`), which the schema
/// validator does not evaluate: the API server refuses a mirror to a
/// Service (the defaults: group "", kind Service) without a port.
fn mirror_ports(doc: &Doc, canary: &Canary, out: &mut Vec<Finding>) {
    let mirrors = canary
        .spec
        .service
        .iter()
        .flat_map(|s| s.mirror.iter().flatten());
    for (i, mirror) in mirrors.enumerate() {
        let backend = &mirror.backend_ref;
        let core = backend.group.as_deref().unwrap_or_default().is_empty();
        let service = backend.kind.as_deref().unwrap_or("Service") == "Service";
        if core && service && backend.port.is_none() {
            out.push(doc.error(
                &format!("spec.service.mirror[{i}].backendRef"),
                "Must have port for Service reference",
            ));
        }
    }
}

/// The field a router's refusal is about. `router::check` returns the
/// operator's message only, so this goes by its wording; `spec` otherwise.
fn router_field(message: &str) -> &'static str {
    const FIELDS: &[(&str, &str)] = &[
        ("cookie name", "spec.analysis.sessionAffinity"),
        ("GatewayRefs", "spec.service.gatewayRefs"),
        ("delegation", "spec.service.delegation"),
        ("suffix match", "spec.analysis.match"),
        ("request matching selectors", "spec.service.match"),
        ("canary interval", "spec.analysis.interval"),
    ];
    FIELDS
        .iter()
        .find(|(words, _)| message.contains(words))
        .map_or("spec", |(_, field)| field)
}
