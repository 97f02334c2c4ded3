//! `Canary.status` through the status subresource, in Flagger's shape:
//! the `Promoted` condition, `lastTransitionTime` and merge patches that
//! clear what the new status no longer has.

use futures::FutureExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp as JiffTimestamp;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::{Value, json};
use serin_actors::model::status::{CanaryStatus as CoreStatus, Phase, SessionCookies, Timestamp};
use serin_actors::ports::{CanaryKey, PortError, PortFuture, StatusStore};
use tokio::time::Instant;

use crate::api::Canary;
use crate::api::canary::{
    CanaryCondition, CanaryConditionType, CanaryPhase, CanaryStatus as ApiStatus, ConditionStatus,
};
use crate::k8s::{Caches, KubeClients, cache, status_ext};
use crate::telemetry::recorder::{Recorder, StatusValue};

/// Writes and reads the status subresource of Canaries.
#[derive(Clone)]
pub struct KubeStatus {
    clients: KubeClients,
    caches: Caches,
    recorder: Option<Recorder>,
}

impl KubeStatus {
    pub fn new(clients: KubeClients, caches: Caches, recorder: Option<Recorder>) -> KubeStatus {
        KubeStatus {
            clients,
            caches,
            recorder,
        }
    }

    /// Writes an API-shaped status (used by the operator for `Initializing`,
    /// `Terminating` and invalid-spec conditions).
    pub async fn write(
        clients: &KubeClients,
        key: &CanaryKey,
        new: &ApiStatus,
        old: Option<&ApiStatus>,
        urgent: bool,
    ) -> Result<(), kube::Error> {
        let client = if urgent {
            &clients.urgent
        } else {
            &clients.routine
        };
        let api: Api<Canary> = Api::namespaced(client.clone(), &key.namespace);
        let patch = json!({ "status": merge_patch(new, old) });
        api.patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
    }
}

impl StatusStore for KubeStatus {
    fn persist(&self, key: &CanaryKey, status: &CoreStatus, deadline: Instant) -> PortFuture<()> {
        let this = self.clone();
        let key = key.clone();
        let status = status.clone();
        async move {
            let canary = cache::get(&this.caches.canaries, &key.namespace, &key.name)
                .ok_or_else(|| PortError::NotFound(format!("canary {key}")))?;
            let old = canary.status.clone();
            let kind = canary.spec.target_ref.kind.as_str();
            let new = to_api(&status, old.as_ref(), kind, JiffTimestamp::now());
            let urgent = status.phase == Phase::Failed;
            let write = KubeStatus::write(&this.clients, &key, &new, old.as_ref(), urgent);
            tokio::time::timeout_at(deadline, write)
                .await
                .map_err(|_| PortError::Timeout)?
                .map_err(|err| PortError::Failed(err.to_string()))?;
            if let Some(recorder) = &this.recorder {
                record(recorder, &key, &canary, &status);
            }
            Ok(())
        }
        .boxed()
    }

    fn load(&self, key: &CanaryKey, deadline: Instant) -> PortFuture<Option<CoreStatus>> {
        // The watch cache has every Canary once the operator runs: starting
        // 10,000 actors must not cost 10,000 GETs. Actors are rebuilt seconds
        // after they die, by which time the cache has their last write.
        if let Some(canary) = cache::get(&self.caches.canaries, &key.namespace, &key.name) {
            let status = written(canary.status.as_ref()).map(from_api);
            return Box::pin(async move { Ok(status) });
        }
        let api: Api<Canary> = Api::namespaced(self.clients.routine.clone(), &key.namespace);
        let key = key.clone();
        async move {
            let read = api.get_opt(&key.name);
            let canary = tokio::time::timeout_at(deadline, read)
                .await
                .map_err(|_| PortError::Timeout)?
                .map_err(|err| PortError::Failed(err.to_string()))?;
            Ok(canary.and_then(|c| written(c.status.as_ref()).map(from_api)))
        }
        .boxed()
    }
}

