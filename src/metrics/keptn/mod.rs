//! The `keptn` provider: a KeptnMetric's `status.value`, or the verdict of
//! a Keptn Analysis created for the query and deleted afterwards
//! (metrics.keptn.sh/v1beta1), through the operator's own client as Flagger
//! does with its rest config.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::FutureExt;
use kube::Api;
use kube::api::{ApiResource, DeleteParams, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::externalmetrics::client_go_error;
use super::provider::{Config, Provider, QueryError, QueryFuture};
use super::template::kube_error_text;

const GROUP: &str = "metrics.keptn.sh";
const VERSION: &str = "v1beta1";
/// How long Flagger waits for Keptn to finish an Analysis.
const ANALYSIS_TIMEOUT: Duration = Duration::from_secs(10);
/// How often Flagger reads the Analysis back.
const POLL: Duration = Duration::from_secs(1);

/// What a query asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    Metric {
        namespace: String,
        name: String,
    },
    Analysis {
        namespace: String,
        /// The AnalysisDefinition's name.
        name: String,
        timeframe: String,
        args: BTreeMap<String, String>,
    },
}

pub struct Keptn {
    client: kube::Client,
    analysis_timeout: Duration,
}

impl Keptn {
    pub fn new(config: &Config<'_>) -> Result<Keptn, String> {
        Ok(Keptn {
            client: config.kube.clone(),
            analysis_timeout: ANALYSIS_TIMEOUT,
        })
    }

    fn api(&self, namespace: &str, kind: &str, plural: &str) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk(GROUP, VERSION, kind);
        let resource = ApiResource::from_gvk_with_plural(&gvk, plural);
        Api::namespaced_with(self.client.clone(), namespace, &resource)
    }

    pub async fn run_query(&self, query: &str, deadline: Instant) -> Result<f64, QueryError> {
        match parse_query(query).map_err(QueryError::Failed)? {
            Query::Metric { namespace, name } => self.metric(&namespace, &name, deadline).await,
            Query::Analysis {
                namespace,
                name,
                timeframe,
                args,
            } => {
                self.analysis(&namespace, &name, &timeframe, &args, deadline)
                    .await
            }
        }
    }

    async fn metric(
        &self,
        namespace: &str,
        name: &str,
        deadline: Instant,
    ) -> Result<f64, QueryError> {
        let api = self.api(namespace, "KeptnMetric", "keptnmetrics");
        let got = tokio::time::timeout_at(deadline, api.get(name))
            .await
            .map_err(|_| QueryError::Deadline)?;
        let metric = got.map_err(|e| {
            QueryError::Failed(format!(
                "could not retrieve KeptnMetric {namespace}/{name}: {}",
                error_text(&e, "keptnmetrics", name)
            ))
        })?;
        let Some(value) = metric.data.pointer("/status/value").and_then(Value::as_str) else {
            return Err(QueryError::Failed(format!(
                "could not retrieve KeptnMetric - no value found in resource {namespace}/{name}"
            )));
        };
        parse_float(value).ok_or_else(|| {
            QueryError::Failed(format!(
                "could not parse value of KeptnMetric {namespace}/{name} to float: strconv.ParseFloat: parsing {value:?}: invalid syntax"
            ))
        })
    }

    /// Creates the Analysis, reads it every second until Keptn completes it
    /// (pass → 1, fail → 0) or ten seconds pass, and deletes it either way.
    async fn analysis(
        &self,
        namespace: &str,
        definition: &str,
        timeframe: &str,
        args: &BTreeMap<String, String>,
        deadline: Instant,
    ) -> Result<f64, QueryError> {
        let api = self.api(namespace, "Analysis", "analyses");
        let suffix: String = uuid::Uuid::new_v4().to_string().chars().take(6).collect();
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": format!("{GROUP}/{VERSION}"),
            "kind": "Analysis",
            "metadata": { "name": format!("{definition}-{suffix}"), "namespace": namespace },
            "spec": {
                "analysisDefinition": { "name": definition },
                "timeframe": { "recent": timeframe },
                "args": args,
            },
        }))
        .map_err(|e| QueryError::Failed(e.to_string()))?;
        let flagger_end = Instant::now() + self.analysis_timeout;
        let end = flagger_end.min(deadline);
        let timed_out = || {
            if deadline < flagger_end {
                QueryError::Deadline
            } else {
                QueryError::Failed(format!(
                    "encountered timeout while waiting for Keptn Analysis {namespace}/{definition} to be finished"
                ))
            }
        };
        let created = tokio::time::timeout_at(end, api.create(&PostParams::default(), &object))
            .await
            .map_err(|_| timed_out())?
            .map_err(|e| {
                QueryError::Failed(format!(
                    "could not create Keptn Analysis {namespace}/{definition}: {}",
                    error_text(&e, "analyses", "")
                ))
            })?;
        let name = created.metadata.name.clone().unwrap_or_default();
        // Deleted when this query ends, also when the caller gives up on it.
        let _cleanup = Cleanup {
            api: api.clone(),
            name: name.clone(),
        };
        let failed = |text: String| {
            QueryError::Failed(format!(
                "could not check status of created Keptn Analysis {namespace}/{definition}: {text}"
            ))
        };
        loop {
            if Instant::now() + POLL >= end {
                tokio::time::sleep_until(end).await;
                return Err(timed_out());
            }
            tokio::time::sleep(POLL).await;
            let got = tokio::time::timeout_at(end, api.get(&name))
                .await
                .map_err(|_| timed_out())?
                .map_err(|e| failed(error_text(&e, "analyses", &name)))?;
            if let Some(verdict) = verdict(&got.data).map_err(failed)? {
                return Ok(if verdict { 1.0 } else { 0.0 });
            }
        }
    }
}

