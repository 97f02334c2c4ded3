//! Commands a tick hands to the I/O edges, in the order Flagger performs them.

use serde::{Deserialize, Serialize};

use crate::events::{Alert, Event};
use crate::model::status::Phase;

/// One command for the ports. The actor runs them in order; if a workload or
/// router command fails it stops there and does not persist `next_status`
/// (Flagger returns from the tick on such errors, before writing status).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Effect {
    /// Resume the target autoscaler and scale the target (canary) up from zero.
    ScaleCanaryUp,
    /// Pause the target autoscaler and scale the target (canary) to zero.
    ScaleCanaryToZero,
    /// Router `SetRoutes(primary, canary, mirrored)`.
    SetRoutes {
        primary: i32,
        canary: i32,
        mirrored: bool,
    },
    /// Copy the target's template (and tracked configs) to the primary.
    PromoteSpec,
    /// Sync the target autoscaler's spec to the primary autoscaler.
    ReconcilePrimaryScaler,
    /// Call the `post-rollout` webhooks in order, with `phase` in the payload,
    /// stopping at the first failure. Failures never change the outcome; the
    /// actor records `events::text::post_rollout_{passed,failed}` for each call.
    RunPostRolloutHooks { phase: Phase },
    /// Record a Kubernetes event (reason `Synced`) and forward it to event webhooks.
    Event(Event),
    /// Log at info level only (what Flagger logs without an event).
    Note(String),
    /// Send a notification to the alert providers.
    Alert(Alert),
    /// `flagger_canary_successes_total` (`analysis_status` skipped or completed).
    CountSuccess { skipped: bool },
    /// `flagger_canary_failures_total`.
    CountFailure,
}