/// A status some operator wrote (it has the `Promoted` condition); a bare
/// `Valid` condition alone does not count.
fn written(status: Option<&ApiStatus>) -> Option<&ApiStatus> {
    status.filter(|s| s.promoted_condition().is_some())
}

/// Flagger's gauges for one persisted status. (Its outcome counters come
/// from the core's `CountSuccess`/`CountFailure` effects, through the
/// recorder's `StepObserver`.)
fn record(recorder: &Recorder, key: &CanaryKey, canary: &Canary, status: &CoreStatus) {
    let value = match status.phase {
        Phase::Progressing => StatusValue::Progressing,
        Phase::Failed => StatusValue::Failed,
        _ => StatusValue::Other,
    };
    recorder.set_status(&key.name, &key.namespace, value);
    let target = &canary.spec.target_ref.name;
    let canary_weight = i64::from(status.canary_weight);
    recorder.set_weight(target, &key.namespace, 100 - canary_weight, canary_weight);
}

/// The core status in the CRD's shape; unknown fields of `old` are kept,
/// the `Promoted` condition follows Flagger's mapping.
pub fn to_api(
    status: &CoreStatus,
    old: Option<&ApiStatus>,
    kind: &str,
    now: JiffTimestamp,
) -> ApiStatus {
    let mut api = old.cloned().unwrap_or_default();
    api.phase = Some(api_phase(status.phase));
    api.failed_checks = Some(status.failed_checks);
    api.canary_weight = Some(status.canary_weight);
    api.iterations = Some(status.iterations);
    api.tracked_configs =
        (!status.tracked_configs.is_empty()).then(|| status.tracked_configs.clone());
    api.last_applied_spec = Some(status.last_applied_spec.clone());
    api.last_promoted_spec = Some(status.last_promoted_spec.clone());
    // A cleared cookie leaves the status, as Flagger's omitempty field does.
    api.session_affinity_cookie = status.session.canary.clone();
    api.primary_session_affinity_cookie = status.session.primary.clone();
    api.previous_session_affinity_cookie = status.session.previous.clone();
    api.last_transition_time = Some(Time(
        status
            .last_transition_time
            .and_then(|t| JiffTimestamp::from_second(t.0).ok())
            .unwrap_or(now),
    ));
    let condition = promoted_condition(status.phase, kind);
    set_promoted(&mut api, condition, now);
    set_stalled(&mut api, status.stalled.as_deref(), now);
    api.checks = status_ext::checks_to_api(&status.checks);
    api.last_request = status_ext::request_to_api(status.last_request.as_ref());
    api
}

/// The reason of a `Stalled=True` condition.
pub const STALLED_REASON: &str = "RepeatedPanics";

/// `Stalled=True` with the actor's message while it backs off; gone after.
fn set_stalled(api: &mut ApiStatus, stalled: Option<&str>, now: JiffTimestamp) {
    let conditions = api.conditions.get_or_insert_with(Vec::new);
    let at = conditions
        .iter()
        .position(|c| c.type_ == CanaryConditionType::Stalled);
    match (stalled, at) {
        (None, Some(at)) => {
            conditions.remove(at);
        }
        (None, None) => {}
        (Some(message), Some(at)) => {
            if let Some(c) = conditions.get_mut(at)
                && c.message.as_deref() != Some(message)
            {
                c.message = Some(message.to_string());
                c.last_update_time = Some(Time(now));
            }
        }
        (Some(message), None) => conditions.push(CanaryCondition {
            type_: CanaryConditionType::Stalled,
            status: ConditionStatus::True,
            reason: STALLED_REASON.to_string(),
            message: Some(message.to_string()),
            last_update_time: Some(Time(now)),
            last_transition_time: Some(Time(now)),
        }),
    }
    if conditions.is_empty() {
        api.conditions = None;
    }
}

