//! `serin-loadtester hey`: a stand-in for rakyll/hey, the load generator
//! Flagger's Canary manifests call (`hey -z 1m -q 10 -c 2 <url>`). Same flags
//! and a summary in hey's layout.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use crate::api::parse_duration;

/// Why `hey` could not run.
#[derive(Debug, thiserror::Error)]
pub enum HeyError {
    #[error("{0}")]
    Usage(String),
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// hey's flags, with hey's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct HeyOptions {
    pub url: String,
    /// `-z`: run for this long, ignoring `-n`.
    pub duration: Option<Duration>,
    /// `-n`: total requests (200).
    pub requests: usize,
    /// `-c`: workers (50).
    pub concurrency: usize,
    /// `-q`: requests per second per worker; 0 is unlimited.
    pub qps: f64,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub host: Option<String>,
    /// `-t`: per-request timeout in seconds (20); 0 is none.
    pub timeout: Duration,
    pub body: Option<String>,
    pub content_type: Option<String>,
    pub accept: Option<String>,
    pub basic_auth: Option<(String, String)>,
    pub disable_keepalive: bool,
    pub disable_redirects: bool,
}

const USAGE: &str = "Usage: hey [options...] <url>
  -n  Number of requests to run (200). -c  Number of workers (50).
  -q  Rate limit per worker, in queries per second (0 = none).
  -z  Duration of the test, e.g. 10s, 3m; -n is ignored when set.
  -m  HTTP method (GET). -H  Header \"Name: value\", repeatable.
  -t  Request timeout in seconds (20). -A  Accept header. -d  Request body.
  -T  Content-type. -a  Basic auth user:pass. -host  Host header.
  -disable-keepalive  -disable-redirects  -disable-compression  -h2";

const BOOL_FLAGS: &[&str] = &[
    "disable-keepalive",
    "disable-redirects",
    "disable-compression",
    "h2",
];

/// Parses hey's arguments (Go `flag` rules: flags first, then the URL).
pub fn parse_args(args: &[String]) -> Result<HeyOptions, HeyError> {
    let usage = |why: String| HeyError::Usage(format!("{why}\n{USAGE}"));
    let mut opts = HeyOptions {
        url: String::new(),
        duration: None,
        requests: 200,
        concurrency: 50,
        qps: 0.0,
        method: "GET".into(),
        headers: Vec::new(),
        host: None,
        timeout: Duration::from_secs(20),
        body: None,
        content_type: None,
        accept: None,
        basic_auth: None,
        disable_keepalive: false,
        disable_redirects: false,
    };
    let mut rest = args.iter();
    let mut url = None;
    while let Some(arg) = rest.next() {
        if arg == "--" {
            url = rest.next();
            break;
        }
        let Some(flag) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            url = Some(arg);
            break;
        };
        let (name, inline) = match flag.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (flag, None),
        };
        if BOOL_FLAGS.contains(&name) {
            let on = inline.as_deref().is_none_or(|v| v == "true" || v == "1");
            match name {
                "disable-keepalive" => opts.disable_keepalive = on,
                "disable-redirects" => opts.disable_redirects = on,
                _ => {}
            }
            continue;
        }
        let value = match inline {
            Some(value) => value,
            None => rest
                .next()
                .cloned()
                .ok_or_else(|| usage(format!("flag needs an argument: -{name}")))?,
        };
        let number = |v: &str| {
            v.parse::<usize>()
                .map_err(|_| usage(format!("invalid value {v:?} for flag -{name}")))
        };
        match name {
            "z" => {
                let d = parse_duration(&value).map_err(|e| usage(e.to_string()))?;
                opts.duration = (!d.is_zero()).then_some(d);
            }
            "n" => opts.requests = number(&value)?,
            "c" => opts.concurrency = number(&value)?,
            "q" => {
                opts.qps = value
                    .parse::<f64>()
                    .ok()
                    .filter(|q| *q >= 0.0 && q.is_finite())
                    .ok_or_else(|| usage(format!("invalid value {value:?} for flag -q")))?;
            }
            "t" => opts.timeout = Duration::from_secs(number(&value)? as u64),
            "m" => opts.method = value.to_uppercase(),
            "H" => {
                let (key, val) = value
                    .split_once(':')
                    .filter(|(k, v)| !k.trim().is_empty() && !v.trim().is_empty())
                    .ok_or_else(|| {
                        usage(format!("invalid header {value:?}, want \"Name: value\""))
                    })?;
                opts.headers
                    .push((key.trim().to_string(), val.trim().to_string()));
            }
            "host" => opts.host = Some(value),
            "d" => opts.body = Some(value),
            "T" => opts.content_type = Some(value),
            "A" => opts.accept = Some(value),
            "a" => {
                let (user, pass) = value
                    .split_once(':')
                    .ok_or_else(|| usage("auth input is not user:pass".into()))?;
                opts.basic_auth = Some((user.to_string(), pass.to_string()));
            }
            // Output format, CPUs and proxy: accepted for compatibility, unused.
            "o" | "cpus" | "x" | "D" => {}
            other => return Err(usage(format!("flag provided but not defined: -{other}"))),
        }
    }
    opts.url = url.cloned().ok_or_else(|| usage("missing URL".into()))?;
    if opts.concurrency == 0 {
        return Err(usage("-c cannot be smaller than 1.".into()));
    }
    if opts.duration.is_none() && opts.requests < opts.concurrency {
        return Err(usage("-n cannot be less than -c.".into()));
    }
    Ok(opts)
}

