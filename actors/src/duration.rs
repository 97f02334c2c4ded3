//! Go `time.Duration` parsing and printing, because Flagger's specs use Go
//! duration strings and its events print durations with `%v`.

use std::time::Duration;

use thiserror::Error;

/// A Go duration string that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid duration {0:?}")]
pub struct DurationError(pub String);

/// Parses a non-negative Go duration (`1m`, `30s`, `1m30s`, `500ms`, `1.5h`).
pub fn parse_go_duration(text: &str) -> Result<Duration, DurationError> {
    let err = || DurationError(text.to_owned());
    let mut rest = text.strip_prefix('+').unwrap_or(text);
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(err());
    }
    let mut total_nanos: f64 = 0.0;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(err)?;
        let (number, tail) = rest.split_at(number_len);
        let value: f64 = number.parse().map_err(|_| err())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(err()),
        };
        total_nanos += value * scale;
        rest = tail;
    }
    // Whole nanoseconds, as Go stores them.
    Ok(Duration::from_nanos(total_nanos as u64))
}

/// Go's `Duration.String()` for a signed number of nanoseconds
/// (`0s`, `500ms`, `1.2s`, `1m0s`, `1h2m3.5s`).
pub fn go_duration_string(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    if u < 1_000_000_000 {
        let (unit, scale) = if u < 1_000 {
            ("ns", 1)
        } else if u < 1_000_000 {
            ("µs", 1_000)
        } else {
            ("ms", 1_000_000)
        };
        return format!("{sign}{}{unit}", fraction(u, scale));
    }
    let hours = u / 3_600_000_000_000;
    let minutes = (u / 60_000_000_000) % 60;
    let seconds = fraction(u % 60_000_000_000, 1_000_000_000);
    if hours > 0 {
        format!("{sign}{hours}h{minutes}m{seconds}s")
    } else if minutes > 0 {
        format!("{sign}{minutes}m{seconds}s")
    } else {
        format!("{sign}{seconds}s")
    }
}

/// `value / scale` with the fractional digits Go keeps (trailing zeros dropped).
fn fraction(value: u64, scale: u64) -> String {
    let whole = value / scale;
    let frac = value % scale;
    if frac == 0 {
        return whole.to_string();
    }
    let width = scale.to_string().len() - 1;
    let digits = format!("{frac:0width$}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_durations() {
        assert_eq!(parse_go_duration("1m"), Ok(Duration::from_secs(60)));
        assert_eq!(parse_go_duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_go_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_go_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_go_duration("").is_err());
        assert!(parse_go_duration("10").is_err());
        assert!(parse_go_duration("abc").is_err());
    }

    #[test]
    fn prints_like_go() {
        let ms = 1_000_000;
        assert_eq!(go_duration_string(0), "0s");
        assert_eq!(go_duration_string(500 * ms), "500ms");
        assert_eq!(go_duration_string(1200 * ms), "1.2s");
        assert_eq!(go_duration_string(60_000 * ms), "1m0s");
        assert_eq!(go_duration_string(3_723_500 * ms), "1h2m3.5s");
        assert_eq!(go_duration_string(1_500_000), "1.5ms");
        assert_eq!(go_duration_string(-2000 * ms), "-2s");
    }
}
