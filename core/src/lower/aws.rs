//! AWS calls on the wire (docs/engine.md "AWS over HTTP"): an [`AwsRequest`] becomes
//! a signed HTTP request the host carries like a Consul one, and the HTTP answer
//! becomes the call's output or its AWS error. This is the one place that knows
//! each service's protocol — AWS JSON 1.1 (Resource Groups Tagging API, Parameter
//! Store), REST-JSON (Lambda) and the query protocol (STS) — its endpoint and its
//! error shape. Signing is [`crate::sigv4`], at the time the host tells.

use super::request::{path_segment, AwsRequest};
use super::RawJson;
use crate::config::AwsEndpoints;
#[cfg(test)]
use crate::config::Endpoint;
use crate::sigv4::{self, Key, Scope};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use std::collections::BTreeMap;
use std::fmt::Write;

/// AWS credentials the host hands over once (`Start.aws`): the secret key and the
/// session token are never printed.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsAccess {
    /// `AWS_ACCESS_KEY_ID`.
    pub access_key_id: String,
    /// `AWS_SECRET_ACCESS_KEY`.
    pub secret_access_key: String,
    /// `AWS_SESSION_TOKEN` (role credentials, Lambda's among them).
    #[serde(default)]
    pub session_token: Option<String>,
    /// The wall clock (Unix milliseconds) when the host made the start: the
    /// engine signs at this time plus the monotonic time since its first step.
    pub epoch_ms: u64,
}

impl std::fmt::Debug for AwsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsAccess")
            .field("access_key_id", &self.access_key_id)
            .field("epoch_ms", &self.epoch_ms)
            .finish_non_exhaustive()
    }
}

/// What signing a step's AWS calls needs: the credentials, the region, the
/// endpoints and the time.
#[derive(Debug, Clone, Copy)]
pub struct Signer<'a> {
    /// The credentials.
    pub access: &'a AwsAccess,
    /// The region.
    pub region: &'a str,
    /// The endpoint overrides.
    pub endpoints: &'a AwsEndpoints,
    /// The wall clock, in Unix seconds.
    pub unix_secs: u64,
}

/// A signed AWS call as the host sends it: `{"method", "url", "headers", "body"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpCall {
    /// `GET` or `POST`.
    pub method: &'static str,
    /// The whole URL, its path and query percent-encoded: send it as is.
    pub url: String,
    /// The headers to send, names lower-case (the signed ones among them).
    pub headers: Vec<(&'static str, String)>,
    /// The body (`""`: none).
    pub body: String,
}

impl Serialize for HttpCall {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Headers<'a>(&'a [(&'static str, String)]);
        impl Serialize for Headers<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(k, v)| (*k, v)))
            }
        }
        let mut m = s.serialize_map(Some(4))?;
        m.serialize_entry("method", self.method)?;
        m.serialize_entry("url", &self.url)?;
        m.serialize_entry("headers", &Headers(&self.headers))?;
        m.serialize_entry("body", &self.body)?;
        m.end()
    }
}

/// A call in its service's protocol, before signing.
struct Shape<'a> {
    method: &'static str,
    path: String,
    query: Vec<(&'static str, &'a str)>,
    content_type: Option<&'static str>,
    target: Option<String>,
    body: String,
}

