//! What CloudWatch reads and answers, and how the AWS Go SDK shows it: the
//! query unmarshaled as Go would (field names matched case-insensitively,
//! unknown ones dropped, Go's type errors), the answer printed as the SDK's
//! `String()` does in Flagger's "no values" texts, and error codes.

use serde::Deserialize;
use serde_json::{Map, Value};

/// A Go type the query may hold.
enum Shape {
    Str,
    Int,
    Bool,
    List(&'static Shape, &'static str),
    Struct(&'static str, &'static [(&'static str, Shape)]),
    Ref(&'static Shape),
}

static DIMENSION: Shape =
    Shape::Struct("Dimension", &[("Name", Shape::Str), ("Value", Shape::Str)]);
static METRIC: Shape = Shape::Struct(
    "Metric",
    &[
        (
            "Dimensions",
            Shape::List(&DIMENSION, "[]*cloudwatch.Dimension"),
        ),
        ("MetricName", Shape::Str),
        ("Namespace", Shape::Str),
    ],
);
static METRIC_STAT: Shape = Shape::Struct(
    "MetricStat",
    &[
        ("Metric", Shape::Ref(&METRIC)),
        ("Period", Shape::Int),
        ("Stat", Shape::Str),
        ("Unit", Shape::Str),
    ],
);
static QUERY: Shape = Shape::Struct(
    "MetricDataQuery",
    &[
        ("AccountId", Shape::Str),
        ("Expression", Shape::Str),
        ("Id", Shape::Str),
        ("Label", Shape::Str),
        ("MetricStat", Shape::Ref(&METRIC_STAT)),
        ("Period", Shape::Int),
        ("ReturnData", Shape::Bool),
    ],
);
static QUERIES: Shape = Shape::List(&QUERY, "[]*cloudwatch.MetricDataQuery");

/// The template's query as the JSON `MetricDataQueries` CloudWatch expects,
/// or Go's `encoding/json` error.
pub fn metric_data_queries(query: &str) -> Result<Value, String> {
    let value: Value = serde_json::from_str(query).map_err(|e| {
        if e.is_eof() {
            "unexpected end of JSON input".to_owned()
        } else {
            e.to_string()
        }
    })?;
    canonical(&value, &QUERIES, &mut Vec::new(), None)
}

fn canonical(
    value: &Value,
    shape: &'static Shape,
    path: &mut Vec<&'static str>,
    parent: Option<&'static str>,
) -> Result<Value, String> {
    if let Shape::Ref(inner) = shape {
        return canonical(value, inner, path, parent);
    }
    let mismatch = |what: String| {
        let go_type = match shape {
            Shape::Str => "string".to_owned(),
            Shape::Int => "int64".to_owned(),
            Shape::Bool => "bool".to_owned(),
            Shape::List(_, name) => (*name).to_owned(),
            Shape::Struct(name, _) => format!("cloudwatch.{name}"),
            Shape::Ref(_) => String::new(),
        };
        match parent {
            Some(parent) if !path.is_empty() => format!(
                "json: cannot unmarshal {what} into Go struct field {parent}.{} of type {go_type}",
                path.join(".")
            ),
            _ => format!("json: cannot unmarshal {what} into Go value of type {go_type}"),
        }
    };
    Ok(match (shape, value) {
        (_, Value::Null) => Value::Null,
        (Shape::Str, Value::String(_)) | (Shape::Bool, Value::Bool(_)) => value.clone(),
        (Shape::Int, Value::Number(n)) if n.is_i64() => value.clone(),
        (Shape::Int, Value::Number(n)) => return Err(mismatch(format!("number {n}"))),
        (Shape::List(item, _), Value::Array(items)) => Value::Array(
            items
                .iter()
                .map(|v| canonical(v, item, path, parent))
                .collect::<Result<_, _>>()?,
        ),
        (Shape::Struct(name, fields), Value::Object(object)) => {
            let mut out = Map::new();
            for (key, v) in object {
                // Go prefers the exact name, then any case-insensitive match.
                let field = fields
                    .iter()
                    .find(|(f, _)| f == key)
                    .or_else(|| fields.iter().find(|(f, _)| f.eq_ignore_ascii_case(key)));
                let Some((field, field_shape)) = field else {
                    continue;
                };
                path.push(field);
                let v = canonical(v, field_shape, path, Some(name))?;
                path.pop();
                if !v.is_null() {
                    out.insert((*field).to_owned(), v);
                }
            }
            Value::Object(out)
        }
        (_, other) => return Err(mismatch(crate::metrics::gojson::kind(other).to_owned())),
    })
}

/// `GetMetricDataOutput`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Output {
    pub messages: Vec<MessageData>,
    pub metric_data_results: Vec<DataResult>,
    pub next_token: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct MessageData {
    pub code: Option<String>,
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DataResult {
    pub id: Option<String>,
    pub label: Option<String>,
    pub messages: Vec<MessageData>,
    pub status_code: Option<String>,
    pub timestamps: Vec<f64>,
    pub values: Vec<f64>,
}

/// A value as the SDK's `awsutil.Prettify` prints it.
enum Pretty {
    Struct(Vec<(&'static str, Pretty)>),
    List(Vec<Pretty>),
    Str(String),
    Num(f64),
    Time(f64),
}

impl Output {
    /// The SDK's `String()`. Empty lists are left out, as the SDK leaves
    /// them nil when it reads CloudWatch's answer.
    pub fn pretty(&self) -> String {
        let mut fields = Vec::new();
        if !self.messages.is_empty() {
            fields.push(("Messages", messages(&self.messages)));
        }
        if !self.metric_data_results.is_empty() {
            let results = self.metric_data_results.iter().map(DataResult::pretty);
            fields.push(("MetricDataResults", Pretty::List(results.collect())));
        }
        if let Some(token) = &self.next_token {
            fields.push(("NextToken", Pretty::Str(token.clone())));
        }
        let mut out = String::new();
        Pretty::Struct(fields).write(0, &mut out);
        out
    }
}

impl DataResult {
    fn pretty(&self) -> Pretty {
        let mut fields = Vec::new();
        let mut text = |name, value: &Option<String>| {
            if let Some(v) = value {
                fields.push((name, Pretty::Str(v.clone())));
            }
        };
        text("Id", &self.id);
        text("Label", &self.label);
        if !self.messages.is_empty() {
            fields.push(("Messages", messages(&self.messages)));
        }
        if let Some(code) = &self.status_code {
            fields.push(("StatusCode", Pretty::Str(code.clone())));
        }
        if !self.timestamps.is_empty() {
            let times = self.timestamps.iter().map(|t| Pretty::Time(*t));
            fields.push(("Timestamps", Pretty::List(times.collect())));
        }
        if !self.values.is_empty() {
            let values = self.values.iter().map(|v| Pretty::Num(*v));
            fields.push(("Values", Pretty::List(values.collect())));
        }
        Pretty::Struct(fields)
    }
}

fn messages(items: &[MessageData]) -> Pretty {
    let item = |m: &MessageData| {
        let mut fields = Vec::new();
        if let Some(code) = &m.code {
            fields.push(("Code", Pretty::Str(code.clone())));
        }
        if let Some(value) = &m.value {
            fields.push(("Value", Pretty::Str(value.clone())));
        }
        Pretty::Struct(fields)
    };
    Pretty::List(items.iter().map(item).collect())
}

impl Pretty {
    fn write(&self, indent: usize, out: &mut String) {
        match self {
            Pretty::Struct(fields) => {
                out.push_str("{\n");
                for (i, (name, value)) in fields.iter().enumerate() {
                    out.push_str(&" ".repeat(indent + 2));
                    out.push_str(name);
                    out.push_str(": ");
                    value.write(indent + 2, out);
                    if i + 1 < fields.len() {
                        out.push_str(",\n");
                    }
                }
                out.push('\n');
                out.push_str(&" ".repeat(indent));
                out.push('}');
            }
            Pretty::List(items) => {
                // Longer lists go one item a line.
                let (nl, close, item) = if items.len() > 3 {
                    ("\n", " ".repeat(indent), " ".repeat(indent + 2))
                } else {
                    ("", String::new(), String::new())
                };
                out.push('[');
                out.push_str(nl);
                for (i, value) in items.iter().enumerate() {
                    out.push_str(&item);
                    value.write(indent + 2, out);
                    if i + 1 < items.len() {
                        out.push(',');
                        out.push_str(nl);
                    }
                }
                out.push_str(nl);
                out.push_str(&close);
                out.push(']');
            }
            Pretty::Str(s) => out.push_str(&format!("{s:?}")),
            Pretty::Num(v) => out.push_str(&go_float(*v)),
            Pretty::Time(t) => out.push_str(&go_time(*t)),
        }
    }
}

/// Go's `%v` of a float64: shortest digits, exponent below 1e-4 or from 1e21.
pub fn go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_owned();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or_default();
    if v == 0.0 || (-4..21).contains(&exp) {
        return format!("{v}");
    }
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.unsigned_abs())
}

/// Go's `%s` of a UTC `time.Time` from Unix seconds: `2024-05-01 12:00:00 +0000 UTC`.
pub fn go_time(seconds: f64) -> String {
    let secs = seconds.floor() as i64;
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} +0000 UTC",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The error code and message of an error answer, with the codes the query
/// protocol (Flagger's) names them by.
pub fn error_code(body: &str) -> (String, String) {
    let Ok(Value::Object(error)) = serde_json::from_str::<Value>(body) else {
        return (
            "SerializationError".to_owned(),
            "failed to unmarshal error message".to_owned(),
        );
    };
    let field = |name: &str| {
        error
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    // `com.amazonaws.cloudwatch#InvalidParameterValueException:http://...`
    let kind = field("__type");
    let kind = kind.rsplit('#').next().unwrap_or_default();
    let kind = kind.split(':').next().unwrap_or_default();
    let code = match kind {
        "AccessDeniedException" => "AccessDenied",
        "ExpiredTokenException" => "ExpiredToken",
        "IncompleteSignatureException" => "IncompleteSignature",
        "InternalServiceFault" => "InternalServiceError",
        "InvalidParameterCombinationException" => "InvalidParameterCombination",
        "InvalidParameterValueException" => "InvalidParameterValue",
        "InvalidSignatureException" => "SignatureDoesNotMatch",
        "MissingRequiredParameterException" => "MissingParameter",
        "ThrottlingException" => "Throttling",
        "UnrecognizedClientException" => "InvalidClientTokenId",
        "ValidationException" => "ValidationError",
        other => other,
    };
    (code.to_owned(), field("message"))
}
