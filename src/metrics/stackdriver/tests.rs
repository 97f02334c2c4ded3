use std::time::Duration;

use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};
use serde_json::json;

use super::*;
use crate::metrics::fake::{Answer, FakeVendor, Seen, Setup, deadline};

/// A throwaway RSA key made for these tests (`openssl genpkey`); it grants
/// nothing anywhere.
const TEST_KEY: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDtdLXx3j+4P8yJ\n\
LrXrAfHf0wRlHrzkRGDCsDC5YDw3UnNTjGPU+/j3/u6GaxoSMXabhZkoUJKLxWNd\n\
TUWDCqZ2mK9hQ/C3hwTPcTKSUG/9poU9vHvYkQsjU7iC1xMZ3nJ7Z1Zka9fakCzc\n\
4eQ+jY3ldvJcZmSkfHzC36qD3+wob9CU8YYImEiGXPXUQK0RLtjz2UGyJHGsFsnI\n\
dk+3zxi2OSUPQUkW8JbXVQH9yhgzj+l7reG53FK+srwaGy+1WputLNMThjPyUgsG\n\
Sd4FXgP+Lcjz2xUuryOzYuVoIkdAK2euI3M0MHgM/RcV5Es+OEU9wUOJlxkqAVXb\n\
fA8KDm+RAgMBAAECggEAFLr3NW3zPykmuKVA0YsCbEl2XUOhNwZ3MhgCsPRjXWsP\n\
0W/0uT/kPPZfKZIJHSR/V9WCiP/7w0MQyTD5TBbucHUk/odZaRRbCac2xIpMNKdI\n\
g5rEbyQ+hi+FcLrJGp2OfhKH+s1lc1nZ6NC5xfJCvJE1WHbB+5A4riSrtMakTeVG\n\
D9jemM2xGqc96EWI17esRbbNA4zpj43p2Hv43jueMHZ3pnGCwk0ltn5GR7bGkSvg\n\
pCdnENMxYyeALbjDM0lJ2Vkl0kCF7aRoQMIsPjQV+JOBrKEiCNwxMUzygt42EH19\n\
Hfr4SfmdCN5jx9hZpe8mAFTkaO8l1L8Vi2Of6Gb07wKBgQD7sUNCxlaTjx6J1p08\n\
ZCXLu0dgXdMO2uFZR+YftbCl0wrXO5wPfsyWG5iX5eFBw5+kTiaZMFrMJ6kcTk9H\n\
AiLJn0LAIdHKomDXIxPaLDlpme9+WpoqcOHdJlT/7ZLfYemAv/0tWNY6R3aHtoaq\n\
XYIcwLi2VjxT1zJI9I4VIPorIwKBgQDxhRLZQPI5ZCJR+MlPdwd8b5+bM1hiJcZv\n\
btShHFbZ+Q2uUfL66sODSeL+VEQaEcc/sgMULVKgAtoi7eqEXE3lOIhedAyuqEXz\n\
myem/RRl7CzUiWxJ2BQaKm7uXlyf97EVu732tUH9aKnyCzg+2rmbNi/TWATw3Ren\n\
9j8maByvuwKBgH2FjfHDUHIOskAz0/7GQ0Mzhwk8QYHrDu+jt9SgnBRXB9UHWXEw\n\
338NDDDU6F4P3ZHnl8BWKTIfpWsEcu0K16aN0pBXTXUtPfaM+92WqJtNte7h6Hi6\n\
Cyprb4CjTtgw0G7xUKZI46307dwI32gfckA8rOHiZ/u4Gs/fhuxqodjZAoGBAI8p\n\
IT4UKEBqoYlTXgizdoWFKOd3LPmoiJI+8Ny7DqRP45Mj0lJ3XALzhhDZZDDLvv57\n\
hyWro+FjL2gq/KsOh8HKm9LZGTdiWWyH2J48P54Wu5AUEVNIOMo1wuGan27XBGns\n\
ijK1yHLsWmg1zFY9km11Vi4Ba5RWiZIu/cnHRtHHAoGAa8QuXevYExnx6MDfP6ME\n\
NaH64NDEpvMuX2CEN5wjYZ31AKM4g75YkhzOYnNnZboyhH0SaGlKwcybZP79k1yE\n\
bq/3MQ7ErgJxt+nyhBhGoxH868uhgdB0S48JiNjiEibFJU/yX4brK47jZ16kc2EB\n\
Dih51EApR6Qfq8StHsPXy3I=\n\
-----END PRIVATE KEY-----\n\
";

