//! The small trait every metrics provider implements, the answer it gives,
//! and the factory that builds one from a MetricTemplate's `spec.provider`
//! (Flagger's `providers.Factory`).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::BoxFuture;
use tokio::time::Instant;

use crate::api::duration::parse_duration;
use crate::api::{MetricProvider, MetricProviderType};

use super::http::HttpClients;
use super::{
    cloudwatch, datadog, dynatrace, externalmetrics, graphite, influxdb, keptn, newrelic,
    prometheus, splunk, stackdriver,
};

/// Why a query produced no value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// Flagger's `ErrNoValuesFound`, with the provider's own wording around
    /// it (`invalid response: {...}: no values found`).
    #[error("{0}")]
    NoValues(String),
    #[error("{0}")]
    Failed(String),
    /// The provider asked to be asked later (HTTP 429) for longer than the
    /// step can wait: the step is deferred, the canary is not judged.
    #[error("{0}")]
    Throttled(String),
    /// The caller's deadline passed before the provider answered.
    #[error("deadline exceeded")]
    Deadline,
}

impl QueryError {
    /// Flagger's bare `no values found`.
    pub fn no_values() -> QueryError {
        QueryError::NoValues(NO_VALUES.to_owned())
    }

    /// `ErrNoValuesFound` wrapped with the provider's context.
    pub fn no_values_in(context: impl std::fmt::Display) -> QueryError {
        QueryError::NoValues(format!("{context}: {NO_VALUES}"))
    }
}

/// The text of Flagger's `ErrNoValuesFound`.
pub const NO_VALUES: &str = "no values found";
/// The text of Flagger's `ErrMultipleValuesReturned`.
pub const MULTIPLE_VALUES: &str = "query returned multiple values";

pub type QueryFuture<'a, T> = BoxFuture<'a, Result<T, QueryError>>;

/// Flagger's `providers.Interface`: run a rendered query down to one number,
/// and say whether the backend is reachable with these credentials.
pub trait Provider: Send + Sync {
    fn run_query<'a>(&'a self, query: &'a str, deadline: Instant) -> QueryFuture<'a, f64>;
    fn is_online(&self, deadline: Instant) -> QueryFuture<'_, ()>;
}

/// What a provider is built from.
pub struct Config<'a> {
    pub spec: &'a MetricProvider,
    /// The metric's `interval` (`1m` when unset): the window of the
    /// providers that choose one.
    pub metric_interval: &'a str,
    pub credentials: Credentials<'a>,
    pub http: &'a HttpClients,
    pub kube: &'a kube::Client,
}

impl Config<'_> {
    pub fn address(&self) -> &str {
        self.spec.address.as_deref().unwrap_or_default()
    }

    /// The metric interval parsed, with Flagger's error text.
    pub fn interval(&self) -> Result<Duration, String> {
        parse_duration(self.metric_interval)
            .map_err(|e| format!("error parsing metric interval: {e}"))
    }

    /// The HTTP client honouring `insecureSkipVerify`.
    pub fn client(&self) -> Result<reqwest::Client, String> {
        self.http.client(self.spec.insecure_skip_verify())
    }
}

/// The data of the template's `secretRef` Secret, when it has one. Values
/// are never logged; errors name the key only.
#[derive(Debug, Clone, Copy, Default)]
pub struct Credentials<'a>(pub Option<&'a BTreeMap<String, Vec<u8>>>);

impl Credentials<'_> {
    pub fn get(&self, key: &str) -> Option<String> {
        self.0
            .and_then(|data| data.get(key))
            .map(|v| String::from_utf8_lossy(v).into_owned())
    }

    /// The key's value, or Flagger's `<provider> credentials does not contain <key>`.
    pub fn require(&self, provider: &str, key: &str) -> Result<String, String> {
        self.get(key)
            .ok_or_else(|| format!("{provider} credentials does not contain {key}"))
    }
}

/// Builds the provider a template names; `Err` is the text Flagger's factory
/// returns (shown after `provider <type> error:`).
pub fn build(config: &Config<'_>) -> Result<Box<dyn Provider>, String> {
    Ok(match config.spec.type_ {
        MetricProviderType::Prometheus => Box::new(prometheus::Prometheus::from_config(config)?),
        MetricProviderType::Datadog => Box::new(datadog::Datadog::new(config)?),
        MetricProviderType::Externalmetrics => {
            Box::new(externalmetrics::ExternalMetrics::new(config)?)
        }
        MetricProviderType::Cloudwatch => Box::new(cloudwatch::CloudWatch::new(config)?),
        MetricProviderType::Newrelic => Box::new(newrelic::NewRelic::new(config)?),
        MetricProviderType::Graphite => Box::new(graphite::Graphite::new(config)?),
        MetricProviderType::Stackdriver => Box::new(stackdriver::Stackdriver::new(config)?),
        MetricProviderType::Influxdb => Box::new(influxdb::InfluxDb::new(config)?),
        MetricProviderType::Dynatrace => Box::new(dynatrace::Dynatrace::new(config)?),
        MetricProviderType::Keptn => Box::new(keptn::Keptn::new(config)?),
        MetricProviderType::Splunk => Box::new(splunk::Splunk::new(config)?),
    })
}

/// Seconds since the Unix epoch: the providers' query windows end now.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