/// How a service is spoken to.
enum Protocol {
    /// AWS JSON 1.1: `POST /`, the operation in `X-Amz-Target`.
    Json(&'static str),
    /// REST-JSON: the operation in the method and path.
    Rest,
    /// The query protocol: a form body, an XML answer.
    Query(&'static str),
}

fn protocol(service: &str) -> Protocol {
    match service {
        "tagging" => Protocol::Json("ResourceGroupsTaggingAPI_20170126"),
        "ssm" => Protocol::Json("AmazonSSM"),
        "sts" => Protocol::Query("2011-06-15"),
        _ => Protocol::Rest,
    }
}

/// RFC 3986 encoding of a query key or value (what SigV4 signs).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The canonical URI of a path already percent-encoded: every service but S3
/// signs the path encoded once more (`%` → `%25`).
fn canonical_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

impl AwsRequest {
    /// The REST path (percent-encoded) and query of a Lambda call.
    fn rest_target(&self) -> (String, Vec<(&'static str, &str)>) {
        match self {
            AwsRequest::ListTags { arn } => (
                format!("/2017-03-31/tags/{}", path_segment(arn)),
                Vec::new(),
            ),
            AwsRequest::ListAliases { function, marker } => (
                format!("/2015-03-31/functions/{}/aliases", path_segment(function)),
                marker.iter().map(|m| ("Marker", m.as_str())).collect(),
            ),
            _ => ("/".into(), Vec::new()),
        }
    }

    /// The method, path, query, content type, `X-Amz-Target` and body of the call
    /// in its service's protocol.
    fn shape(&self) -> Shape<'_> {
        match protocol(self.service()) {
            Protocol::Json(prefix) => Shape {
                method: "POST",
                path: "/".to_owned(),
                query: Vec::new(),
                content_type: Some("application/x-amz-json-1.1"),
                target: Some(format!("{prefix}.{}", self.operation())),
                body: self.input_json(),
            },
            Protocol::Query(version) => Shape {
                method: "POST",
                path: "/".to_owned(),
                query: Vec::new(),
                content_type: Some("application/x-www-form-urlencoded; charset=utf-8"),
                target: None,
                body: format!("Action={}&Version={version}", self.operation()),
            },
            Protocol::Rest => {
                let (path, query) = self.rest_target();
                Shape {
                    method: "GET",
                    path,
                    query,
                    content_type: None,
                    target: None,
                    body: String::new(),
                }
            }
        }
    }

    /// The call as a signed HTTP request.
    pub fn http(&self, signer: &Signer<'_>) -> HttpCall {
        let service = self.service();
        let endpoint = signer.endpoints.of(service, signer.region);
        let Shape {
            method,
            path,
            query,
            content_type,
            target,
            body,
        } = self.shape();
        let mut query: Vec<(String, String)> = query
            .into_iter()
            .map(|(k, v)| (encode(k), encode(v)))
            .collect();
        query.sort();
        let query = query
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let full_path = format!("{}{path}", endpoint.prefix);
        let amz_date = sigv4::amz_date(signer.unix_secs);
        let mut headers: Vec<(&'static str, String)> = vec![
            ("host", endpoint.authority.clone()),
            ("x-amz-date", amz_date.clone()),
        ];
        if let Some(ct) = content_type {
            headers.push(("content-type", ct.to_owned()));
        }
        if let Some(t) = target {
            headers.push(("x-amz-target", t));
        }
        if let Some(token) = &signer.access.session_token {
            headers.push(("x-amz-security-token", token.clone()));
        }
        let key = Key {
            access_key_id: &signer.access.access_key_id,
            secret_access_key: &signer.access.secret_access_key,
        };
        let scope = Scope {
            amz_date: &amz_date,
            region: signer.region,
            service,
        };
        let signed: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let auth = sigv4::sign(
            key,
            &scope,
            method,
            &canonical_path(&full_path),
            &query,
            &signed,
            body.as_bytes(),
        );
        headers.push(("authorization", auth));
        let url = format!(
            "{}://{}{full_path}{}{query}",
            endpoint.scheme,
            endpoint.authority,
            if query.is_empty() { "" } else { "?" }
        );
        HttpCall {
            method,
            url,
            headers,
            body,
        }
    }
}

/// An AWS call's HTTP answer, as the engine reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsHttpAnswer<'a> {
    /// The status.
    pub status: u16,
    /// `x-amzn-ErrorType`, when given.
    pub error_type: Option<&'a str>,
    /// The body.
    pub body: &'a str,
}

/// Why an AWS call failed, read from its answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwsFailure {
    /// The AWS error code (`ResourceNotFoundException`, `ParameterNotFound`, …).
    pub code: String,
    /// AWS's message.
    pub message: String,
    /// The status.
    pub status: u16,
}

/// The output of `request` from its HTTP answer (the JSON both SDKs return), or
/// the AWS error it carries.
pub fn read_answer(
    request: &AwsRequest,
    answer: &AwsHttpAnswer<'_>,
) -> Result<RawJson, AwsFailure> {
    let query = matches!(protocol(request.service()), Protocol::Query(_));
    if !(200..300).contains(&answer.status) {
        return Err(failure(answer, query));
    }
    let text = if query {
        caller_identity(answer.body)
    } else if answer.body.trim().is_empty() {
        "{}".to_owned()
    } else {
        answer.body.to_owned()
    };
    serde_json::from_str::<RawJson>(&text).map_err(|e| AwsFailure {
        code: "InvalidResponse".into(),
        message: format!("the answer to {} is not JSON: {e}", request.operation()),
        status: answer.status,
    })
}

