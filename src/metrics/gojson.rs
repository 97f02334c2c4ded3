//! Go's `encoding/json` as Flagger's providers meet it: the syntax error
//! texts of `json.Unmarshal`, its type error texts, its case-insensitive
//! field names and `%v` of decoded values. Users read these texts in events,
//! so they follow Go's wording rather than serde's.

use serde_json::Value;

/// Parses `body` the way `json.Unmarshal` checks it first: a syntax error
/// reads as Go's (`invalid character '<' looking for beginning of value`).
pub fn parse(body: &str) -> Result<Value, String> {
    Scanner {
        b: body.as_bytes(),
        i: 0,
    }
    .document()?;
    // Valid for Go; serde can still refuse what Go takes (numbers beyond f64).
    serde_json::from_str(body).map_err(|e| e.to_string())
}

/// Go's `UnmarshalTypeError` inside a struct field (`datadogResponse.Series`).
pub fn type_error(value: &Value, field: &str, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go struct field {field} of type {go_type}",
        kind(value)
    )
}

/// Go's `UnmarshalTypeError` for the whole document.
pub fn top_type_error(value: &Value, go_type: &str) -> String {
    format!(
        "json: cannot unmarshal {} into Go value of type {go_type}",
        kind(value)
    )
}

pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A struct field as Go finds it: the exact key, else any case.
pub fn field<'a>(object: &'a Value, name: &str) -> Option<&'a Value> {
    let map = object.as_object()?;
    map.get(name).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

/// A JSON array decoded into a Go slice: `null` is an empty slice.
pub fn slice<'a>(
    value: Option<&'a Value>,
    field: &str,
    go_type: &str,
) -> Result<&'a [Value], String> {
    match value {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(type_error(other, field, go_type)),
    }
}

/// A JSON value decoded into a Go `float64`: `null` leaves it 0.
pub fn float(value: &Value, field: &str) -> Result<f64, String> {
    match value {
        Value::Null => Ok(0.0),
        Value::Number(n) => n
            .as_f64()
            .ok_or_else(|| type_error(value, field, "float64")),
        other => Err(type_error(other, field, "float64")),
    }
}

/// Go's `%v` of a float64 (`1.577232e+09`, `0.5`, `NaN`).
pub fn float_v(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0" } else { "0" }.into();
    }
    // Shortest digits, then Go's %g rule: exponent form below 1e-4 or from 1e6.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

/// Go's `%v` of a value decoded into `interface{}`.
pub fn value_v(value: &Value) -> String {
    match value {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => float_v(n.as_f64().unwrap_or(f64::NAN)),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            let parts: Vec<String> = items.iter().map(value_v).collect();
            format!("[{}]", parts.join(" "))
        }
        Value::Object(map) => {
            let parts: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{k}:{}", value_v(v)))
                .collect();
            format!("map[{}]", parts.join(" "))
        }
    }
}

/// Go's `quoteChar`: how a syntax error shows the offending byte.
fn quote_char(c: u8) -> String {
    match c {
        b'\'' => r"'\''".into(),
        b'"' => "'\"'".into(),
        0x07 => r"'\a'".into(),
        0x08 => r"'\b'".into(),
        0x0c => r"'\f'".into(),
        b'\n' => r"'\n'".into(),
        b'\r' => r"'\r'".into(),
        b'\t' => r"'\t'".into(),
        0x0b => r"'\v'".into(),
        c if c < 0x20 || c == 0x7f => format!(r"'\x{c:02x}'"),
        // Go turns the lone byte into the rune of that number.
        c if (0x80..=0xa0).contains(&c) || c == 0xad => format!(r"'\u{c:04x}'"),
        c => format!("'{}'", char::from(c)),
    }
}

/// A checker with the states and messages of Go's `encoding/json` scanner.
struct Scanner<'a> {
    b: &'a [u8],
    i: usize,
}

type Step = Result<(), String>;

