//! End-to-end test of leader election on the local control plane
//! (`make cluster-up`): two `serin` replicas with `-enable-leader-election`
//! share Flagger's Lease `flagger-leader-election` in the test's namespace;
//! only the elected one drives the Canary, and when it is killed with
//! SIGKILL the other takes over once the lease expires (Flagger's timings:
//! a 60 s lease renewed every 5 s) and finishes the next rollout.
//! See operator.rs for the setup and tests/e2e/support/podinfo.rs for the
//! manifests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use crate::support::hooks::HookServer;
use crate::support::operator::{Operator, OperatorTest, install_crds};
use crate::support::podinfo::{
    assert_deployment_initialized, assert_promoted, blue_green, canary, podinfo_deployment,
    set_image,
};
use crate::support::{TestCluster, eventually};
use k8s_openapi::api::coordination::v1::Lease;
use serde_json::Value;

const LEASE: &str = "flagger-leader-election";
const ELECTED: &str = "Acting as elected leader";
/// A replica that finds no Lease takes it at once.
const ELECTION: Duration = Duration::from_secs(20);
/// The killed leader's last renewal keeps the lease for up to 60 s; the
/// standby notices on its next attempt.
const TAKEOVER: Duration = Duration::from_secs(120);

/// The `msg` of every JSON log line, in order.
fn msgs(op: &Operator) -> Vec<String> {
    op.logs()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|v| v["msg"].as_str().map(str::to_string))
        .collect()
}

fn elected(op: &Operator) -> bool {
    msgs(op).iter().any(|m| m == ELECTED)
}

/// The identity the replica logged when it started to compete for the lease.
fn identity(op: &Operator) -> String {
    op.logs()
        .iter()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|v| v["msg"] == "attempting to acquire leader lease")
        .and_then(|v| v["identity"].as_str().map(str::to_string))
        .unwrap_or_else(|| panic!("the replica logged no identity; its log:\n{}", op.tail(100)))
}

/// Log lines of `op` about canary `key`, as raw lines.
fn canary_lines(op: &Operator, key: &str) -> Vec<String> {
    op.logs()
        .into_iter()
        .filter(|line| {
            serde_json::from_str::<Value>(line).is_ok_and(|v| v["canary"].as_str() == Some(key))
        })
        .collect()
}

async fn holder(tc: &TestCluster) -> Result<(String, i32), String> {
    let lease = tc
        .api::<Lease>()
        .get(LEASE)
        .await
        .map_err(|e| format!("get lease {LEASE}: {e}"))?;
    let spec = lease.spec.unwrap_or_default();
    Ok((
        spec.holder_identity.unwrap_or_default(),
        spec.lease_duration_seconds.unwrap_or_default(),
    ))
}

/// The replica that is not `OperatorTest::op`; its logs are printed when the
/// test fails (after the report of the other).
struct Other(Operator);

