//! The Prometheus provider: one instant query, its value, and Flagger's
//! error texts (users see them in events, prefixed by the caller).

use std::collections::BTreeMap;

use futures::FutureExt;
use reqwest::Url;
use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

use super::http::{self, HttpClients};
use super::provider::{self, MULTIPLE_VALUES, Provider, QueryError, QueryFuture};

const ONLINE_QUERY: &str = "vector(1)";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Auth {
    None,
    Bearer(String),
    Basic { username: String, password: String },
}

/// A Prometheus server as a MetricTemplate or `-metrics-server` describes it.
#[derive(Clone)]
pub struct Prometheus {
    client: reqwest::Client,
    url: Url,
    auth: Auth,
    headers: HeaderMap,
}

/// What configures a Prometheus provider.
#[derive(Debug, Clone, Default)]
pub struct PrometheusConfig<'a> {
    pub address: &'a str,
    pub insecure_skip_verify: bool,
    /// `Some` when the template has a `secretRef`: the Secret's data.
    pub credentials: Option<&'a BTreeMap<String, Vec<u8>>>,
    pub headers: Option<&'a BTreeMap<String, Vec<String>>>,
}

impl Prometheus {
    /// A MetricTemplate's Prometheus.
    pub fn from_config(config: &provider::Config<'_>) -> Result<Prometheus, String> {
        let spec = config.spec;
        let own = PrometheusConfig {
            address: config.address(),
            insecure_skip_verify: spec.insecure_skip_verify(),
            credentials: config.credentials.0,
            headers: spec.headers.as_ref(),
        };
        Prometheus::new(&own, config.http)
    }

    /// Errors are Flagger's provider texts (`prometheus address x is not a valid URL`).
    pub fn new(config: &PrometheusConfig<'_>, clients: &HttpClients) -> Result<Prometheus, String> {
        let invalid = || format!("prometheus address {} is not a valid URL", config.address);
        if config.address.is_empty() {
            return Err(invalid());
        }
        let mut url = Url::parse(config.address).map_err(|_| invalid())?;
        // Flagger joins `api/v1/query` to the address path and drops its query.
        let path = format!("{}/api/v1/query", url.path().trim_end_matches('/'));
        url.set_path(&path);
        url.set_query(None);
        url.set_fragment(None);

        let auth = match config.credentials {
            None => Auth::None,
            Some(secret) => {
                let get = |key: &str| {
                    secret
                        .get(key)
                        .map(|v| String::from_utf8_lossy(v).into_owned())
                };
                match get("token") {
                    Some(token) => Auth::Bearer(token),
                    None => Auth::Basic {
                        username: get("username").ok_or_else(|| {
                            "prometheus credentials does not contain a username".to_owned()
                        })?,
                        password: get("password").ok_or_else(|| {
                            "prometheus credentials does not contain a password".to_owned()
                        })?,
                    },
                }
            }
        };

        let mut headers = HeaderMap::new();
        for (name, values) in config.headers.into_iter().flatten() {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("prometheus header name {name:?} is invalid"))?;
            for value in values {
                let value = HeaderValue::from_str(value)
                    .map_err(|_| format!("prometheus header {name} has an invalid value"))?;
                headers.append(name.clone(), value);
            }
        }

        Ok(Prometheus {
            client: clients.client(config.insecure_skip_verify)?,
            url,
            auth,
            headers,
        })
    }

    /// Runs an instant query and returns the last result's value.
    pub async fn run_query(&self, query: &str, deadline: Instant) -> Result<f64, QueryError> {
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("query", &collapse_whitespace(query));
        let mut request = self.client.get(url).headers(self.headers.clone());
        request = match &self.auth {
            Auth::Bearer(token) if !token.is_empty() => {
                request.header(AUTHORIZATION, format!("Bearer {token}"))
            }
            Auth::Basic { username, password } if !username.is_empty() && !password.is_empty() => {
                request.basic_auth(username, Some(password))
            }
            _ => request,
        };
        let reply = http::send(request, deadline).await?;
        if reply.status.as_u16() >= 400 {
            return Err(QueryError::Failed(format!(
                "error response: {}",
                reply.body
            )));
        }
        value_of(&reply.body)
    }

    /// Flagger's `IsOnline`: `vector(1)` must answer 1.
    pub async fn is_online(&self, deadline: Instant) -> Result<(), QueryError> {
        match self.run_query(ONLINE_QUERY, deadline).await {
            Ok(value) if value.eq(&1.0) => Ok(()),
            Ok(_) => Err(QueryError::Failed(format!(
                "value is not 1 for query: {ONLINE_QUERY}"
            ))),
            Err(e @ (QueryError::Deadline | QueryError::Throttled(_))) => Err(e),
            Err(e) => Err(QueryError::Failed(format!("running query failed: {e}"))),
        }
    }
}

