//! Log output: JSON lines for journald and Kibana, or text for people.
//!
//! A JSON line is `{"timestamp", "level", "target", "message", …fields}` with
//! every event field at the top level, never nested, followed by the fields
//! of the spans the event is in (the pass runs each entry and repository in
//! a span carrying `project` and `repository`, so events need not repeat
//! them). The formatter is our own (a few lines) so that the key order is
//! fixed and no key comes twice: a field named like one of the fixed keys is
//! renamed, and a span field the event also has is left out.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_appender::rolling::{RollingFileAppender, Rotation};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{self, FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// The shape of log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable text.
    Text,
}

/// The log level or filter did not parse.
#[derive(Debug, thiserror::Error)]
#[error("invalid log level {text:?}: {reason} (use error, warn, info, debug, trace, or RUST_LOG syntax)")]
pub struct LogLevelError {
    text: String,
    reason: String,
}

/// Builds the filter from `--log-level` / `LOG_LEVEL` / `RUST_LOG`. A bare
/// level applies to this program; libraries stay at `warn` or quieter, so
/// `trace` shows every request of ours without the HTTP stack's internals.
pub fn filter(level: &str) -> Result<EnvFilter, LogLevelError> {
    let level = level.trim();
    let bare = ["off", "error", "warn", "info", "debug", "trace"];
    let directives = match bare.iter().position(|b| b.eq_ignore_ascii_case(level)) {
        Some(index) => {
            let ours = bare[index];
            let theirs = bare[index.min(2)];
            format!("{theirs},gitlab_registry_cleaner={ours}")
        }
        None => level.to_owned(),
    };
    EnvFilter::builder().parse(&directives).map_err(|err| LogLevelError {
        text: level.to_owned(),
        reason: err.to_string(),
    })
}

/// Daily log files kept; older ones are deleted at rotation.
pub const MAX_LOG_FILES: usize = 31;

/// The log file could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("--log-file {path}: {reason}")]
pub struct LogFileError {
    path: String,
    reason: String,
}

/// Keeps the log file's writer thread alive; dropping it flushes every line.
pub struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>);

/// Installs the global subscriber: stdout in `format`, and, with a
/// `log_file`, the same JSON lines in that file, rotated daily (the file is
/// `<name>.YYYY-MM-DD` next to the given path; the newest [`MAX_LOG_FILES`]
/// are kept). The file is written by a
/// background thread that never drops lines; the returned guard flushes it.
pub fn init(format: LogFormat, filter: EnvFilter, log_file: Option<&Path>) -> Result<LogGuard, LogFileError> {
    let stdout_layer = match format {
        LogFormat::Json => fmt::layer()
            .event_format(JsonLines)
            .with_writer(std::io::stdout)
            .boxed(),
        LogFormat::Text => fmt::layer()
            .with_ansi(std::io::stdout().is_terminal())
            .with_writer(std::io::stdout)
            .boxed(),
    };
    let (file_layer, guard) = match log_file {
        None => (None, None),
        Some(path) => {
            let fail = |reason: String| LogFileError {
                path: path.display().to_string(),
                reason,
            };
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .ok_or_else(|| fail("not a file name".to_owned()))?;
            let dir = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            // tracing-appender prunes old files before it creates the directory.
            std::fs::create_dir_all(dir).map_err(|err| fail(err.to_string()))?;
            let appender = RollingFileAppender::builder()
                .rotation(Rotation::DAILY)
                .filename_prefix(name)
                .max_log_files(MAX_LOG_FILES)
                .build(dir)
                .map_err(|err| fail(err.to_string()))?;
            let (writer, guard) = NonBlockingBuilder::default().lossy(false).finish(appender);
            (
                Some(fmt::layer().event_format(JsonLines).with_writer(writer)),
                Some(guard),
            )
        }
    };
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(SpanFields)
        .with(stdout_layer)
        .with(file_layer)
        .try_init();
    Ok(LogGuard(guard))
}

/// The JSON line formatter.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let meta = event.metadata();
        let mut line = String::with_capacity(256);
        line.push_str("{\"timestamp\":\"");
        let _ = write!(line, "{:.6}", jiff::Timestamp::now());
        line.push_str("\",\"level\":\"");
        line.push_str(meta.level().as_str());
        line.push_str("\",\"target\":");
        push_json_str(&mut line, meta.target());
        let mut fields = JsonFields::default();
        event.record(&mut fields);
        line.push_str(",\"message\":");
        push_json_str(&mut line, &fields.message);
        let mut written: Vec<&'static str> = Vec::with_capacity(fields.pairs.len() + 2);
        for (name, pair) in &fields.pairs {
            written.push(name);
            line.push(',');
            line.push_str(pair);
        }
        // The fields of the spans the event is in, at the top level like the
        // event's own; the event's own and then the innermost span's win.
        for span in ctx.event_scope().into_iter().flatten() {
            if let Some(recorded) = span.extensions().get::<RecordedFields>() {
                for (name, pair) in &recorded.0 {
                    if !written.contains(name) {
                        written.push(name);
                        line.push(',');
                        line.push_str(pair);
                    }
                }
            }
        }
        line.push('}');
        writeln!(writer, "{line}")
    }
}

