//! The metrics adapter: builtin metrics through the observer queries, inline
//! PromQL, and MetricTemplates, answering the core's [`MetricsPort`] with the
//! values and texts Flagger's scheduler would produce.

pub mod cloudwatch;
pub mod datadog;
pub mod dynatrace;
pub mod externalmetrics;
#[cfg(test)]
pub mod fake;
pub mod gojson;
pub mod graphite;
pub mod http;
pub mod influxdb;
pub mod keptn;
pub mod newrelic;
pub mod observers;
pub mod prometheus;
pub mod provider;
pub mod render;
pub mod splunk;
pub mod stackdriver;
pub mod template;

use std::sync::Arc;

use futures::FutureExt;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use serin_actors::model::observe::MetricAnswer;
use serin_actors::model::source::Source;
use serin_actors::model::spec::{Builtin, MetricSource, MetricSpec};
use serin_actors::ports::{CanaryKey, MetricQuery, MetricsPort, PortError, PortFuture};
use tokio::time::Instant;

use crate::api::Canary;
use crate::k8s::Caches;
use crate::settings::Settings;
use crate::telemetry::Recorder;

use http::HttpClients;
use observers::{Observer, metrics_provider};
use prometheus::{Prometheus, PrometheusConfig};
use provider::QueryError;
use render::{Model, render};
use template::Wording;

/// Serves [`MetricsPort`] from the watch caches, Prometheus and the API server.
#[derive(Clone)]
pub struct MetricsAdapter {
    inner: Arc<Inner>,
}

struct Inner {
    client: kube::Client,
    caches: Caches,
    settings: Arc<Settings>,
    recorder: Option<Recorder>,
    http: HttpClients,
}

impl MetricsAdapter {
    pub fn new(
        client: kube::Client,
        caches: Caches,
        settings: Arc<Settings>,
        recorder: Option<Recorder>,
    ) -> MetricsAdapter {
        MetricsAdapter {
            inner: Arc::new(Inner {
                client,
                caches,
                settings,
                recorder,
                http: HttpClients::new(),
            }),
        }
    }
}

impl MetricsPort for MetricsAdapter {
    fn check(&self, query: &MetricQuery, deadline: Instant) -> PortFuture<MetricAnswer> {
        let (inner, query) = (self.inner.clone(), query.clone());
        async move { inner.check(&query, deadline).await }.boxed()
    }

    fn providers_available(
        &self,
        key: &CanaryKey,
        source: &Source,
        metrics: &[MetricSpec],
        deadline: Instant,
    ) -> PortFuture<Result<(), String>> {
        let (inner, key, metrics) = (self.inner.clone(), key.clone(), metrics.to_vec());
        let source = source.clone();
        async move {
            inner
                .providers_available(&key, &source, &metrics, deadline)
                .await
        }
        .boxed()
    }
}

/// `{{ target }}`, `{{ service }}`, `{{ ingress }}` and `{{ route }}` of a
/// Canary: the target's name unless the Canary names its own (a Knative
/// route becomes the latest revision when queried). `serin lint` renders
/// templates with the same model.
pub fn target_names(canary: &Canary, model: &mut Model) {
    let spec = &canary.spec;
    let target = spec.target_ref.name.clone();
    let or_target = |name: Option<&String>| {
        name.filter(|n| !n.is_empty())
            .cloned()
            .unwrap_or_else(|| target.clone())
    };
    model.service = or_target(spec.service.as_ref().and_then(|s| s.name.as_ref()));
    model.ingress = or_target(spec.ingress_ref.as_ref().map(|r| &r.name));
    model.route = or_target(spec.route_ref.as_ref().map(|r| &r.name));
    model.target = target;
}

/// What the queries need to know about one Canary.
struct View {
    model: Model,
    /// `spec.metricsServer`, else `-metrics-server`.
    metrics_server: String,
    /// Flagger's metrics provider name (`nginx`, `istio:service`, ...).
    provider: String,
    knative: bool,
}

fn is_builtin(metric: &MetricSpec) -> bool {
    matches!(
        metric.name.as_str(),
        "request-success-rate" | "request-duration"
    )
}

impl Inner {
    /// The Canary the step decided on; without it, what the query says.
    fn view(&self, key: &CanaryKey, source: &Source, query: Option<&MetricQuery>) -> View {
        let target = query.map(|q| q.target.name.clone()).unwrap_or_default();
        let mut view = View {
            model: Model {
                name: key.name.clone(),
                namespace: key.namespace.clone(),
                service: target.clone(),
                ingress: target.clone(),
                route: target.clone(),
                target,
                ..Model::default()
            },
            metrics_server: self.settings.metrics_server.clone(),
            provider: query.map(|q| q.provider.clone()).unwrap_or_default(),
            knative: false,
        };
        let Some(canary) = source.get::<Canary>() else {
            return view;
        };
        let spec = &canary.spec;
        target_names(&canary, &mut view.model);
        if let Some(server) = spec.metrics_server.as_ref().filter(|s| !s.is_empty()) {
            view.metrics_server = server.clone();
        }
        view.knative = spec.target_ref.is_knative_service();
        let provider = spec.provider.as_ref().map(wire_str);
        let service_target = spec.target_ref.kind == crate::api::canary::TargetKind::Service;
        view.provider = metrics_provider(
            provider.as_deref(),
            &self.settings.mesh_provider,
            service_target && !view.knative,
        );
        view
    }

