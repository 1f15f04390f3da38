//! Node.js binding (napi-rs): the core's JSON API as one function.
//!
//! `call(function, input)` returns the output JSON, or throws a JS `Error`
//! whose message is the failure JSON; `index.js` turns that into typed values
//! and a `ConsulLambdaSyncError` (the wasm build throws the same way).

use napi_derive::napi;

/// A Consul answer body longer than this many bytes goes to `Engine.feedBody`
/// as the bytes read (the core's `LARGE_BODY_BYTES`, one threshold for every host).
#[napi]
pub fn large_body_bytes() -> u32 {
    u32::try_from(consul_lambda_sync::ffi::LARGE_BODY_BYTES).unwrap_or(u32::MAX)
}

/// Calls a function of the core's JSON API with JSON `input`; returns JSON.
///
/// # Errors
/// A JS `Error` whose message is the failure JSON
/// (`{code, message, hint, key?, value?, errors}`).
#[napi]
pub fn call(name: String, input: String) -> napi::Result<String> {
    consul_lambda_sync::ffi::call(&name, &input).map_err(|failure| failure_error(&failure))
}

/// The sync engine (docs/engine.md): JSON text in, JSON text out.
#[napi]
#[derive(Debug)]
pub struct Engine {
    inner: consul_lambda_sync::ffi::EngineHandle,
}

#[napi]
impl Engine {
    /// Starts an invocation from the start JSON.
    ///
    /// # Errors
    /// A JS `Error` whose message is the failure JSON.
    #[napi(constructor)]
    pub fn new(start: String) -> napi::Result<Self> {
        consul_lambda_sync::ffi::EngineHandle::new(&start)
            .map(|inner| Engine { inner })
            .map_err(|f| failure_error(&f))
    }

    /// The next step as JSON.
    #[napi]
    pub fn next(&mut self, now_ms: f64, remaining_ms: Option<f64>) -> String {
        self.inner.next(now_ms, remaining_ms)
    }

    /// Feeds the answers (a JSON list) at the host's monotonic time `now_ms`.
    ///
    /// # Errors
    /// A JS `Error` whose message is the failure JSON.
    #[napi]
    pub fn feed(&mut self, answers: String, now_ms: f64) -> napi::Result<()> {
        self.inner
            .feed(&answers, now_ms)
            .map_err(|f| failure_error(&f))
    }
}

#[napi]
impl Engine {
    /// Feeds one Consul answer with its body passed as the bytes read (see
    /// `feed_body` in the core): a large body is neither escaped into JSON nor
    /// decoded into a JS string.
    ///
    /// # Errors
    /// A JS `Error` whose message is the failure JSON.
    #[napi]
    pub fn feed_body(
        &mut self,
        id: f64,
        status: u32,
        headers: String,
        body: napi::bindgen_prelude::Buffer,
        now_ms: f64,
    ) -> napi::Result<()> {
        let status = u16::try_from(status).unwrap_or(u16::MAX);
        self.inner
            .feed_body(id, status, &headers, &body[..], now_ms)
            .map_err(|f| failure_error(&f))
    }

    /// Takes the next bytes of a body still being read (`feed_chunk` in the
    /// core): the host need not hold a large body whole; `feedBody` ends it.
    #[napi]
    pub fn feed_chunk(&mut self, id: f64, chunk: napi::bindgen_prelude::Buffer) {
        self.inner.feed_chunk(id, &chunk);
    }
}

fn failure_error(failure: &consul_lambda_sync::error::Failure) -> napi::Error {
    let json = serde_json::to_string(failure).unwrap_or_else(|_| {
        r#"{"code":"invalid_input","message":"unprintable failure","hint":"","errors":[]}"#
            .to_owned()
    });
    napi::Error::from_reason(json)
}