/// The status a tick starts from.
pub fn from_api(api: &ApiStatus) -> CoreStatus {
    CoreStatus {
        phase: Phase::parse(api.phase().as_str()).unwrap_or_default(),
        canary_weight: api.canary_weight(),
        failed_checks: api.failed_checks(),
        iterations: api.iterations(),
        last_applied_spec: api.last_applied_spec.clone().unwrap_or_default(),
        last_promoted_spec: api.last_promoted_spec.clone().unwrap_or_default(),
        tracked_configs: api.tracked_configs.clone().unwrap_or_default(),
        last_transition_time: api
            .last_transition_time
            .as_ref()
            .map(|t| Timestamp(t.0.as_second())),
        stalled: api
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == CanaryConditionType::Stalled)
            .map(|c| c.message.clone().unwrap_or_default()),
        session: SessionCookies {
            canary: api
                .session_affinity_cookie
                .clone()
                .filter(|c| !c.is_empty()),
            primary: api
                .primary_session_affinity_cookie
                .clone()
                .filter(|c| !c.is_empty()),
            previous: api
                .previous_session_affinity_cookie
                .clone()
                .filter(|c| !c.is_empty()),
        },
        checks: status_ext::checks_from_api(api.checks.as_ref()),
        last_request: status_ext::request_from_api(api.last_request.as_ref()),
    }
}

pub fn api_phase(phase: Phase) -> CanaryPhase {
    match phase {
        Phase::Initializing => CanaryPhase::Initializing,
        Phase::Initialized => CanaryPhase::Initialized,
        Phase::Waiting => CanaryPhase::Waiting,
        Phase::Progressing => CanaryPhase::Progressing,
        Phase::WaitingPromotion => CanaryPhase::WaitingPromotion,
        Phase::Promoting => CanaryPhase::Promoting,
        Phase::Finalising => CanaryPhase::Finalising,
        Phase::Succeeded => CanaryPhase::Succeeded,
        Phase::Failed => CanaryPhase::Failed,
        Phase::Terminating => CanaryPhase::Terminating,
        Phase::Terminated => CanaryPhase::Terminated,
    }
}

/// Flagger's `MakeStatusConditions`: (status, message) of `Promoted` per phase.
pub fn promoted_condition(phase: Phase, kind: &str) -> (ConditionStatus, String) {
    use ConditionStatus::{False, True, Unknown};
    match phase {
        Phase::Initializing => (
            Unknown,
            format!("New {kind} detected, starting initialization."),
        ),
        Phase::Initialized => (True, format!("{kind} initialization completed.")),
        Phase::Waiting | Phase::WaitingPromotion => (Unknown, "Waiting for approval.".into()),
        Phase::Progressing => (
            Unknown,
            "New revision detected, progressing canary analysis.".into(),
        ),
        Phase::Promoting => (
            Unknown,
            "Canary analysis completed, starting primary rolling update.".into(),
        ),
        Phase::Finalising => (
            Unknown,
            "Canary analysis completed, routing all traffic to primary.".into(),
        ),
        Phase::Succeeded => (
            True,
            "Canary analysis completed successfully, promotion finished.".into(),
        ),
        Phase::Failed => (
            False,
            format!("Canary analysis failed, {kind} scaled to zero."),
        ),
        Phase::Terminating | Phase::Terminated => (Unknown, "Canary is being deleted.".into()),
    }
}

