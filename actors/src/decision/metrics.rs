//! Judging one metric answer against its thresholds, with Flagger's halt texts.

use crate::duration::go_duration_string;
use crate::events::{Event, text};
use crate::model::observe::MetricAnswer;
use crate::model::request::CheckResult;
use crate::model::spec::{Builtin, CanarySpec, MetricSource, MetricSpec};
use crate::model::status::Timestamp;

const NANOS_PER_MS: i64 = 1_000_000;

/// `Ok` when the metric passes, else the event that halts advancement.
pub fn judge(spec: &CanarySpec, metric: &MetricSpec, answer: &MetricAnswer) -> Result<(), Event> {
    let source = metric.source();
    let value = match answer {
        MetricAnswer::Value(value) => *value,
        MetricAnswer::NoValues(err) => return Err(Event::warning(no_values(spec, metric, err))),
        MetricAnswer::QueryFailed(err) => {
            let message = match source {
                MetricSource::Builtin(_) => text::prometheus_failed(err),
                MetricSource::Inline => text::prometheus_failed_for(&metric.name, err),
                _ => text::metric_query_failed(&metric.name, err),
            };
            return Err(Event::warning(message));
        }
        MetricAnswer::TemplateError(message) => return Err(Event::warning(message.clone())),
    };
    match source {
        MetricSource::Builtin(Builtin::SuccessRate) => success_rate(spec, metric, value),
        MetricSource::Builtin(Builtin::Duration) => request_duration(spec, metric, value),
        MetricSource::Inline | MetricSource::Template => custom(spec, metric, value),
        MetricSource::Unusable => Err(Event::warning(text::no_usable_metric())),
    }
}

/// The answer and the verdict as `status.checks` shows them.
pub fn check_of(
    metric: &MetricSpec,
    answer: &MetricAnswer,
    verdict: &Result<(), Event>,
    now: Timestamp,
) -> CheckResult {
    let (min, max) = match (metric.threshold_range, metric.source()) {
        (Some(range), _) => (range.min, range.max),
        // The deprecated `threshold`: a minimum for the success rate, else a maximum.
        (None, MetricSource::Builtin(Builtin::SuccessRate)) => (Some(metric.threshold), None),
        (None, _) => (None, Some(metric.threshold)),
    };
    CheckResult {
        name: metric.name.clone(),
        kind: "metric".to_owned(),
        passed: verdict.is_ok(),
        value: match answer {
            MetricAnswer::Value(value) => Some(*value),
            _ => None,
        },
        min,
        max,
        message: verdict.as_ref().err().map(|event| event.message.clone()),
        at: now,
    }
}

fn no_values(spec: &CanarySpec, metric: &MetricSpec, err: &str) -> String {
    match metric.source() {
        MetricSource::Builtin(Builtin::SuccessRate) => {
            text::no_values_success_rate(spec, &metric.name, err)
        }
        MetricSource::Builtin(Builtin::Duration) => text::no_values_duration(spec, &metric.name),
        MetricSource::Inline => text::no_values_inline(&metric.name),
        _ => text::no_values_custom(&metric.name, err),
    }
}

fn success_rate(spec: &CanarySpec, metric: &MetricSpec, value: f64) -> Result<(), Event> {
    match metric.threshold_range {
        Some(range) => {
            if let Some(min) = range.min
                && value < min
            {
                return Err(Event::warning(text::success_rate_below(spec, value, min)));
            }
            if let Some(max) = range.max
                && value > max
            {
                return Err(Event::warning(text::success_rate_above(spec, value, max)));
            }
            Ok(())
        }
        // Deprecated `threshold` is a minimum for the success rate.
        None if metric.threshold > value => Err(Event::warning(text::success_rate_below(
            spec,
            value,
            metric.threshold,
        ))),
        None => Ok(()),
    }
}