/// What a run observed.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Report {
    pub total: Duration,
    /// Latencies of answered requests, sorted.
    pub latencies: Vec<Duration>,
    pub status_codes: BTreeMap<u16, usize>,
    pub errors: BTreeMap<String, usize>,
}

impl Report {
    pub fn requests(&self) -> usize {
        self.latencies.len() + self.errors.values().sum::<usize>()
    }

    fn merge(&mut self, other: Report) {
        self.latencies.extend(other.latencies);
        for (code, n) in other.status_codes {
            *self.status_codes.entry(code).or_default() += n;
        }
        for (error, n) in other.errors {
            *self.errors.entry(error).or_default() += n;
        }
    }

    /// hey's summary layout.
    pub fn render(&self) -> String {
        let secs = |d: Duration| d.as_secs_f64();
        let mut out = String::from("\nSummary:\n");
        let total = secs(self.total);
        let _ = writeln!(out, "  Total:\t{total:.4} secs");
        if let (Some(first), Some(last)) = (self.latencies.first(), self.latencies.last()) {
            let sum: f64 = self.latencies.iter().map(|d| secs(*d)).sum();
            let average = sum / self.latencies.len() as f64;
            let _ = writeln!(out, "  Slowest:\t{:.4} secs", secs(*last));
            let _ = writeln!(out, "  Fastest:\t{:.4} secs", secs(*first));
            let _ = writeln!(out, "  Average:\t{average:.4} secs");
        }
        let rate = if total > 0.0 {
            self.requests() as f64 / total
        } else {
            0.0
        };
        let _ = writeln!(out, "  Requests/sec:\t{rate:.4}\n");
        if !self.latencies.is_empty() {
            out.push_str("Latency distribution:\n");
            for pct in [10, 25, 50, 75, 90, 95, 99] {
                let index = (self.latencies.len() * pct / 100).min(self.latencies.len() - 1);
                let _ = writeln!(out, "  {pct}% in {:.4} secs", secs(self.latencies[index]));
            }
            out.push('\n');
        }
        out.push_str("Status code distribution:\n");
        for (code, n) in &self.status_codes {
            let _ = writeln!(out, "  [{code}]\t{n} responses");
        }
        if !self.errors.is_empty() {
            out.push_str("\nError distribution:\n");
            for (error, n) in &self.errors {
                let _ = writeln!(out, "  [{n}]\t{error}");
            }
        }
        out
    }
}

