//! Leader election on a Lease, with Flagger's timings (lease 60s, renew
//! deadline 15s, retry 5s) and its promise: losing the lease stops all work
//! before another replica can act.
//!
//! `kube-lease-manager` acquires and renews the Lease (renewing every retry
//! period). It keeps reporting "leader" while renewals fail, so a guard
//! reads the Lease every retry period and stops the work once our last
//! renewal is older than the renew deadline: the lease then still has
//! `lease_duration - renew_deadline` to run, before anyone else may take it.

use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_lease_manager::{LeaseCreateMode, LeaseManager, LeaseManagerError, LeaseParams};
use tokio::time::Instant;

/// Flagger's Lease name.
pub const LEASE_NAME: &str = "flagger-leader-election";

/// client-go's `LeaderElectionConfig` timings; whole seconds, as a Lease
/// stores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTiming {
    /// How long a renewal keeps other replicas away.
    pub lease_duration: Duration,
    /// Stop working when no renewal succeeded for this long.
    pub renew_deadline: Duration,
    /// How often to renew and to check.
    pub retry_period: Duration,
}

impl Default for LeaseTiming {
    fn default() -> LeaseTiming {
        LeaseTiming {
            lease_duration: Duration::from_secs(60),
            renew_deadline: Duration::from_secs(15),
            retry_period: Duration::from_secs(5),
        }
    }
}

impl LeaseTiming {
    fn validate(&self) -> Result<(), LeaderError> {
        let whole = |d: Duration| d.subsec_nanos() == 0 && d.as_secs() > 0;
        if !(whole(self.lease_duration) && whole(self.renew_deadline) && whole(self.retry_period)) {
            return Err(LeaderError::InvalidTiming(format!(
                "{self:?}: timings must be whole seconds above zero"
            )));
        }
        if !(self.retry_period < self.renew_deadline && self.renew_deadline < self.lease_duration) {
            return Err(LeaderError::InvalidTiming(format!(
                "{self:?}: need retry period < renew deadline < lease duration"
            )));
        }
        Ok(())
    }

    /// kube-lease-manager renews `grace` seconds before expiry: once per
    /// retry period.
    fn grace_seconds(&self) -> u64 {
        self.lease_duration.as_secs() - self.retry_period.as_secs()
    }

