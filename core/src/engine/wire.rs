//! What crosses between the engine and a host: requests, answers, steps, logs
//! (docs/engine.md), and the retry rules that decide what an answer means.

use crate::config::LogLevel;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

/// One request the host must carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct WireRequest {
    /// Identifies the answer.
    pub id: u64,
    /// A Consul HTTP request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul: Option<ConsulCall>,
    /// An AWS API call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws: Option<AwsCall>,
    /// The answer's `Parameter.Value` is a Consul credential the host keeps
    /// (`consulToken` or `consulCaCert`) and feeds back as `""`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretKind>,
    /// The request carries a private key: never log it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

/// A Consul credential read from Parameter Store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum SecretKind {
    /// The ACL token (`CONSUL_HTTP_TOKEN_PATH`).
    ConsulToken,
    /// The CA certificate (`CONSUL_CACERT_PATH`).
    ConsulCaCert,
}

/// A Consul HTTP request (the plan's request type): `path` is already
/// percent-encoded; query values are not yet URL-encoded.
pub use crate::consul::HttpRequest as ConsulCall;

/// An AWS API call, as both SDKs take it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct AwsCall {
    /// `tagging`, `lambda`, `ssm` or `sts`.
    pub service: String,
    /// The API name, e.g. `GetResources`.
    pub operation: String,
    /// The API's parameters (PascalCase).
    pub input: Value,
}

/// The answer to one request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Answer {
    /// The request's `id`.
    pub id: u64,
    /// Consul: the HTTP status.
    #[serde(default)]
    pub status: Option<u16>,
    /// Consul: response headers (names lower-case).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Consul: the response body as text.
    #[serde(default)]
    pub body: Option<String>,
    /// AWS: the response.
    #[serde(default)]
    pub ok: Option<Value>,
    /// No answer (`code: "transport"`), an AWS error, or a setup failure (`code: "config"`).
    #[serde(default)]
    pub error: Option<AnswerError>,
}

/// Why a request has no (successful) answer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct AnswerError {
    /// `transport`, `config`, or the AWS error code.
    #[serde(default)]
    pub code: String,
    /// What happened.
    #[serde(default)]
    pub message: String,
    /// The HTTP status, when one came.
    #[serde(default)]
    pub status: Option<u16>,
}

impl Answer {
    /// The header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str).or_else(|| {
            self.headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
        })
    }

    /// Whether no HTTP answer came at all.
    pub fn is_transport_error(&self) -> bool {
        self.error.as_ref().is_some_and(|e| e.code == "transport")
    }
}

/// One log record: `debug`, `info`, `warn` or `error`; never a secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Log {
    /// The level.
    pub level: LogLevel,
    /// The message.
    pub msg: String,
    /// Structured fields.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, Value>,
}

/// What the host does next.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Step {
    /// Requests to carry, at most `concurrency` at once; feed every answer back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send: Option<Vec<WireRequest>>,
    /// The bound on requests in flight.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    /// The timeout of one request, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    /// Milliseconds to sleep before the next `next`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sleep: Option<u64>,
    /// The result: the invocation is over.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done: Option<Box<super::outcome::SyncResult>>,
    /// Log records to print now.
    pub logs: Vec<Log>,
}

/// How often a request is tried at most.
pub const MAX_ATTEMPTS: u32 = 5;
/// The first backoff, doubled per attempt.
const BASE_BACKOFF_MS: u64 = 200;
/// The longest backoff.
const MAX_BACKOFF_MS: u64 = 5_000;
/// The longest wait a `Retry-After` may ask for.
const MAX_RETRY_AFTER_MS: u64 = 30_000;

/// What an answer means for the request.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// A usable answer (which may still be a 404 or a `false`).
    Answered,
    /// Try again after at least this many milliseconds.
    Retry(u64),
    /// Give up: the request failed (`unreachable`: no answer came).
    Failed {
        /// Why.
        message: String,
        /// Whether no answer came at all.
        unreachable: bool,
    },
}

/// A small deterministic generator for backoff jitter (xorshift64*), seeded by the host.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// Seeds the generator (any value; zero is replaced).
    pub fn new(seed: u64) -> Self {
        Jitter(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Exponential backoff with "equal jitter" for the `attempt`-th retry (1-based).
    pub fn backoff(&mut self, attempt: u32) -> u64 {
        let exp = BASE_BACKOFF_MS
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(16))
            .min(MAX_BACKOFF_MS);
        exp / 2 + self.next() % (exp / 2 + 1)
    }
}

/// AWS error codes that mean "slow down" or "try again".
const AWS_RETRY_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalServerError",
    "InternalServerException",
    "InternalFailure",
    "InternalError",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
];

fn retry_after_ms(answer: &Answer) -> Option<u64> {
    let v = answer.header("retry-after")?.trim();
    v.parse::<u64>()
        .ok()
        .map(|s| s.saturating_mul(1000).min(MAX_RETRY_AFTER_MS))
}