/// A span's fields as `"name":value` pairs, stored in the span by [`SpanFields`].
struct RecordedFields(Vec<(&'static str, String)>);

/// Records each new span's fields so that [`JsonLines`] can write them on
/// every line logged inside the span.
struct SpanFields;

impl<S> tracing_subscriber::Layer<S> for SpanFields
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        let mut fields = JsonFields::default();
        attrs.record(&mut fields);
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(RecordedFields(fields.pairs));
        }
    }
}

/// Collects an event's or a span's fields as `"name":value` pairs.
#[derive(Default)]
struct JsonFields {
    message: String,
    /// The field's name, and the pair as JSON text.
    pairs: Vec<(&'static str, String)>,
}

impl JsonFields {
    /// Adds a field whose value is already JSON text.
    fn push(&mut self, field: &Field, value: impl FnOnce(&mut String)) {
        let name = field.name();
        let mut pair = String::with_capacity(32);
        // A field named like a fixed key would make a duplicate JSON key.
        if matches!(name, "timestamp" | "level" | "target") {
            push_json_str(&mut pair, &format!("field_{name}"));
        } else {
            push_json_str(&mut pair, name);
        }
        pair.push(':');
        value(&mut pair);
        self.pairs.push((name, pair));
    }
}

impl Visit for JsonFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.message);
            return;
        }
        self.push(field, |out| push_json_str(out, value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        let text = format!("{value:?}");
        if field.name() == "message" {
            self.message = text;
            return;
        }
        self.push(field, |out| push_json_str(out, &text));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, |out| {
            let _ = write!(out, "{value}");
        });
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.push(field, |out| {
            let _ = write!(out, "{value}");
        });
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, |out| out.push_str(if value { "true" } else { "false" }));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, |out| {
            if value.is_finite() {
                let _ = write!(out, "{value}");
            } else {
                push_json_str(out, &value.to_string());
            }
        });
    }
}

fn push_json_str(out: &mut String, text: &str) {
    // serde_json's escaping; writing to a String cannot fail.
    out.push_str(&serde_json::to_string(text).unwrap_or_else(|_| "\"\"".to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

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
    fn json_lines_are_flat_and_ordered() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .event_format(JsonLines)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(
                operation = "deleted",
                tag_name = "v1",
                count = 3u64,
                ok = true,
                level = "x",
                "deleted \"tag\""
            );
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let line = text.lines().next().unwrap();
        assert!(line.starts_with("{\"timestamp\":\""), "{line}");
        let value: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(value["level"], "INFO");
        assert_eq!(value["message"], "deleted \"tag\"");
        assert_eq!(value["operation"], "deleted");
        assert_eq!(value["count"], 3);
        assert_eq!(value["ok"], true);
        assert_eq!(value["field_level"], "x");
        let keys: Vec<&str> = [
            "\"timestamp\"",
            "\"level\"",
            "\"target\"",
            "\"message\"",
            "\"operation\"",
        ]
        .into_iter()
        .collect();
        let positions: Vec<usize> = keys.iter().map(|k| line.find(k).unwrap()).collect();
        assert!(positions.windows(2).all(|w| w[0] < w[1]), "{line}");
        assert!(value["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn span_fields_are_on_every_line_inside_the_span_once() {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry()
            .with(SpanFields)
            .with(fmt::layer().event_format(JsonLines).with_writer(move || writer.clone()));
        tracing::subscriber::with_default(subscriber, || {
            let entry = tracing::error_span!("entry", project = "web");
            let _entry = entry.enter();
            tracing::info!(operation = "project_finished", "in the entry");
            let repository = tracing::error_span!("repository", repository = "g/web/app", project = "inner");
            let _repository = repository.enter();
            tracing::info!(operation = "deleted", tag_name = "v1", "in the repository");
            tracing::info!(operation = "kept", repository = "own", "the event's own field wins");
        });
        let text = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let values: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(values[0]["project"], "web");
        assert!(values[0].get("repository").is_none());
        assert_eq!(values[1]["project"], "inner", "the innermost span wins");
        assert_eq!(values[1]["repository"], "g/web/app");
        assert_eq!(values[1]["tag_name"], "v1");
        assert_eq!(values[2]["repository"], "own");
        for line in &lines {
            for key in ["\"project\":", "\"repository\":", "\"operation\":"] {
                assert!(line.matches(key).count() <= 1, "{key} twice in {line}");
            }
        }
    }

    #[test]
    fn log_levels() {
        assert!(filter("info").is_ok());
        assert!(filter("TRACE").is_ok());
        assert!(filter("warn,gitlab_registry_cleaner=debug").is_ok());
        assert!(filter("loud=").is_err() || filter("=[").is_err());
    }
}
