//! Kubernetes clients that share Flagger's `-kubeconfig-qps`/`-kubeconfig-burst`
//! budget, with an urgent lane for a rollback's writes.
//!
//! One HTTP service (one connection pool, one auth layer) is shared by two
//! `kube::Client`s; each request takes a token from one [`RateLimiter`] in its
//! client's lane, then is counted in `serin_api_requests_total`. A watch takes
//! a token for its initial request only: the stream holds nothing.

use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};

use futures::TryFutureExt;
use futures::future::BoxFuture;
use http::{Method, Request, Response};
use kube::client::{Body, ClientBuilder, DynBody};
use kube::config::{Config, KubeConfigOptions, Kubeconfig};
use serin_actors::ports::Priority;
use tower::buffer::Buffer;
use tower::util::BoxService;
use tower::{BoxError, Layer, Service, ServiceExt};

use crate::k8s::limiter::{Lane, LimiterError, RateLimiter};
use crate::telemetry::recorder::Recorder;

/// Two handles on one connection and one rate limit: `urgent` calls are
/// served before any queued `routine` call.
#[derive(Clone)]
pub struct KubeClients {
    pub routine: kube::Client,
    pub urgent: kube::Client,
}

impl KubeClients {
    pub fn for_priority(&self, priority: Priority) -> &kube::Client {
        match priority {
            Priority::Routine => &self.routine,
            Priority::Urgent => &self.urgent,
        }
    }
}

/// Where the API server is and how fast to talk to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// Path to a kubeconfig; `""` means in-cluster configuration.
    pub kubeconfig: String,
    /// API server URL overriding the kubeconfig's (or the in-cluster) one.
    pub master: String,
    /// Tokens a second; 0 means client-go's default 5.
    pub qps: u32,
    /// Bucket capacity; 0 means client-go's default 10.
    pub burst: u32,
}

