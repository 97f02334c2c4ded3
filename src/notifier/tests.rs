//! The port end to end: a real HTTP server on 127.0.0.1 plays the chat
//! services and the API server (for `secretRef` Secrets).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::ObjectMeta;
use serde_json::{Value, json};
use serin_actors::events::{Alert, Severity};
use serin_actors::model::spec::AlertRef;
use serin_actors::ports::{CanaryKey, Notification, NotifierPort, PortError};
use tokio::time::Instant;

use super::http::{Http, ensure_crypto_provider};
use super::{GlobalNotifiers, Notifiers};
use crate::api::metric_template::SecretRef;
use crate::api::{AlertProvider, AlertProviderSpec, AlertProviderType};
use crate::k8s::Caches;
use crate::k8s::cache::testing::{self, store_of};

#[derive(Debug, Clone, PartialEq)]
struct Posted {
    path: String,
    auth: Option<String>,
    body: Value,
}

type Log = Arc<Mutex<Vec<Posted>>>;

const SECRET_PATH: &str = "/api/v1/namespaces/flagger/secrets/chat-secret";

async fn handle(State((log, addr)): State<(Log, SocketAddr)>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let path = parts.uri.path().to_owned();
    if parts.method == Method::GET && path == SECRET_PATH {
        return secret_json(addr).into_response();
    }
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    if path == "/fail" {
        return (StatusCode::INTERNAL_SERVER_ERROR, "boom").into_response();
    }
    if path == "/slow" {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let body = serde_json::from_slice(&bytes).unwrap();
    log.lock().unwrap().push(Posted { path, auth, body });
    "ok".into_response()
}

fn secret_json(addr: SocketAddr) -> ([(header::HeaderName, &'static str); 1], String) {
    let bytes = |s: String| ByteString(s.into_bytes());
    let secret = Secret {
        metadata: ObjectMeta {
            name: Some("chat-secret".into()),
            namespace: Some("flagger".into()),
            ..ObjectMeta::default()
        },
        data: Some(BTreeMap::from([
            (
                "address".into(),
                bytes(format!("http://{addr}/from-secret")),
            ),
            ("token".into(), bytes("s3cr3t".into())),
        ])),
        ..Secret::default()
    };
    let mut value = serde_json::to_value(&secret).unwrap();
    value["apiVersion"] = json!("v1");
    value["kind"] = json!("Secret");
    (
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
}

struct Server {
    addr: SocketAddr,
    log: Log,
}

impl Server {
    async fn start() -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Log::default();
        let app = Router::new()
            .fallback(handle)
            .with_state((log.clone(), addr));
        tokio::spawn(async move { axum::serve(listener, app).await });
        Server { addr, log }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn posted(&self) -> Vec<Posted> {
        let mut posted = self.log.lock().unwrap().clone();
        posted.sort_by(|a, b| a.path.cmp(&b.path));
        posted
    }

    fn paths(&self) -> Vec<String> {
        self.posted().into_iter().map(|p| p.path).collect()
    }

    /// A kube client whose API server is this server.
    fn kube(&self) -> kube::Client {
        ensure_crypto_provider();
        let config = kube::Config::new(self.url("").parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }

    fn notifiers(&self, providers: Vec<AlertProvider>, global: GlobalNotifiers) -> Notifiers {
        Notifiers::with_http(self.kube(), caches(providers), global, Http::direct())
    }
}

fn caches(providers: Vec<AlertProvider>) -> Caches {
    Caches {
        alert_providers: store_of(providers),
        ..testing::empty()
    }
}

fn provider(name: &str, type_: AlertProviderType, address: Option<String>) -> AlertProvider {
    let mut p = AlertProvider::new(
        name,
        AlertProviderSpec {
            type_,
            channel: None,
            username: None,
            address,
            proxy: None,
            secret_ref: None,
        },
    );
    p.metadata.namespace = Some("flagger".into());
    p
}

fn alert_ref(provider: &str, severity: &str) -> AlertRef {
    AlertRef {
        name: format!("{provider}-alert"),
        severity: severity.into(),
        provider_name: provider.into(),
        provider_namespace: Some("flagger".into()),
    }
}

fn notification(severity: Severity, providers: Vec<AlertRef>) -> Notification {
    Notification {
        key: CanaryKey::new("test", "podinfo"),
        alert: Alert::new("Canary is waiting for approval.", severity, false),
        providers,
        fields: vec![("Target".into(), "Deployment/podinfo.test".into())],
    }
}

fn global(args: &[&str]) -> GlobalNotifiers {
    let argv = std::iter::once("serin")
        .chain(args.iter().copied())
        .map(String::from);
    GlobalNotifiers::from_flags(&crate::cli::parse(argv).unwrap().operator)
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(5)
}

#[tokio::test]
async fn global_slack_posts_with_token_and_cluster_field() {
    let server = Server::start().await;
    let slack_url = server.url("/api/chat.postMessage");
    let g = global(&[
        "-slack-url",
        &slack_url,
        "-slack-channel",
        "ops",
        "-slack-token",
        "xoxb-1",
        "-cluster-name",
        "prod",
    ]);
    let n = server.notifiers(vec![], g);
    n.send(&notification(Severity::Error, vec![]), soon())
        .await
        .unwrap();
    assert_eq!(
        server.posted(),
        [Posted {
            path: "/api/chat.postMessage".into(),
            auth: Some("Bearer xoxb-1".into()),
            body: json!({
                "channel": "ops",
                "username": "flagger",
                "icon_url": "",
                "icon_emoji": ":rocket:",
                "attachments": [{
                    "color": "danger",
                    "author_name": "podinfo.test",
                    "text": "Canary is waiting for approval.",
                    "mrkdwn_in": ["text"],
                    "fields": [
                        {"title": "Cluster", "value": "prod", "short": false},
                        {"title": "Target", "value": "Deployment/podinfo.test", "short": false}
                    ]
                }]
            }),
        }]
    );
}

#[tokio::test]
async fn global_teams_receives_a_message_card() {
    let server = Server::start().await;
    let teams_url = server.url("/webhookb2/x");
    let n = server.notifiers(vec![], global(&["-msteams-url", &teams_url]));
    n.send(&notification(Severity::Info, vec![]), soon())
        .await
        .unwrap();
    let posted = server.posted();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].path, "/webhookb2/x");
    assert_eq!(posted[0].auth, None);
    assert_eq!(posted[0].body["@type"], json!("MessageCard"));
    assert_eq!(posted[0].body["themeColor"], json!("0076D7"));
    assert_eq!(
        posted[0].body["sections"][0]["facts"],
        json!([{"name": "Target", "value": "Deployment/podinfo.test"}])
    );
}

#[tokio::test]
async fn nothing_configured_sends_nothing() {
    let server = Server::start().await;
    let n = server.notifiers(vec![], GlobalNotifiers::disabled());
    n.send(&notification(Severity::Error, vec![]), soon())
        .await
        .unwrap();
    assert!(server.posted().is_empty());
}

#[tokio::test]
async fn alerts_go_to_the_providers_whose_severity_admits_them() {
    let server = Server::start().await;
    let providers = vec![
        provider(
            "oncall",
            AlertProviderType::Slack,
            Some(server.url("/oncall")),
        ),
        provider(
            "chat",
            AlertProviderType::Msteams,
            Some(server.url("/teams")),
        ),
        provider(
            "warnings",
            AlertProviderType::Discord,
            Some(server.url("/discord")),
        ),
        provider(
            "unset",
            AlertProviderType::Rocket,
            Some(server.url("/rocket")),
        ),
        provider(
            "gchat",
            AlertProviderType::Gchat,
            Some(server.url("/gchat")),
        ),
    ];
    let refs = vec![
        alert_ref("oncall", "error"),
        alert_ref("chat", "info"),
        alert_ref("warnings", "warn"),
        alert_ref("unset", ""),
        alert_ref("gchat", "error"),
    ];
    // A configured global notifier is ignored when the Canary has alerts.
    let g = global(&["-msteams-url", &server.url("/global")]);
    let n = server.notifiers(providers, g);

    n.send(&notification(Severity::Warn, refs.clone()), soon())
        .await
        .unwrap();
    assert_eq!(server.paths(), ["/discord/slack", "/teams"]);
    let discord = &server.posted()[0].body;
    assert_eq!(discord["channel"], json!("general"));
    assert_eq!(discord["username"], json!("flagger"));

    server.log.lock().unwrap().clear();
    n.send(&notification(Severity::Error, refs), soon())
        .await
        .unwrap();
    assert_eq!(
        server.paths(),
        ["/discord/slack", "/gchat", "/oncall", "/teams"]
    );
}

#[tokio::test]
async fn secret_ref_supplies_address_and_token() {
    let server = Server::start().await;
    let mut p = provider(
        "secret",
        AlertProviderType::Slack,
        Some(server.url("/ignored")),
    );
    p.spec.secret_ref = Some(SecretRef {
        name: "chat-secret".into(),
    });
    p.spec.channel = Some("deploys".into());
    let n = server.notifiers(vec![p], GlobalNotifiers::disabled());
    n.send(
        &notification(Severity::Info, vec![alert_ref("secret", "info")]),
        soon(),
    )
    .await
    .unwrap();
    let posted = server.posted();
    assert_eq!(posted.len(), 1);
    assert_eq!(posted[0].path, "/from-secret");
    assert_eq!(posted[0].auth.as_deref(), Some("Bearer s3cr3t"));
    assert_eq!(posted[0].body["channel"], json!("deploys"));
}

#[tokio::test]
async fn failures_are_reported_and_do_not_stop_other_providers() {
    let server = Server::start().await;
    let providers = vec![
        provider(
            "broken",
            AlertProviderType::Msteams,
            Some(server.url("/fail")),
        ),
        provider(
            "fine",
            AlertProviderType::Msteams,
            Some(server.url("/teams")),
        ),
        provider("no-address", AlertProviderType::Slack, None),
    ];
    let n = server.notifiers(providers, GlobalNotifiers::disabled());
    let refs = vec![
        alert_ref("broken", "info"),
        alert_ref("fine", "info"),
        alert_ref("no-address", "info"),
    ];
    let err = n
        .send(&notification(Severity::Info, refs), soon())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PortError::Failed(
            "alert provider broken.flagger send error: sending notification bad response 500: boom"
                .into()
        )
    );
    assert_eq!(server.paths(), ["/teams"]);

    let missing = vec![alert_ref("absent", "info")];
    let err = n
        .send(&notification(Severity::Info, missing), soon())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        PortError::NotFound("alert provider absent.flagger".into())
    );
}

#[tokio::test]
async fn the_deadline_bounds_a_slow_provider() {
    let server = Server::start().await;
    let providers = vec![provider(
        "slow",
        AlertProviderType::Gchat,
        Some(server.url("/slow")),
    )];
    let n = server.notifiers(providers, GlobalNotifiers::disabled());
    let started = std::time::Instant::now();
    let deadline = Instant::now() + Duration::from_millis(300);
    let err = n
        .send(
            &notification(Severity::Info, vec![alert_ref("slow", "info")]),
            deadline,
        )
        .await
        .unwrap_err();
    assert_eq!(err, PortError::Timeout);
    // The provider answers after 10 s: the deadline cut it short.
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test]
async fn a_provider_proxy_is_honoured() {
    let server = Server::start().await;
    // The address does not resolve: only the proxy (this server) can deliver it.
    let mut p = provider(
        "proxied",
        AlertProviderType::Rocket,
        Some("http://chat.invalid/via-proxy".into()),
    );
    p.spec.proxy = Some(server.url(""));
    let n = server.notifiers(vec![p], GlobalNotifiers::disabled());
    n.send(
        &notification(Severity::Info, vec![alert_ref("proxied", "info")]),
        soon(),
    )
    .await
    .unwrap();
    assert_eq!(server.paths(), ["/via-proxy"]);
}