/// Flagger truncates both the value and the bounds to whole milliseconds.
fn request_duration(spec: &CanarySpec, metric: &MetricSpec, value_ms: f64) -> Result<(), Event> {
    let as_nanos = |ms: f64| (ms as i64).saturating_mul(NANOS_PER_MS);
    let value = as_nanos(value_ms);
    let show = go_duration_string;
    match metric.threshold_range {
        Some(range) => {
            if let Some(min) = range.min.map(as_nanos)
                && value < min
            {
                return Err(Event::warning(text::duration_below(
                    spec,
                    &show(value),
                    &show(min),
                )));
            }
            if let Some(max) = range.max.map(as_nanos)
                && value > max
            {
                return Err(Event::warning(text::duration_above(
                    spec,
                    &show(value),
                    &show(max),
                )));
            }
            Ok(())
        }
        None => {
            let max = as_nanos(metric.threshold);
            if value > max {
                Err(Event::warning(text::duration_above(
                    spec,
                    &show(value),
                    &show(max),
                )))
            } else {
                Ok(())
            }
        }
    }
}

fn custom(spec: &CanarySpec, metric: &MetricSpec, value: f64) -> Result<(), Event> {
    let name = &metric.name;
    match metric.threshold_range {
        Some(range) => {
            if let Some(min) = range.min
                && value < min
            {
                return Err(Event::warning(text::custom_below(spec, name, value, min)));
            }
            if let Some(max) = range.max
                && value > max
            {
                return Err(Event::warning(text::custom_above(spec, name, value, max)));
            }
            Ok(())
        }
        // Deprecated `threshold` is a maximum for custom metrics (0 fails any positive value).
        None if value > metric.threshold => Err(Event::warning(text::custom_above(
            spec,
            name,
            value,
            metric.threshold,
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::spec::{TargetRef, TemplateRef, ThresholdRange};

    fn spec() -> CanarySpec {
        CanarySpec {
            name: "podinfo".into(),
            namespace: "test".into(),
            target: TargetRef {
                kind: "Deployment".into(),
                name: "podinfo".into(),
            },
            metrics_provider: "nginx".into(),
            ..CanarySpec::default()
        }
    }

    fn metric(name: &str, min: Option<f64>, max: Option<f64>) -> MetricSpec {
        MetricSpec {
            name: name.into(),
            threshold_range: Some(ThresholdRange { min, max }),
            ..MetricSpec::default()
        }
    }

    fn message(result: Result<(), Event>) -> String {
        result.err().map(|e| e.message).unwrap_or_default()
    }

    #[test]
    fn success_rate_halt_text() {
        let m = metric("request-success-rate", Some(99.0), None);
        assert_eq!(
            message(judge(&spec(), &m, &MetricAnswer::Value(53.4218))),
            "Halt podinfo.test advancement success rate 53.42% < 99%"
        );
        assert!(judge(&spec(), &m, &MetricAnswer::Value(99.0)).is_ok());
    }

    #[test]
    fn request_duration_uses_go_durations() {
        let m = metric("request-duration", None, Some(500.0));
        assert_eq!(
            message(judge(&spec(), &m, &MetricAnswer::Value(1200.7))),
            "Halt podinfo.test advancement request duration 1.2s > 500ms"
        );
        assert!(judge(&spec(), &m, &MetricAnswer::Value(500.9)).is_ok());
    }

    #[test]
    fn custom_metric_halt_text() {
        let mut m = metric("latency", None, Some(0.5));
        m.template_ref = Some(TemplateRef {
            name: "latency".into(),
            namespace: None,
        });
        assert_eq!(
            message(judge(&spec(), &m, &MetricAnswer::Value(1.2))),
            "Halt podinfo.test advancement latency 1.20 > 0.5"
        );
    }

    #[test]
    fn missing_values_and_unusable_metrics() {
        let m = metric("request-success-rate", Some(99.0), None);
        assert_eq!(
            message(judge(
                &spec(),
                &m,
                &MetricAnswer::NoValues("no values found".into())
            )),
            "Halt advancement no values found for nginx metric request-success-rate probably podinfo.test is not receiving traffic: no values found"
        );
        let unusable = metric("foo", None, Some(1.0));
        assert_eq!(
            message(judge(&spec(), &unusable, &MetricAnswer::Value(0.0))),
            "Metric query failed for no usable metrics template and query were configured"
        );
    }
}