const QUERY: &str = "fetch k8s_container
| metric 'istio.io/service/server/response_latencies'
| filter (metric.destination_service_name == 'podinfo-canary')
| align delta(1m) | every 1m
| group_by [], [p99: percentile(value.response_latencies, 99)]";

/// A `timeSeries:query` answer as the REST API writes it.
const ANSWER: &str = r#"{
  "timeSeriesDescriptor": {"pointDescriptors": [{"key": "p99", "valueType": "DOUBLE", "metricKind": "GAUGE", "unit": "ms"}]},
  "timeSeriesData": [{
    "pointData": [
      {"values": [{"doubleValue": 412.5}], "timeInterval": {"startTime": "2025-07-21T10:59:00Z", "endTime": "2025-07-21T11:00:00Z"}},
      {"values": [{"doubleValue": 380}], "timeInterval": {"startTime": "2025-07-21T10:58:00Z", "endTime": "2025-07-21T10:59:00Z"}}
    ]
  }]
}"#;

const TOKEN: &str =
    r#"{"access_token":"ya29.test-access-token","expires_in":3599,"token_type":"Bearer"}"#;

struct Vendors {
    api: FakeVendor,
    oauth: FakeVendor,
    setup: Setup,
}

impl Vendors {
    async fn start(answer: Answer) -> Vendors {
        let api = FakeVendor::start(answer).await;
        let oauth = FakeVendor::start(Answer::ok(TOKEN)).await;
        let key = json!({
            "type": "service_account",
            "project_id": "my-project",
            "private_key_id": "0123456789abcdef",
            "private_key": TEST_KEY,
            "client_email": "flagger@my-project.iam.gserviceaccount.com",
            "client_id": "1234567890",
            "token_uri": format!("{}/token", oauth.url()),
        })
        .to_string();
        let setup = Setup::new(
            json!({"type": "stackdriver", "address": api.url(), "secretRef": {"name": "gcp"}}),
            "1m",
            Some(&[("project", "my-project"), ("serviceAccountKey", &key)]),
        );
        Vendors { api, oauth, setup }
    }

    fn provider(&self) -> Stackdriver {
        Stackdriver::new(&self.setup.config()).unwrap()
    }
}

fn failed(result: Result<impl std::fmt::Debug, QueryError>) -> String {
    match result {
        Err(QueryError::Failed(text)) => text,
        other => panic!("expected a failure, got {other:?}"),
    }
}

/// The JWT grant the token endpoint received: its claims, after checking
/// the RS256 signature with the test key's public half.
fn verified_claims(seen: &Seen) -> Value {
    let form: Vec<(String, String)> = form_urlencoded::parse(seen.body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(form[0], ("grant_type".into(), JWT_GRANT.into()));
    let jwt = &form[1].1;
    let (signed, signature) = jwt.rsplit_once('.').unwrap();
    let (header, claims) = signed.split_once('.').unwrap();
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    assert_eq!(
        decode(header),
        json!({"alg": "RS256", "typ": "JWT", "kid": "0123456789abcdef"})
    );
    let pem = pem::parse(TEST_KEY).unwrap();
    let pair = RsaKeyPair::from_pkcs8(pem.contents()).unwrap();
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public().as_ref())
        .verify(
            signed.as_bytes(),
            &URL_SAFE_NO_PAD.decode(signature).unwrap(),
        )
        .unwrap();
    decode(claims)
}

