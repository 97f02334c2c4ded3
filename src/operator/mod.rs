//! The operator: connect, check the CRDs, optionally win the leader Lease,
//! start the watches, the shared actors and the bridge, and serve
//! `/healthz` and `/metrics`.

pub mod bridge;
pub mod conditions;
pub mod crd;
pub mod filtered;
pub mod finalize;
pub mod index;
pub mod outbox;
pub mod validate;
pub mod wants;
pub mod watch;

use std::net::SocketAddr;
use std::sync::Arc;

use kube::Api;
use kube::api::ListParams;
use prometheus_client::registry::Registry as MetricsRegistry;
use serin_actors::actors::{ArbiterPool, Clock, RuntimeConfig, Services};
use serin_actors::ports::Ports;
use serin_actors::registry::Registry;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::api::{AlertProvider, Canary, MetricTemplate};
use crate::cli::OperatorFlags;
use crate::k8s::KubeClients;
use crate::k8s::client::{self, ClientError};
use crate::k8s::events::KubeEvents;
use crate::k8s::leader::{self, LEASE_NAME, LeaderError, LeaseTiming};
use crate::k8s::status::KubeStatus;
use crate::metrics::MetricsAdapter;
use crate::notifier::{GlobalNotifiers, Notifiers};
use crate::router::Routers;
use crate::settings::Settings;
use crate::telemetry::Recorder;
use crate::webhook::HttpWebhooks;
use crate::workload::KubeWorkload;

