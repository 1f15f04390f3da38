//! What crosses between the engine and a host (docs/engine.md): the step the
//! engine yields ([`Step`]: requests to carry, a sleep, or the result), the answers
//! the host feeds back ([`Answer`]), and log records ([`Log`]). Each is an enum of
//! what it can be, so "exactly one of" holds by construction; the JSON keeps the
//! documented shape.

use super::outcome::SyncResult;
use crate::config::AwsEndpoints;
use crate::config::LogLevel;
use crate::lower::aws::{AwsAccess, Signer};
use crate::lower::{AwsRequest, Outgoing, RawJson, Request};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;

/// A request of a step, with the id its answer carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// Identifies the answer.
    pub id: u64,
    /// The request.
    pub request: Request,
}

/// What the host does next.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Carry these requests, at most `concurrency` at once, each within
    /// `timeout_ms`, and feed every answer back.
    Send {
        /// The requests.
        requests: Vec<Sent>,
        /// What the AWS calls among them are signed with (`None`: they go to an
        /// AWS SDK as `{service, operation, input}`).
        signing: Option<Box<Signing>>,
        /// The bound on requests in flight.
        concurrency: u32,
        /// The timeout of one request, in milliseconds.
        timeout_ms: u64,
        /// Log records to print now.
        logs: Vec<Log>,
    },
    /// Sleep this many milliseconds, then ask again.
    Sleep {
        /// Milliseconds.
        ms: u64,
        /// Log records to print now.
        logs: Vec<Log>,
    },
    /// The invocation is over.
    Done {
        /// The result.
        result: Box<SyncResult>,
        /// Log records to print now.
        logs: Vec<Log>,
    },
}

impl Step {
    /// The log records to print now.
    pub fn logs(&self) -> &[Log] {
        match self {
            Step::Send { logs, .. } | Step::Sleep { logs, .. } | Step::Done { logs, .. } => logs,
        }
    }

    /// The result, when the invocation is over.
    pub fn done(&self) -> Option<&SyncResult> {
        match self {
            Step::Done { result, .. } => Some(result),
            _ => None,
        }
    }

    /// The requests to carry, when there are some.
    pub fn requests(&self) -> &[Sent] {
        match self {
            Step::Send { requests, .. } => requests,
            _ => &[],
        }
    }
}

/// What a step's AWS calls are signed with.
#[derive(Debug, Clone, PartialEq)]
pub struct Signing {
    /// The credentials.
    pub access: AwsAccess,
    /// The region.
    pub region: String,
    /// The endpoint overrides.
    pub endpoints: AwsEndpoints,
    /// The wall clock, in Unix seconds.
    pub unix_secs: u64,
}

impl Signing {
    /// The signer of [`AwsRequest::http`].
    pub fn signer(&self) -> Signer<'_> {
        Signer {
            access: &self.access,
            region: &self.region,
            endpoints: &self.endpoints,
            unix_secs: self.unix_secs,
        }
    }
}

/// An AWS call as a signed HTTP request: `{"id", "http": {method, url, headers,
/// body}, "service", "secret"?, "sensitive"?}`.
struct SignedOutgoing<'a> {
    id: u64,
    request: &'a AwsRequest,
    signing: &'a Signing,
}

impl Serialize for SignedOutgoing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("id", &self.id)?;
        m.serialize_entry("http", &self.request.http(&self.signing.signer()))?;
        m.serialize_entry("service", self.request.service())?;
        if let Some(secret) = self.request.secret() {
            m.serialize_entry("secret", &secret)?;
        }
        if self.request.sensitive() {
            m.serialize_entry("sensitive", &true)?;
        }
        m.end()
    }
}

/// `{"send": [...], "concurrency", "timeoutMs", "logs"}`, `{"sleep": ms, "logs"}`
/// or `{"done": result, "logs"}`.
impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Requests<'a>(&'a [Sent], Option<&'a Signing>);
        impl Serialize for Requests<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                let mut seq = s.serialize_seq(Some(self.0.len()))?;
                for r in self.0 {
                    match (&r.request, self.1) {
                        (Request::Aws(request), Some(signing)) => {
                            seq.serialize_element(&SignedOutgoing {
                                id: r.id,
                                request,
                                signing,
                            })?
                        }
                        (request, _) => seq.serialize_element(&Outgoing {
                            id: Some(r.id),
                            request,
                        })?,
                    }
                }
                seq.end()
            }
        }
        let mut m = s.serialize_map(None)?;
        match self {
            Step::Send {
                requests,
                signing,
                concurrency,
                timeout_ms,
                logs,
            } => {
                m.serialize_entry("send", &Requests(requests, signing.as_deref()))?;
                m.serialize_entry("concurrency", concurrency)?;
                m.serialize_entry("timeoutMs", timeout_ms)?;
                m.serialize_entry("logs", logs)?;
            }
            Step::Sleep { ms, logs } => {
                m.serialize_entry("sleep", ms)?;
                m.serialize_entry("logs", logs)?;
            }
            Step::Done { result, logs } => {
                m.serialize_entry("done", result)?;
                m.serialize_entry("logs", logs)?;
            }
        }
        m.end()
    }
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The request's `id`.
    pub id: u64,
    /// What came back.
    pub reply: Incoming,
}

