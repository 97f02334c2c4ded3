//! Kubernetes resource quantities (`1500m`, `2k`, `3Mi`, `1e3`) read as
//! apimachinery's `ParseQuantity` then `AsApproximateFloat64` do: the same
//! internal form (an integer and a power of ten, rounded up to nano units
//! when it has more decimals) and the same float arithmetic, so values and
//! error texts match Flagger's.

const FORMAT_WRONG: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const NUMERIC: &str = "unable to parse numeric part of quantity";
const SUFFIX: &str = "unable to parse quantity's suffix";
/// apimachinery keeps at most nine decimals (nano).
const NANO: i64 = 9;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// The number a quantity string stands for, as `AsApproximateFloat64`.
pub fn approximate_f64(text: &str) -> Result<f64, String> {
    if text.is_empty() {
        return Err(FORMAT_WRONG.to_owned());
    }
    if text == "0" {
        return Ok(0.0);
    }
    let parts = split(text)?;
    let (base, exponent, format) = suffix(parts.suffix).ok_or_else(|| SUFFIX.to_owned())?;

    // apimachinery's fast path: an int64 and a decimal scale.
    let digits = parts.num.len() as i64 + parts.denom.len() as i64;
    let (mut scale, mantissa, precision) = match format {
        Format::DecimalSi | Format::DecimalExponent => (exponent, 1i64, 18 - digits),
        Format::BinarySi if exponent >= 0 && parts.denom.is_empty() => {
            let decimals = (exponent as f32 * 3.0 / 10.0) as i64;
            let shift = u32::try_from(exponent).unwrap_or(63).min(62);
            (0, 1i64 << shift, 15 - parts.num.len() as i64 - decimals - 1)
        }
        Format::BinarySi => (0, 1, -1),
    };
    if precision >= 0 {
        scale -= parts.denom.len() as i64;
        if scale >= -NANO {
            let shifted = format!("{}{}", parts.num, parts.denom);
            let value = shifted.parse::<i64>().map_err(|_| NUMERIC.to_owned())?;
            if let Some(result) = value.checked_mul(mantissa) {
                let signed = if parts.positive { result } else { -result };
                return Ok(scaled(signed as f64, scale));
            }
        }
    }

    // The slow path: an arbitrary-precision decimal rounded up to nano.
    let mut unscaled: Vec<u8> = format!("{}{}", parts.num, parts.denom)
        .bytes()
        .map(|b| b - b'0')
        .collect();
    if parts.num.is_empty() && parts.denom.is_empty() {
        return Err(NUMERIC.to_owned());
    }
    let mut dec_scale = parts.denom.len() as i64;
    if base == 10 {
        dec_scale -= exponent;
    } else {
        for _ in 0..exponent {
            double(&mut unscaled);
        }
    }
    trim_zeros(&mut unscaled);
    if !unscaled.is_empty() {
        round_up_to_nano(&mut unscaled, &mut dec_scale);
    }
    if format == Format::BinarySi && exceeds_int64(&unscaled, dec_scale) {
        unscaled = i64::MAX.to_string().bytes().map(|b| b - b'0').collect();
        dec_scale = 0;
    }
    let text: String = unscaled.iter().map(|d| char::from(b'0' + d)).collect();
    let magnitude = if text.is_empty() {
        0.0
    } else {
        text.parse::<f64>().map_err(|_| NUMERIC.to_owned())?
    };
    let base = if parts.positive {
        magnitude
    } else {
        -magnitude
    };
    Ok(scaled(base, -dec_scale))
}

/// `base * 10^exponent` with Go's `math.Pow10`.
fn scaled(base: f64, exponent: i64) -> f64 {
    if exponent == 0 {
        base
    } else {
        base * pow10(exponent)
    }
}

/// Go's `math.Pow10`: a product (or quotient) of two exact table entries.
fn pow10(n: i64) -> f64 {
    let power = |k: i64| format!("1e{k}").parse::<f64>().unwrap_or(0.0);
    match n {
        0..=308 => power(32 * (n / 32)) * power(n % 32),
        -323..=-1 => power(-32 * (-n / 32)) / power(-n % 32),
        _ if n > 0 => f64::INFINITY,
        _ => 0.0,
    }
}

struct Parts<'a> {
    positive: bool,
    num: &'a str,
    denom: &'a str,
    suffix: &'a str,
}