#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{kind} CRD is not registered: {source}")]
    MissingCrd {
        kind: &'static str,
        source: kube::Error,
    },
    #[error("HTTP server on port {port}: {source}")]
    Http { port: u16, source: std::io::Error },
    #[error(transparent)]
    Leader(#[from] LeaderError),
    #[error(
        "the {0} watch did not list within {secs}s (see the watch errors above; missing RBAC?)",
        secs = watch::SYNC_TIMEOUT.as_secs()
    )]
    CacheNotSynced(&'static str),
    #[error(transparent)]
    Webhooks(#[from] crate::webhook::WebhookError),
}

/// Runs until the process is stopped (or leadership is lost).
pub async fn run(flags: OperatorFlags) -> Result<(), OperatorError> {
    let version = env!("CARGO_PKG_VERSION");
    tracing::info!(
        "Starting flagger version {version} revision serin mesh provider {}",
        flags.mesh_provider
    );
    log_ignored(&flags);
    let mut metrics_registry = MetricsRegistry::default();
    let recorder = Recorder::new(&mut metrics_registry, version, &flags.mesh_provider);
    let metrics_registry = Arc::new(metrics_registry);

    let addr = SocketAddr::from(([0, 0, 0, 0], flags.port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| OperatorError::Http {
            port: flags.port,
            source,
        })?;
    tracing::info!("Starting HTTP server on port {}", flags.port);
    let registry_for_http = metrics_registry.clone();
    tokio::spawn(async move {
        let app = crate::telemetry::http::router(registry_for_http);
        if let Err(err) = axum::serve(listener, app).await {
            tracing::error!(error = %err, "HTTP server stopped");
        }
    });

    let clients = client::connect(&client::from_flags(&flags), Some(recorder.clone())).await?;
    tracing::info!("Connected to Kubernetes API");
    check_crds(&clients.routine, &flags.namespace).await?;

    let mut settings = Settings::from_flags(&flags);
    settings.requests = crd::keeps_requests(&clients.routine).await;
    let settings = Arc::new(settings);
    if flags.enable_leader_election {
        let namespace = flags.leader_election_namespace().to_string();
        let work = {
            let (clients, settings, recorder) =
                (clients.clone(), settings.clone(), recorder.clone());
            let flags = flags.clone();
            move || work(clients, settings, recorder, flags)
        };
        // Losing the lease drops `work`; the caller exits, as Flagger does.
        leader::run_as_leader(
            clients.urgent.clone(),
            &namespace,
            LEASE_NAME,
            LeaseTiming::default(),
            work,
        )
        .await?
    } else {
        work(clients, settings, recorder, flags).await
    }
}

/// Flagger lists each kind once at start and stops when one is missing.
async fn check_crds(client: &kube::Client, namespace: &str) -> Result<(), OperatorError> {
    let params = ListParams::default().limit(1);
    let ns = (!namespace.is_empty()).then_some(namespace);
    macro_rules! probe {
        ($kind:ty, $name:literal) => {{
            let api: Api<$kind> = match ns {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            api.list_metadata(&params)
                .await
                .map_err(|source| OperatorError::MissingCrd {
                    kind: $name,
                    source,
                })?;
        }};
    }
    probe!(Canary, "Canary");
    probe!(MetricTemplate, "MetricTemplate");
    probe!(AlertProvider, "AlertProvider");
    Ok(())
}

/// Everything only the leader does.
async fn work(
    clients: KubeClients,
    settings: Arc<Settings>,
    recorder: Recorder,
    flags: OperatorFlags,
) -> Result<(), OperatorError> {
    let (changes_tx, changes_rx) = mpsc::unbounded_channel();
    let mut watches = JoinSet::new();
    let (caches, interest) = watch::start(
        &clients.routine,
        settings.namespace.as_deref(),
        changes_tx.clone(),
        &mut watches,
    );
    if let Some(ns) = &settings.namespace {
        tracing::info!("Watching namespace {ns}");
    }
    watch::ready(&caches)
        .await
        .map_err(OperatorError::CacheNotSynced)?;

    let workload = Arc::new(KubeWorkload::new(
        clients.clone(),
        caches.clone(),
        settings.clone(),
    ));
    let instance = hostname();
    let events = KubeEvents::new(clients.clone(), instance);
    let status = Arc::new(KubeStatus::new(
        clients.clone(),
        caches.clone(),
        Some(recorder.clone()),
    ));
    let webhooks = HttpWebhooks::new()?.with_event_webhook(flags.event_webhook.clone());
    let runtime = RuntimeConfig {
        global_event_hook: webhooks.global_event_hook(),
        ..RuntimeConfig::default()
    };
    let routers = Arc::new(Routers::new(
        caches.clone(),
        clients.clone(),
        &settings.ingress_annotations_prefix,
    ));
    let ports = Ports {
        workload: workload.clone(),
        router: routers.clone(),
        metrics: Arc::new(MetricsAdapter::new(
            clients.routine.clone(),
            caches.clone(),
            settings.clone(),
            Some(recorder.clone()),
        )),
        webhooks: Arc::new(webhooks),
        notifier: Arc::new(Notifiers::new(
            clients.routine.clone(),
            caches.clone(),
            GlobalNotifiers::from_flags(&flags),
        )),
        status,
        events: Arc::new(events.clone()),
    };
    let shared = actix::Arbiter::new();
    let services = Services::start(ports, runtime, Clock::system(), &shared.handle())
        .with_observer(Arc::new(recorder.clone()));
    let arbiters = std::thread::available_parallelism().map_or(2, |n| n.get());
    let registry = Arc::new(Registry::new(services, ArbiterPool::spawn(arbiters)));
    tracing::info!("Started operator workers");

    let ctx = bridge::Context {
        registry: registry.clone(),
        caches,
        interest,
        settings,
        clients,
        events,
        workload,
        routers,
        recorder: Some(recorder),
    };
    bridge::Bridge::new(ctx, changes_tx).run(changes_rx).await;
    registry.shutdown();
    shared.stop();
    watches.shutdown().await;
    Ok(())
}

/// Flags Flagger has that Serin accepts but does not act on yet.
fn log_ignored(flags: &OperatorFlags) {
    let Some(defaults) = OperatorFlags::defaults() else {
        return;
    };
    let mut ignored = Vec::new();
    if flags.kubeconfig_service_mesh != defaults.kubeconfig_service_mesh {
        ignored.push("kubeconfig-service-mesh");
    }
    if flags.threadiness != defaults.threadiness {
        ignored.push("threadiness");
    }
    if flags.control_loop_interval != defaults.control_loop_interval {
        ignored.push("control-loop-interval");
    }
    if flags.zap_replace_globals != defaults.zap_replace_globals {
        ignored.push("zap-replace-globals");
    }
    if flags.zap_encoding != defaults.zap_encoding {
        ignored.push("zap-encoding");
    }
    if flags.ingress_class != defaults.ingress_class {
        ignored.push("ingress-class");
    }
    for flag in ignored {
        tracing::warn!("flag -{flag} is accepted for Flagger compatibility and ignored");
    }
}

/// Pod name in a cluster; the event reporting instance.
fn hostname() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_string())
        })
        .unwrap_or_else(|| "serin".to_string())
}
