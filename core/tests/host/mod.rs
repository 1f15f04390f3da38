//! The host protocol as a host sees it: requests and answers as JSON (shared by
//! the engine's integration tests).
#![allow(dead_code, clippy::unwrap_used)]

use consul_lambda_sync::engine::outcome::SyncResult;
use consul_lambda_sync::engine::{Engine, Step};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One request of a step, as the host reads it.
#[derive(Debug, Clone, Deserialize)]
pub struct WireRequest {
    pub id: u64,
    pub consul: Option<ConsulCall>,
    pub aws: Option<AwsCall>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct ConsulCall {
    pub method: String,
    pub path: String,
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// The body's JSON text, read as JSON.
    #[serde(default, deserialize_with = "json_text")]
    pub body: Option<Value>,
}

/// A body sent as JSON text, parsed.
fn json_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    let text: Option<String> = Option::deserialize(d)?;
    text.map(|t| serde_json::from_str(&t).map_err(serde::de::Error::custom))
        .transpose()
}

#[derive(Debug, Clone, Deserialize)]
pub struct AwsCall {
    pub operation: String,
    pub input: Value,
}

/// One answer, as a host writes it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Answer {
    pub id: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ok: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<AnswerError>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct AnswerError {
    pub code: String,
    pub message: String,
    pub status: Option<u16>,
}

/// A step as its JSON says it.
pub struct StepView {
    pub send: Option<Vec<WireRequest>>,
    pub sleep: Option<u64>,
    pub done: Option<Box<SyncResult>>,
}

pub fn view(step: Step) -> StepView {
    let json = serde_json::to_value(&step).unwrap();
    StepView {
        send: json
            .get("send")
            .map(|s| serde_json::from_value(s.clone()).unwrap()),
        sleep: json.get("sleep").and_then(Value::as_u64),
        done: step.done().map(|d| Box::new(d.clone())),
    }
}

/// Feeds answers as a host does: JSON text.
pub fn feed(
    engine: &mut Engine,
    answers: Vec<Answer>,
    now: u64,
) -> Result<(), consul_lambda_sync::Failure> {
    engine.feed_json(&serde_json::to_string(&answers).unwrap(), now)
}
