use super::*;
use crate::api::canary::RequestStatus;
use crate::ctl::fixtures::podinfo;

fn with_last(mut c: Canary, action: &str) -> Canary {
    if let Some(s) = c.status.as_mut() {
        s.last_request = Some(RequestStatus {
            id: "1".into(),
            action: action.into(),
            result: "Accepted".into(),
            ..Default::default()
        });
    }
    c
}

#[test]
fn promote_and_abort_while_the_analysis_runs() {
    for phase in ["Progressing", "Waiting", "WaitingPromotion"] {
        let c = podinfo(phase, 10);
        assert_eq!(refusal(RequestAction::Promote, &c), None, "{phase}");
        assert_eq!(refusal(RequestAction::Abort, &c), None, "{phase}");
    }
    let idle = podinfo("Succeeded", 0);
    assert_eq!(
        refusal(RequestAction::Promote, &idle).as_deref(),
        Some("podinfo.test is Succeeded: no analysis to promote")
    );
    assert_eq!(
        refusal(RequestAction::Abort, &podinfo("Initialized", 0)).as_deref(),
        Some("podinfo.test is Initialized: no analysis to abort")
    );
    assert_eq!(
        refusal(RequestAction::Abort, &podinfo("Promoting", 50)).as_deref(),
        Some("podinfo.test is Promoting: the promotion is under way")
    );
    assert_eq!(
        refusal(RequestAction::Promote, &podinfo("", 0)).as_deref(),
        Some("podinfo.test is Initializing: no analysis to promote")
    );
}

#[test]
fn what_the_operator_answers_repeated_goes_through() {
    assert_eq!(
        refusal(RequestAction::Promote, &podinfo("Finalising", 0)),
        None
    );
    let promoted = with_last(podinfo("Succeeded", 0), "promote");
    assert_eq!(refusal(RequestAction::Promote, &promoted), None);
    assert_eq!(refusal(RequestAction::Abort, &podinfo("Failed", 0)), None);
    let retried = with_last(podinfo("Progressing", 0), "retry");
    assert_eq!(refusal(RequestAction::Retry, &retried), None);
}

#[test]
fn retry_only_after_a_failure() {
    assert_eq!(refusal(RequestAction::Retry, &podinfo("Failed", 0)), None);
    assert_eq!(
        refusal(RequestAction::Retry, &podinfo("Succeeded", 0)).as_deref(),
        Some("podinfo.test is Succeeded: a succeeded analysis is not retried")
    );
    assert_eq!(
        refusal(RequestAction::Retry, &podinfo("Progressing", 5)).as_deref(),
        Some("podinfo.test is Progressing: only a failed analysis is retried")
    );
}

#[test]
fn nothing_while_paused() {
    let mut c = podinfo("Progressing", 10);
    c.spec.suspend = Some(true);
    for action in [
        RequestAction::Promote,
        RequestAction::Abort,
        RequestAction::Retry,
    ] {
        assert_eq!(
            refusal(action, &c).as_deref(),
            Some("podinfo.test is paused; run serin resume podinfo first")
        );
    }
}

#[test]
fn answers_map_to_exit_codes() {
    assert_eq!(answer_exit("Accepted"), Exit::Ok);
    assert_eq!(answer_exit("Repeated"), Exit::Ok);
    assert_eq!(answer_exit("Refused"), Exit::Failed);
}

#[test]
fn the_patch_writes_the_annotation_only() {
    let request = Request {
        id: "3f2c".into(),
        action: RequestAction::Promote,
        requested_by: Some("alice".into()),
    };
    assert_eq!(
        patch(&request).unwrap(),
        json!({ "metadata": { "annotations": {
            "serin.dev/request": r#"{"id":"3f2c","action":"promote","requestedBy":"alice"}"#
        }}})
    );
    let anonymous = Request {
        requested_by: None,
        ..request
    };
    let value = patch(&anonymous).unwrap();
    let text = value["metadata"]["annotations"][REQUEST_ANNOTATION]
        .as_str()
        .unwrap();
    assert_eq!(text, r#"{"id":"3f2c","action":"promote"}"#);
    // What the operator reads back.
    let annotations = [(REQUEST_ANNOTATION.to_string(), text.to_string())].into();
    assert_eq!(Request::of(&annotations).unwrap(), Some(anonymous));
}
