use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;
use crate::api::canary::{CheckStatus, TargetKind};
use crate::ctl::fixtures::{at, podinfo};

fn fleet() -> Vec<Canary> {
    let mut running = podinfo("Progressing", 25);
    if let Some(s) = running.status.as_mut() {
        s.checks = Some(vec![CheckStatus {
            name: "request-success-rate".into(),
            type_: "metric".into(),
            passed: true,
            value: Some(99.9),
            last_check_time: Some(Time(at(2))),
            ..Default::default()
        }]);
    }
    let mut idle = podinfo("Succeeded", 0);
    idle.metadata.name = Some("backend".into());
    idle.metadata.namespace = Some("prod".into());
    idle.spec.provider = None;
    idle.spec.target_ref.kind = TargetKind::DaemonSet;
    idle.spec.target_ref.name = "backend".into();
    let mut new = podinfo("", 0);
    new.metadata.name = Some("frontend".into());
    vec![running, idle, new]
}

#[test]
fn kubectls_columns_then_target_provider_next() {
    let text = render(&fleet(), false, at(5));
    let want = "\
NAME       STATUS        WEIGHT   LASTTRANSITIONTIME     TARGET               PROVIDER   NEXT
podinfo    Progressing   25       2026-11-29T09:52:29Z   Deployment/podinfo   nginx      7s
backend    Succeeded     0        2026-11-29T09:52:29Z   DaemonSet/backend    -          -
frontend                                                 Deployment/podinfo   nginx      -
";
    assert_eq!(text, want);
}

#[test]
fn all_namespaces_puts_the_namespace_first() {
    let text = render(&fleet()[..2], true, at(5));
    let want = "\
NAMESPACE   NAME      STATUS        WEIGHT   LASTTRANSITIONTIME     TARGET               PROVIDER   NEXT
test        podinfo   Progressing   25       2026-11-29T09:52:29Z   Deployment/podinfo   nginx      7s
prod        backend   Succeeded     0        2026-11-29T09:52:29Z   DaemonSet/backend    -          -
";
    assert_eq!(text, want);
}

#[test]
fn next_step_counts_from_the_last_check_or_transition() {
    let canaries = fleet();
    // The check at t0+2 plus the 10s interval, seen at t0+5.
    assert_eq!(next_step(&canaries[0], at(5)), Some(7));
    // Overdue reads 0, not negative.
    assert_eq!(next_step(&canaries[0], at(60)), Some(0));
    // No checks: the last transition.
    let fresh = podinfo("Progressing", 5);
    assert_eq!(next_step(&fresh, at(4)), Some(6));
    // Idle canaries have no next step.
    assert_eq!(next_step(&canaries[1], at(5)), None);
    assert_eq!(next_step(&canaries[2], at(5)), None);
}
