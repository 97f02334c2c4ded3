//! Resolving a metric's `templateRef`: the MetricTemplate from the cache, its
//! provider Secret with a GET (cached Secrets carry no data), and the provider.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use serin_actors::model::spec::TemplateRef;
use serin_actors::ports::PortError;
use tokio::time::Instant;

use crate::api::{MetricProviderType, MetricTemplate};
use crate::k8s::{Caches, cache};

use super::http::HttpClients;
use super::provider::{self, Credentials, Provider};

/// A template ready to run: its query and its provider.
pub struct Resolved {
    pub template: Arc<MetricTemplate>,
    pub provider: Box<dyn Provider>,
}

/// Why a template could not be resolved; worded per caller by [`Failure::text`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    Lookup(String),
    Secret { secret: String, error: String },
    Provider { kind: String, error: String },
}

/// Where a failure is reported: the tick's check events start with a capital
/// letter, the availability check's texts do not (as in Flagger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wording {
    Check,
    Availability,
}

impl Failure {
    pub fn text(&self, name: &str, namespace: &str, wording: Wording) -> String {
        let lead = match wording {
            Wording::Check => "Metric template",
            Wording::Availability => "metric template",
        };
        match self {
            Failure::Lookup(error) => format!("{lead} {name}.{namespace} error: {error}"),
            Failure::Secret { secret, error } => {
                format!("{lead} {name}.{namespace} secret {secret} error: {error}")
            }
            Failure::Provider { kind, error } => {
                format!("{lead} {name}.{namespace} provider {kind} error: {error}")
            }
        }
    }
}

/// The provider type as written in the CRD (`prometheus`, `datadog`, ...).
pub fn kind_name(kind: MetricProviderType) -> String {
    match serde_json::to_value(kind) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{kind:?}").to_lowercase(),
    }
}

/// The template's namespace: the reference's, else the Canary's.
pub fn namespace_of<'a>(reference: &'a TemplateRef, canary_namespace: &'a str) -> &'a str {
    reference
        .namespace
        .as_deref()
        .filter(|ns| !ns.is_empty())
        .unwrap_or(canary_namespace)
}

/// Looks the template up, reads its Secret and builds its provider.
/// `Ok(Err(_))` is a failure users see; `Err(_)` is the port's own failure.
pub async fn resolve(
    caches: &Caches,
    client: &kube::Client,
    http: &HttpClients,
    reference: &TemplateRef,
    namespace: &str,
    metric_interval: &str,
    deadline: Instant,
) -> Result<Result<Resolved, Failure>, PortError> {
    let Some(template) = cache::get(&caches.metric_templates, namespace, &reference.name) else {
        return Ok(Err(Failure::Lookup(format!(
            "metrictemplate.flagger.app \"{}\" not found",
            reference.name
        ))));
    };
    let spec = &template.spec.provider;
    let credentials = match &spec.secret_ref {
        None => None,
        Some(secret) => {
            let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
            let got = tokio::time::timeout_at(deadline, api.get(&secret.name))
                .await
                .map_err(|_| PortError::Timeout)?;
            match got {
                Ok(found) => Some(secret_data(&found)),
                Err(error) => {
                    return Ok(Err(Failure::Secret {
                        secret: secret.name.clone(),
                        error: kube_error_text(&error),
                    }));
                }
            }
        }
    };
    let kind = kind_name(spec.type_);
    let config = provider::Config {
        spec,
        metric_interval,
        credentials: Credentials(credentials.as_ref()),
        http,
        kube: client,
    };
    Ok(provider::build(&config)
        .map(|provider| Resolved {
            template: template.clone(),
            provider,
        })
        .map_err(|error| Failure::Provider { kind, error }))
}

fn secret_data(secret: &Secret) -> BTreeMap<String, Vec<u8>> {
    secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

/// The API server's message (`secrets "x" not found`), as client-go prints it.
pub fn kube_error_text(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) if !status.message.is_empty() => status.message.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_texts_follow_flagger() {
        let lookup = Failure::Lookup("metrictemplate.flagger.app \"latency\" not found".into());
        assert_eq!(
            lookup.text("latency", "test", Wording::Check),
            "Metric template latency.test error: metrictemplate.flagger.app \"latency\" not found"
        );
        let secret = Failure::Secret {
            secret: "prom-auth".into(),
            error: "secrets \"prom-auth\" not found".into(),
        };
        assert_eq!(
            secret.text("latency", "test", Wording::Availability),
            "metric template latency.test secret prom-auth error: secrets \"prom-auth\" not found"
        );
        assert_eq!(kind_name(MetricProviderType::Datadog), "datadog");
        let reference = TemplateRef {
            name: "x".into(),
            namespace: None,
        };
        assert_eq!(namespace_of(&reference, "test"), "test");
    }
}
