//! JSON log lines on stderr (CloudWatch Logs takes the extension's output), one
//! object a line: `{"time":…,"level":…,"msg":…, fields}`. Never a key or a token:
//! callers pass names, ports, codes and error kinds, never a value read from
//! Parameter Store.

use consul_lambda_sync::config::LogLevel;
use serde_json::{Map, Value};
use std::io::Write;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static LEVEL: AtomicU8 = AtomicU8::new(2);
static TRACE: AtomicU8 = AtomicU8::new(0);

fn rank(level: LogLevel) -> u8 {
    match level {
        LogLevel::Trace => 0,
        LogLevel::Debug => 1,
        LogLevel::Info => 2,
        LogLevel::Warn => 3,
        LogLevel::Error => 4,
    }
}

/// Sets the level (`LOG_LEVEL`) and whether connection traces are on (`TRACE_ENABLED`).
pub fn init(level: LogLevel, trace: bool) {
    LEVEL.store(rank(level), Ordering::Relaxed);
    TRACE.store(u8::from(trace), Ordering::Relaxed);
}

/// Whether `level` is logged.
pub fn enabled(level: LogLevel) -> bool {
    rank(level) >= LEVEL.load(Ordering::Relaxed)
}

/// Whether per-connection traces are on (`TRACE_ENABLED=true`, as upstream's tracing).
pub fn tracing() -> bool {
    TRACE.load(Ordering::Relaxed) == 1
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Writes one record.
pub fn record(level: LogLevel, msg: &str, fields: &[(&str, Value)]) {
    if !enabled(level) {
        return;
    }
    let mut m = Map::new();
    m.insert("time".into(), Value::from(now_ms()));
    m.insert(
        "level".into(),
        serde_json::to_value(level).unwrap_or(Value::Null),
    );
    m.insert("logger".into(), Value::from("consul-lambda-extension"));
    m.insert("msg".into(), Value::from(msg));
    for (k, v) in fields {
        m.insert((*k).to_owned(), v.clone());
    }
    let line = Value::Object(m).to_string();
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

/// `record(LogLevel::Info, …)`.
pub fn info(msg: &str, fields: &[(&str, Value)]) {
    record(LogLevel::Info, msg, fields);
}

/// `record(LogLevel::Warn, …)`.
pub fn warn(msg: &str, fields: &[(&str, Value)]) {
    record(LogLevel::Warn, msg, fields);
}

/// `record(LogLevel::Error, …)`.
pub fn error(msg: &str, fields: &[(&str, Value)]) {
    record(LogLevel::Error, msg, fields);
}

/// `record(LogLevel::Debug, …)`.
pub fn debug(msg: &str, fields: &[(&str, Value)]) {
    record(LogLevel::Debug, msg, fields);
}
