//! The CloudWatch provider: the template's query is the JSON array of
//! `MetricDataQueries` Flagger unmarshals; it is sent to `GetMetricData`
//! over the AWS JSON 1.0 protocol (which CloudWatch accepts beside the query
//! protocol Flagger's SDK speaks), signed with SigV4, and the first value of
//! the first result is the answer. Error texts are those the AWS Go SDK
//! prints (`Code: message\n\tstatus code: N`).

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials as AwsCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use futures::FutureExt;
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use tokio::time::Instant;

use super::http;
use super::provider::{Config, Provider, QueryError, QueryFuture};

mod shape;

/// Flagger queries `10 * interval` back from now.
const START_DELTA_MULTIPLIER: u32 = 10;
const MAX_DATAPOINTS: u32 = 20;
const SERVICE: &str = "monitoring";
const TARGET: &str = "GraniteServiceVersion20100801.GetMetricData";
const CONTENT_TYPE: &str = "application/x-amz-json-1.0";
/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds: the window
/// of Flagger's availability probe.
const GO_ZERO_TIME: i64 = -62_135_596_800;
/// The AWS Go SDK's error when no credential provider has credentials.
const NO_CREDENTIALS: &str = "NoCredentialProviders: no valid providers in chain. Deprecated.\n\tFor verbose messaging see aws.Config.CredentialsChainVerboseErrors";

/// Reads an environment variable; injectable so tests leave the process
/// environment alone.
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

pub struct CloudWatch {
    client: reqwest::Client,
    endpoint: Url,
    region: String,
    start_delta: Duration,
    env: Env,
}

/// How a `GetMetricData` call failed, in the AWS Go SDK's two kinds.
enum CallError {
    /// No answer from the service (credentials, transport): `awserr.Error`.
    Local(String),
    /// An error answer: `awserr.RequestFailure`.
    Service { status: StatusCode, text: String },
    /// Deadline or rate limit: not a verdict on the canary.
    Later(QueryError),
}

impl CloudWatch {
    pub fn new(config: &Config<'_>) -> Result<CloudWatch, String> {
        CloudWatch::with_env(config, Arc::new(|name| std::env::var(name).ok()))
    }

    pub fn with_env(config: &Config<'_>, env: Env) -> Result<CloudWatch, String> {
        let region = config.spec.region.as_deref().unwrap_or_default();
        if region.is_empty() {
            return Err("region not specified".to_owned());
        }
        let interval = config.interval()?;
        // Flagger ignores `address` for CloudWatch (the SDK picks the regional
        // endpoint); Serin honours it, for VPC endpoints, LocalStack and tests.
        let address = match config.address() {
            "" if region.starts_with("cn-") => {
                format!("https://monitoring.{region}.amazonaws.com.cn")
            }
            "" => format!("https://monitoring.{region}.amazonaws.com"),
            address => address.to_owned(),
        };
        let endpoint = Url::parse(&address)
            .map_err(|_| format!("cloudwatch address {address} is not a valid URL"))?;
        Ok(CloudWatch {
            client: config.client()?,
            endpoint,
            region: region.to_owned(),
            start_delta: interval * START_DELTA_MULTIPLIER,
            env,
        })
    }

    /// Runs the queries over the last `10 * interval` and returns the first
    /// value of the first result.
    pub async fn run_query(&self, query: &str, deadline: Instant) -> Result<f64, QueryError> {
        let queries = shape::metric_data_queries(query)
            .map_err(|e| QueryError::Failed(format!("error unmarshaling query: {e}")))?;
        let end = SystemTime::now();
        let start = end.checked_sub(self.start_delta).unwrap_or(UNIX_EPOCH);
        let input = json!({
            "EndTime": unix_seconds(end),
            "MaxDatapoints": MAX_DATAPOINTS,
            "StartTime": unix_seconds(start),
            "MetricDataQueries": queries,
        });
        let body = match self.get_metric_data(&input, deadline).await {
            Ok(body) => body,
            Err(CallError::Later(e)) => return Err(e),
            Err(CallError::Local(text) | CallError::Service { text, .. }) => {
                return Err(QueryError::Failed(format!(
                    "error requesting cloudwatch: {text}"
                )));
            }
        };
        let output: shape::Output = serde_json::from_str(&body).map_err(|e| {
            QueryError::Failed(format!(
                "error requesting cloudwatch: SerializationError: failed decoding JSON RPC response\n\tstatus code: 200\ncaused by: {e}"
            ))
        })?;
        let Some(first) = output.metric_data_results.first() else {
            return Err(QueryError::no_values_in(format!(
                "invalid response: {}",
                output.pretty()
            )));
        };
        match first.values.first() {
            Some(value) => Ok(*value),
            // Flagger's text has this typo.
            None => Err(QueryError::no_values_in(format!(
                "invalid reponse {}",
                output.pretty()
            ))),
        }
    }

