use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::canary::RequestStatus;
use crate::ctl::fixtures::{at, podinfo};

fn check(name: &str, type_: &str, passed: bool, value: Option<f64>) -> CheckStatus {
    CheckStatus {
        name: name.into(),
        type_: type_.into(),
        passed,
        value,
        last_check_time: Some(Time(at(2))),
        ..Default::default()
    }
}

fn workload(name: &str, tag: &str) -> WorkloadView {
    WorkloadView {
        name: name.into(),
        images: vec![(
            "podinfod".into(),
            format!("ghcr.io/stefanprodan/podinfo:{tag}"),
        )],
        ready: 1,
        desired: 1,
    }
}

fn event(seconds: i64, type_: &str, message: &str) -> EventLine {
    EventLine {
        time: Some(at(seconds)),
        type_: type_.into(),
        message: message.into(),
        count: 1,
    }
}

fn running() -> Canary {
    let mut c = podinfo("Progressing", 25);
    if let Some(s) = c.status.as_mut() {
        s.failed_checks = Some(1);
        s.checks = Some(vec![
            check("load-test", "rollout", true, None),
            CheckStatus {
                threshold_range: Some(ThresholdRange {
                    min: Some(99.0),
                    max: None,
                }),
                message: Some("success rate 98.76% < 99%".into()),
                ..check("request-success-rate", "metric", false, Some(98.7612))
            },
            check("request-duration", "metric", true, Some(43.0)),
        ]);
        s.last_request = Some(RequestStatus {
            id: "1".into(),
            action: "promote".into(),
            requested_by: Some("alice".into()),
            result: "Refused".into(),
            message: "podinfo.test is Waiting: not started".into(),
            time: Some(Time(at(-60))),
        });
    }
    c
}

#[test]
fn a_run_in_progress() {
    let canary = running();
    // Six Events: the view shows the last five.
    let events: Vec<EventLine> = (1..=5)
        .map(|i| {
            event(
                i * 10 - 60,
                "Normal",
                &format!("Advance podinfo.test canary weight {}", 5 * i),
            )
        })
        .chain([EventLine {
            count: 2,
            ..event(
                1,
                "Warning",
                "Halt podinfo.test advancement success rate 98.76% < 99%",
            )
        }])
        .collect();
    let primary = workload("podinfo-primary", "6.0.0");
    let target = workload("podinfo", "6.0.1");
    let text = render(&ViewInput {
        canary: &canary,
        events: &events,
        primary: Some(&primary),
        target: Some(&target),
        now: at(5),
    });
    let want = "\
podinfo.test  Progressing
Target:   Deployment/podinfo (provider nginx)
Weight:   [####------------] canary 25% / primary 75%
Strategy: canary (stepWeight 5, maxWeight 50), step 5 of 10
Checks:   failed checks 1/5, next step in 7s
Metrics:
  NAME                   VALUE   THRESHOLD   RESULT   MESSAGE
  request-success-rate   98.76   min 99      failed   success rate 98.76% < 99%
  request-duration       43      max 500     passed
Webhooks:
  NAME              TYPE          RESULT   MESSAGE
  acceptance-test   pre-rollout   -
  load-test         rollout       passed
Revisions:
  primary   podinfo-primary   ghcr.io/stefanprodan/podinfo:6.0.0   1/1 ready
  canary    podinfo           ghcr.io/stefanprodan/podinfo:6.0.1   1/1 ready
Last request: promote by alice 65s ago: Refused: podinfo.test is Waiting: not started
Events:
  AGE   TYPE      MESSAGE
  45s   Normal    Advance podinfo.test canary weight 10
  35s   Normal    Advance podinfo.test canary weight 15
  25s   Normal    Advance podinfo.test canary weight 20
  15s   Normal    Advance podinfo.test canary weight 25
  4s    Warning   Halt podinfo.test advancement success rate 98.76% < 99% (x2)
";
    assert_eq!(text, want, "\n{text}");
}

#[test]
fn flaggers_crd_without_checks() {
    let mut canary = podinfo("Succeeded", 0);
    canary.spec.suspend = Some(true);
    let text = render(&ViewInput {
        canary: &canary,
        events: &[],
        primary: None,
        target: None,
        now: at(5),
    });
    let want = "\
podinfo.test  Succeeded (paused)
Target:   Deployment/podinfo (provider nginx)
Weight:   [----------------] canary 0% / primary 100%
Strategy: canary (stepWeight 5, maxWeight 50)
Checks:   failed checks 0/5
Metrics:
  NAME                   VALUE   THRESHOLD   RESULT   MESSAGE
  request-success-rate   -       min 99      -
  request-duration       -       max 500     -
Webhooks:
  NAME              TYPE          RESULT   MESSAGE
  acceptance-test   pre-rollout   -
  load-test         rollout       -
Revisions:
  primary   podinfo-primary   -   not found
  canary    podinfo           -   not found
Events: none
";
    assert_eq!(text, want, "\n{text}");
}