/// apimachinery's `parseQuantityString`: sign, digits without leading
/// zeros, decimals, suffix.
fn split(text: &str) -> Result<Parts<'_>, String> {
    let bytes = text.as_bytes();
    let mut pos = 0;
    let mut positive = true;
    match bytes.first() {
        Some(b'-') => {
            positive = false;
            pos += 1;
        }
        Some(b'+') => pos += 1,
        _ => {}
    }
    while pos < bytes.len() && bytes[pos] == b'0' {
        pos += 1;
    }
    let digits_end = |from: usize| {
        from + bytes[from..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let end = digits_end(pos);
    let mut num = &text[pos..end];
    if num.is_empty() {
        num = "0";
    }
    pos = end;
    let mut denom = "";
    if pos < bytes.len() && bytes[pos] == b'.' {
        let end = digits_end(pos + 1);
        denom = &text[pos + 1..end];
        pos = end;
    }
    let suffix_start = pos;
    while pos < bytes.len() && b"eEinumkKMGTP".contains(&bytes[pos]) {
        pos += 1;
    }
    if pos < bytes.len() && (bytes[pos] == b'-' || bytes[pos] == b'+') {
        pos += 1;
    }
    if digits_end(pos) != bytes.len() {
        return Err(FORMAT_WRONG.to_owned());
    }
    Ok(Parts {
        positive,
        num,
        denom,
        suffix: &text[suffix_start..],
    })
}

/// The base, exponent and format a suffix stands for.
fn suffix(text: &str) -> Option<(u32, i64, Format)> {
    let decimal = |e| Some((10, e, Format::DecimalSi));
    let binary = |e| Some((2, e, Format::BinarySi));
    match text {
        "" => decimal(0),
        "n" => decimal(-9),
        "u" => decimal(-6),
        "m" => decimal(-3),
        "k" => decimal(3),
        "M" => decimal(6),
        "G" => decimal(9),
        "T" => decimal(12),
        "P" => decimal(15),
        "E" => decimal(18),
        "Ki" => binary(10),
        "Mi" => binary(20),
        "Gi" => binary(30),
        "Ti" => binary(40),
        "Pi" => binary(50),
        "Ei" => binary(60),
        _ if text.len() > 1 && (text.starts_with('e') || text.starts_with('E')) => {
            let exponent = text[1..].parse::<i32>().ok()?;
            Some((10, i64::from(exponent), Format::DecimalExponent))
        }
        _ => None,
    }
}

/// Decimal digits (most significant first) times two.
fn double(digits: &mut Vec<u8>) {
    let mut carry = 0;
    for d in digits.iter_mut().rev() {
        let v = *d * 2 + carry;
        *d = v % 10;
        carry = v / 10;
    }
    if carry > 0 {
        digits.insert(0, carry);
    }
}

fn trim_zeros(digits: &mut Vec<u8>) {
    let leading = digits.iter().take_while(|d| **d == 0).count();
    digits.drain(..leading);
}

/// `inf.Dec.Round(x, 9, RoundUp)`: exactly nine decimals, any dropped
/// non-zero digit rounding away from zero.
fn round_up_to_nano(digits: &mut Vec<u8>, scale: &mut i64) {
    if *scale < NANO {
        let pad = usize::try_from(NANO - *scale).unwrap_or(0);
        digits.extend(std::iter::repeat_n(0, pad));
    } else if *scale > NANO {
        let drop = usize::try_from(*scale - NANO).unwrap_or(0);
        let keep = digits.len().saturating_sub(drop);
        let dropped_nonzero = digits[keep..].iter().any(|d| *d != 0);
        digits.truncate(keep);
        if dropped_nonzero {
            let mut i = digits.len();
            loop {
                if i == 0 {
                    digits.insert(0, 1);
                    break;
                }
                i -= 1;
                if digits[i] == 9 {
                    digits[i] = 0;
                } else {
                    digits[i] += 1;
                    break;
                }
            }
        }
    }
    *scale = NANO;
}

/// Whether `digits / 10^scale` is above int64's maximum.
fn exceeds_int64(digits: &[u8], scale: i64) -> bool {
    let split = digits.len() as i64 - scale;
    let split = usize::try_from(split.max(0)).unwrap_or(0).min(digits.len());
    let (whole, fraction) = digits.split_at(split);
    let whole: Vec<u8> = whole.iter().copied().skip_while(|d| *d == 0).collect();
    let max: Vec<u8> = i64::MAX.to_string().bytes().map(|b| b - b'0').collect();
    match whole.len().cmp(&max.len()) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => match whole.as_slice().cmp(max.as_slice()) {
            std::cmp::Ordering::Equal => fraction.iter().any(|d| *d != 0),
            other => other == std::cmp::Ordering::Greater,
        },
    }
}