#[tokio::test]
async fn queries_with_a_token_granted_for_the_service_account() {
    let vendors = Vendors::start(Answer::ok(ANSWER)).await;
    let stackdriver = vendors.provider();
    assert_eq!(stackdriver.run_query(QUERY, deadline(10)).await, Ok(412.5));

    let grant = vendors.oauth.last();
    assert_eq!(
        (grant.method.as_str(), grant.path.as_str()),
        ("POST", "/token")
    );
    assert_eq!(
        grant.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let claims = verified_claims(&grant);
    assert_eq!(claims["iss"], "flagger@my-project.iam.gserviceaccount.com");
    assert_eq!(claims["aud"], format!("{}/token", vendors.oauth.url()));
    assert_eq!(claims["scope"], SCOPES);
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );

    let seen = vendors.api.last();
    assert_eq!(seen.method, "POST");
    assert_eq!(seen.path, "/v3/projects/my-project/timeSeries:query");
    assert!(seen.query.is_empty());
    assert_eq!(
        seen.header("authorization"),
        Some("Bearer ya29.test-access-token")
    );
    let body: Value = serde_json::from_str(&seen.body).unwrap();
    assert_eq!(body, json!({"query": QUERY}));

    // The token is kept for the next query.
    assert_eq!(stackdriver.run_query(QUERY, deadline(10)).await, Ok(412.5));
    assert_eq!(vendors.oauth.requests().len(), 1);
    assert_eq!(vendors.api.requests().len(), 2);
}