/// Judges a Consul answer for the `attempt`-th try (1-based).
pub fn judge_consul(answer: &Answer, attempt: u32, jitter: &mut Jitter) -> Verdict {
    let retry = |jitter: &mut Jitter, floor: u64| {
        if attempt >= MAX_ATTEMPTS {
            None
        } else {
            Some(Verdict::Retry(jitter.backoff(attempt).max(floor)))
        }
    };
    if let Some(err) = &answer.error {
        let unreachable = err.code == "transport";
        return retry(jitter, 0).unwrap_or_else(|| Verdict::Failed {
            message: if unreachable {
                format!("no answer from Consul ({})", clip_text(&err.message))
            } else {
                clip_text(&err.message)
            },
            unreachable,
        });
    }
    match answer.status {
        // Consul's own "try again" answers; 501 (not implemented) is final.
        Some(429 | 500 | 502 | 503 | 504) => {
            let floor = retry_after_ms(answer).unwrap_or(0);
            retry(jitter, floor).unwrap_or_else(|| Verdict::Failed {
                message: status_message(answer),
                unreachable: false,
            })
        }
        Some(_) => Verdict::Answered,
        None => Verdict::Failed {
            message: "the host fed an answer with neither status nor error".into(),
            unreachable: false,
        },
    }
}

/// Judges an AWS answer for the `attempt`-th try (1-based).
pub fn judge_aws(answer: &Answer, attempt: u32, jitter: &mut Jitter) -> Verdict {
    let Some(err) = &answer.error else {
        return if answer.ok.is_some() {
            Verdict::Answered
        } else {
            Verdict::Failed {
                message: "the host fed an AWS answer with neither ok nor error".into(),
                unreachable: false,
            }
        };
    };
    let transient = err.code == "transport"
        || AWS_RETRY_CODES.contains(&err.code.as_str())
        || err.message.contains("Rate exceeded")
        || matches!(err.status, Some(429 | 500..=599));
    if transient && attempt < MAX_ATTEMPTS {
        return Verdict::Retry(jitter.backoff(attempt));
    }
    if transient || err.code == "config" {
        return Verdict::Failed {
            message: aws_error_text(err),
            unreachable: err.code == "transport",
        };
    }
    // A definite answer (not found, access denied…): the purpose decides.
    Verdict::Answered
}

/// `Code: message` of an AWS error.
pub fn aws_error_text(err: &AnswerError) -> String {
    let text = if err.message.is_empty() {
        err.code.clone()
    } else if err.code.is_empty() || err.code == "transport" {
        err.message.clone()
    } else {
        format!("{}: {}", err.code, err.message)
    };
    clip_text(&text)
}

/// `STATUS: body` of a Consul answer.
pub fn status_message(answer: &Answer) -> String {
    let body = answer.body.as_deref().unwrap_or("").trim();
    match answer.status {
        Some(s) if body.is_empty() => format!("HTTP {s}"),
        Some(s) => format!("HTTP {s}: {}", clip_text(body)),
        None => "no status".into(),
    }
}

/// Cuts text to a length fit for a log line.
pub fn clip_text(text: &str) -> String {
    match text.char_indices().nth(300) {
        None => text.to_owned(),
        Some((at, _)) => format!("{}…", &text[..at]),
    }
}

/// Percent-encodes one path segment (everything but RFC 3986's unreserved
/// characters), so that a name can never leave its segment (`/`, `?`, `#`, `%`).
/// `None` for a segment no encoding keeps in place: empty, `.` or `..` (URL
/// parsers treat `%2E%2E` as `..` too).
pub fn encode_segment(segment: &str) -> Option<String> {
    if segment.is_empty() || segment.bytes().all(|b| b == b'.') {
        return None;
    }
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let mut j = Jitter::new(7);
        for attempt in 1..10 {
            let b = j.backoff(attempt);
            let exp = (BASE_BACKOFF_MS << (attempt - 1)).min(MAX_BACKOFF_MS);
            assert!(b >= exp / 2 && b <= exp, "{attempt}: {b}");
        }
    }

    #[test]
    fn retry_after_is_honoured_and_501_is_final() {
        let mut j = Jitter::new(1);
        let mut a = Answer {
            status: Some(503),
            ..Answer::default()
        };
        a.headers.insert("retry-after".into(), "3".into());
        assert!(matches!(judge_consul(&a, 1, &mut j), Verdict::Retry(ms) if ms >= 3000));
        a.status = Some(501);
        assert_eq!(judge_consul(&a, 1, &mut j), Verdict::Answered);
        a.status = Some(503);
        assert!(matches!(
            judge_consul(&a, MAX_ATTEMPTS, &mut j),
            Verdict::Failed { .. }
        ));
    }

    #[test]
    fn throttling_is_retried() {
        let mut j = Jitter::new(1);
        let a = Answer {
            error: Some(AnswerError {
                code: "ThrottlingException".into(),
                message: "Rate exceeded".into(),
                status: Some(400),
            }),
            ..Answer::default()
        };
        assert!(matches!(judge_aws(&a, 1, &mut j), Verdict::Retry(_)));
        let nf = Answer {
            error: Some(AnswerError {
                code: "ResourceNotFoundException".into(),
                ..AnswerError::default()
            }),
            ..Answer::default()
        };
        assert_eq!(judge_aws(&nf, 1, &mut j), Verdict::Answered);
    }

    #[test]
    fn segments_cannot_escape() {
        assert_eq!(encode_segment(".."), None);
        assert_eq!(encode_segment(""), None);
        assert_eq!(
            encode_segment("../../acl/token/0000-1111").as_deref(),
            Some("..%2F..%2Facl%2Ftoken%2F0000-1111")
        );
        assert_eq!(encode_segment("x?dc=dc9").as_deref(), Some("x%3Fdc%3Ddc9"));
        assert_eq!(encode_segment("x#frag").as_deref(), Some("x%23frag"));
        assert_eq!(
            encode_segment("orders-live").as_deref(),
            Some("orders-live")
        );
    }
}
