//! The JSON API every binding exposes unchanged: `call(function, input JSON)`
//! returns the output JSON or a [`Failure`]. One shape (camelCase) for every
//! runtime, defined by the Rust types of this crate.

#[cfg(feature = "extension")]
mod extension;

#[cfg(feature = "schema")]
pub(crate) use extension::TargetInput;

use crate::error::{Code, Failure};
use crate::{aws, config, consul, event, plan, tags};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Hosts hand a Consul answer whose body is longer than this many bytes to
/// `EngineHandle::feed_body` as the bytes read, the rest inside the answers'
/// JSON: one threshold for every host (Python `LARGE_BODY_BYTES`, Node
/// `largeBodyBytes()`).
pub const LARGE_BODY_BYTES: usize = 1 << 20;

/// The functions [`call`] knows, by their camelCase name: this module's, then
/// the Lambda extension's ([`crate::extension::FFI_FUNCTIONS`]).
pub const FUNCTIONS: &[&str] = &ALL_FUNCTIONS;

/// This module's own functions.
const CORE_FUNCTIONS: &[&str] = &[
    "version",
    "errorCodes",
    "configFromEnv",
    "configFromObject",
    "parseTags",
    "tagsFromOptions",
    "evaluateFunction",
    "classifyEvent",
    "plan",
    "planRequests",
    "lowerOperation",
    "formatPlan",
    "extensionDataParameter",
    "parseGetResources",
    "parseGetFunction",
];

const ALL_FUNCTIONS: [&str; CORE_FUNCTIONS.len() + crate::extension::FFI_FUNCTIONS.len()] =
    concat(CORE_FUNCTIONS, crate::extension::FFI_FUNCTIONS);

/// `a` then `b`, at compile time (`N` must be their total length: any other is
/// a build error, never a run-time one).
#[allow(clippy::indexing_slicing)] // evaluated by the compiler only
const fn concat<const N: usize>(a: &[&'static str], b: &[&'static str]) -> [&'static str; N] {
    let mut out = [""; N];
    let mut i = 0;
    while i < a.len() {
        out[i] = a[i];
        i += 1;
    }
    let mut j = 0;
    while j < b.len() {
        out[i + j] = b[j];
        j += 1;
    }
    out
}

/// Input of `parseTags`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ParseTagsInput {
    tags: BTreeMap<String, String>,
    #[serde(default)]
    enterprise: bool,
}

/// Input of `tagsFromOptions`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct TagsFromOptionsInput {
    options: tags::TagOptions,
    #[serde(default)]
    enterprise: bool,
}

/// Input of `evaluateFunction`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EvaluateInput {
    function: tags::LambdaFunction,
    #[serde(default)]
    config: config::ConfigInput,
}

/// One entry of `errorCodes`.
#[derive(Debug, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub(crate) struct ErrorCodeInfo {
    /// The stable code.
    code: Code,
    /// One line describing when the code is used.
    description: &'static str,
}

pub(crate) fn parse<T: DeserializeOwned>(what: &str, input: &str) -> Result<T, Failure> {
    serde_json::from_str(input).map_err(|e| Failure::input(what, &e))
}

pub(crate) fn emit<T: Serialize>(value: &T) -> Result<String, Failure> {
    serde_json::to_string(value).map_err(|e| Failure::input("output", &e))
}

/// Calls `function` with JSON `input`, returning JSON.
pub fn call(function: &str, input: &str) -> Result<String, Failure> {
    match function {
        "version" => emit(&env!("CARGO_PKG_VERSION")),
        "errorCodes" => emit(
            &Code::ALL
                .iter()
                .map(|c| ErrorCodeInfo {
                    code: *c,
                    description: c.description(),
                })
                .collect::<Vec<_>>(),
        ),
        "configFromEnv" => emit(&config::config_from_env(&parse("environment", input)?)?),
        "configFromObject" => emit(&config::config_from_input(&parse("configuration", input)?)?),
        "parseTags" => {
            let i: ParseTagsInput = parse("parseTags input", input)?;
            emit(&tags::parse_tags(&i.tags, i.enterprise))
        }
        "tagsFromOptions" => {
            let i: TagsFromOptionsInput = parse("tagsFromOptions input", input)?;
            emit(&tags::tags_from_options(&i.options, i.enterprise)?)
        }
        "evaluateFunction" => {
            let i: EvaluateInput = parse("evaluateFunction input", input)?;
            let config = config::config_from_input(&i.config)?;
            emit(&tags::evaluate_function(&i.function, &config))
        }
        "classifyEvent" => {
            let v: serde_json::Value = parse("event", input)?;
            emit(&event::classify_event(&v)?)
        }
        "plan" => plan::plan_json_text(input),
        "planRequests" => crate::lower::plan_requests(&parse("plan input", input)?),
        "lowerOperation" => crate::lower::lower_operation(&parse("lowerOperation input", input)?),
        "formatPlan" => emit(&crate::render::format_plan(&parse("plan", input)?)),
        "extensionDataParameter" => emit(&consul::extension_data_parameter(&parse(
            "extensionDataParameter input",
            input,
        )?)?),
        "parseGetResources" => emit(&aws::functions_from_get_resources(&parse(
            "GetResources response",
            input,
        )?)),
        "parseGetFunction" => emit(&aws::function_from_get_function(&parse(
            "GetFunction response",
            input,
        )?)?),
        #[cfg(feature = "extension")]
        f if crate::extension::FFI_FUNCTIONS.contains(&f) => extension::call(f, input),
        #[cfg(not(feature = "extension"))]
        f if crate::extension::FFI_FUNCTIONS.contains(&f) => Err(crate::error::Diagnostic::new(
            Code::InvalidInput,
            format!("`{f}` is not in this build"),
            "the browser build leaves out the Lambda extension's functions: call it through the npm or Python package",
        )
        .key("function")
        .value(f)
        .into()),
        other => Err(crate::error::Diagnostic::new(
            Code::InvalidInput,
            format!("unknown function `{}`", crate::error::clip(other)),
            format!("call one of: {}", FUNCTIONS.join(", ")),
        )
        .key("function")
        .into()),
    }
}