impl Drop for Other {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "\n===== the other replica's logs (last 100 lines) =====\n{}",
                self.0.tail(100)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_replica_takes_over_when_the_leader_is_killed() {
    let started = Instant::now();
    let tc = TestCluster::new("leader").await;
    install_crds(&tc.client).await;
    let hooks = HookServer::start().await;
    let ns = tc.namespace.clone();
    let args = [
        "-enable-leader-election",
        "-leader-election-namespace",
        ns.as_str(),
    ];
    // Two replicas of one Deployment start together.
    let (a, b) = tokio::join!(
        Operator::start(&tc.env, &ns, &args),
        Operator::start(&tc.env, &ns, &args)
    );

    let a_leads = eventually(
        "exactly one replica to log `Acting as elected leader`",
        ELECTION,
        || async {
            match (elected(&a), elected(&b)) {
                (true, true) => panic!(
                    "both replicas lead:\n--- a ---\n{}\n--- b ---\n{}",
                    a.tail(50),
                    b.tail(50)
                ),
                (true, false) => Ok(true),
                (false, true) => Ok(false),
                (false, false) => Err(format!(
                    "no leader yet:\n--- a ---\n{}\n--- b ---\n{}",
                    a.tail(10),
                    b.tail(10)
                )),
            }
        },
    )
    .await;
    let elected_after = started.elapsed();
    let (leader, standby) = if a_leads { (a, b) } else { (b, a) };
    let leader_id = identity(&leader);
    let standby_id = identity(&standby);
    assert_ne!(leader_id, standby_id);
    let mut t = OperatorTest {
        op: leader,
        hooks,
        tc,
    };
    // Declared after `t`, so it is dropped (killed) before the namespace goes.
    let mut standby = Other(standby);

    let (holder_id, seconds) = eventually(
        &format!("Lease {LEASE} to name the leader"),
        Duration::from_secs(10),
        || async {
            let (id, seconds) = holder(&t.tc).await?;
            if id == leader_id {
                Ok((id, seconds))
            } else {
                Err(format!("holder {id:?}, leader {leader_id:?}"))
            }
        },
    )
    .await;
    assert_eq!(holder_id, leader_id);
    assert_eq!(seconds, 60, "Flagger's lease duration");

    t.apply(&podinfo_deployment("6.0.0")).await;
    t.apply(&canary(
        "podinfo",
        "Deployment",
        "podinfo",
        &blue_green(1, ""),
    ))
    .await;
    assert_deployment_initialized(&t).await;
    let key = t.key("podinfo");
    assert!(
        t.op.messages(&key)
            .contains(&format!("Initialization done! {key}")),
        "the leader initialized the canary: {:#?}",
        t.op.messages(&key)
    );
    assert!(
        canary_lines(&standby.0, &key).is_empty(),
        "the standby logged nothing about the canary: {:#?}",
        canary_lines(&standby.0, &key)
    );
    assert!(!elected(&standby.0), "the standby still waits");
    assert_eq!(holder(&t.tc).await.unwrap().0, leader_id);

    t.op.kill_hard().await;
    let killed = Instant::now();
    eventually(
        "the standby to log `Acting as elected leader` after the leader's SIGKILL",
        TAKEOVER,
        || async {
            if elected(&standby.0) {
                Ok(())
            } else {
                Err(standby.0.tail(5))
            }
        },
    )
    .await;
    let takeover = killed.elapsed();
    eprintln!("elected after {elected_after:?}; takeover {takeover:?} after the SIGKILL");
    assert!(standby.0.is_running());
    // From here `t.op` is the new leader and `standby` the killed one.
    std::mem::swap(&mut t.op, &mut standby.0);
    let new_leader_log = msgs(&t.op);
    let elected_at = new_leader_log.iter().position(|m| m == ELECTED).unwrap();
    assert!(
        !new_leader_log[..elected_at]
            .iter()
            .any(|m| m.contains(&key) || m.contains("Starting canary")),
        "the standby did no canary work before it was elected: {:#?}",
        &new_leader_log[..elected_at]
    );
    assert_eq!(holder(&t.tc).await.unwrap().0, standby_id);

    let before = canary_lines(&standby.0, &key).len();
    set_image(&t, "Deployment", "podinfo", "6.0.1").await;
    assert_promoted(&t, "6.0.1").await;
    let messages = t.op.messages(&key);
    for message in [
        format!("New revision detected! Scaling up {key}"),
        format!("Promotion completed! Scaling down {key}"),
    ] {
        assert!(
            messages.contains(&message),
            "the new leader logged {message:?}: {messages:#?}"
        );
    }
    assert_eq!(
        canary_lines(&standby.0, &key).len(),
        before,
        "the killed replica logged nothing more"
    );
    // The takeover neither initialized the canary again nor started a
    // second run.
    for message in [
        format!("Initialization done! {key}"),
        format!("New revision detected! Scaling up {key}"),
        format!("Promotion completed! Scaling down {key}"),
    ] {
        assert_eq!(t.event_count(&message).await, 1, "{message:?}");
    }
    eprintln!(
        "leader election test: elected after {elected_after:?}, takeover {takeover:?}, total {:?}",
        started.elapsed()
    );
}