pub fn from_flags(flags: &crate::cli::OperatorFlags) -> ClientOptions {
    ClientOptions {
        kubeconfig: flags.kubeconfig.clone(),
        master: flags.master.clone(),
        qps: flags.kubeconfig_qps,
        burst: flags.kubeconfig_burst,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot load kubeconfig {path:?}: {source}; check the -kubeconfig path")]
    Kubeconfig {
        path: String,
        source: kube::config::KubeconfigError,
    },
    #[error(
        "no in-cluster configuration ({0}): outside a pod, pass -kubeconfig <path> \
         (and optionally -master <url>)"
    )]
    InCluster(#[from] kube::config::InClusterError),
    #[error("invalid -master URL {url:?}: {source}")]
    Master {
        url: String,
        source: http::uri::InvalidUri,
    },
    #[error("cannot build the Kubernetes HTTP client: {0}")]
    Build(#[from] kube::Error),
    #[error(transparent)]
    Limiter(#[from] LimiterError),
    /// kube did not hand its HTTP stack to our layer; a bug, not a setting.
    #[error("internal error building the Kubernetes clients: {0}")]
    Internal(&'static str),
}

/// Builds both clients on the current tokio runtime (the buffer workers and
/// the rate limiter's dispatcher are spawned there).
pub async fn connect(
    options: &ClientOptions,
    recorder: Option<Recorder>,
) -> Result<KubeClients, ClientError> {
    let config = load_config(options).await?;
    let limiter = RateLimiter::new(options.qps, options.burst)?;
    let split = Split {
        limiter,
        recorder,
        urgent: Mutex::new(None),
    };
    let routine = ClientBuilder::try_from(config)?.with_layer(&split).build();
    let urgent_service = split
        .urgent
        .lock()
        .ok()
        .and_then(|mut slot| slot.take())
        .ok_or(ClientError::Internal("the urgent lane was not built"))?;
    let urgent = ClientBuilder::new(urgent_service, routine.default_namespace())
        .with_valid_until(*routine.valid_until())
        .build();
    Ok(KubeClients { routine, urgent })
}

/// Flagger's `clientcmd.BuildConfigFromFlags(master, kubeconfig)`: a path
/// loads that file; no path means in-cluster; `master` replaces the URL.
async fn load_config(options: &ClientOptions) -> Result<Config, ClientError> {
    let mut config = if options.kubeconfig.is_empty() {
        match Config::incluster() {
            Ok(config) => config,
            // An explicit master without in-cluster credentials: talk to it
            // unauthenticated, as client-go does.
            Err(_) if !options.master.is_empty() => Config::new(parse_master(&options.master)?),
            Err(err) => return Err(ClientError::InCluster(err)),
        }
    } else {
        let path = options.kubeconfig.clone();
        let kubeconfig =
            Kubeconfig::read_from(&path).map_err(|source| ClientError::Kubeconfig {
                path: path.clone(),
                source,
            })?;
        Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .map_err(|source| ClientError::Kubeconfig { path, source })?
    };
    if !options.master.is_empty() {
        config.cluster_url = parse_master(&options.master)?;
    }
    Ok(config)
}

fn parse_master(url: &str) -> Result<http::Uri, ClientError> {
    url.parse().map_err(|source| ClientError::Master {
        url: url.to_string(),
        source,
    })
}

type Generic = BoxService<Request<Body>, Response<Box<DynBody>>, BoxError>;
type Shared = Buffer<Request<Body>, <Generic as Service<Request<Body>>>::Future>;

/// Puts kube's HTTP stack behind one buffer and hands out a lane on it for
/// each client: `layer` returns the routine lane and leaves the urgent one.
struct Split {
    limiter: RateLimiter,
    recorder: Option<Recorder>,
    urgent: Mutex<Option<Limited>>,
}

impl Layer<Generic> for Split {
    type Service = Limited;

    fn layer(&self, inner: Generic) -> Limited {
        let shared = Buffer::new(inner, 1024);
        let lane = |lane| Limited {
            inner: shared.clone(),
            limiter: self.limiter.clone(),
            recorder: self.recorder.clone(),
            lane,
        };
        if let Ok(mut slot) = self.urgent.lock() {
            *slot = Some(lane(Lane::Urgent));
        }
        lane(Lane::Routine)
    }
}

/// One client's lane: count, wait for a token, then send.
#[derive(Clone)]
struct Limited {
    inner: Shared,
    limiter: RateLimiter,
    recorder: Option<Recorder>,
    lane: Lane,
}

impl Service<Request<Body>> for Limited {
    type Response = Response<Box<DynBody>>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    // Always ready: the wait happens in the response future, so a throttled
    // request never holds kube's buffer worker.
    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        if let Some(recorder) = &self.recorder {
            let (verb, resource) = classify(request.method(), request.uri());
            recorder.count_api_request(verb, &resource);
        }
        let inner = self.inner.clone();
        let limiter = self.limiter.clone();
        let lane = self.lane;
        // Combinators rather than an async block: the latter trips rustc's
        // higher-ranked `Send` check on tower's `Oneshot`.
        let call: BoxFuture<'static, Result<Self::Response, BoxError>> = Box::pin(
            limiter
                .acquire(lane)
                .map_err(|err| Box::new(err) as BoxError)
                .and_then(move |()| inner.oneshot(request)),
        );
        call
    }
}

/// The verb and resource the API server would name for this request
/// (`k8s.io/apiserver` `RequestInfoFactory`). The resource is the plural
/// name with the subresource appended (`canaries/status`); a request outside
/// any resource (discovery, `/version`) is `nonresource`.
pub fn classify(method: &Method, uri: &http::Uri) -> (&'static str, String) {
    let watch = uri.query().is_some_and(|q| {
        q.split('&')
            .any(|kv| kv == "watch=true" || kv == "watch=1" || kv == "watch")
    });
    let Some(path) = ResourcePath::parse(uri.path()) else {
        return (method_verb(method), "nonresource".to_string());
    };
    let verb = match *method {
        Method::GET | Method::HEAD if watch || path.legacy_watch => "watch",
        Method::GET | Method::HEAD if path.named => "get",
        Method::GET | Method::HEAD => "list",
        Method::POST => "create",
        Method::PUT => "update",
        Method::PATCH => "patch",
        Method::DELETE if path.named => "delete",
        Method::DELETE => "deletecollection",
        _ => method_verb(method),
    };
    (verb, path.resource)
}

fn method_verb(method: &Method) -> &'static str {
    match *method {
        Method::GET => "get",
        Method::HEAD => "head",
        Method::POST => "post",
        Method::PUT => "put",
        Method::PATCH => "patch",
        Method::DELETE => "delete",
        Method::OPTIONS => "options",
        _ => "other",
    }
}

struct ResourcePath {
    resource: String,
    named: bool,
    legacy_watch: bool,
}