    /// Knative routes metrics by revision: `{{ route }}` is the Service's
    /// latest created revision, read with a GET.
    async fn knative_route(&self, view: &mut View, deadline: Instant) -> Result<(), PortError> {
        if !view.knative {
            return Ok(());
        }
        let gvk = GroupVersionKind::gvk("serving.knative.dev", "v1", "Service");
        let resource = ApiResource::from_gvk(&gvk);
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &view.model.namespace, &resource);
        let got = tokio::time::timeout_at(deadline, api.get(&view.model.target))
            .await
            .map_err(|_| PortError::Timeout)?;
        match got {
            Ok(service) => {
                if let Some(revision) = service
                    .data
                    .pointer("/status/latestCreatedRevisionName")
                    .and_then(|v| v.as_str())
                    .filter(|r| !r.is_empty())
                {
                    view.model.route = revision.to_owned();
                }
            }
            Err(error) => tracing::warn!(
                canary = %format!("{}.{}", view.model.name, view.model.namespace),
                error = %template::kube_error_text(&error),
                "reading the Knative service's latest revision failed; using the target name"
            ),
        }
        Ok(())
    }

    async fn check(
        &self,
        query: &MetricQuery,
        deadline: Instant,
    ) -> Result<MetricAnswer, PortError> {
        let mut view = self.view(&query.key, &query.source, Some(query));
        let metric = &query.metric;
        view.model.interval = metric.interval_or_default().to_owned();
        view.model.variables = metric.template_variables.clone();
        let answer = match metric.source() {
            MetricSource::Builtin(builtin) => {
                self.knative_route(&mut view, deadline).await?;
                self.builtin(&view, builtin, deadline).await?
            }
            MetricSource::Inline => self.inline(&view, &metric.query, deadline).await?,
            MetricSource::Template => {
                self.knative_route(&mut view, deadline).await?;
                self.template(&view, metric, deadline).await?
            }
            MetricSource::Unusable => MetricAnswer::TemplateError(
                "Metric query failed for no usable metrics template and query were configured"
                    .to_owned(),
            ),
        };
        if let (Some(recorder), MetricAnswer::Value(value)) = (&self.recorder, &answer) {
            // Flagger records durations in seconds of whole milliseconds.
            let recorded = match metric.source() {
                MetricSource::Builtin(Builtin::Duration) => value.trunc() / 1000.0,
                _ => *value,
            };
            recorder.set_metric_analysis(
                &view.model.target,
                &view.model.namespace,
                &metric.name,
                recorded,
            );
        }
        Ok(answer)
    }

    /// The Prometheus behind builtin and inline metrics; `Err` is Flagger's
    /// `Error building Prometheus client` text.
    fn builtin_prometheus(&self, view: &View) -> Result<Prometheus, String> {
        let config = PrometheusConfig {
            address: &view.metrics_server,
            ..PrometheusConfig::default()
        };
        Prometheus::new(&config, &self.http).map_err(|e| {
            format!(
                "Error building Prometheus client for {} {e}",
                view.metrics_server
            )
        })
    }

    async fn builtin(
        &self,
        view: &View,
        builtin: Builtin,
        deadline: Instant,
    ) -> Result<MetricAnswer, PortError> {
        let prometheus = match self.builtin_prometheus(view) {
            Ok(p) => p,
            Err(text) => return Ok(MetricAnswer::TemplateError(text)),
        };
        let observer = Observer::for_provider(&view.provider);
        let model = observer.model(view.model.clone());
        let promql = match render(observer.query(builtin), &model) {
            Ok(q) => q,
            Err(e) => {
                return Ok(MetricAnswer::QueryFailed(format!(
                    "rendering query failed: {e}"
                )));
            }
        };
        let prefix = observer.error_prefix(builtin);
        Ok(match prometheus.run_query(&promql, deadline).await {
            Ok(v) if builtin == Builtin::Duration => MetricAnswer::Value(observer.duration_ms(v)),
            Ok(v) => MetricAnswer::Value(v),
            Err(QueryError::NoValues(e)) => MetricAnswer::NoValues(format!("{prefix}{e}")),
            Err(QueryError::Failed(e)) => MetricAnswer::QueryFailed(format!("{prefix}{e}")),
            Err(QueryError::Throttled(e)) => return Err(PortError::Throttled(e)),
            Err(QueryError::Deadline) => return Err(PortError::Timeout),
        })
    }

    /// Deprecated inline PromQL: sent as written, not rendered.
    async fn inline(
        &self,
        view: &View,
        promql: &str,
        deadline: Instant,
    ) -> Result<MetricAnswer, PortError> {
        let prometheus = match self.builtin_prometheus(view) {
            Ok(p) => p,
            Err(text) => return Ok(MetricAnswer::TemplateError(text)),
        };
        answer(prometheus.run_query(promql, deadline).await)
    }

    async fn template(
        &self,
        view: &View,
        metric: &MetricSpec,
        deadline: Instant,
    ) -> Result<MetricAnswer, PortError> {
        let Some(reference) = &metric.template_ref else {
            return Ok(MetricAnswer::TemplateError(
                "Metric query failed for no usable metrics template and query were configured"
                    .to_owned(),
            ));
        };
        let namespace = template::namespace_of(reference, &view.model.namespace);
        let resolved = match template::resolve(
            &self.caches,
            &self.client,
            &self.http,
            reference,
            namespace,
            metric.interval_or_default(),
            deadline,
        )
        .await?
        {
            Ok(r) => r,
            Err(failure) => {
                return Ok(MetricAnswer::TemplateError(failure.text(
                    &reference.name,
                    namespace,
                    Wording::Check,
                )));
            }
        };
        let query = match render(&resolved.template.spec.query, &view.model) {
            Ok(q) => q,
            Err(e) => {
                return Ok(MetricAnswer::TemplateError(format!(
                    "Metric template {}.{namespace} query render error: {e}",
                    reference.name
                )));
            }
        };
        answer(resolved.provider.run_query(&query, deadline).await)
    }

    async fn providers_available(
        &self,
        key: &CanaryKey,
        source: &Source,
        metrics: &[MetricSpec],
        deadline: Instant,
    ) -> Result<Result<(), String>, PortError> {
        let view = self.view(key, source, None);
        let mut builtin_online = false;
        for metric in metrics {
            // Flagger checks only builtin names and templates, not inline queries.
            if is_builtin(metric) {
                if builtin_online {
                    continue;
                }
                let prometheus = match self.builtin_prometheus(&view) {
                    Ok(p) => p,
                    Err(text) => return Ok(Err(lowercase_first(&text))),
                };
                match prometheus.is_online(deadline).await {
                    Ok(()) => builtin_online = true,
                    Err(QueryError::Deadline) => return Err(PortError::Timeout),
                    Err(QueryError::Throttled(e)) => return Err(PortError::Throttled(e)),
                    Err(e) => return Ok(Err(format!("prometheus not avaiable: {e}"))),
                }
                continue;
            }
            let Some(reference) = &metric.template_ref else {
                continue;
            };
            let namespace = template::namespace_of(reference, &view.model.namespace);
            let resolved = match template::resolve(
                &self.caches,
                &self.client,
                &self.http,
                reference,
                namespace,
                metric.interval_or_default(),
                deadline,
            )
            .await?
            {
                Ok(r) => r,
                Err(failure) => {
                    return Ok(Err(failure.text(
                        &reference.name,
                        namespace,
                        Wording::Availability,
                    )));
                }
            };
            match resolved.provider.is_online(deadline).await {
                Ok(()) => {}
                Err(QueryError::Deadline) => return Err(PortError::Timeout),
                Err(QueryError::Throttled(e)) => return Err(PortError::Throttled(e)),
                Err(e) => {
                    let kind = template::kind_name(resolved.template.spec.provider.type_);
                    let name = resolved.template.metadata.name.clone().unwrap_or_default();
                    let ns = resolved
                        .template
                        .metadata
                        .namespace
                        .clone()
                        .unwrap_or_default();
                    return Ok(Err(format!(
                        "{kind} in metric template {name}.{ns} not avaiable: {e}"
                    )));
                }
            }
        }
        Ok(Ok(()))
    }
}

/// Inline and template answers: errors as the provider words them.
fn answer(result: Result<f64, QueryError>) -> Result<MetricAnswer, PortError> {
    Ok(match result {
        Ok(v) => MetricAnswer::Value(v),
        Err(QueryError::NoValues(e)) => MetricAnswer::NoValues(e),
        Err(QueryError::Failed(e)) => MetricAnswer::QueryFailed(e),
        Err(QueryError::Throttled(e)) => return Err(PortError::Throttled(e)),
        Err(QueryError::Deadline) => return Err(PortError::Timeout),
    })
}

/// Flagger's availability check words the client error in lower case.
fn lowercase_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn wire_str<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests;
