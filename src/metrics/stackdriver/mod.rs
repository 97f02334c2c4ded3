//! The Stackdriver (Google Cloud Monitoring) provider: the template's MQL
//! query goes to `projects.timeSeries.query` (REST, where Flagger's client
//! speaks gRPC), authorized by an OAuth2 token that a service-account key
//! obtains (a JWT bearer grant, RS256-signed with ring). The first value of
//! the first point of the first time series is the answer. Errors read as
//! Go's gRPC status texts (`rpc error: code = PermissionDenied desc = ...`).
//!
//! Google ended MQL for new users in 2025; existing projects keep it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures::FutureExt;
use reqwest::Url;
use reqwest::header::CONTENT_TYPE;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::http;
use super::provider::{Config, Provider, QueryError, QueryFuture};

const DEFAULT_API: &str = "https://monitoring.googleapis.com";
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The Go monitoring client's default scopes.
const SCOPES: &str = "https://www.googleapis.com/auth/cloud-platform https://www.googleapis.com/auth/monitoring https://www.googleapis.com/auth/monitoring.read";
const JWT_GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
/// A token is renewed this long before it expires.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

pub struct Stackdriver {
    client: reqwest::Client,
    url: Url,
    key: ServiceAccount,
    token: Mutex<Option<(String, Instant)>>,
}

/// What Serin reads of a service-account key file.
#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: String,
    #[serde(default)]
    token_uri: String,
}

struct ServiceAccount {
    email: String,
    key_id: String,
    token_uri: String,
    signer: RsaKeyPair,
}

/// A failed call as a gRPC status: its code's Go name and its message.
struct Status {
    code: String,
    message: String,
}

impl Stackdriver {
    pub fn new(config: &Config<'_>) -> Result<Stackdriver, String> {
        // Flagger reads the Secret only when the template names one.
        let (project, key) = if config.spec.secret_ref.is_some() {
            let project = config
                .credentials
                .get("project")
                .ok_or("stackdriver credentials does not contain a project id")?;
            (project, config.credentials.get("serviceAccountKey"))
        } else {
            (String::new(), None)
        };
        // Flagger falls back to Google's application default credentials
        // (e.g. GKE workload identity); Serin does not read them yet.
        let key = key.ok_or(
            "google: could not find default credentials: Serin reads only the serviceAccountKey of the template's secret",
        )?;
        let base = match config.address() {
            "" => DEFAULT_API,
            address => address,
        };
        let url = format!(
            "{}/v3/projects/{project}/timeSeries:query",
            base.trim_end_matches('/')
        );
        let url = Url::parse(&url)
            .map_err(|_| format!("stackdriver address {base} is not a valid URL"))?;
        Ok(Stackdriver {
            client: config.client()?,
            url,
            key: ServiceAccount::parse(&key)?,
            token: Mutex::new(None),
        })
    }

    /// Runs the MQL query: the first value of the first point of the first
    /// time series, as a double (Flagger's `GetDoubleValue`).
    pub async fn run_query(&self, query: &str, deadline: Instant) -> Result<f64, QueryError> {
        let failed = |status: Status| {
            QueryError::Failed(format!(
                "error requesting stackdriver: rpc error: code = {} desc = {}",
                status.code, status.message
            ))
        };
        let body = match self.query(query, deadline).await? {
            Ok(body) => body,
            Err(status) => return Err(failed(status)),
        };
        let answer: Value = serde_json::from_str(&body).map_err(|e| {
            failed(Status {
                code: "Internal".into(),
                message: format!("grpc: failed to unmarshal the received message: {e}"),
            })
        })?;
        let Some(series) = answer.pointer("/timeSeriesData/0") else {
            return Err(QueryError::no_values_in("invalid response: <nil>"));
        };
        let no_values = || QueryError::no_values_in(format!("invalid response: {}", text(series)));
        let value = series
            .pointer("/pointData/0")
            .ok_or_else(no_values)?
            .pointer("/values/0")
            .ok_or_else(no_values)?;
        // Flagger's `GetDoubleValue` reads an int64 point (a count) as 0,
        // which would pass a `max` threshold; Serin reads its number.
        if let Some(v) = value.get("doubleValue").and_then(double) {
            return Ok(v);
        }
        match value.get("int64Value") {
            Some(Value::String(s)) => s.parse::<i64>().ok(),
            Some(Value::Number(n)) => n.as_i64(),
            _ => None,
        }
        .map(|v| v as f64)
        .ok_or_else(|| {
            QueryError::Failed(format!(
                "invalid response: the value is not a number: {}",
                text(value)
            ))
        })
    }