    /// Validity left when the renew deadline has passed since a renewal.
    fn margin(&self) -> Duration {
        self.lease_duration - self.renew_deadline
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LeaderError {
    #[error("invalid leader election timing {0}")]
    InvalidTiming(String),
    #[error("leader election on Lease {namespace}/{name}: {source}")]
    Lease {
        namespace: String,
        name: String,
        source: LeaseManagerError,
    },
    #[error("leader election lost")]
    Lost,
}

/// Flagger's identity: `<hostname>_<uuid>`.
pub fn identity() -> String {
    format!("{}_{}", hostname(), uuid::Uuid::new_v4())
}

fn hostname() -> String {
    if let Ok(name) = std::env::var("HOSTNAME")
        && !name.is_empty()
    {
        return name;
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_else(|_| "serin".to_string())
}

/// Waits until this replica holds `namespace/lease_name`, logs `Acting as
/// elected leader`, then runs `work()` while holding it.
///
/// Returns `Ok` with the work's output (the lease is then released), or
/// `Err(LeaderError::Lost)` once the lease is lost or can no longer be
/// renewed in time; the work's future has been dropped by then, so `work`
/// must own whatever it starts (abort-on-drop tasks). Flagger exits the
/// process on `Lost`. Give it a client that routine traffic cannot hold up
/// (the urgent one).
pub async fn run_as_leader<F, Fut, T>(
    client: kube::Client,
    namespace: &str,
    lease_name: &str,
    timing: LeaseTiming,
    work: F,
) -> Result<T, LeaderError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = T>,
{
    timing.validate()?;
    let identity = identity();
    let lease_error = |source| LeaderError::Lease {
        namespace: namespace.to_string(),
        name: lease_name.to_string(),
        source,
    };
    let params = LeaseParams::new(
        identity.clone(),
        timing.lease_duration.as_secs(),
        timing.grace_seconds(),
    );
    let manager = LeaseManager::new(
        client.clone(),
        lease_name,
        namespace,
        params,
        LeaseCreateMode::AutoCreate,
    )
    .await
    .map_err(lease_error)?;
    tracing::info!(lease = %format!("{namespace}/{lease_name}"), %identity, "attempting to acquire leader lease");
    let (mut leading, watcher) = manager.watch().await;
    if leading.wait_for(|is_leader| *is_leader).await.is_err() {
        // The watcher only stops on its own after an error.
        return match watcher.await {
            Ok(Err(err)) => Err(lease_error(err)),
            _ => Err(LeaderError::Lost),
        };
    }
    tracing::info!("Acting as elected leader");

    let api: Api<Lease> = Api::namespaced(client, namespace);
    let guard = guard(&api, lease_name, &identity, timing, &mut leading);
    let outcome = tokio::select! {
        biased;
        () = guard => None,
        out = work() => Some(out),
    };
    // Dropping the receiver makes the watcher release the lease and stop.
    drop(leading);
    let release = tokio::time::timeout(timing.retry_period, watcher).await;
    if !matches!(release, Ok(Ok(Ok(_)))) {
        tracing::warn!("leader lease not released cleanly");
    }
    match outcome {
        Some(out) => Ok(out),
        None => {
            tracing::error!("Leader election lost");
            Err(LeaderError::Lost)
        }
    }
}

/// Returns when the lease is lost or our last renewal is too old.
async fn guard(
    api: &Api<Lease>,
    lease_name: &str,
    identity: &str,
    timing: LeaseTiming,
    leading: &mut tokio::sync::watch::Receiver<bool>,
) {
    // The lease was renewed just before we were told we lead.
    let mut stop_at = stop_instant(SystemTime::now() + timing.lease_duration, timing);
    loop {
        let budget = timing
            .retry_period
            .min(stop_at.saturating_duration_since(Instant::now()));
        tokio::select! {
            () = tokio::time::sleep_until(stop_at) => {
                tracing::warn!(renew_deadline = ?timing.renew_deadline, "leader lease not renewed in time");
                return;
            }
            changed = leading.changed() => {
                if changed.is_err() || !*leading.borrow() {
                    tracing::warn!("leader lease taken over");
                    return;
                }
            }
            read = tokio::time::timeout(budget, api.get(lease_name)) => match read {
                Ok(Ok(lease)) => match holder_expiry(&lease, identity) {
                    Some(expiry) => stop_at = stop_instant(expiry, timing),
                    None => {
                        tracing::warn!("leader lease held by another replica");
                        return;
                    }
                },
                Ok(Err(err)) => tracing::warn!(error = %err, "cannot read the leader lease"),
                Err(_) => tracing::warn!("reading the leader lease timed out"),
            },
        }
        // Read again one retry period later, unless the stop comes first.
        tokio::select! {
            () = tokio::time::sleep_until(stop_at) => {
                tracing::warn!(renew_deadline = ?timing.renew_deadline, "leader lease not renewed in time");
                return;
            }
            () = tokio::time::sleep(timing.retry_period) => {}
        }
    }
}

/// When our hold on `lease` expires, or `None` if someone else holds it.
/// `renewTime` is written by our own clock, so it compares with `now`.
fn holder_expiry(lease: &Lease, identity: &str) -> Option<SystemTime> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed: SystemTime = spec.renew_time.as_ref()?.0.into();
    let seconds = u64::try_from(spec.lease_duration_seconds?).ok()?;
    renewed.checked_add(Duration::from_secs(seconds))
}

/// The instant at which less than `margin` of the lease is left.
fn stop_instant(expiry: SystemTime, timing: LeaseTiming) -> Instant {
    let left = expiry
        .duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        .saturating_sub(timing.margin());
    Instant::now() + left
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::coordination::v1::LeaseSpec;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
    use k8s_openapi::jiff::Timestamp;

    use super::*;

    fn secs(lease: u64, renew: u64, retry: u64) -> LeaseTiming {
        LeaseTiming {
            lease_duration: Duration::from_secs(lease),
            renew_deadline: Duration::from_secs(renew),
            retry_period: Duration::from_secs(retry),
        }
    }

    #[test]
    fn flaggers_timings_renew_every_5s_and_stop_with_45s_left() {
        let timing = LeaseTiming::default();
        assert!(timing.validate().is_ok());
        assert_eq!(timing.grace_seconds(), 55);
        assert_eq!(timing.margin(), Duration::from_secs(45));
    }

    #[test]
    fn timings_that_would_panic_the_lease_manager_are_refused() {
        for bad in [
            secs(10, 10, 2),
            secs(10, 5, 5),
            secs(0, 0, 0),
            secs(10, 12, 2),
        ] {
            assert!(
                matches!(bad.validate(), Err(LeaderError::InvalidTiming(_))),
                "{bad:?}"
            );
        }
        let mut fractional = secs(3, 2, 1);
        fractional.retry_period = Duration::from_millis(500);
        assert!(fractional.validate().is_err());
        assert!(secs(3, 2, 1).validate().is_ok());
    }

    #[test]
    fn identity_is_hostname_underscore_uuid() {
        let id = identity();
        let (host, uuid) = id.rsplit_once('_').unwrap();
        assert!(!host.is_empty());
        assert!(uuid::Uuid::parse_str(uuid).is_ok(), "{id}");
        assert_ne!(identity(), id);
    }

    fn lease(holder: &str, renewed: Timestamp, seconds: i32) -> Lease {
        Lease {
            spec: Some(LeaseSpec {
                holder_identity: Some(holder.to_string()),
                renew_time: Some(MicroTime(renewed)),
                lease_duration_seconds: Some(seconds),
                ..LeaseSpec::default()
            }),
            ..Lease::default()
        }
    }

    #[test]
    fn expiry_is_our_last_renewal_plus_the_duration() {
        let renewed = Timestamp::from_second(1_700_000_000).unwrap();
        let expiry = holder_expiry(&lease("me", renewed, 60), "me").unwrap();
        let want: SystemTime = Timestamp::from_second(1_700_000_060).unwrap().into();
        assert_eq!(expiry, want);
        assert_eq!(holder_expiry(&lease("other", renewed, 60), "me"), None);
        assert_eq!(holder_expiry(&Lease::default(), "me"), None);
    }

    #[tokio::test(start_paused = true)]
    async fn work_stops_with_the_margin_still_left() {
        let timing = LeaseTiming::default();
        let now = Instant::now();
        let at = stop_instant(SystemTime::now() + Duration::from_secs(60), timing);
        let early = at - now;
        assert!(
            early <= Duration::from_secs(15) && early > Duration::from_secs(14),
            "{early:?}"
        );
        let late = stop_instant(SystemTime::now() + Duration::from_secs(30), timing);
        assert_eq!(late, Instant::now());
    }
}
