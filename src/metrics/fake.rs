//! Test support for provider files: a vendor API on 127.0.0.1 that records
//! every request and answers from a script (status, headers, body, delay),
//! and the owned pieces a [`Config`] borrows.

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::http::HttpClients;
use super::provider::{Config, Credentials};
use crate::api::MetricProvider;

/// One request as the vendor saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    /// Query parameters, decoded, in order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: String,
}

impl Seen {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Answer {
    pub fn ok(body: impl Into<String>) -> Answer {
        Answer::status(200, body)
    }

    pub fn status(status: u16, body: impl Into<String>) -> Answer {
        Answer {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Answer {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn after(mut self, delay: Duration) -> Answer {
        self.delay = delay;
        self
    }
}

#[derive(Default)]
struct Script {
    seen: Vec<Seen>,
    queue: VecDeque<Answer>,
    fallback: Option<Answer>,
}

/// A vendor API: answers queued with [`FakeVendor::then`] in order, then
/// the fallback (404 when none).
#[derive(Clone)]
pub struct FakeVendor {
    pub addr: SocketAddr,
    script: Arc<Mutex<Script>>,
}

impl FakeVendor {
    pub async fn start(fallback: Answer) -> FakeVendor {
        let script = Arc::new(Mutex::new(Script {
            fallback: Some(fallback),
            ..Script::default()
        }));
        let app = Router::new().fallback(answer).with_state(script.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        FakeVendor { addr, script }
    }

    /// `http://127.0.0.1:port`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues an answer for the next request.
    pub fn then(&self, answer: Answer) -> &FakeVendor {
        self.script.lock().unwrap().queue.push_back(answer);
        self
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.script.lock().unwrap().seen.clone()
    }

    pub fn last(&self) -> Seen {
        self.requests().pop().expect("the vendor saw no request")
    }
}

async fn answer(
    State(script): State<Arc<Mutex<Script>>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let query = uri
        .query()
        .map(|q| url_pairs(q).into_iter().collect::<Vec<(String, String)>>())
        .unwrap_or_default();
    let next = {
        let mut script = script.lock().unwrap();
        script.seen.push(Seen {
            method: method.to_string(),
            path: uri.path().to_owned(),
            query,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
        script.queue.pop_front().or_else(|| script.fallback.clone())
    };
    let Some(next) = next else {
        return (StatusCode::NOT_FOUND, "no answer scripted").into_response();
    };
    if !next.delay.is_zero() {
        tokio::time::sleep(next.delay).await;
    }
    let mut response = (
        StatusCode::from_u16(next.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        next.body,
    )
        .into_response();
    for (name, value) in next.headers {
        response.headers_mut().insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            value.parse().unwrap(),
        );
    }
    response
}

fn url_pairs(query: &str) -> Vec<(String, String)> {
    reqwest::Url::parse(&format!("http://x/?{query}"))
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

/// What a [`Config`] borrows, owned by the test.
pub struct Setup {
    pub spec: MetricProvider,
    pub interval: String,
    pub secret: Option<BTreeMap<String, Vec<u8>>>,
    pub http: HttpClients,
    pub kube: kube::Client,
}

impl Setup {
    /// A provider spec from JSON (`{"type": "datadog", "address": ...}`),
    /// the metric interval and the Secret's data (`None`: no `secretRef`).
    /// The kube client points at a closed port; HTTP providers never use it.
    pub fn new(spec: serde_json::Value, interval: &str, secret: Option<&[(&str, &str)]>) -> Setup {
        let spec: MetricProvider = serde_json::from_value(spec).unwrap();
        let secret = secret.map(|pairs| {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.as_bytes().to_vec()))
                .collect()
        });
        let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
        Setup {
            spec,
            interval: interval.to_owned(),
            secret,
            http: HttpClients::new(),
            kube: kube::Client::try_from(config).unwrap(),
        }
    }

    pub fn config(&self) -> Config<'_> {
        Config {
            spec: &self.spec,
            metric_interval: &self.interval,
            credentials: Credentials(self.secret.as_ref()),
            http: &self.http,
            kube: &self.kube,
        }
    }
}

/// A deadline `secs` from now.
pub fn deadline(secs: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(secs)
}
