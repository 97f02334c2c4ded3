//! Prints what the demo did the way kubectl shows it: the `Status` and
//! `Events` of `kubectl describe canary` and the table of
//! `kubectl get canaries --all-namespaces`.

use serin_actors::{Event, EventType, Phase};

// The command line's kubectl-shaped rendering, shared.
use crate::ctl::human::human_duration;
use crate::ctl::table::align;

/// One event with its age in seconds when the description is printed.
pub struct AgedEvent<'a> {
    pub event: &'a Event,
    pub age_seconds: u64,
}

/// `kubectl describe canary`'s status block and events table.
pub fn describe(weight: i32, failed_checks: i32, phase: Phase, events: &[AgedEvent<'_>]) -> String {
    let mut out = format!(
        "Status:\n  Canary Weight:  {weight}\n  Failed Checks:  {failed_checks}\n  Phase:          {phase}\nEvents:\n"
    );
    let mut rows = vec![
        vec![
            "Type".to_string(),
            "Reason".into(),
            "Age".into(),
            "From".into(),
            "Message".into(),
        ],
        vec![
            "----".to_string(),
            "------".into(),
            "----".into(),
            "----".into(),
            "-------".into(),
        ],
    ];
    for e in events {
        let kind = match e.event.event_type {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        rows.push(vec![
            kind.to_string(),
            "Synced".into(),
            human_duration(i64::try_from(e.age_seconds).unwrap_or(i64::MAX)),
            "flagger".into(),
            e.event.message.clone(),
        ]);
    }
    for line in align(&rows, 3).lines() {
        out.push_str("  ");
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// One row of `kubectl get canaries --all-namespaces`.
pub struct CanaryRow {
    pub namespace: String,
    pub name: String,
    pub phase: Phase,
    pub weight: i32,
    /// RFC 3339, as the API server stores `lastTransitionTime`.
    pub last_transition_time: String,
}

pub fn canaries_table(rows: &[CanaryRow]) -> String {
    let mut cells = vec![vec![
        "NAMESPACE".to_string(),
        "NAME".into(),
        "STATUS".into(),
        "WEIGHT".into(),
        "LASTTRANSITIONTIME".into(),
    ]];
    for r in rows {
        cells.push(vec![
            r.namespace.clone(),
            r.name.clone(),
            r.phase.to_string(),
            r.weight.to_string(),
            r.last_transition_time.clone(),
        ]);
    }
    align(&cells, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_prints_status_and_events() {
        let advance = Event::normal("Advance podinfo.test canary weight 5");
        let halt = Event {
            event_type: EventType::Warning,
            message: "Halt podinfo.test advancement".into(),
        };
        let text = describe(
            5,
            1,
            Phase::Progressing,
            &[
                AgedEvent {
                    event: &advance,
                    age_seconds: 20,
                },
                AgedEvent {
                    event: &halt,
                    age_seconds: 10,
                },
            ],
        );
        let want = "Status:\n  Canary Weight:  5\n  Failed Checks:  1\n  Phase:          Progressing\nEvents:\n\
                    \x20 Type      Reason   Age    From      Message\n\
                    \x20 ----      ------   ----   ----      -------\n\
                    \x20 Normal    Synced   20s    flagger   Advance podinfo.test canary weight 5\n\
                    \x20 Warning   Synced   10s    flagger   Halt podinfo.test advancement\n";
        assert_eq!(text, want);
    }

    #[test]
    fn canaries_table_has_kubectls_columns() {
        let rows = [CanaryRow {
            namespace: "test".into(),
            name: "podinfo".into(),
            phase: Phase::Succeeded,
            weight: 0,
            last_transition_time: "2020-08-14T11:23:58Z".into(),
        }];
        let text = canaries_table(&rows);
        assert_eq!(
            text,
            "NAMESPACE   NAME      STATUS      WEIGHT   LASTTRANSITIONTIME\n\
             test        podinfo   Succeeded   0        2020-08-14T11:23:58Z\n"
        );
    }
}