/// `Some(pass)` once `status.state` is `Completed` with a `status.pass`.
fn verdict(analysis: &Value) -> Result<Option<bool>, String> {
    let state = match analysis.pointer("/status/state") {
        None => return Ok(None),
        Some(Value::String(s)) => s.as_str(),
        Some(other) => return Err(accessor_error(".status.state", other, "string")),
    };
    if state != "Completed" {
        return Ok(None);
    }
    match analysis.pointer("/status/pass") {
        None => Ok(None),
        Some(Value::Bool(pass)) => Ok(Some(*pass)),
        Some(other) => Err(accessor_error(".status.pass", other, "bool")),
    }
}

/// `unstructured.NestedString`'s error for a field of another type.
fn accessor_error(path: &str, value: &Value, want: &str) -> String {
    let go_type = match value {
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
        Value::Null => "<nil>",
    };
    format!("{path} accessor error: {value} is of the type {go_type}, expected {want}")
}

/// Deletes the Analysis in the background when dropped; a failure is only
/// logged, as in Flagger.
struct Cleanup {
    api: Api<DynamicObject>,
    name: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let (api, name) = (self.api.clone(), std::mem::take(&mut self.name));
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        runtime.spawn(async move {
            let deleted = tokio::time::timeout(
                Duration::from_secs(30),
                api.delete(&name, &DeleteParams::default()),
            )
            .await;
            match deleted {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => tracing::error!(
                    analysis = %name,
                    error = %kube_error_text(&e),
                    "Could not delete Keptn Analysis"
                ),
                Err(_) => {
                    tracing::error!(analysis = %name, "Could not delete Keptn Analysis: timed out")
                }
            }
        });
    }
}

/// client-go's text for a failed request on `<plural>.metrics.keptn.sh`.
fn error_text(error: &kube::Error, plural: &str, name: &str) -> String {
    match error {
        // kube keeps a body that was not a Status as the message.
        kube::Error::Api(status) if status.reason == "Failed to parse error data" => {
            let verb = if name.is_empty() { "post" } else { "get" };
            let what = if name.is_empty() {
                format!("{verb} {plural}.{GROUP}")
            } else {
                format!("{verb} {plural}.{GROUP} {name}")
            };
            client_go_error(status.code, "text/plain", &status.message, &what)
        }
        other => kube_error_text(other),
    }
}

/// Go's `strconv.ParseFloat(s, 64)` for decimal text (with `Inf`/`NaN`).
fn parse_float(text: &str) -> Option<f64> {
    if text.contains('_') || text.trim() != text {
        return None;
    }
    text.parse::<f64>().ok()
}

/// Flagger's `<keptnmetric|analysis>/<namespace>/<name>/<timeframe>/<args>`:
/// lower-cased, trimmed; an Analysis's timeframe defaults to `1m`, its args
/// are `key=value` pairs separated by `;` (others are ignored).
pub fn parse_query(query: &str) -> Result<Query, String> {
    let lowered = query.to_lowercase();
    let clean = lowered.strip_suffix('\n').unwrap_or(&lowered).trim();
    let parts: Vec<&str> = clean.split('/').collect();
    if parts.len() < 3 {
        return Err("unexpected query format. query must be in the format <keptnmetric|analysis>/<namespace>/<resourceName>/<duration>/<arguments>".to_owned());
    }
    let (namespace, name) = (parts[1].to_owned(), parts[2].to_owned());
    match parts[0] {
        "keptnmetric" | "keptnmetrics" => Ok(Query::Metric { namespace, name }),
        "analysis" | "analyses" => {
            let timeframe = parts.get(3).copied().unwrap_or("1m").to_owned();
            let args = parts
                .get(4)
                .map(|text| {
                    text.split(';')
                        .filter_map(|pair| {
                            let kv: Vec<&str> = pair.split('=').collect();
                            match kv.as_slice() {
                                [k, v] => Some(((*k).to_owned(), (*v).to_owned())),
                                _ => None,
                            }
                        })
                        .collect()
                })
                .unwrap_or_default();
            Ok(Query::Analysis {
                namespace,
                name,
                timeframe,
                args,
            })
        }
        _ => Err("unexpected resource kind provided in the query. must be one of: ['keptnmetric', 'analysis']".to_owned()),
    }
}

impl Provider for Keptn {
    fn run_query<'a>(&'a self, query: &'a str, deadline: Instant) -> QueryFuture<'a, f64> {
        Keptn::run_query(self, query, deadline).boxed()
    }

    /// Flagger does not check anything for Keptn.
    fn is_online(&self, _deadline: Instant) -> QueryFuture<'_, ()> {
        async { Ok(()) }.boxed()
    }
}

#[cfg(test)]
mod tests;