/// What came back for one request, as the host saw it.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// Consul answered.
    Http(HttpReply),
    /// AWS answered: the response.
    Aws(RawJson),
    /// No answer, an AWS error, or a set-up failure.
    Error(AnswerError),
}

/// An HTTP answer from Consul, or from AWS to a signed call.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpReply {
    /// The status.
    pub status: u16,
    /// `Retry-After`, in seconds, when given.
    pub retry_after: Option<String>,
    /// `X-Consul-Results-Filtered-By-ACLs: true`: Consul left out what the token
    /// may not read.
    pub filtered: bool,
    /// `x-amzn-ErrorType`: an AWS error's code (REST-JSON services).
    pub aws_error_type: Option<String>,
    /// The body.
    pub body: String,
}

impl HttpReply {
    /// A Consul answer from its status, headers (any case) and body.
    pub fn new(status: u16, headers: &BTreeMap<String, String>, body: String) -> Self {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim().to_owned())
        };
        HttpReply {
            status,
            retry_after: header("retry-after"),
            filtered: header("x-consul-results-filtered-by-acls")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
            aws_error_type: header("x-amzn-errortype"),
            body,
        }
    }
}

/// Why a request has no (successful) answer, as the host reports it.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct AnswerError {
    /// `transport` (no answer came), `config` (no credentials, no region), or the
    /// AWS error code.
    #[serde(default)]
    pub code: String,
    /// What happened.
    #[serde(default)]
    pub message: String,
    /// The HTTP status, when one came.
    #[serde(default)]
    pub status: Option<u16>,
}

/// The JSON form of an answer: `{"id", "status", "headers", "body"}`,
/// `{"id", "ok"}` or `{"id", "error"}`.
#[derive(Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "Answer"))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct AnswerJson {
    /// The request's `id`.
    id: u64,
    /// Consul, or a signed AWS call (`http`): the HTTP status.
    #[serde(default)]
    status: Option<u16>,
    /// Consul, or a signed AWS call: response headers (names lower-case).
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Consul, or a signed AWS call: the response body as text.
    #[serde(default)]
    body: Option<String>,
    /// AWS, an SDK call (`aws`): the response.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<serde_json::Value>"))]
    ok: Option<RawJson>,
    /// No answer (`code: "transport"`), an AWS error, or a set-up failure (`code: "config"`).
    #[serde(default)]
    error: Option<AnswerError>,
}

impl<'de> Deserialize<'de> for Answer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = AnswerJson::deserialize(d)?;
        let reply = match (j.status, j.ok, j.error) {
            (Some(status), None, None) => Incoming::Http(HttpReply::new(
                status,
                &j.headers,
                j.body.unwrap_or_default(),
            )),
            (None, Some(ok), None) => Incoming::Aws(ok),
            (None, None, Some(error)) => Incoming::Error(error),
            _ => {
                return Err(serde::de::Error::custom(
                    "an answer has exactly one of `status`, `ok` and `error`",
                ))
            }
        };
        Ok(Answer { id: j.id, reply })
    }
}

/// A value of a log record's field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum LogValue {
    /// Text.
    Text(String),
    /// A count or a time.
    Number(u64),
    /// Yes or no.
    Flag(bool),
}

impl From<&str> for LogValue {
    fn from(v: &str) -> Self {
        LogValue::Text(v.to_owned())
    }
}

impl From<String> for LogValue {
    fn from(v: String) -> Self {
        LogValue::Text(v)
    }
}

impl From<u64> for LogValue {
    fn from(v: u64) -> Self {
        LogValue::Number(v)
    }
}

impl From<usize> for LogValue {
    fn from(v: usize) -> Self {
        LogValue::Number(v as u64)
    }
}

impl From<u32> for LogValue {
    fn from(v: u32) -> Self {
        LogValue::Number(u64::from(v))
    }
}

impl From<bool> for LogValue {
    fn from(v: bool) -> Self {
        LogValue::Flag(v)
    }
}