impl Scanner<'_> {
    fn peek(&mut self) -> Result<u8, String> {
        self.b
            .get(self.i)
            .copied()
            .ok_or_else(|| "unexpected end of JSON input".to_owned())
    }

    fn skip_space(&mut self) {
        while matches!(self.b.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn bad(&self, c: u8, context: &str) -> String {
        format!("invalid character {} {context}", quote_char(c))
    }

    fn document(&mut self) -> Step {
        self.value()?;
        self.skip_space();
        match self.b.get(self.i) {
            None => Ok(()),
            Some(&c) => Err(self.bad(c, "after top-level value")),
        }
    }

    fn value(&mut self) -> Step {
        self.skip_space();
        let c = self.peek()?;
        self.i += 1;
        match c {
            b'{' => self.object(),
            b'[' => self.array(),
            b'"' => self.string(),
            b'-' => {
                let c = self.peek()?;
                if !c.is_ascii_digit() {
                    return Err(self.bad(c, "in numeric literal"));
                }
                self.i += 1;
                self.number(c)
            }
            b'0'..=b'9' => self.number(c),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            c => Err(self.bad(c, "looking for beginning of value")),
        }
    }

    fn object(&mut self) -> Step {
        self.skip_space();
        if self.peek()? == b'}' {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.skip_space();
            let c = self.peek()?;
            if c != b'"' {
                return Err(self.bad(c, "looking for beginning of object key string"));
            }
            self.i += 1;
            self.string()?;
            self.skip_space();
            let c = self.peek()?;
            if c != b':' {
                return Err(self.bad(c, "after object key"));
            }
            self.i += 1;
            self.value()?;
            self.skip_space();
            let c = self.peek()?;
            self.i += 1;
            match c {
                b',' => continue,
                b'}' => return Ok(()),
                c => return Err(self.bad(c, "after object key:value pair")),
            }
        }
    }

    fn array(&mut self) -> Step {
        self.skip_space();
        if self.peek()? == b']' {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.value()?;
            self.skip_space();
            let c = self.peek()?;
            self.i += 1;
            match c {
                b',' => continue,
                b']' => return Ok(()),
                c => return Err(self.bad(c, "after array element")),
            }
        }
    }

    fn string(&mut self) -> Step {
        loop {
            let c = self.peek()?;
            self.i += 1;
            match c {
                b'"' => return Ok(()),
                b'\\' => {
                    let e = self.peek()?;
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            for _ in 0..4 {
                                let h = self.peek()?;
                                if !h.is_ascii_hexdigit() {
                                    return Err(self.bad(h, "in \\u hexadecimal character escape"));
                                }
                                self.i += 1;
                            }
                        }
                        e => return Err(self.bad(e, "in string escape code")),
                    }
                }
                c if c < 0x20 => return Err(self.bad(c, "in string literal")),
                _ => {}
            }
        }
    }

    /// The rest of a number whose first digit `first` was read.
    fn number(&mut self, first: u8) -> Step {
        let digits = |s: &mut Self| {
            while matches!(s.b.get(s.i), Some(b'0'..=b'9')) {
                s.i += 1;
            }
        };
        if first != b'0' {
            digits(self);
        }
        if self.b.get(self.i) == Some(&b'.') {
            self.i += 1;
            let c = self.peek()?;
            if !c.is_ascii_digit() {
                return Err(self.bad(c, "after decimal point in numeric literal"));
            }
            digits(self);
        }
        if matches!(self.b.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.b.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            let c = self.peek()?;
            if !c.is_ascii_digit() {
                return Err(self.bad(c, "in exponent of numeric literal"));
            }
            digits(self);
        }
        Ok(())
    }

    fn literal(&mut self, word: &str) -> Step {
        for expected in word.bytes().skip(1) {
            let c = self.peek()?;
            if c != expected {
                return Err(self.bad(
                    c,
                    &format!("in literal {word} (expecting {})", quote_char(expected)),
                ));
            }
            self.i += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syntax_errors_read_as_go() {
        let err = |s: &str| parse(s).err().unwrap_or_default();
        assert_eq!(err(""), "unexpected end of JSON input");
        assert_eq!(err("{\"a\": [1, 2"), "unexpected end of JSON input");
        assert_eq!(
            err("<html>"),
            "invalid character '<' looking for beginning of value"
        );
        assert_eq!(
            err("not json"),
            "invalid character 'o' in literal null (expecting 'u')"
        );
        assert_eq!(err("{\"a\" 1}"), "invalid character '1' after object key");
        assert_eq!(
            err("{\"a\":1 \"b\"}"),
            "invalid character '\"' after object key:value pair"
        );
        assert_eq!(
            err("{1:2}"),
            "invalid character '1' looking for beginning of object key string"
        );
        assert_eq!(err("[1 2]"), "invalid character '2' after array element");
        assert_eq!(err("{} x"), "invalid character 'x' after top-level value");
        assert_eq!(
            err("[1.]"),
            "invalid character ']' after decimal point in numeric literal"
        );
        assert_eq!(err("[-x]"), "invalid character 'x' in numeric literal");
        assert_eq!(
            err("[1e]"),
            "invalid character ']' in exponent of numeric literal"
        );
        assert_eq!(err("\"a\nb\""), "invalid character '\\n' in string literal");
        assert_eq!(
            err("\"\\q\""),
            "invalid character 'q' in string escape code"
        );
        assert_eq!(
            parse(" {\"a\": [1.5e3, true, null, \"\\u00e9\"]} "),
            Ok(serde_json::json!({"a": [1500.0, true, null, "é"]}))
        );
    }

    #[test]
    fn values_print_as_go_percent_v() {
        assert_eq!(float_v(1.0), "1");
        assert_eq!(float_v(0.5), "0.5");
        assert_eq!(float_v(1_577_232_000.0), "1.577232e+09");
        assert_eq!(float_v(123_456.0), "123456");
        assert_eq!(float_v(0.000_01), "1e-05");
        assert_eq!(float_v(1_234_567.0), "1.234567e+06");
        assert_eq!(float_v(0.0001), "0.0001");
        assert_eq!(value_v(&serde_json::json!([1, "a", null])), "[1 a <nil>]");
    }
}
