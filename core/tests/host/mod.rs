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
    pub http: Option<HttpCall>,
}

/// A signed AWS call (`Start.aws`).
#[derive(Debug, Clone, Deserialize)]
pub struct HttpCall {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

impl HttpCall {
    /// The operation and its input, read back the way AWS reads them: JSON 1.1 from
    /// `x-amz-target` and the body, Lambda's REST paths, STS's form.
    pub fn operation(&self) -> (String, Value) {
        if let Some(target) = self.headers.get("x-amz-target") {
            let op = target.rsplit('.').next().unwrap().to_owned();
            return (op, serde_json::from_str(&self.body).unwrap());
        }
        if self.body.starts_with("Action=") {
            let op = self.body["Action=".len()..].split('&').next().unwrap();
            return (op.to_owned(), Value::Null);
        }
        let after_host = self.url.splitn(4, '/').nth(3).unwrap();
        let (path, query) = after_host.split_once('?').unwrap_or((after_host, ""));
        let parts: Vec<String> = path.split('/').map(percent_decode).collect();
        let mut input = serde_json::Map::new();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap();
            input.insert(k.to_owned(), Value::String(percent_decode(v)));
        }
        match parts
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["2017-03-31", "tags", arn] => {
                input.insert("Resource".into(), Value::String((*arn).to_owned()));
                ("ListTags".into(), Value::Object(input))
            }
            ["2015-03-31", "functions", name, "aliases"] => {
                input.insert("FunctionName".into(), Value::String((*name).to_owned()));
                ("ListAliases".into(), Value::Object(input))
            }
            other => panic!("unknown AWS path {other:?}"),
        }
    }
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// An SDK-form answer (`ok`, or an AWS `error`) as AWS's HTTP answer to a signed
/// call: JSON 1.1 errors in the body's `__type`, Lambda's in `x-amzn-ErrorType`,
/// STS's in XML; a transport error stays one.
pub fn as_http(call: &HttpCall, answer: Answer) -> Answer {
    let id = answer.id;
    let sts = call.body.starts_with("Action=");
    if let Some(ok) = answer.ok {
        let body = if sts {
            format!(
                "<GetCallerIdentityResponse><GetCallerIdentityResult><Account>{}</Account></GetCallerIdentityResult></GetCallerIdentityResponse>",
                ok["Account"].as_str().unwrap()
            )
        } else {
            ok.to_string()
        };
        return Answer {
            id,
            status: Some(200),
            body: Some(body),
            ..Answer::default()
        };
    }
    let e = answer.error.unwrap();
    if e.code == "transport" || e.code == "config" {
        return Answer {
            id,
            error: Some(e),
            ..Answer::default()
        };
    }
    let status = e.status.unwrap_or(400);
    let mut headers = BTreeMap::new();
    let body = if sts {
        format!(
            "<ErrorResponse><Error><Code>{}</Code><Message>{}</Message></Error></ErrorResponse>",
            e.code, e.message
        )
    } else if call.headers.contains_key("x-amz-target") {
        serde_json::json!({"__type": format!("com.amazonaws#{}", e.code), "message": e.message})
            .to_string()
    } else {
        headers.insert(
            "x-amzn-errortype".to_owned(),
            format!("{}:http://internal.amazon.com/", e.code),
        );
        serde_json::json!({"Type": "User", "Message": e.message}).to_string()
    };
    Answer {
        id,
        status: Some(status),
        headers,
        body: Some(body),
        ..Answer::default()
    }
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
