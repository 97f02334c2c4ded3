//! The command line's client side: `serin get`, `status`, `promote`,
//! `abort`, `retry`, `pause`, `resume`, `completion` against a cluster, and
//! `lint` (`crate::lint`), offline
//! (kubeconfig rules as kubectl's). Rendering is pure (`table`, `view`,
//! `progress`); the rest talks to the API server.

mod canaries;
pub mod completion;
mod connect;
pub mod events;
#[cfg(test)]
mod fixtures;
mod get;
pub mod human;
mod output;
pub mod progress;
pub mod request;
pub mod revision;
mod status;
mod suspend;
pub mod table;
pub mod view;
mod watch;
pub mod workloads;

use std::io::Write;

use crate::cli::ClientCommand;

pub use connect::Session;

/// Exit codes of the client's commands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Done; the run succeeded; the request was accepted.
    Ok,
    /// The run failed; the request was refused.
    Failed,
    /// No outcome in time (`--timeout`, `--wait`).
    Timeout,
    /// Anything else: usage, a missing canary, the API server.
    Error,
}

impl Exit {
    pub fn code(self) -> u8 {
        match self {
            Exit::Ok => 0,
            Exit::Failed => 1,
            Exit::Timeout => 2,
            Exit::Error => 3,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("{0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config) and not in a cluster: {0}")]
    InCluster(#[from] kube::config::InClusterError),
    #[error("{}", api_message(.0))]
    Kube(#[from] kube::Error),
    #[error("canaries.flagger.app \"{name}\" not found in namespace {namespace}")]
    NotFound { name: String, namespace: String },
    #[error("{0}")]
    Parse(#[from] crate::api::ParseError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot write the output: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot encode the output: {0}")]
    Encode(String),
}

/// kubectl's wording for an API server's refusal.
fn api_message(e: &kube::Error) -> String {
    match e {
        kube::Error::Api(status) => format!(
            "Error from server ({}): {}",
            if status.reason.is_empty() {
                "Unknown"
            } else {
                &status.reason
            },
            status.message
        ),
        other => other.to_string(),
    }
}

/// Runs a client command, printing to `out` (stdout) and reporting on
/// `err` (stderr); returns the exit code.
pub async fn run(command: ClientCommand, out: &mut dyn Write, err: &mut dyn Write) -> Exit {
    let result = match command {
        ClientCommand::Get(args) => get::run(&args, out).await,
        ClientCommand::Status(args) => status::run(&args, out).await,
        ClientCommand::Promote(args) => {
            request::run(crate::api::canary::RequestAction::Promote, &args, out).await
        }
        ClientCommand::Abort(args) => {
            request::run(crate::api::canary::RequestAction::Abort, &args, out).await
        }
        ClientCommand::Retry(args) => {
            request::run(crate::api::canary::RequestAction::Retry, &args, out).await
        }
        ClientCommand::Pause(args) => suspend::run(&args, true, out).await,
        ClientCommand::Resume(args) => suspend::run(&args, false, out).await,
        ClientCommand::Completion(args) => completion::run(args.shell, out).map(|()| Outcome::ok()),
        ClientCommand::Lint(args) => Ok(lint(&args, out)),
    };
    let _ = out.flush();
    match result {
        Ok(outcome) => {
            if let Some(message) = outcome.message {
                let _ = writeln!(err, "{message}");
            }
            outcome.exit
        }
        Err(e) => {
            let _ = writeln!(err, "serin: {e}");
            Exit::Error
        }
    }
}

/// `serin lint`: offline, no cluster needed.
fn lint(args: &crate::cli::LintArgs, out: &mut dyn Write) -> Outcome {
    let exit = match crate::lint::run(&args.files, &args.mesh_provider, out) {
        0 => Exit::Ok,
        1 => Exit::Failed,
        _ => Exit::Error,
    };
    Outcome {
        exit,
        message: None,
    }
}

/// How a command ended: its exit code and what to say on stderr (as is).
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    pub exit: Exit,
    pub message: Option<String>,
}

impl Outcome {
    pub fn ok() -> Outcome {
        Outcome {
            exit: Exit::Ok,
            message: None,
        }
    }

    pub fn with(exit: Exit, message: impl Into<String>) -> Outcome {
        Outcome {
            exit,
            message: Some(message.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let codes: Vec<u8> = [Exit::Ok, Exit::Failed, Exit::Timeout, Exit::Error]
            .into_iter()
            .map(Exit::code)
            .collect();
        assert_eq!(codes, [0, 1, 2, 3]);
    }

    #[test]
    fn api_errors_read_like_kubectl() {
        let status =
            kube::core::Status::failure("canaries.flagger.app \"x\" is forbidden", "Forbidden");
        let e = CtlError::from(kube::Error::Api(Box::new(status)));
        assert_eq!(
            e.to_string(),
            "Error from server (Forbidden): canaries.flagger.app \"x\" is forbidden"
        );
    }
}