// hey keeps at most a million results; so does this, per run.
const MAX_SAMPLES: usize = 1_000_000;

/// Runs the load test.
pub async fn run(opts: &HeyOptions) -> Result<Report, HeyError> {
    // reqwest is built without a default TLS provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut builder =
        reqwest::Client::builder().pool_max_idle_per_host(if opts.disable_keepalive {
            0
        } else {
            opts.concurrency
        });
    if !opts.timeout.is_zero() {
        builder = builder.timeout(opts.timeout);
    }
    if opts.disable_redirects {
        builder = builder.redirect(reqwest::redirect::Policy::none());
    }
    let client = builder.build()?;
    let method = reqwest::Method::from_bytes(opts.method.as_bytes())
        .map_err(|_| HeyError::Usage(format!("invalid method {}", opts.method)))?;
    let started = Instant::now();
    let deadline = opts.duration.map(|d| tokio::time::Instant::now() + d);
    let per_worker = opts.requests / opts.concurrency;
    let samples_per_worker = MAX_SAMPLES / opts.concurrency;
    let workers = (0..opts.concurrency).map(|_| {
        let (client, method) = (client.clone(), method.clone());
        async move {
            let mut report = Report::default();
            let mut ticker = (opts.qps > 0.0).then(|| {
                let mut t = tokio::time::interval(Duration::from_secs_f64(1.0 / opts.qps));
                t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                t
            });
            let mut sent = 0;
            while deadline.is_some() || sent < per_worker {
                if let Some(ticker) = ticker.as_mut() {
                    ticker.tick().await;
                }
                if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                    break;
                }
                let request = send(&client, &method, opts);
                let at = Instant::now();
                let outcome = match deadline {
                    Some(d) => match tokio::time::timeout_at(d, request).await {
                        Ok(outcome) => outcome,
                        Err(_) => break,
                    },
                    None => request.await,
                };
                sent += 1;
                match outcome {
                    Ok(code) => {
                        *report.status_codes.entry(code).or_default() += 1;
                        if report.latencies.len() < samples_per_worker {
                            report.latencies.push(at.elapsed());
                        }
                    }
                    Err(e) => *report.errors.entry(e).or_default() += 1,
                }
            }
            report
        }
    });
    let mut report = Report::default();
    for part in futures::future::join_all(workers).await {
        report.merge(part);
    }
    report.total = started.elapsed();
    report.latencies.sort();
    Ok(report)
}

/// One request; the status code, or the error as text.
async fn send(
    client: &reqwest::Client,
    method: &reqwest::Method,
    opts: &HeyOptions,
) -> Result<u16, String> {
    let mut request = client.request(method.clone(), &opts.url);
    for (name, value) in &opts.headers {
        request = request.header(name, value);
    }
    if let Some(host) = &opts.host {
        request = request.header(reqwest::header::HOST, host);
    }
    if let Some(accept) = &opts.accept {
        request = request.header(reqwest::header::ACCEPT, accept);
    }
    if let Some(content_type) = &opts.content_type {
        request = request.header(reqwest::header::CONTENT_TYPE, content_type);
    }
    if let Some((user, pass)) = &opts.basic_auth {
        request = request.basic_auth(user, Some(pass));
    }
    if let Some(body) = &opts.body {
        request = request.body(body.clone());
    }
    let response = request.send().await.map_err(|e| {
        // reqwest's own text names no cause; the innermost error does.
        let mut cause: &dyn std::error::Error = &e;
        while let Some(source) = cause.source() {
            cause = source;
        }
        format!("{method} {}: {cause}", opts.url)
    })?;
    let code = response.status().as_u16();
    // Read the body so the connection can be reused.
    let _ = response.bytes().await;
    Ok(code)
}
