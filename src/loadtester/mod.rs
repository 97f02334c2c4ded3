//! `serin-loadtester`: a drop-in for flagger-loadtester, the webhook service
//! Flagger's Canary manifests call for load tests, shell and kubectl/helm
//! tasks and manual gates (BEHAVIOUR.md §6.1).

pub mod gates;
pub mod hey;
pub mod server;
pub mod tasks;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use clap::Parser;

use crate::api::{DurationError, parse_duration};
use regex::Regex;
use server::App;
use tasks::{HeyShim, Runner};

/// flagger-loadtester's flags, one dash or two.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(name = "serin-loadtester", disable_version_flag = true)]
pub struct Flags {
    #[arg(long, default_value_t = 9090)]
    pub port: u16,
    /// Task execution timeout (Go duration).
    #[arg(long, default_value = "1h")]
    pub timeout: String,
    /// Accept task payloads only from namespaces matching this; empty is all.
    #[arg(long = "namespace-regexp", default_value = "")]
    pub namespace_regexp: String,
    #[arg(long = "log-level", default_value = "info")]
    pub log_level: String,
    /// `json` or `console`.
    #[arg(long = "zap-encoding", default_value = "json")]
    pub zap_encoding: String,
    /// Accepted for compatibility; has no effect.
    #[arg(long = "zap-replace-globals", num_args = 0..=1, require_equals = true,
          default_value = "false", default_missing_value = "true")]
    pub zap_replace_globals: bool,
}

impl Flags {
    /// Parses Go-style arguments (`-port 9090`, `--timeout=5m`).
    pub fn parse_args<I: IntoIterator<Item = String>>(args: I) -> Result<Self, clap::Error> {
        Self::try_parse_from(crate::cli::normalize_args(args))
    }
}

/// Why the loadtester could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum LoadtesterError {
    #[error("invalid -timeout: {0}")]
    Timeout(#[from] DurationError),
    /// Go's regexp and the regex crate share RE2's syntax.
    #[error("invalid -namespace-regexp: {0}")]
    Pattern(#[from] regex::Error),
    #[error("cannot listen on port {port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Builds the shared state from the flags.
pub fn app(flags: &Flags, shim: Option<HeyShim>) -> Result<App, LoadtesterError> {
    let timeout = parse_duration(&flags.timeout)?;
    let namespaces = match flags.namespace_regexp.as_str() {
        "" => None,
        pattern => Some(Regex::new(pattern)?),
    };
    Ok(App {
        runner: Arc::new(Runner::new(timeout, shim)),
        gates: gates::Gates::default(),
        namespaces,
    })
}

/// Serves until SIGTERM or SIGINT.
pub async fn run(flags: Flags) -> Result<(), LoadtesterError> {
    let shim = HeyShim::for_current_exe()
        .inspect_err(|e| tracing::warn!("no hey shim, hey commands need a hey binary: {e}"))
        .ok();
    let app = Arc::new(app(&flags, shim)?);
    let listener = tokio::net::TcpListener::bind(("0.0.0.0", flags.port))
        .await
        .map_err(|source| LoadtesterError::Bind {
            port: flags.port,
            source,
        })?;
    tracing::info!(
        "Starting load tester v{} API on port {}",
        env!("CARGO_PKG_VERSION"),
        flags.port
    );
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let serve = axum::serve(listener, server::router(app)).with_graceful_shutdown(async move {
        let _ = stopped.wait_for(|stop| *stop).await;
    });
    // Blocking tasks hold their request open; give them a minute, as
    // flagger-loadtester does, then stop anyway.
    let deadline = async {
        shutdown().await;
        let _ = stop.send(true);
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    };
    tokio::select! {
        served = serve => served.map_err(LoadtesterError::Serve)?,
        () = deadline => tracing::error!("HTTP server graceful shutdown timed out"),
    }
    tracing::info!("HTTP server stopped");
    Ok(())
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = term => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