#[tokio::test]
async fn answers_map_to_flaggers_values_and_texts() {
    let vendors = Vendors::start(Answer::ok(ANSWER)).await;
    let stackdriver = vendors.provider();
    let run = || stackdriver.run_query(QUERY, deadline(10));

    vendors
        .api
        .then(Answer::ok(r#"{"timeSeriesDescriptor": {}}"#));
    assert_eq!(
        run().await,
        Err(QueryError::NoValues(
            "invalid response: <nil>: no values found".into()
        ))
    );
    vendors.api.then(Answer::ok(
        r#"{"timeSeriesData": [{"labelValues": [{"stringValue": "podinfo"}], "pointData": []}]}"#,
    ));
    assert_eq!(
        run().await,
        Err(QueryError::NoValues(
            "invalid response: label_values:{string_value:\"podinfo\"}: no values found".into()
        ))
    );
    // Flagger reads the double only (an int64 point is 0); Serin reads the count.
    vendors.api.then(Answer::ok(
        r#"{"timeSeriesData": [{"pointData": [{"values": [{"int64Value": "42"}]}]}]}"#,
    ));
    assert_eq!(run().await, Ok(42.0));
    vendors.api.then(Answer::ok(
        r#"{"timeSeriesData": [{"pointData": [{"values": [{"boolValue": true}]}]}]}"#,
    ));
    let Err(QueryError::Failed(text)) = run().await else {
        panic!("a bool is no number")
    };
    assert!(
        text.starts_with("invalid response: the value is not a number: "),
        "{text}"
    );

    vendors.api.then(Answer::status(
        400,
        r#"{"error": {"code": 400, "message": "Line 1: Table 'k8s_containr' not found.", "status": "INVALID_ARGUMENT"}}"#,
    ));
    assert_eq!(
        failed(run().await),
        "error requesting stackdriver: rpc error: code = InvalidArgument desc = Line 1: Table 'k8s_containr' not found."
    );
    vendors
        .api
        .then(Answer::status(503, "upstream connect error"));
    assert_eq!(
        failed(run().await),
        "error requesting stackdriver: rpc error: code = Unavailable desc = upstream connect error"
    );
    vendors.api.then(Answer::ok("{\"timeSeriesData\": ["));
    assert!(failed(run().await).starts_with(
        "error requesting stackdriver: rpc error: code = Internal desc = grpc: failed to unmarshal the received message: "
    ));

    // A refused grant: the key's secret never shows.
    let refused = Vendors::start(Answer::ok(ANSWER)).await;
    refused.oauth.then(Answer::status(
        400,
        r#"{"error":"invalid_grant","error_description":"Invalid JWT Signature."}"#,
    ));
    let text = failed(refused.provider().run_query(QUERY, deadline(10)).await);
    assert_eq!(
        text,
        "error requesting stackdriver: rpc error: code = Unauthenticated desc = transport: per-RPC creds failed due to error: oauth2: cannot fetch token: 400 Bad Request\nResponse: {\"error\":\"invalid_grant\",\"error_description\":\"Invalid JWT Signature.\"}"
    );
    assert!(refused.api.requests().is_empty());
}

#[tokio::test]
async fn rate_limits_and_deadlines_defer_the_step() {
    let vendors = Vendors::start(Answer::ok(ANSWER)).await;
    let stackdriver = vendors.provider();
    vendors.api.then(
        Answer::status(
            429,
            r#"{"error": {"code": 429, "status": "RESOURCE_EXHAUSTED"}}"#,
        )
        .header("retry-after", "120"),
    );
    let err = stackdriver
        .run_query(QUERY, deadline(10))
        .await
        .unwrap_err();
    assert!(matches!(err, QueryError::Throttled(_)), "{err:?}");
    vendors
        .api
        .then(Answer::ok(ANSWER).after(Duration::from_secs(7)));
    assert_eq!(
        stackdriver.run_query(QUERY, deadline(1)).await,
        Err(QueryError::Deadline)
    );
}

#[tokio::test]
async fn factory_errors_are_flaggers() {
    let err = |spec: Value, secret: Option<&[(&str, &str)]>| {
        let setup = Setup::new(spec, "1m", secret);
        Stackdriver::new(&setup.config()).err().unwrap_or_default()
    };
    let with_ref = json!({"type": "stackdriver", "secretRef": {"name": "gcp"}});
    assert_eq!(
        err(with_ref.clone(), Some(&[("serviceAccountKey", "{}")])),
        "stackdriver credentials does not contain a project id"
    );
    let no_key = err(with_ref.clone(), Some(&[("project", "p")]));
    assert!(
        no_key.starts_with("google: could not find default credentials"),
        "{no_key}"
    );
    assert_eq!(
        err(
            with_ref.clone(),
            Some(&[("project", "p"), ("serviceAccountKey", "not json")])
        ),
        "credentials: unable to parse the serviceAccountKey JSON"
    );
    let bad_pem = json!({"client_email": "a@b", "private_key": "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"}).to_string();
    let text = err(
        with_ref,
        Some(&[("project", "p"), ("serviceAccountKey", &bad_pem)]),
    );
    assert!(
        text.starts_with("private key should be a PEM or plain PKCS1 or PKCS8; parse error: "),
        "{text}"
    );
    let vendors = Vendors::start(Answer::ok(ANSWER)).await;
    let default = Setup::new(
        json!({"type": "stackdriver", "secretRef": {"name": "gcp"}}),
        "1m",
        vendors
            .setup
            .secret
            .as_ref()
            .map(|s| {
                s.iter()
                    .map(|(k, v)| (k.as_str(), std::str::from_utf8(v).unwrap()))
                    .collect::<Vec<_>>()
            })
            .as_deref(),
    );
    let provider = Stackdriver::new(&default.config()).unwrap();
    assert_eq!(
        provider.url.as_str(),
        "https://monitoring.googleapis.com/v3/projects/my-project/timeSeries:query"
    );
}

#[tokio::test]
async fn is_online_accepts_success_and_invalid_argument_only() {
    let vendors = Vendors::start(Answer::status(
        400,
        r#"{"error": {"code": 400, "message": "Query must not be empty.", "status": "INVALID_ARGUMENT"}}"#,
    ))
    .await;
    let stackdriver = vendors.provider();
    assert_eq!(stackdriver.is_online(deadline(10)).await, Ok(()));
    assert_eq!(vendors.api.last().body, r#"{"query":""}"#);
    vendors.api.then(Answer::ok("{}"));
    assert_eq!(stackdriver.is_online(deadline(10)).await, Ok(()));
    vendors.api.then(Answer::status(
        403,
        r#"{"error": {"code": 403, "message": "Permission monitoring.timeSeries.list denied", "status": "PERMISSION_DENIED"}}"#,
    ));
    assert_eq!(
        failed(stackdriver.is_online(deadline(10)).await),
        "unexpected status code: PermissionDenied"
    );
}