/// One log record: `debug`, `info`, `warn` or `error`; never a secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Log {
    /// The level.
    pub level: LogLevel,
    /// The message.
    pub msg: String,
    /// Structured fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[cfg_attr(
        feature = "schema",
        schemars(with = "BTreeMap<String, serde_json::Value>")
    )]
    pub fields: BTreeMap<String, LogValue>,
}

impl Log {
    /// The text of field `key`, if it is text.
    pub fn text(&self, key: &str) -> Option<&str> {
        match self.fields.get(key) {
            Some(LogValue::Text(t)) => Some(t),
            _ => None,
        }
    }
}

/// The JSON shapes of a step and an answer, for the generated declarations.
#[cfg(feature = "schema")]
mod schema {
    use super::{Answer, AnswerJson, Log, Step};
    use crate::engine::outcome::SyncResult;
    use crate::lower::SecretKind;
    use std::borrow::Cow;
    use std::collections::BTreeMap;

    /// A Consul HTTP request: send `method` to the address + `path` (already
    /// percent-encoded: send it as is) with `query` (URL-encode each value) and
    /// `body` (JSON text: send it as is, `Content-Type: application/json`).
    #[allow(dead_code)]
    #[derive(schemars::JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(rename = "ConsulCall")]
    struct ConsulCall {
        /// `GET`, `PUT`, `POST` or `DELETE`.
        method: String,
        /// The path, percent-encoded.
        path: String,
        /// Query parameters.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query: Option<BTreeMap<String, String>>,
        /// The body: JSON text, sent as is.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        body: Option<String>,
        /// The largest answer to read: a longer one is not read on but answered
        /// with the error `answer_too_large` (Content-Length over it, or the
        /// body growing past it). The engine always sets it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_bytes: Option<u64>,
    }

    /// An AWS API call, as both SDKs take it.
    #[allow(dead_code)]
    #[derive(schemars::JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(rename = "AwsCall")]
    struct AwsCall {
        /// `tagging`, `lambda`, `ssm` or `sts`.
        service: String,
        /// The API name, e.g. `GetResources`.
        operation: String,
        /// The API's parameters (PascalCase).
        input: serde_json::Value,
    }

    /// A signed AWS call: send `method` to `url` (path and query percent-encoded:
    /// send it as is) with exactly these `headers` (`host` among them) and `body`;
    /// answer with the status, the headers (names lower-case) and the body, as for
    /// Consul.
    #[allow(dead_code)]
    #[derive(schemars::JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(rename = "HttpCall")]
    struct HttpCall {
        /// `GET` or `POST`.
        method: String,
        /// The URL.
        url: String,
        /// The headers, names lower-case; they carry the signature and may carry a
        /// session token: never log them.
        headers: BTreeMap<String, String>,
        /// The body (`""`: none).
        body: String,
    }

    /// One request the host must carry.
    #[allow(dead_code)]
    #[derive(schemars::JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(rename = "WireRequest")]
    struct WireRequest {
        /// Identifies the answer.
        id: u64,
        /// A Consul HTTP request.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        consul: Option<ConsulCall>,
        /// An AWS API call for an SDK to make (no `Start.aws`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aws: Option<AwsCall>,
        /// An AWS API call as a signed HTTP request (`Start.aws` given).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        http: Option<HttpCall>,
        /// The AWS service of an `http` call: `tagging`, `lambda`, `ssm` or `sts`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        service: Option<String>,
        /// The answer's `Parameter.Value` is a Consul credential the host keeps and feeds back as `""`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        secret: Option<SecretKind>,
        /// The request carries a private key: never log it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sensitive: Option<bool>,
    }

    /// What the host does next: exactly one of `send`, `sleep` and `done`, with `logs`.
    #[allow(dead_code)]
    #[derive(schemars::JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(rename = "Step")]
    struct StepSchema {
        /// Requests to carry, at most `concurrency` at once; feed every answer back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        send: Option<Vec<WireRequest>>,
        /// The bound on requests in flight.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        concurrency: Option<u32>,
        /// The timeout of one request, in milliseconds.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_ms: Option<u64>,
        /// Milliseconds to sleep before the next `next`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sleep: Option<u64>,
        /// The result: the invocation is over.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        done: Option<SyncResult>,
        /// Log records to print now.
        logs: Vec<Log>,
    }

    impl schemars::JsonSchema for Step {
        fn schema_name() -> Cow<'static, str> {
            StepSchema::schema_name()
        }

        fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
            StepSchema::json_schema(g)
        }
    }

    impl schemars::JsonSchema for Answer {
        fn schema_name() -> Cow<'static, str> {
            AnswerJson::schema_name()
        }

        fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
            AnswerJson::json_schema(g)
        }
    }
}