/// Rewrites `Promoted` only when (status, reason) changed, keeping its
/// `lastTransitionTime` while the status stays the same.
fn set_promoted(
    api: &mut ApiStatus,
    (status, message): (ConditionStatus, String),
    now: JiffTimestamp,
) {
    let reason = api.phase().as_str().to_string();
    let conditions = api.conditions.get_or_insert_with(Vec::new);
    let existing = conditions
        .iter_mut()
        .find(|c| c.type_ == CanaryConditionType::Promoted);
    match existing {
        Some(c) if c.status == status && c.reason == reason => {}
        Some(c) => {
            if c.status != status {
                c.last_transition_time = Some(Time(now));
            }
            c.status = status;
            c.reason = reason;
            c.message = Some(message);
            c.last_update_time = Some(Time(now));
        }
        None => conditions.insert(
            0,
            CanaryCondition {
                type_: CanaryConditionType::Promoted,
                status,
                reason,
                message: Some(message),
                last_update_time: Some(Time(now)),
                last_transition_time: Some(Time(now)),
            },
        ),
    }
}

/// A merge patch that sets `new` and nulls whatever `old` had that `new`
/// lacks (a merge patch otherwise keeps removed map keys).
pub fn merge_patch(new: &ApiStatus, old: Option<&ApiStatus>) -> Value {
    let new_value = serde_json::to_value(new).unwrap_or(Value::Null);
    let old_value = old
        .and_then(|o| serde_json::to_value(o).ok())
        .unwrap_or(Value::Null);
    null_removed(new_value, &old_value)
}

fn null_removed(new: Value, old: &Value) -> Value {
    match (new, old) {
        (Value::Object(mut new), Value::Object(old)) => {
            for (k, old_v) in old {
                match new.remove(k) {
                    Some(v) => {
                        new.insert(k.clone(), null_removed(v, old_v));
                    }
                    None => {
                        new.insert(k.clone(), Value::Null);
                    }
                }
            }
            Value::Object(new)
        }
        (new, _) => new,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> JiffTimestamp {
        JiffTimestamp::from_second(1_700_000_000).unwrap()
    }

    #[test]
    fn succeeded_status_has_a_true_promoted_condition() {
        let core = CoreStatus {
            phase: Phase::Succeeded,
            last_applied_spec: "abc".into(),
            last_promoted_spec: "abc".into(),
            ..CoreStatus::default()
        };
        let api = to_api(&core, None, "Deployment", now());
        let c = api.promoted_condition().unwrap();
        assert_eq!(c.status, ConditionStatus::True);
        assert_eq!(c.reason, "Succeeded");
        assert_eq!(
            c.message.as_deref(),
            Some("Canary analysis completed successfully, promotion finished.")
        );
        assert_eq!(from_api(&api).phase, Phase::Succeeded);
    }

    #[test]
    fn transition_time_is_kept_while_the_condition_status_is_unchanged() {
        let first = to_api(
            &CoreStatus {
                phase: Phase::Progressing,
                ..CoreStatus::default()
            },
            None,
            "Deployment",
            now(),
        );
        let later = JiffTimestamp::from_second(1_700_000_100).unwrap();
        let second = to_api(
            &CoreStatus {
                phase: Phase::Promoting,
                ..CoreStatus::default()
            },
            Some(&first),
            "Deployment",
            later,
        );
        let c = second.promoted_condition().unwrap();
        assert_eq!(c.reason, "Promoting");
        assert_eq!(c.last_transition_time, Some(Time(now())));
        assert_eq!(c.last_update_time, Some(Time(later)));
    }

    #[test]
    fn merge_patch_nulls_removed_tracked_configs() {
        let old = ApiStatus {
            tracked_configs: Some([("configmap/a".to_string(), "1".to_string())].into()),
            ..ApiStatus::default()
        };
        let new = ApiStatus {
            tracked_configs: Some([("configmap/b".to_string(), "2".to_string())].into()),
            ..ApiStatus::default()
        };
        let patch = merge_patch(&new, Some(&old));
        assert_eq!(patch["trackedConfigs"]["configmap/a"], Value::Null);
        assert_eq!(patch["trackedConfigs"]["configmap/b"], "2");
        let patch = merge_patch(&ApiStatus::default(), Some(&old));
        assert_eq!(patch["trackedConfigs"], Value::Null);
    }
}