    /// Flagger's `IsOnline`: an empty `GetMetricData` must succeed or be
    /// refused as a bad request (any other refusal, e.g. 403, is offline).
    pub async fn is_online(&self, deadline: Instant) -> Result<(), QueryError> {
        let input = json!({
            "EndTime": GO_ZERO_TIME,
            "MetricDataQueries": [],
            "StartTime": GO_ZERO_TIME,
        });
        match self.get_metric_data(&input, deadline).await {
            Ok(_) => Ok(()),
            Err(CallError::Service { status, .. }) if status == StatusCode::BAD_REQUEST => Ok(()),
            Err(CallError::Service { text, .. }) => Err(QueryError::Failed(format!(
                "unexpected status code: {text}"
            ))),
            Err(CallError::Local(text)) => {
                Err(QueryError::Failed(format!("unexpected error: {text}")))
            }
            Err(CallError::Later(e)) => Err(e),
        }
    }

    /// One signed `GetMetricData` call; `Ok` is the body of a 200 answer.
    async fn get_metric_data(&self, input: &Value, deadline: Instant) -> Result<String, CallError> {
        let body = input.to_string().into_bytes();
        let request = self.signed(body).map_err(CallError::Local)?;
        let reply = match http::send(request, deadline).await {
            Ok(reply) => reply,
            Err(QueryError::Failed(text)) => {
                let cause = text.strip_prefix("request failed: ").unwrap_or(&text);
                return Err(CallError::Local(format!(
                    "RequestError: send request failed\ncaused by: {cause}"
                )));
            }
            Err(e) => return Err(CallError::Later(e)),
        };
        if reply.status.is_success() {
            return Ok(reply.body);
        }
        let (code, message) = shape::error_code(&reply.body);
        let text = format!(
            "{code}: {message}\n\tstatus code: {}",
            reply.status.as_u16()
        );
        // The SDK retries throttling before failing; Serin defers the step.
        if matches!(code.as_str(), "Throttling" | "ThrottlingException") {
            return Err(CallError::Later(QueryError::Throttled(format!(
                "rate limited ({}): {code}: {message}",
                reply.status_text()
            ))));
        }
        Err(CallError::Service {
            status: reply.status,
            text,
        })
    }

    /// The request with SigV4 headers for the credentials in the environment.
    fn signed(&self, body: Vec<u8>) -> Result<reqwest::RequestBuilder, String> {
        let identity: Identity = self.credentials()?.into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(SERVICE)
            .time(SystemTime::now())
            .settings(SigningSettings::default())
            .build()
            .map_err(|e| format!("SigningError: {e}"))?
            .into();
        let headers = [("content-type", CONTENT_TYPE), ("x-amz-target", TARGET)];
        let signable = SignableRequest::new(
            "POST",
            self.endpoint.as_str(),
            headers.into_iter(),
            SignableBody::Bytes(&body),
        )
        .map_err(|e| format!("SigningError: {e}"))?;
        let (instructions, _) = sign(signable, &params)
            .map_err(|e| format!("SigningError: {e}"))?
            .into_parts();
        let mut request = self.client.post(self.endpoint.clone());
        for (name, value) in headers.into_iter().chain(instructions.headers()) {
            request = request.header(name, value);
        }
        Ok(request.body(body))
    }

    /// The SDK's environment provider (`AWS_ACCESS_KEY_ID` or
    /// `AWS_ACCESS_KEY`, `AWS_SECRET_ACCESS_KEY` or `AWS_SECRET_KEY`,
    /// `AWS_SESSION_TOKEN`). Its other providers (shared files, web identity,
    /// instance roles) are not read.
    fn credentials(&self) -> Result<AwsCredentials, String> {
        let get = |names: &[&str]| {
            names
                .iter()
                .find_map(|name| (self.env)(name).filter(|v| !v.is_empty()))
        };
        let id = get(&["AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY"]);
        let secret = get(&["AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY"]);
        match (id, secret) {
            (Some(id), Some(secret)) => Ok(AwsCredentials::new(
                id,
                secret,
                get(&["AWS_SESSION_TOKEN"]),
                None,
                "environment",
            )),
            _ if get(&["AWS_WEB_IDENTITY_TOKEN_FILE"]).is_some() => Err(format!(
                "{NO_CREDENTIALS}\n\tweb identity (IRSA) credentials are not supported by Serin yet: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            )),
            _ => Err(NO_CREDENTIALS.to_owned()),
        }
    }
}

impl Provider for CloudWatch {
    fn run_query<'a>(&'a self, query: &'a str, deadline: Instant) -> QueryFuture<'a, f64> {
        CloudWatch::run_query(self, query, deadline).boxed()
    }

    fn is_online(&self, deadline: Instant) -> QueryFuture<'_, ()> {
        CloudWatch::is_online(self, deadline).boxed()
    }
}

/// Whole Unix seconds (the JSON protocol's timestamp format).
fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