/// Like [`call`], but never fails: returns `{"ok": output}` or `{"error": failure}`.
/// Bindings that cannot carry a Rust error across their boundary use this.
pub fn call_enveloped(function: &str, input: &str) -> String {
    match call(function, input) {
        Ok(out) => format!("{{\"ok\":{out}}}"),
        Err(f) => {
            let err = serde_json::to_string(&f).unwrap_or_else(|_| {
                "{\"code\":\"invalid_input\",\"message\":\"unprintable failure\",\"hint\":\"\",\"errors\":[]}".to_owned()
            });
            format!("{{\"error\":{err}}}")
        }
    }
}

/// The sync engine behind the JSON API (docs/engine.md): every binding wraps
/// this handle unchanged — JSON text in, JSON text out.
#[cfg(feature = "engine")]
#[derive(Debug)]
pub struct EngineHandle {
    engine: crate::engine::Engine,
    /// Bodies being read, by request id ([`Self::feed_chunk`]): kept only
    /// between a step and its answers.
    partial: BTreeMap<u64, Vec<u8>>,
}

#[cfg(feature = "engine")]
impl EngineHandle {
    /// Starts an invocation from the start JSON.
    pub fn new(start: &str) -> Result<Self, Failure> {
        crate::engine::Engine::from_json(start).map(|engine| EngineHandle {
            engine,
            partial: BTreeMap::new(),
        })
    }

    /// The next step as JSON. Times are milliseconds; a negative or non-finite
    /// time counts as zero (JavaScript numbers cross as `f64`).
    pub fn next(&mut self, now_ms: f64, remaining_ms: Option<f64>) -> String {
        // Every answer of the last step is in: a body still partial belongs to a
        // request that ended another way (an error, a timeout).
        self.partial.clear();
        self.engine
            .next_json(millis(now_ms), remaining_ms.map(millis))
    }

    /// Feeds the answers (a JSON list), at the host's monotonic time `now_ms`.
    pub fn feed(&mut self, answers: &str, now_ms: f64) -> Result<(), Failure> {
        self.engine.feed_json(answers, millis(now_ms))
    }

    /// Takes the next bytes of the body of request `id` while it is still being
    /// read: the host hands a large body over as it arrives, so it never holds
    /// the whole body itself, and ends it with [`Self::feed_body`] (the bytes
    /// left, possibly none). Chunks of a request that ends another way (an
    /// error answer in [`Self::feed`]) are dropped at the next step.
    pub fn feed_chunk(&mut self, id: f64, chunk: &[u8]) {
        self.partial
            .entry(millis(id))
            .or_default()
            .extend_from_slice(chunk);
    }

    /// Feeds one Consul answer whose body is passed as the bytes read, not inside
    /// the answers' JSON (a large body is then neither escaped nor decoded into a
    /// host string): the same answer as `{"id", "status", "headers", "body"}` in
    /// [`Self::feed`]. The bytes are read as UTF-8, an invalid sequence replaced
    /// by U+FFFD, as both hosts decode every other answer.
    pub fn feed_body(
        &mut self,
        id: f64,
        status: u16,
        headers: &str,
        body: impl Into<Vec<u8>>,
        now_ms: f64,
    ) -> Result<(), Failure> {
        let id = millis(id);
        let headers: BTreeMap<String, String> =
            serde_json::from_str(headers).map_err(|e| Failure::input("headers", &e))?;
        // A body the binding owns moves in; one it borrows is copied once.
        let body = match self.partial.remove(&id) {
            Some(mut read) => {
                read.append(&mut body.into());
                read
            }
            None => body.into(),
        };
        let body = String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        let answer = crate::engine::wire::Answer {
            id,
            reply: crate::engine::wire::Incoming::Http(crate::engine::wire::HttpReply::new(
                status, &headers, body,
            )),
        };
        self.engine.feed(vec![answer], millis(now_ms))
    }
}

#[cfg(feature = "engine")]
fn millis(ms: f64) -> u64 {
    if ms.is_finite() && ms > 0.0 {
        // Saturating float-to-int conversion; fractions of a millisecond drop.
        ms as u64
    } else {
        0
    }
}