impl ResourcePath {
    fn parse(path: &str) -> Option<ResourcePath> {
        let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
        // `/api/v1/...` or `/apis/<group>/<version>/...`
        let mut rest = match parts.as_slice() {
            ["api", _version, rest @ ..] => rest,
            ["apis", _group, _version, rest @ ..] => rest,
            _ => return None,
        };
        let mut legacy_watch = false;
        if let ["watch", tail @ ..] = rest {
            legacy_watch = true;
            rest = tail;
        }
        // `namespaces/<ns>/<resource>...`, except the namespace's own
        // `status` and `finalize` subresources.
        if let ["namespaces", _ns, next, ..] = rest
            && *next != "status"
            && *next != "finalize"
        {
            rest = &rest[2..];
        }
        match rest {
            [] | [""] => None,
            [resource] => Some(ResourcePath {
                resource: (*resource).to_string(),
                named: false,
                legacy_watch,
            }),
            [resource, _name] => Some(ResourcePath {
                resource: (*resource).to_string(),
                named: true,
                legacy_watch,
            }),
            [resource, _name, sub, ..] => Some(ResourcePath {
                resource: format!("{resource}/{sub}"),
                named: true,
                legacy_watch,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(method: Method, uri: &str) -> (&'static str, String) {
        classify(&method, &uri.parse().unwrap())
    }

    #[test]
    fn verbs_and_resources_follow_the_api_server() {
        let cases = [
            (
                Method::GET,
                "/apis/apps/v1/namespaces/test/deployments/podinfo",
                "get",
                "deployments",
            ),
            (
                Method::GET,
                "/apis/apps/v1/namespaces/test/deployments?labelSelector=a",
                "list",
                "deployments",
            ),
            (
                Method::GET,
                "/apis/apps/v1/deployments",
                "list",
                "deployments",
            ),
            (
                Method::GET,
                "/apis/flagger.app/v1beta1/canaries?watch=true&resourceVersion=1",
                "watch",
                "canaries",
            ),
            (
                Method::GET,
                "/api/v1/watch/namespaces/test/pods",
                "watch",
                "pods",
            ),
            (
                Method::POST,
                "/api/v1/namespaces/test/services",
                "create",
                "services",
            ),
            (
                Method::PUT,
                "/apis/apps/v1/namespaces/test/deployments/podinfo-primary",
                "update",
                "deployments",
            ),
            (
                Method::PATCH,
                "/apis/flagger.app/v1beta1/namespaces/test/canaries/podinfo/status",
                "patch",
                "canaries/status",
            ),
            (
                Method::PUT,
                "/apis/apps/v1/namespaces/test/deployments/podinfo/scale",
                "update",
                "deployments/scale",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/test/pods/p1",
                "delete",
                "pods",
            ),
            (
                Method::DELETE,
                "/api/v1/namespaces/test/pods?labelSelector=x",
                "deletecollection",
                "pods",
            ),
            (Method::GET, "/api/v1/namespaces/test", "get", "namespaces"),
            (Method::GET, "/api/v1/namespaces", "list", "namespaces"),
            (
                Method::PUT,
                "/api/v1/namespaces/test/finalize",
                "update",
                "namespaces/finalize",
            ),
            (
                Method::GET,
                "/api/v1/namespaces/test/status",
                "get",
                "namespaces/status",
            ),
            (Method::POST, "/api/v1/namespaces", "create", "namespaces"),
            (
                Method::GET,
                "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/flagger-leader-election",
                "get",
                "leases",
            ),
            (Method::GET, "/version", "get", "nonresource"),
            (
                Method::GET,
                "/apis/flagger.app/v1beta1",
                "get",
                "nonresource",
            ),
            (Method::GET, "/api/v1", "get", "nonresource"),
        ];
        for (method, uri, verb, resource) in cases {
            assert_eq!(
                check(method.clone(), uri),
                (verb, resource.to_string()),
                "{method} {uri}"
            );
        }
    }

    #[test]
    fn options_map_the_flags() {
        let cli = crate::cli::parse(
            [
                "serin",
                "-kubeconfig=/tmp/k",
                "-master=https://h:6443",
                "-kubeconfig-qps=5",
                "-kubeconfig-burst=7",
            ]
            .map(String::from),
        )
        .unwrap();
        let options = from_flags(&cli.operator);
        assert_eq!(
            options,
            ClientOptions {
                kubeconfig: "/tmp/k".into(),
                master: "https://h:6443".into(),
                qps: 5,
                burst: 7,
            }
        );
    }

    #[tokio::test]
    async fn a_missing_kubeconfig_names_the_path() {
        let options = ClientOptions {
            kubeconfig: "/nonexistent/kubeconfig".into(),
            master: String::new(),
            qps: 1,
            burst: 1,
        };
        let err = connect(&options, None).await.err().unwrap().to_string();
        assert!(
            err.contains("/nonexistent/kubeconfig") && err.contains("-kubeconfig"),
            "{err}"
        );
    }
}

/// Clients for adapters' unit tests that must not reach an API server.
#[cfg(test)]
pub mod testing {
    use super::KubeClients;

    /// Clients pointed at a port nothing listens on (discard, 9).
    #[allow(clippy::expect_used, reason = "test helper")]
    pub fn unreachable() -> KubeClients {
        let url = "http://127.0.0.1:9".parse().expect("a URL");
        let client = kube::Client::try_from(kube::Config::new(url)).expect("a client");
        KubeClients {
            routine: client.clone(),
            urgent: client,
        }
    }
}