    /// Flagger's `IsOnline`: an empty query must succeed or be refused as an
    /// invalid argument; any other status (e.g. PermissionDenied) is offline.
    pub async fn is_online(&self, deadline: Instant) -> Result<(), QueryError> {
        match self.query("", deadline).await? {
            Ok(_) => Ok(()),
            Err(status) if status.code == "InvalidArgument" => Ok(()),
            Err(status) => Err(QueryError::Failed(format!(
                "unexpected status code: {}",
                status.code
            ))),
        }
    }

    /// One `timeSeries:query` call: the 200 body, or the call's status.
    async fn query(
        &self,
        query: &str,
        deadline: Instant,
    ) -> Result<Result<String, Status>, QueryError> {
        let token = match self.access_token(deadline).await? {
            Ok(token) => token,
            Err(status) => return Ok(Err(status)),
        };
        let request = self
            .client
            .post(self.url.clone())
            .bearer_auth(token)
            .json(&json!({ "query": query }));
        let reply = match http::send(request, deadline).await {
            Ok(reply) => reply,
            Err(QueryError::Failed(text)) => return Ok(Err(unavailable(text))),
            Err(e) => return Err(e),
        };
        if reply.is_ok() {
            return Ok(Ok(reply.body));
        }
        Ok(Err(status_of(reply.status.as_u16(), &reply.body)))
    }

    /// A cached access token, or a new one from the key's `token_uri`.
    async fn access_token(&self, deadline: Instant) -> Result<Result<String, Status>, QueryError> {
        let mut cached = self.token.lock().await;
        if let Some((token, expiry)) = cached.as_ref()
            && Instant::now() + TOKEN_MARGIN < *expiry
        {
            return Ok(Ok(token.clone()));
        }
        let per_rpc = |text: String| Status {
            code: "Unauthenticated".into(),
            message: format!("transport: per-RPC creds failed due to error: {text}"),
        };
        let assertion = self.key.assertion().map_err(QueryError::Failed)?;
        let request = self
            .client
            .post(&self.key.token_uri)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", JWT_GRANT)
                    .append_pair("assertion", &assertion)
                    .finish(),
            );
        let reply = match http::send(request, deadline).await {
            Ok(reply) => reply,
            Err(QueryError::Failed(text)) => return Ok(Err(per_rpc(format!("oauth2: {text}")))),
            Err(e) => return Err(e),
        };
        if !reply.status.is_success() {
            return Ok(Err(per_rpc(format!(
                "oauth2: cannot fetch token: {}\nResponse: {}",
                reply.status_text(),
                reply.body.trim()
            ))));
        }
        #[derive(Deserialize)]
        struct Token {
            access_token: String,
            #[serde(default)]
            expires_in: u64,
        }
        let token: Token = match serde_json::from_str(&reply.body) {
            Ok(t) => t,
            Err(e) => {
                return Ok(Err(per_rpc(format!("oauth2: cannot parse json: {e}"))));
            }
        };
        let expiry = Instant::now() + Duration::from_secs(token.expires_in);
        *cached = Some((token.access_token.clone(), expiry));
        Ok(Ok(token.access_token))
    }
}

impl Provider for Stackdriver {
    fn run_query<'a>(&'a self, query: &'a str, deadline: Instant) -> QueryFuture<'a, f64> {
        Stackdriver::run_query(self, query, deadline).boxed()
    }

    fn is_online(&self, deadline: Instant) -> QueryFuture<'_, ()> {
        Stackdriver::is_online(self, deadline).boxed()
    }
}

