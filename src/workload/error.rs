//! Why a workload call failed, with Flagger's texts where it has one.

use serin_actors::ports::PortError;

use super::config::MissingConfig;

#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// `deployments.apps "podinfo" not found`, as the API server says it.
    #[error("{resource} \"{name}\" not found")]
    NotFound {
        resource: &'static str,
        name: String,
    },
    #[error("canary {name}.{namespace} not found")]
    CanaryNotFound { name: String, namespace: String },
    #[error("canary {name}.{namespace} has no uid yet")]
    CanaryWithoutUid { name: String, namespace: String },
    #[error("TargetRef.Kind invalid: {0}")]
    UnsupportedKind(String),
    #[error("autoscalerRef kind {0} is not supported")]
    UnsupportedAutoscaler(String),
    #[error("{kind} {name}.{namespace} spec.selector.matchLabels must contain one of {labels}")]
    NoSelectorLabel {
        kind: &'static str,
        name: String,
        namespace: String,
        /// Go's `%v` of the candidate list.
        labels: String,
    },
    #[error("daemonset {name}.{namespace} must have RollingUpdate strategy but have {strategy}")]
    DaemonSetStrategy {
        name: String,
        namespace: String,
        strategy: String,
    },
    #[error(transparent)]
    MissingConfig(#[from] MissingConfig),
    #[error(
        "router {name}.{namespace} failed to unMarshal annotation kubectl.kubernetes.io/last-applied-configuration"
    )]
    LastApplied { name: String, namespace: String },
    /// A failed API request; `action` says what was attempted.
    #[error("{action}: {source}")]
    Kube {
        action: String,
        #[source]
        source: kube::Error,
    },
}

impl WorkloadError {
    pub fn kube(action: impl Into<String>, source: kube::Error) -> WorkloadError {
        WorkloadError::Kube {
            action: action.into(),
            source,
        }
    }
}

impl From<WorkloadError> for PortError {
    fn from(err: WorkloadError) -> PortError {
        match err {
            // PortError::NotFound appends " not found" itself.
            WorkloadError::NotFound { resource, name } => {
                PortError::NotFound(format!("{resource} \"{name}\""))
            }
            WorkloadError::CanaryNotFound { name, namespace } => {
                PortError::NotFound(format!("canary {name}.{namespace}"))
            }
            other => PortError::Failed(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_reads_like_the_api_server() {
        let err = WorkloadError::NotFound {
            resource: "deployments.apps",
            name: "podinfo".into(),
        };
        assert_eq!(err.to_string(), "deployments.apps \"podinfo\" not found");
        assert_eq!(
            PortError::from(err).to_string(),
            "deployments.apps \"podinfo\" not found"
        );
    }

    #[test]
    fn selector_error_uses_go_list_format() {
        let err = WorkloadError::NoSelectorLabel {
            kind: "deployment",
            name: "podinfo".into(),
            namespace: "test".into(),
            labels: "[app name app.kubernetes.io/name]".into(),
        };
        assert_eq!(
            PortError::from(err),
            PortError::Failed(
                "deployment podinfo.test spec.selector.matchLabels must contain one of [app name app.kubernetes.io/name]".into()
            )
        );
    }
}
