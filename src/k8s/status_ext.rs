//! Serin's extension of the Canary status (`status.checks`,
//! `status.lastRequest`) to and from the core's types.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp as JiffTimestamp;
use serin_actors::model::request::{CheckResult, HandledRequest, RequestResult};
use serin_actors::model::status::Timestamp;

use crate::api::canary::{CheckStatus, RequestStatus, ThresholdRange};

fn time(at: Timestamp) -> Option<Time> {
    JiffTimestamp::from_second(at.0).ok().map(Time)
}

fn timestamp(time: Option<&Time>) -> Timestamp {
    Timestamp(time.map_or(0, |t| t.0.as_second()))
}

pub fn checks_to_api(checks: &[CheckResult]) -> Option<Vec<CheckStatus>> {
    (!checks.is_empty()).then(|| {
        checks
            .iter()
            .map(|c| CheckStatus {
                name: c.name.clone(),
                type_: c.kind.clone(),
                passed: c.passed,
                value: c.value,
                threshold_range: (c.min.is_some() || c.max.is_some()).then_some(ThresholdRange {
                    min: c.min,
                    max: c.max,
                }),
                message: c.message.clone(),
                last_check_time: time(c.at),
            })
            .collect()
    })
}

pub fn checks_from_api(checks: Option<&Vec<CheckStatus>>) -> Vec<CheckResult> {
    checks
        .into_iter()
        .flatten()
        .map(|c| CheckResult {
            name: c.name.clone(),
            kind: c.type_.clone(),
            passed: c.passed,
            value: c.value,
            min: c.threshold_range.as_ref().and_then(|r| r.min),
            max: c.threshold_range.as_ref().and_then(|r| r.max),
            message: c.message.clone(),
            at: timestamp(c.last_check_time.as_ref()),
        })
        .collect()
}

pub fn request_to_api(request: Option<&HandledRequest>) -> Option<RequestStatus> {
    request.map(|r| RequestStatus {
        id: r.id.clone(),
        action: r.action.clone(),
        requested_by: r.requested_by.clone(),
        result: r.result.as_str().to_owned(),
        message: r.message.clone(),
        time: time(r.at),
    })
}

/// An entry with a result Serin does not know is kept as answered: the id
/// is what matters.
pub fn request_from_api(request: Option<&RequestStatus>) -> Option<HandledRequest> {
    request.map(|r| HandledRequest {
        id: r.id.clone(),
        action: r.action.clone(),
        requested_by: r.requested_by.clone(),
        result: RequestResult::parse(&r.result).unwrap_or(RequestResult::Refused),
        message: r.message.clone(),
        at: timestamp(r.time.as_ref()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_and_requests_survive_a_round_trip() {
        let checks = vec![
            CheckResult {
                name: "request-success-rate".into(),
                kind: "metric".into(),
                passed: false,
                value: Some(53.421875),
                min: Some(99.0),
                max: None,
                message: Some("Halt podinfo.test advancement success rate 53.42% < 99%".into()),
                at: Timestamp(1_790_000_000),
            },
            CheckResult {
                name: "gate".into(),
                kind: "confirm-promotion".into(),
                passed: true,
                value: None,
                min: None,
                max: None,
                message: None,
                at: Timestamp(1_790_000_010),
            },
        ];
        let api = checks_to_api(&checks);
        assert_eq!(checks_from_api(api.as_ref()), checks);
        assert_eq!(checks_to_api(&[]), None);

        let request = HandledRequest {
            id: "b1".into(),
            action: "promote".into(),
            requested_by: Some("alice".into()),
            result: RequestResult::Accepted,
            message: "Promotion of podinfo.test requested by alice".into(),
            at: Timestamp(1_790_000_020),
        };
        let api = request_to_api(Some(&request));
        assert_eq!(request_from_api(api.as_ref()), Some(request));
    }
}
