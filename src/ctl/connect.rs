//! The client's connection, with kubectl's rules: `--kubeconfig`, else
//! `$KUBECONFIG`, else `~/.kube/config`, else the in-cluster configuration;
//! `--context`; the namespace from `-n`, else the context's, else `default`.

use std::path::PathBuf;

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use crate::cli::Connection;

use super::CtlError;

/// A client and the namespace commands act in.
pub struct Session {
    pub client: Client,
    pub namespace: String,
}

/// Where the kubeconfig comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    /// `$KUBECONFIG` or `~/.kube/config`, as kube reads them (merged).
    Default,
    InCluster,
}

/// kubectl's order; `env` looks up environment variables.
pub fn source(connection: &Connection, env: impl Fn(&str) -> Option<String>) -> Source {
    if let Some(path) = connection.kubeconfig.as_ref() {
        return Source::File(path.clone());
    }
    if env("KUBECONFIG").is_some_and(|v| !v.is_empty()) {
        return Source::Default;
    }
    let home_config = env("HOME").map(|home| PathBuf::from(home).join(".kube/config"));
    if home_config.is_some_and(|p| p.is_file()) {
        return Source::Default;
    }
    Source::InCluster
}

pub async fn connect(connection: &Connection) -> Result<Session, CtlError> {
    let options = KubeConfigOptions {
        context: connection.context.clone(),
        cluster: None,
        user: None,
    };
    let config = match source(connection, |name| std::env::var(name).ok()) {
        Source::File(path) => {
            Config::from_custom_kubeconfig(Kubeconfig::read_from(path)?, &options).await?
        }
        Source::Default => Config::from_custom_kubeconfig(Kubeconfig::read()?, &options).await?,
        Source::InCluster => {
            if let Some(context) = connection.context.as_deref() {
                return Err(CtlError::Usage(format!(
                    "--context {context}: no kubeconfig (--kubeconfig, $KUBECONFIG, ~/.kube/config)"
                )));
            }
            Config::incluster()?
        }
    };
    let namespace = connection
        .namespace
        .clone()
        .unwrap_or_else(|| config.default_namespace.clone());
    let client = Client::try_from(config)?;
    Ok(Session { client, namespace })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectls_order() {
        let flag = Connection {
            kubeconfig: Some("/tmp/k".into()),
            ..Default::default()
        };
        let env_set = |name: &str| (name == "KUBECONFIG").then(|| "/tmp/env".to_string());
        assert_eq!(source(&flag, env_set), Source::File("/tmp/k".into()));
        let none = Connection::default();
        assert_eq!(source(&none, env_set), Source::Default);
        let empty = |name: &str| (name == "KUBECONFIG").then(String::new);
        assert_eq!(source(&none, empty), Source::InCluster);
        let home = |name: &str| (name == "HOME").then(|| "/nonexistent".to_string());
        assert_eq!(source(&none, home), Source::InCluster);
    }
}
