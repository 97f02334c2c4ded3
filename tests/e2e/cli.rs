//! The command line's reads end to end: `serin get canaries` (-n, -A, -o),
//! `serin get canary NAME` (-o yaml/json, --watch captured while an
//! analysis runs) and `serin status` (0 after a promotion started right
//! after `set image`, 1 after a rollback, 2 on timeout), against the NGINX
//! walkthrough's rig (real Prometheus metrics from the traffic simulator).
//! The requests (promote, abort, retry, pause, resume) and the kubectl
//! plugin are in cli_requests.rs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::cli::{command, frames, output, serin};
use crate::support::nginx::canary;
use crate::support::nginx::rig::NginxTest;
use crate::support::podinfo::{INIT, RUN};
use crate::support::traffic::Fault;

/// The walkthrough's Canary with two steps (10, 20) before promotion.
fn short_canary(n: &NginxTest, threshold: u32) -> Value {
    let mut c = canary(&n.lt, threshold);
    c["spec"]["analysis"]["stepWeight"] = json!(10);
    c["spec"]["analysis"]["maxWeight"] = json!(20);
    c
}

/// The cells of the table's line whose NAME column is `name`.
fn row<'a>(table: &'a str, name_column: usize, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells.get(name_column) == Some(&name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_get_watch_and_status_follow_a_promotion() {
    let n = NginxTest::start("cli-get").await;
    let env = n.t.tc.env.clone();
    let ns = n.ns().to_string();
    n.t.apply(&short_canary(&n, 5)).await;
    n.t.wait_phase("podinfo", "Initialized", INIT).await;

    // get canaries -n: kubectl's columns, then TARGET, PROVIDER, NEXT.
    let table = serin(&env, &["get", "canaries", "-n", &ns]).await;
    assert_eq!(table.code, 0, "{table:?}");
    let header: Vec<&str> = table
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header,
        [
            "NAME",
            "STATUS",
            "WEIGHT",
            "LASTTRANSITIONTIME",
            "TARGET",
            "PROVIDER",
            "NEXT"
        ]
    );
    let cells = row(&table.stdout, 0, "podinfo");
    assert_eq!(cells[1..3], ["Initialized", "0"], "{cells:?}");
    assert!(
        cells[3].parse::<k8s_openapi::jiff::Timestamp>().is_ok(),
        "{cells:?}"
    );
    assert_eq!(
        cells[4..],
        ["Deployment/podinfo", "nginx", "-"],
        "{cells:?}"
    );
    // -A: NAMESPACE first.
    let all = serin(&env, &["get", "canaries", "-A"]).await;
    assert_eq!(all.code, 0, "{all:?}");
    let header: Vec<&str> = all
        .stdout
        .lines()
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(
        header[..3],
        ["NAMESPACE", "NAME", "STATUS"],
        "{}",
        all.stdout
    );
    let cells = all
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|c| c.first() == Some(&ns.as_str()))
        .unwrap_or_else(|| panic!("no row of {ns}:\n{}", all.stdout));
    assert_eq!(cells[1..4], ["podinfo", "Initialized", "0"], "{cells:?}");
    // -o json|yaml: the objects as the API server returns them.
    let list = serin(&env, &["get", "canaries", "-n", &ns, "-o", "json"]).await;
    let list: Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(list["kind"], "List");
    assert_eq!(list["items"][0]["kind"], "Canary");
    assert_eq!(list["items"][0]["metadata"]["name"], "podinfo");
    let one = serin(&env, &["get", "canary", "podinfo", "-n", &ns, "-oyaml"]).await;
    assert_eq!(one.code, 0, "{one:?}");
    let one: Value = serde_saphyr::from_str(&one.stdout).unwrap();
    assert_eq!(one["apiVersion"], "flagger.app/v1beta1");
    assert_eq!(one["status"]["phase"], "Initialized");
    assert_eq!(one["spec"]["analysis"]["maxWeight"], 20);
    let json_one = serin(&env, &["get", "canary/podinfo", "-n", &ns, "-o", "json"]).await;
    let json_one: Value = serde_json::from_str(&json_one.stdout).unwrap();
    assert_eq!(json_one["metadata"]["uid"], one["metadata"]["uid"]);
    // The view, once.
    let view = serin(&env, &["get", "canary", "podinfo", "-n", &ns]).await;
    assert_eq!(view.code, 0, "{view:?}");
    assert!(
        view.stdout
            .starts_with(&format!("podinfo.{ns}  Initialized\n")),
        "{}",
        view.stdout
    );
    assert!(
        view.stdout.contains("canary 0% / primary 100%"),
        "{}",
        view.stdout
    );

    // A new revision, then at once `serin status` (the race: the Canary
    // still reads Initialized) and a watch of the run.
    n.set_revision("6.0.1", None).await;
    let status = output(
        command(&env, &["status", "podinfo", "-n", &ns, "--timeout", "5m"]),
        "serin status",
    );
    let watch = output(
        command(
            &env,
            &[
                "get",
                "canary",
                "podinfo",
                "-n",
                &ns,
                "--watch",
                "--timeout",
                "100s",
            ],
        ),
        "serin get canary --watch",
    );
    let (status, watch) = tokio::join!(status, watch);
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(status.last_line(), "Succeeded", "{status:?}");
    for line in [
        "Progressing canary weight 10",
        "Progressing canary weight 20",
    ] {
        assert!(
            status.stdout.lines().any(|l| l == line),
            "{line}: {status:?}"
        );
    }

    assert_eq!(watch.code, 0, "{watch:?}");
    let frames = frames(&watch.stdout);
    assert!(frames.len() >= 3, "{}", watch.stdout);
    for pair in frames.windows(2) {
        assert_ne!(pair[0], pair[1], "a frame is printed only when it changes");
    }
    for weight in ["canary 10% / primary 90%", "canary 20% / primary 80%"] {
        assert!(
            frames.iter().any(|f| f.contains(weight)),
            "no frame at {weight}:\n{}",
            watch.stdout
        );
    }
    assert!(
        frames
            .iter()
            .any(|f| f.contains("Progressing") && f.contains("step 1 of 2")),
        "{}",
        watch.stdout
    );
    // A metric's last value against its threshold, from status.checks.
    let measured = frames.iter().any(|f| {
        f.lines().any(|l| {
            let cells: Vec<&str> = l.split_whitespace().collect();
            cells.first() == Some(&"request-success-rate")
                && cells.get(1).is_some_and(|v| v.parse::<f64>().is_ok())
                && cells.get(2..4) == Some(&["min", "99"][..])
        })
    });
    assert!(
        measured,
        "no frame shows the success rate's value:\n{}",
        watch.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_status_exits_2_on_timeout_and_1_on_rollback() {
    let n = NginxTest::start("cli-status").await;
    let env = n.t.tc.env.clone();
    let ns = n.ns().to_string();
    n.t.apply(&short_canary(&n, 2)).await;
    n.t.wait_phase("podinfo", "Initialized", INIT).await;
    // Idle with nothing pending: done at once.
    let idle = serin(&env, &["status", "podinfo", "-n", &ns]).await;
    assert_eq!(
        (idle.code, idle.stdout.as_str()),
        (0, "Initialized\n"),
        "{idle:?}"
    );
    let missing = serin(&env, &["status", "nothing", "-n", &ns]).await;
    assert_eq!(missing.code, 3, "{missing:?}");
    assert!(
        missing.stderr.contains("\"nothing\" not found"),
        "{missing:?}"
    );

    n.set_revision("6.0.1", Some(Fault::errors(50.0))).await;
    let short = serin(&env, &["status", "podinfo", "-n", &ns, "--timeout", "5s"]).await;
    assert_eq!(short.code, 2, "{short:?}");
    assert!(
        short
            .stderr
            .contains(&format!("timed out after 5s waiting for podinfo.{ns}")),
        "{short:?}"
    );
    let started = std::time::Instant::now();
    let failed = serin(&env, &["status", "podinfo", "-n", &ns, "--timeout", "5m"]).await;
    assert_eq!(failed.code, 1, "{failed:?}");
    assert_eq!(failed.last_line(), "Failed", "{failed:?}");
    assert!(
        failed.stdout.contains("failed checks 1/2"),
        "the halts show: {failed:?}"
    );
    assert!(started.elapsed() < RUN + Duration::from_secs(60));
    n.t.wait_phase("podinfo", "Failed", Duration::from_secs(5))
        .await;
}
