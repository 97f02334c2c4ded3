//! A Kubernetes external metrics API for the end-to-end tests: an HTTPS
//! server of this test process behind the APIService
//! `v1beta1.external.metrics.k8s.io`, answering `ExternalMetricValueList`s
//! whose values each test sets for its own namespace.
//!
//! How the API server reaches it: kube-apiserver refuses loopback addresses
//! in Endpoints and EndpointSlices, so aggregator routing (which dials an
//! endpoint) cannot point at 127.0.0.1. Without it the aggregator dials the
//! Service; a Service of type ExternalName `127.0.0.1` resolves to this
//! machine's loopback. The server's certificate (cluster-up.sh) is signed by
//! the testbed CA for `serin-external-metrics.kube-system.svc`, the name the
//! aggregator checks; the APIService's caBundle is that CA.
//!
//! One server per test process, on a runtime of its own (a test's runtime
//! ends with the test), registered once; tests only touch their namespace's
//! metrics. Two test processes at once would re-point the APIService.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::core::v1::Service;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use super::eventually;

const API: &str = "/apis/external.metrics.k8s.io/v1beta1";
const SERVICE: &str = "serin-external-metrics";
const APISERVICE: &str = "v1beta1.external.metrics.k8s.io";

/// What the server answers for one metric of one namespace.
#[derive(Debug, Clone)]
pub enum Metric {
    /// Items with these quantities (`"1500m"`), in order.
    Values(Vec<String>),
    /// The adapter's 404 Status for a metric it does not know.
    NotFound,
}

#[derive(Default)]
struct State {
    metrics: BTreeMap<(String, String), Metric>,
    /// `(namespace, metric, labelSelector)` of each metric request.
    seen: Vec<(String, String, String)>,
}

/// The process's server: its port and what it answers.
pub struct ExternalMetrics {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

static SERVER: OnceLock<ExternalMetrics> = OnceLock::new();
static REGISTERED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

impl ExternalMetrics {
    /// The server, started on first use and registered as the APIService;
    /// returns once the API server routes `namespace`'s requests to it.
    pub async fn for_namespace(client: &Client, namespace: &str) -> &'static ExternalMetrics {
        let server = SERVER.get_or_init(start);
        REGISTERED
            .get_or_init(|| register(client, server.addr.port()))
            .await;
        let path = format!("{API}/namespaces/{namespace}/probe");
        eventually(
            "the API server to route external metrics to the harness",
            Duration::from_secs(60),
            || async {
                let request = http::Request::get(&path).body(Vec::new()).unwrap();
                client
                    .request_text(request)
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            },
        )
        .await;
        server
    }

    pub fn set(&self, namespace: &str, metric: &str, answer: Metric) {
        self.state
            .lock()
            .unwrap()
            .metrics
            .insert((namespace.into(), metric.into()), answer);
    }

    pub fn set_value(&self, namespace: &str, metric: &str, quantity: &str) {
        self.set(namespace, metric, Metric::Values(vec![quantity.into()]));
    }

    /// The label selectors of the requests for `namespace`'s `metric`.
    pub fn selectors(&self, namespace: &str, metric: &str) -> Vec<String> {
        self.state
            .lock()
            .unwrap()
            .seen
            .iter()
            .filter(|(ns, m, _)| ns == namespace && m == metric)
            .map(|(_, _, s)| s.clone())
            .collect()
    }
}

fn env_path(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: restart the testbed with `make cluster-down cluster-up` and source target/testbed/env")
    })
}

fn start() -> ExternalMetrics {
    super::install_crypto();
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(env_path("EXTERNAL_METRICS_CERT"))
            .expect("the harness certificate")
            .collect::<Result<_, _>>()
            .expect("the harness certificate");
    let key = PrivateKeyDer::from_pem_file(env_path("EXTERNAL_METRICS_KEY")).expect("its key");
    let mut config = tokio_rustls::rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("a TLS configuration");
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let state = Arc::new(Mutex::new(State::default()));
    let (tx, rx) = std::sync::mpsc::channel();
    let shared = state.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("the harness runtime");
        runtime.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
            tx.send(listener.local_addr().expect("address")).unwrap();
            let app = Router::new().fallback(answer).with_state(shared);
            let tls = TlsListener { listener, acceptor };
            axum::serve(tls, app).await.expect("the harness server");
        });
    });
    let addr = rx.recv().expect("the harness's address");
    ExternalMetrics { addr, state }
}

