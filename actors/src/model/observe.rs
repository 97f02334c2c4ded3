//! What the ports reported for this tick, and the answers to the checks the
//! tick asked for (see [`crate::decision::tick()`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::spec::HookType;
use super::status::{Phase, Timestamp};

/// Everything a tick reads besides the spec and the status.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Observations {
    /// The target as it is now.
    pub revision: Revision,
    pub primary: Readiness,
    pub canary: Readiness,
    /// What the router reports (`GetRoutes`), not what the status says:
    /// the two differ in `WaitingPromotion` and for Blue/Green.
    pub routes: Routes,
    /// Results of the checks run so far in this tick.
    pub answers: Answers,
    /// Twenty random letters for new session affinity cookie values (the
    /// actor draws them; the decision stays a function of its inputs).
    #[serde(default)]
    pub cookie_seed: String,
}

/// Identity of the target's current revision.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Revision {
    /// Hash of the pod template (Service: spec; Knative: latest revision name).
    pub spec_hash: String,
    /// Tracked ConfigMaps/Secrets, same keys as `status.trackedConfigs`.
    pub tracked_configs: BTreeMap<String, String>,
}

/// Readiness of a workload as the workload port saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Readiness {
    #[default]
    Ready,
    /// Still rolling out. `message` is the full event text
    /// (`canary deployment podinfo.test not ready: waiting for rollout to finish: ...`).
    /// `stalled_since` is when the workload last reported it lacks replicas; the
    /// tick turns this into a hard failure once the progress deadline has passed.
    NotReady {
        message: String,
        stalled_since: Option<Timestamp>,
    },
    /// Can not become ready (e.g. `ProgressDeadlineExceeded`).
    Failed { message: String },
    /// Its controller has not observed the latest spec yet (`generation >
    /// status.observedGeneration`): what a check right after a change sees.
    /// Not ready, but no trouble: logged, never a Warning event.
    Unobserved { message: String },
}

/// Traffic split reported by the router.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Routes {
    pub primary: i32,
    pub canary: i32,
    pub mirrored: bool,
}

impl Default for Routes {
    fn default() -> Self {
        Routes {
            primary: 100,
            canary: 0,
            mirrored: false,
        }
    }
}

/// A check the tick needs answered before it can decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum CheckRequest {
    /// Call `analysis.webhooks[index]` with `phase` in the payload.
    Webhook {
        index: usize,
        name: String,
        hook_type: HookType,
        phase: Phase,
    },
    /// Query `analysis.metrics[index]`.
    Metric { index: usize, name: String },
    /// Check that the builtin and template metric providers are online.
    MetricProviders,
}

/// Outcome of one webhook call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WebhookAnswer {
    /// Status code <= 202.
    Ok,
    /// Anything else; the text is the response body or transport error.
    Failed(String),
}

/// Outcome of one metric query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum MetricAnswer {
    /// Success rate in percent, request duration in milliseconds, else as returned.
    Value(f64),
    /// The provider answered with no data (`no values found`).
    NoValues(String),
    /// The query could not be run; the text is the error.
    QueryFailed(String),
    /// Template lookup/render/provider error, already formatted as the event text
    /// (`Metric template latency.test error: ...`).
    TemplateError(String),
}

/// Answers collected so far in the current tick.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answers {
    pub webhooks: BTreeMap<usize, WebhookAnswer>,
    pub metrics: BTreeMap<usize, MetricAnswer>,
    /// `Err` carries the error text of the availability check.
    pub metric_providers: Option<Result<(), String>>,
}

impl Answers {
    /// Stores the answer to a webhook request.
    pub fn record_webhook(&mut self, index: usize, answer: WebhookAnswer) {
        self.webhooks.insert(index, answer);
    }

    /// Stores the answer to a metric request.
    pub fn record_metric(&mut self, index: usize, answer: MetricAnswer) {
        self.metrics.insert(index, answer);
    }
}
