//! `NginxTest`: an `OperatorTest` with the walkthrough's workloads, the load
//! tester and the traffic simulator, and the reads the scenarios share.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::networking::v1::Ingress;
use tokio::process::Command;

use super::loadtester::LoadTester;
use super::{deployment, hpa, ingress};
use crate::support::hooks::HookServer;
use crate::support::operator::{Operator, OperatorTest, install_crds};
use crate::support::podinfo::SHORT;
use crate::support::traffic::{Fault, PREFIX, SimulatorConfig, TrafficSimulator};
use crate::support::{TestCluster, eventually};

/// An `OperatorTest` with the walkthrough's workloads and Ingress applied,
/// the load tester and the traffic simulator. On failure it prints the
/// simulator's last reading, the canary Ingress and the load tester's logs,
/// then the `OperatorTest` report.
pub struct NginxTest {
    pub sim: TrafficSimulator,
    pub lt: LoadTester,
    pub t: OperatorTest,
}

impl NginxTest {
    pub async fn start(test: &str) -> NginxTest {
        let tc = TestCluster::new(test).await;
        install_crds(&tc.client).await;
        let hooks = HookServer::start().await;
        // `provider: nginx` in the Canary selects the router and the builtin
        // queries; `Operator::start` already passes `-mesh-provider`.
        let op = Operator::start(&tc.env, &tc.namespace, &[]).await;
        let config = SimulatorConfig::walkthrough(&tc.namespace);
        let sim = TrafficSimulator::start(&tc.env, tc.client.clone(), config).await;
        let t = OperatorTest { op, hooks, tc };
        let lt = LoadTester::start().await;
        for obj in [deployment(), hpa(), ingress()] {
            t.apply(&obj).await;
        }
        NginxTest { sim, lt, t }
    }

    pub fn ns(&self) -> &str {
        self.t.ns()
    }

    /// The canary Ingress' annotations, without the prefix (`canary-weight`).
    pub async fn canary_ingress(&self) -> BTreeMap<String, String> {
        let ing = self
            .t
            .tc
            .api::<Ingress>()
            .get("podinfo-canary")
            .await
            .unwrap_or_else(|e| panic!("the canary Ingress podinfo-canary should exist: {e}"));
        ing.metadata
            .annotations
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&format!("{PREFIX}/"))?.to_string(), v)))
            .collect()
    }

    /// Waits until the canary Ingress' `canary-weight` is `weight`.
    pub async fn wait_ingress_weight(&self, weight: u32, timeout: Duration) {
        eventually(
            &format!("podinfo-canary weight {weight}"),
            timeout,
            || async {
                let a = self.canary_ingress().await;
                match a.get("canary-weight") == Some(&weight.to_string()) {
                    true => Ok(()),
                    false => Err(format!("{a:?}")),
                }
            },
        )
        .await;
    }

    /// `kubectl set image deployment/podinfo podinfod=<repo>:<tag>` plus the
    /// simulator's fault annotation on the pod template (`None` removes it).
    pub async fn set_revision(&self, tag: &str, fault: Option<Fault>) {
        crate::support::podinfo::set_revision(&self.t, tag, fault).await;
    }

    /// `kubectl get canaries --all-namespaces`: checks the default columns
    /// and returns this namespace's podinfo row as (STATUS, WEIGHT, LASTTRANSITIONTIME).
    pub async fn kubectl_get_canaries(&self) -> (String, String, String) {
        let mut cmd = Command::from(self.t.tc.env.tool("kubectl"));
        let out = cmd
            .args(["get", "canaries", "--all-namespaces"])
            .output()
            .await
            .expect("run kubectl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "kubectl get canaries: {out:?}");
        let header: Vec<&str> = text
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        assert_eq!(
            header,
            [
                "NAMESPACE",
                "NAME",
                "STATUS",
                "WEIGHT",
                "LASTTRANSITIONTIME"
            ],
            "{text}"
        );
        let row = text
            .lines()
            .map(|l| l.split_whitespace().collect::<Vec<_>>())
            .find(|cols| cols.first() == Some(&self.ns()) && cols.get(1) == Some(&"podinfo"))
            .unwrap_or_else(|| panic!("no row for {}/podinfo in:\n{text}", self.ns()));
        let col = |i: usize| row.get(i).map(|s| s.to_string()).unwrap_or_default();
        (col(2), col(3), col(4))
    }

    /// Asserts the kubectl row shows `status` and `weight`, with an RFC 3339
    /// LASTTRANSITIONTIME. The status is written after the routes in the same
    /// step, so a row read right after the Ingress moved may lag by that write.
    pub async fn assert_kubectl_row(&self, status: &str, weight: &str) {
        let ltt = eventually(
            &format!("kubectl get canaries to show {status} at {weight}"),
            SHORT,
            || async {
                let (s, w, ltt) = self.kubectl_get_canaries().await;
                match (s.as_str(), w.as_str()) == (status, weight) {
                    true => Ok(ltt),
                    false => Err(format!("({s}, {w})")),
                }
            },
        )
        .await;
        assert!(
            ltt.parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
            "LASTTRANSITIONTIME {ltt:?}"
        );
    }
}

impl Drop for NginxTest {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let ingress = self
                .t
                .tc
                .env
                .tool("kubectl")
                .args(["-n", self.ns(), "get", "ingress", "-o", "yaml"])
                .output()
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default();
            eprintln!(
                "\n===== traffic simulator (last tick) =====\n{:#?}\n===== ingresses =====\n{ingress}\n===== serin-loadtester logs =====\n{}",
                self.sim.observed(),
                self.lt.logs()
            );
        }
    }
}
