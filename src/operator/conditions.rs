//! The `Valid` condition, which explains why a Canary is not being driven.
//! The bridge is its one writer: an invalid Canary has no actor, and every
//! other status field is written by the canary's actor alone.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::bridge::key_of;
use crate::api::Canary;
use crate::api::canary::{CanaryCondition, CanaryConditionType, CanaryStatus, ConditionStatus};
use crate::k8s::KubeClients;
use crate::k8s::status::KubeStatus;

/// The reason on a `Valid=False` condition.
pub const INVALID_REASON: &str = "InvalidSpec";

pub fn has_invalid(canary: &Canary) -> bool {
    conditions(canary).any(|c| c.type_ == CanaryConditionType::Valid)
}

fn conditions(canary: &Canary) -> impl Iterator<Item = &CanaryCondition> {
    canary
        .status
        .iter()
        .flat_map(|s| s.conditions.iter().flatten())
}

/// `Valid=False` with the problem as its message.
pub async fn set_invalid(
    clients: &KubeClients,
    canary: &Canary,
    message: &str,
) -> Result<(), kube::Error> {
    let old = canary.status.clone();
    let mut new = old.clone().unwrap_or_default();
    let now = Time(Timestamp::now());
    upsert(
        &mut new,
        CanaryCondition {
            type_: CanaryConditionType::Valid,
            status: ConditionStatus::False,
            reason: INVALID_REASON.to_string(),
            message: Some(message.to_string()),
            last_update_time: Some(now.clone()),
            last_transition_time: Some(now),
        },
    );
    KubeStatus::write(clients, &key_of(canary), &new, old.as_ref(), false).await
}

/// Removes the `Valid` condition once the spec is fine again.
pub async fn clear_invalid(clients: &KubeClients, canary: &Canary) -> Result<(), kube::Error> {
    let Some(old) = canary.status.clone() else {
        return Ok(());
    };
    let mut new: CanaryStatus = old.clone();
    if let Some(list) = new.conditions.as_mut() {
        list.retain(|c| c.type_ != CanaryConditionType::Valid);
    }
    if new == old {
        return Ok(());
    }
    KubeStatus::write(clients, &key_of(canary), &new, Some(&old), false).await
}

fn upsert(status: &mut CanaryStatus, condition: CanaryCondition) {
    let list = status.conditions.get_or_insert_with(Vec::new);
    match list.iter_mut().find(|c| c.type_ == condition.type_) {
        Some(existing) => {
            let keep = existing.status == condition.status;
            let since = existing.last_transition_time.clone();
            *existing = condition;
            if keep {
                existing.last_transition_time = since;
            }
        }
        None => list.push(condition),
    }
}