impl ServiceAccount {
    /// The key file; errors never quote it.
    fn parse(json: &str) -> Result<ServiceAccount, String> {
        let file: KeyFile = serde_json::from_str(json)
            .map_err(|_| "credentials: unable to parse the serviceAccountKey JSON".to_owned())?;
        let bad_key = |e: String| {
            format!("private key should be a PEM or plain PKCS1 or PKCS8; parse error: {e}")
        };
        let pem = pem::parse(file.private_key.as_bytes()).map_err(|e| bad_key(e.to_string()))?;
        let signer = RsaKeyPair::from_pkcs8(pem.contents()).map_err(|e| bad_key(e.to_string()))?;
        Ok(ServiceAccount {
            email: file.client_email,
            key_id: file.private_key_id,
            token_uri: match file.token_uri.as_str() {
                "" => DEFAULT_TOKEN_URI.to_owned(),
                uri => uri.to_owned(),
            },
            signer,
        })
    }

    /// The signed JWT a token is granted for.
    fn assertion(&self) -> Result<String, String> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": self.key_id});
        let claims = json!({
            "iss": self.email,
            "scope": SCOPES,
            "aud": self.token_uri,
            "iat": now,
            "exp": now + 3600,
        });
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut signature = vec![0; self.signer.public().modulus_len()];
        self.signer
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                signing_input.as_bytes(),
                &mut signature,
            )
            .map_err(|_| "oauth2: signing the token request failed".to_owned())?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

/// A transport failure, as gRPC reports one.
fn unavailable(text: String) -> Status {
    Status {
        code: "Unavailable".into(),
        message: text,
    }
}

/// The status of an error answer: Google's `{"error": {"status", "message"}}`,
/// else the HTTP status mapped as gRPC gateways do.
fn status_of(http_status: u16, body: &str) -> Status {
    let error = serde_json::from_str::<Value>(body).ok();
    let field = |name: &str| {
        error
            .as_ref()
            .and_then(|e| e.pointer(&format!("/error/{name}")))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let code = match field("status") {
        Some(status) if status == "CANCELLED" => "Canceled".to_owned(),
        Some(status) if status == "OK" => "OK".to_owned(),
        Some(status) => status
            .split('_')
            .map(|word| {
                let lower = word.to_ascii_lowercase();
                let mut chars = lower.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect(),
        None => match http_status {
            400 => "InvalidArgument",
            401 => "Unauthenticated",
            403 => "PermissionDenied",
            404 => "NotFound",
            409 => "Aborted",
            429 => "ResourceExhausted",
            500 => "Internal",
            501 => "Unimplemented",
            503 => "Unavailable",
            504 => "DeadlineExceeded",
            _ => "Unknown",
        }
        .to_owned(),
    };
    Status {
        code,
        message: field("message").unwrap_or_else(|| body.trim().to_owned()),
    }
}

/// A JSON double: a number, or `"NaN"`/`"Infinity"` as proto3 JSON writes them.
fn double(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

/// The message in compact protobuf text, roughly as Go prints it
/// (`label_values:{string_value:"podinfo"}`).
fn text(value: &Value) -> String {
    fn field(name: &str, value: &Value, out: &mut Vec<String>) {
        let snake: String = name
            .chars()
            .flat_map(|c| {
                let lower = c.to_ascii_lowercase();
                (c.is_ascii_uppercase().then_some('_').into_iter()).chain(std::iter::once(lower))
            })
            .collect();
        match value {
            Value::Array(items) => items.iter().for_each(|item| field(name, item, out)),
            Value::Object(_) => out.push(format!("{snake}:{{{}}}", text(value))),
            Value::String(s) => out.push(format!("{snake}:{s:?}")),
            Value::Null => {}
            other => out.push(format!("{snake}:{other}")),
        }
    }
    let mut out = Vec::new();
    if let Value::Object(fields) = value {
        for (name, v) in fields {
            field(name, v, &mut out);
        }
    }
    out.join(" ")
}

#[cfg(test)]
mod tests;
