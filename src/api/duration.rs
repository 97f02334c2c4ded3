//! Go `time.ParseDuration` compatible parser: Flagger's intervals and
//! timeouts are Go duration strings ("1m30s", "500ms", "10s", "1h").

use std::time::Duration;

/// Why a duration string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    #[error("invalid duration {0:?}: empty string")]
    Empty(String),
    #[error("invalid duration {0:?}: expected a number")]
    ExpectedNumber(String),
    #[error("invalid duration {input:?}: missing unit (one of ns, us, µs, ms, s, m, h)")]
    MissingUnit { input: String },
    #[error("invalid duration {input:?}: unknown unit {unit:?}")]
    UnknownUnit { input: String, unit: String },
    #[error("invalid duration {0:?}: negative durations are not supported")]
    Negative(String),
    #[error("invalid duration {0:?}: overflow")]
    Overflow(String),
}

/// Units in nanoseconds, longest suffix first so "ms" wins over "m".
const UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("μs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// Parses a Go duration string. Like Go, "0" needs no unit and a sequence of
/// `<decimal><unit>` pairs is summed; unlike Go, negative values are rejected
/// because no Flagger field accepts them.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let owned = || input.to_string();
    let mut rest = input;
    if let Some(stripped) = rest.strip_prefix('+') {
        rest = stripped;
    } else if let Some(stripped) = rest.strip_prefix('-') {
        // Go accepts "-0"; anything else negative is refused.
        if stripped == "0" {
            return Ok(Duration::ZERO);
        }
        return Err(DurationError::Negative(owned()));
    }
    if rest.is_empty() {
        return Err(DurationError::Empty(owned()));
    }
    if rest == "0" {
        return Ok(Duration::ZERO);
    }

    let mut total_nanos: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after_int) = rest.split_at(int_len);
        let (frac_part, after_num) = match after_int.strip_prefix('.') {
            Some(after_dot) => {
                let frac_len = after_dot.bytes().take_while(u8::is_ascii_digit).count();
                after_dot.split_at(frac_len)
            }
            None => ("", after_int),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return Err(DurationError::ExpectedNumber(owned()));
        }
        let unit_len = after_num
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after_num.len(), |(i, _)| i);
        let (unit, tail) = after_num.split_at(unit_len);
        if unit.is_empty() {
            return Err(DurationError::MissingUnit { input: owned() });
        }
        let scale = UNITS
            .iter()
            .find(|(name, _)| *name == unit)
            .map(|(_, scale)| *scale)
            .ok_or_else(|| DurationError::UnknownUnit {
                input: owned(),
                unit: unit.to_string(),
            })?;

        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part
                .parse()
                .map_err(|_| DurationError::Overflow(owned()))?
        };
        let mut nanos = whole
            .checked_mul(scale)
            .ok_or_else(|| DurationError::Overflow(owned()))?;
        // Fractions are applied digit by digit, truncating like Go does.
        let mut divisor: u128 = 1;
        for digit in frac_part.bytes().take(30) {
            divisor *= 10;
            nanos += u128::from(digit - b'0') * scale / divisor;
        }
        total_nanos = total_nanos
            .checked_add(nanos)
            .ok_or_else(|| DurationError::Overflow(owned()))?;
        rest = tail;
    }

    // Go durations are int64 nanoseconds.
    if total_nanos > i64::MAX as u128 {
        return Err(DurationError::Overflow(owned()));
    }
    let secs =
        u64::try_from(total_nanos / 1_000_000_000).map_err(|_| DurationError::Overflow(owned()))?;
    let sub =
        u32::try_from(total_nanos % 1_000_000_000).map_err(|_| DurationError::Overflow(owned()))?;
    Ok(Duration::new(secs, sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        let cases = [
            ("10s", Duration::from_secs(10)),
            ("1m", Duration::from_secs(60)),
            ("1h", Duration::from_secs(3600)),
            ("1m30s", Duration::from_secs(90)),
            ("500ms", Duration::from_millis(500)),
            ("1.5s", Duration::from_millis(1500)),
            (".5s", Duration::from_millis(500)),
            ("2h45m", Duration::from_secs(2 * 3600 + 45 * 60)),
            ("10us", Duration::from_micros(10)),
            ("10µs", Duration::from_micros(10)),
            ("7ns", Duration::from_nanos(7)),
            ("0", Duration::ZERO),
            ("+5s", Duration::from_secs(5)),
            ("24h", Duration::from_secs(86400)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_duration(input), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects_invalid_durations() {
        assert!(matches!(parse_duration(""), Err(DurationError::Empty(_))));
        assert!(matches!(
            parse_duration("10"),
            Err(DurationError::MissingUnit { .. })
        ));
        assert!(matches!(
            parse_duration("5d"),
            Err(DurationError::UnknownUnit { .. })
        ));
        assert!(matches!(
            parse_duration("s"),
            Err(DurationError::ExpectedNumber(_))
        ));
        assert!(matches!(
            parse_duration("-5s"),
            Err(DurationError::Negative(_))
        ));
        assert!(matches!(
            parse_duration("99999999999h"),
            Err(DurationError::Overflow(_))
        ));
        assert!(parse_duration("1m 30s").is_err());
    }
}