/// `GetCallerIdentity`'s XML answer as the SDKs' JSON output.
fn caller_identity(xml: &str) -> String {
    let mut out = String::from("{");
    for (i, field) in ["Account", "Arn", "UserId"].into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let value = xml_text(xml, field).unwrap_or_default();
        let _ = write!(out, "\"{field}\":{}", serde_json::Value::String(value));
    }
    out.push('}');
    out
}

/// The text of the first `<tag>…</tag>`, its entities decoded.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml.get(start..)?.find(&format!("</{tag}>"))?;
    let raw = xml.get(start..start + len)?;
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// The error code and message of a failed call: `x-amzn-ErrorType` or the body's
/// `__type` (JSON protocols), `<Code>` (the query protocol).
fn failure(answer: &AwsHttpAnswer<'_>, query: bool) -> AwsFailure {
    let (code, message) = if query {
        (
            xml_text(answer.body, "Code"),
            xml_text(answer.body, "Message"),
        )
    } else {
        let body: BTreeMap<String, serde_json::Value> =
            serde_json::from_str(answer.body).unwrap_or_default();
        let text = |k: &str| body.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        let code = answer
            .error_type
            .map(str::to_owned)
            .or_else(|| text("__type"))
            .or_else(|| text("code"))
            .or_else(|| text("Code"));
        (code, text("message").or_else(|| text("Message")))
    };
    // `ResourceNotFoundException:http://internal.amazon.com/…`, `com.amazonaws.ssm#ParameterNotFound`.
    let code = code
        .as_deref()
        .map(|c| c.split(':').next().unwrap_or(c))
        .map(|c| c.rsplit('#').next().unwrap_or(c).trim().to_owned())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| format!("Http{}", answer.status));
    AwsFailure {
        code,
        message: message.unwrap_or_else(|| crate::text::clip(answer.body)),
        status: answer.status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(token: Option<&str>) -> AwsAccess {
        AwsAccess {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: token.map(str::to_owned),
            epoch_ms: 0,
        }
    }

    fn call(request: &AwsRequest, endpoints: &AwsEndpoints, token: Option<&str>) -> HttpCall {
        let a = access(token);
        request.http(&Signer {
            access: &a,
            region: "us-east-1",
            endpoints,
            unix_secs: 1_440_938_160,
        })
    }

    fn header<'a>(c: &'a HttpCall, name: &str) -> Option<&'a str> {
        c.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn json_protocol_call() {
        let c = call(
            &AwsRequest::GetParameter {
                name: "/a/token".into(),
                secret: None,
            },
            &AwsEndpoints::default(),
            Some("SESSION"),
        );
        assert_eq!(c.method, "POST");
        assert_eq!(c.url, "https://ssm.us-east-1.amazonaws.com/");
        assert_eq!(c.body, r#"{"Name":"/a/token","WithDecryption":true}"#);
        assert_eq!(header(&c, "x-amz-target"), Some("AmazonSSM.GetParameter"));
        assert_eq!(header(&c, "x-amz-security-token"), Some("SESSION"));
        let auth = header(&c, "authorization").unwrap_or_default();
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/ssm/aws4_request, SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-amz-target, Signature="), "{auth}");
        assert!(!auth.contains("EXAMPLEKEY"));
    }

    #[test]
    fn rest_call_encodes_and_signs_the_path_twice() {
        let endpoints = AwsEndpoints {
            all: Endpoint::parse("http://127.0.0.1:5000/"),
            by_service: BTreeMap::new(),
        };
        let c = call(
            &AwsRequest::ListTags {
                arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            },
            &endpoints,
            None,
        );
        assert_eq!(c.method, "GET");
        assert_eq!(
            c.url,
            "http://127.0.0.1:5000/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af"
        );
        assert_eq!(header(&c, "host"), Some("127.0.0.1:5000"));
        assert_eq!(c.body, "");
        let c = call(
            &AwsRequest::ListAliases {
                function: "f".into(),
                marker: Some("a b/c".into()),
            },
            &endpoints,
            None,
        );
        assert_eq!(
            c.url,
            "http://127.0.0.1:5000/2015-03-31/functions/f/aliases?Marker=a%20b%2Fc"
        );
        assert_eq!(canonical_path("/t/arn%3Aa"), "/t/arn%253Aa");
    }

    #[test]
    fn endpoints() {
        assert_eq!(Endpoint::parse("ftp://x"), None);
        assert_eq!(Endpoint::parse("http://"), None);
        assert_eq!(Endpoint::parse("http://a b"), None);
        assert_eq!(
            Endpoint::parse("HTTPS://Host:8/p/"),
            Some(Endpoint {
                scheme: "https".into(),
                authority: "host:8".into(),
                prefix: "/p".into()
            })
        );
        let mut e = AwsEndpoints::default();
        assert_eq!(
            e.of("tagging", "cn-north-1").authority,
            "tagging.cn-north-1.amazonaws.com.cn"
        );
        e.all = Endpoint::parse("http://all");
        e.by_service.insert(
            "sts".into(),
            Endpoint::parse("http://sts").unwrap_or_else(|| unreachable!()),
        );
        assert_eq!(e.of("sts", "r").authority, "sts");
        assert_eq!(e.of("ssm", "r").authority, "all");
    }

    #[test]
    fn query_answers() {
        let req = AwsRequest::GetCallerIdentity;
        let xml = "<GetCallerIdentityResponse><GetCallerIdentityResult><Arn>arn:aws:sts::1:assumed-role/r&amp;s</Arn><UserId>U</UserId><Account>123456789012</Account></GetCallerIdentityResult></GetCallerIdentityResponse>";
        let ok = read_answer(
            &req,
            &AwsHttpAnswer {
                status: 200,
                error_type: None,
                body: xml,
            },
        );
        assert_eq!(
            ok.map(|r| r.get().to_owned()),
            Ok(r#"{"Account":"123456789012","Arn":"arn:aws:sts::1:assumed-role/r&s","UserId":"U"}"#.to_owned())
        );
        let err = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message>bad</Message></Error></ErrorResponse>";
        let e = read_answer(
            &req,
            &AwsHttpAnswer {
                status: 403,
                error_type: None,
                body: err,
            },
        );
        assert_eq!(
            e.map_err(|e| (e.code, e.message, e.status)),
            Err(("InvalidClientTokenId".into(), "bad".into(), 403))
        );
    }

    #[test]
    fn json_answers() {
        let req = AwsRequest::ListTags { arn: "a".into() };
        let e = read_answer(
            &req,
            &AwsHttpAnswer {
                status: 404,
                error_type: Some("ResourceNotFoundException:http://internal.amazon.com/coral/"),
                body: r#"{"Type":"User","Message":"Function not found"}"#,
            },
        );
        assert_eq!(
            e.map_err(|e| (e.code, e.message)),
            Err((
                "ResourceNotFoundException".into(),
                "Function not found".into()
            ))
        );
        let req = AwsRequest::GetParameter {
            name: "p".into(),
            secret: None,
        };
        let e = read_answer(
            &req,
            &AwsHttpAnswer {
                status: 400,
                error_type: None,
                body: r#"{"__type":"com.amazonaws.ssm#ParameterNotFound","message":""}"#,
            },
        );
        assert_eq!(
            e.map(|_| ()).map_err(|e| e.code),
            Err("ParameterNotFound".into())
        );
        let e = read_answer(
            &req,
            &AwsHttpAnswer {
                status: 503,
                error_type: None,
                body: "<html>",
            },
        );
        assert_eq!(
            e.map(|_| ()).map_err(|e| (e.code, e.status)),
            Err(("Http503".into(), 503))
        );
        let e = read_answer(
            &req,
            &AwsHttpAnswer {
                status: 200,
                error_type: None,
                body: "<html>",
            },
        );
        assert_eq!(
            e.map(|_| ()).map_err(|e| e.code),
            Err("InvalidResponse".into())
        );
        let ok = read_answer(
            &req,
            &AwsHttpAnswer {
                status: 200,
                error_type: None,
                body: "",
            },
        );
        assert_eq!(ok.map(|r| r.get().to_owned()), Ok("{}".into()));
    }
}