impl Provider for Prometheus {
    fn run_query<'a>(&'a self, query: &'a str, deadline: Instant) -> QueryFuture<'a, f64> {
        Prometheus::run_query(self, query, deadline).boxed()
    }

    fn is_online(&self, deadline: Instant) -> QueryFuture<'_, ()> {
        Prometheus::is_online(self, deadline).boxed()
    }
}

/// The value of a Prometheus query response: the last vector sample's value.
pub fn value_of(body: &str) -> Result<f64, QueryError> {
    let unmarshal =
        |e: String| QueryError::Failed(format!("error unmarshaling result: {e}, '{body}'"));
    let json: serde_json::Value =
        serde_json::from_str(body).map_err(|e| unmarshal(e.to_string()))?;
    let results = match json.pointer("/data/result") {
        None | Some(serde_json::Value::Null) => &[][..],
        Some(serde_json::Value::Array(items)) if items.iter().all(|i| i.is_object()) => {
            items.as_slice()
        }
        Some(_) => {
            return Err(unmarshal(
                "result is not a list of samples (scalar or string answer)".to_owned(),
            ));
        }
    };
    let mut value = None;
    for sample in results {
        if sample
            .get("values")
            .and_then(|v| v.as_array())
            .is_some_and(|v| !v.is_empty())
        {
            return Err(QueryError::Failed(MULTIPLE_VALUES.to_owned()));
        }
        if let Some(text) = sample.pointer("/value/1").and_then(|v| v.as_str()) {
            let parsed = text.parse::<f64>().map_err(|_| {
                QueryError::Failed(format!(
                    "strconv.ParseFloat: parsing {text:?}: invalid syntax"
                ))
            })?;
            value = Some(parsed);
        }
    }
    match value {
        Some(v) if !v.is_nan() => Ok(v),
        _ => Err(QueryError::no_values()),
    }
}

/// Flagger sends queries with every whitespace run replaced by one space.
pub fn collapse_whitespace(query: &str) -> String {
    let mut out = String::with_capacity(query.len());
    let mut in_space = false;
    for c in query.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_map_to_values_and_errors() {
        let vector = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"100"]},{"metric":{},"value":[2,"99.5"]}]}}"#;
        assert_eq!(value_of(vector), Ok(99.5));
        let empty = r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#;
        assert_eq!(value_of(empty), Err(QueryError::no_values()));
        let nan = r#"{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"NaN"]}]}}"#;
        assert_eq!(value_of(nan), Err(QueryError::no_values()));
        let matrix = r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"1"],[2,"2"]]}]}}"#;
        assert_eq!(
            value_of(matrix),
            Err(QueryError::Failed("query returned multiple values".into()))
        );
        let bad = r#"{"data":{"result":[{"value":[1,"abc"]}]}}"#;
        assert_eq!(
            value_of(bad),
            Err(QueryError::Failed(
                "strconv.ParseFloat: parsing \"abc\": invalid syntax".into()
            ))
        );
        let scalar = r#"{"status":"success","data":{"resultType":"scalar","result":[1,"2"]}}"#;
        assert!(matches!(value_of(scalar), Err(QueryError::Failed(_))));
        let Err(QueryError::Failed(text)) = value_of("not json") else {
            panic!("not json must fail");
        };
        assert!(text.starts_with("error unmarshaling result: "));
        assert!(text.ends_with(", 'not json'"));
    }

    #[test]
    fn whitespace_is_collapsed_not_trimmed() {
        assert_eq!(
            collapse_whitespace("\n\tsum(\n\t\trate(x)  )\n"),
            " sum( rate(x) ) "
        );
    }

    #[test]
    fn provider_configuration_errors_are_flaggers() {
        let clients = HttpClients::new();
        let config = |address| PrometheusConfig {
            address,
            ..PrometheusConfig::default()
        };
        let err = |c: PrometheusConfig<'_>| Prometheus::new(&c, &clients).err().unwrap_or_default();
        assert_eq!(err(config("")), "prometheus address  is not a valid URL");
        let empty = BTreeMap::new();
        let with_secret = PrometheusConfig {
            credentials: Some(&empty),
            ..config("http://prom:9090")
        };
        assert_eq!(
            err(with_secret),
            "prometheus credentials does not contain a username"
        );
        let user = BTreeMap::from([("username".to_owned(), b"u".to_vec())]);
        let only_user = PrometheusConfig {
            credentials: Some(&user),
            ..config("http://prom:9090")
        };
        assert_eq!(
            err(only_user),
            "prometheus credentials does not contain a password"
        );
        let prom = Prometheus::new(&config("http://prom:9090/sub/?x=1"), &clients).unwrap();
        assert_eq!(prom.url.as_str(), "http://prom:9090/sub/api/v1/query");
    }
}