/// TLS on accepted connections; a failed handshake is skipped.
struct TlsListener {
    listener: TcpListener,
    acceptor: TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((stream, addr)) = self.listener.accept().await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            if let Ok(Ok(tls)) =
                tokio::time::timeout(Duration::from_secs(5), self.acceptor.accept(stream)).await
            {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.listener.local_addr()
    }
}

async fn answer(
    axum::extract::State(state): axum::extract::State<Arc<Mutex<State>>>,
    uri: Uri,
) -> Response {
    let path = uri.path().trim_end_matches('/');
    if path == API {
        return json_reply(
            StatusCode::OK,
            json!({"kind": "APIResourceList", "apiVersion": "v1",
                "groupVersion": "external.metrics.k8s.io/v1beta1", "resources": []}),
        );
    }
    let rest = path.strip_prefix(&format!("{API}/namespaces/"));
    let Some((namespace, metric)) = rest.and_then(|r| r.split_once('/')) else {
        return (StatusCode::NOT_FOUND, "404 page not found").into_response();
    };
    let selector = uri
        .query()
        .and_then(|q| {
            reqwest::Url::parse(&format!("http://x/?{q}"))
                .ok()?
                .query_pairs()
                .find(|(k, _)| k == "labelSelector")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    let found = {
        let mut state = state.lock().unwrap();
        state
            .seen
            .push((namespace.into(), metric.into(), selector.clone()));
        state
            .metrics
            .get(&(namespace.to_string(), metric.to_string()))
            .cloned()
    };
    match found.unwrap_or(Metric::Values(Vec::new())) {
        Metric::Values(values) => {
            let items: Vec<Value> = values
                .iter()
                .map(|v| {
                    json!({"metricName": metric, "metricLabels": {},
                        "timestamp": "2024-01-01T00:00:00Z", "value": v})
                })
                .collect();
            json_reply(
                StatusCode::OK,
                json!({"kind": "ExternalMetricValueList",
                    "apiVersion": "external.metrics.k8s.io/v1beta1", "metadata": {}, "items": items}),
            )
        }
        Metric::NotFound => json_reply(
            StatusCode::NOT_FOUND,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "reason": "NotFound", "code": 404,
                "message": format!("the server could not find the metric {metric} for external metrics")}),
        ),
    }
}

fn json_reply(status: StatusCode, body: Value) -> Response {
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// The ExternalName Service and the APIService, pointed at `port`.
async fn register(client: &Client, port: u16) {
    let params = PatchParams::apply("serin-e2e-external-metrics").force();
    let service = json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": SERVICE, "namespace": "kube-system"},
        "spec": {"type": "ExternalName", "externalName": "127.0.0.1",
            "ports": [{"name": "https", "port": port, "protocol": "TCP"}]},
    });
    // A merge patch replaces the port list whole: an apply would merge it
    // with a port left by another field manager (two ports named https).
    let services = Api::<Service>::namespaced(client.clone(), "kube-system");
    let created = services
        .create(
            &kube::api::PostParams::default(),
            &serde_json::from_value(service.clone()).unwrap(),
        )
        .await;
    if created.is_err() {
        services
            .patch(SERVICE, &PatchParams::default(), &Patch::Merge(&service))
            .await
            .unwrap_or_else(|e| panic!("updating the Service {SERVICE}: {e}"));
    }
    let ca = std::fs::read(env_path("TESTBED_CA")).expect("the testbed CA");
    let apiservice = json!({
        "apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService",
        "metadata": {"name": APISERVICE},
        "spec": {"group": "external.metrics.k8s.io", "version": "v1beta1",
            "groupPriorityMinimum": 100, "versionPriority": 100,
            "caBundle": base64(&ca),
            "service": {"name": SERVICE, "namespace": "kube-system", "port": port}},
    });
    let gvk = GroupVersionKind::gvk("apiregistration.k8s.io", "v1", "APIService");
    Api::<DynamicObject>::all_with(client.clone(), &ApiResource::from_gvk(&gvk))
        .patch(APISERVICE, &params, &Patch::Apply(&apiservice))
        .await
        .unwrap_or_else(|e| panic!("applying the APIService {APISERVICE}: {e}"));
}

/// Base64, as a JSON `[]byte` (k8s-openapi's ByteString serializes so).
fn base64(bytes: &[u8]) -> String {
    serde_json::to_value(k8s_openapi::ByteString(bytes.to_vec()))
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
