//! JSON logs shaped like Flagger's zap output (`level`, `ts`, `caller`, `msg`,
//! plus fields such as `canary=<name>.<namespace>`), so that
//! `kubectl logs deploy/serin | jq .msg` reads like Flagger's walkthrough.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// Formats one event as one JSON object per line.
pub struct ZapJson;

struct Fields(Map<String, Value>);

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(key(field), Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(key(field), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(key(field), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(key(field), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(key(field), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(key(field), Value::String(format!("{value:?}")));
    }
}

/// tracing's `message` is zap's `msg`.
fn key(field: &Field) -> String {
    match field.name() {
        "message" => "msg".to_string(),
        other => other.to_string(),
    }
}

impl<S, N> FormatEvent<S, N> for ZapJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let mut line = Map::new();
        line.insert(
            "level".into(),
            Value::String(meta.level().as_str().to_ascii_lowercase()),
        );
        line.insert("ts".into(), Value::String(timestamp()));
        if let (Some(file), Some(no)) = (meta.file(), meta.line()) {
            line.insert("caller".into(), Value::String(format!("{file}:{no}")));
        }
        // Span fields (e.g. the canary actor's `canary`) first; the event's own win.
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                if let Some(fields) = span.extensions().get::<SpanFields>() {
                    line.extend(fields.0.clone());
                }
            }
        }
        let mut fields = Fields(Map::new());
        event.record(&mut fields);
        line.extend(fields.0);
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

/// Span fields kept for [`ZapJson`], recorded by [`SpanFieldsLayer`].
#[derive(Clone, Default)]
struct SpanFields(Map<String, Value>);

/// Keeps each span's fields so events inside it carry them.
pub struct SpanFieldsLayer;

impl<S> tracing_subscriber::Layer<S> for SpanFieldsLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = Fields(Map::new());
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields.0));
        }
    }
}

fn timestamp() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:03}", now.as_secs(), now.subsec_millis())
}

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("invalid -log-level {0:?}: {1}")]
    Level(String, String),
    #[error("a global logger is already installed")]
    AlreadySet,
}

/// Builds the filter from `-log-level` (Flagger's names: debug, info, warn,
/// error, fatal, panic); `RUST_LOG` wins when set.
pub fn filter(level: &str) -> Result<EnvFilter, LogError> {
    if let Ok(filter) = EnvFilter::try_from_default_env() {
        return Ok(filter);
    }
    let level_name = match level {
        "fatal" | "panic" => "error",
        other => other,
    };
    // Serin's own lines at the requested level; libraries only warn and up,
    // or kube and hyper would drown the canary lines at `debug`.
    let libraries = if level_name == "error" {
        "error"
    } else {
        "warn"
    };
    let directive = format!("{libraries},serin={level_name},serin_actors={level_name}");
    EnvFilter::try_new(directive).map_err(|e| LogError::Level(level.to_string(), e.to_string()))
}

/// Installs the global JSON logger writing to `writer`.
pub fn init<W>(level: &str, writer: W) -> Result<(), LogError>
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let fmt = tracing_subscriber::fmt::layer()
        .event_format(ZapJson)
        .with_writer(writer);
    tracing_subscriber::registry()
        .with(filter(level)?)
        .with(SpanFieldsLayer)
        .with(fmt)
        .try_init()
        .map_err(|_| LogError::AlreadySet)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn lines_carry_msg_level_and_the_canary_of_the_span() {
        let buffer = Buffer::default();
        let out = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(SpanFieldsLayer).with(
            tracing_subscriber::fmt::layer()
                .event_format(ZapJson)
                .with_writer(move || out.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("canary", canary = "podinfo.test");
            let _guard = span.enter();
            tracing::info!("Advance podinfo.test canary weight 5");
            tracing::warn!(
                weight = 5,
                "Halt podinfo.test advancement success rate 53.42% < 99%"
            );
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["msg"], "Advance podinfo.test canary weight 5");
        assert_eq!(lines[0]["level"], "info");
        assert_eq!(lines[0]["canary"], "podinfo.test");
        assert_eq!(lines[1]["level"], "warn");
        assert_eq!(lines[1]["weight"], 5);
        assert!(lines[1]["caller"].as_str().unwrap().contains("logging.rs"));
    }

    #[test]
    fn flagger_level_names_are_accepted() {
        for level in ["debug", "info", "warn", "error", "fatal", "panic"] {
            assert!(filter(level).is_ok(), "{level}");
        }
    }
}
