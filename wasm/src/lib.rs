//! WebAssembly binding (wasm-bindgen): the core's JSON API as one function.
//!
//! `call(function, input)` returns the output JSON, or throws a JS `Error`
//! whose message is the failure JSON, exactly like the Node addon, so one JS
//! wrapper (`bindings/node/index.js`) serves both.

use wasm_bindgen::prelude::*;

/// A Consul answer body longer than this many bytes goes to `Engine.feedBody`
/// as the bytes read (the core's `LARGE_BODY_BYTES`, one threshold for every host).
#[cfg(feature = "engine")]
#[wasm_bindgen(js_name = largeBodyBytes)]
pub fn large_body_bytes() -> u32 {
    u32::try_from(consul_lambda_sync::ffi::LARGE_BODY_BYTES).unwrap_or(u32::MAX)
}

/// Calls `function`; the error is the failure as JSON (never itself fails).
pub fn call_json(function: &str, input: &str) -> Result<String, String> {
    consul_lambda_sync::ffi::call(function, input).map_err(|failure| failure_text(&failure))
}

/// Calls a function of the core's JSON API with JSON `input`; returns JSON.
///
/// # Errors
/// A JS `Error` whose message is the failure JSON
/// (`{code, message, hint, key?, value?, errors}`).
#[wasm_bindgen]
pub fn call(function: &str, input: &str) -> Result<String, JsError> {
    call_json(function, input).map_err(|json| JsError::new(&json))
}

/// The sync engine (docs/engine.md): JSON text in, JSON text out.
#[cfg(feature = "engine")]
#[wasm_bindgen]
#[derive(Debug)]
pub struct Engine {
    inner: consul_lambda_sync::ffi::EngineHandle,
}

fn failure_text(failure: &consul_lambda_sync::error::Failure) -> String {
    serde_json::to_string(failure).unwrap_or_else(|_| {
        r#"{"code":"invalid_input","message":"unprintable failure","hint":"","errors":[]}"#
            .to_owned()
    })
}

#[cfg(feature = "engine")]
#[wasm_bindgen]
impl Engine {
    /// Starts an invocation from the start JSON.
    ///
    /// # Errors
    /// A JS `Error` whose message is the failure JSON.
    #[wasm_bindgen(constructor)]
    pub fn new(start: &str) -> Result<Engine, JsError> {
        consul_lambda_sync::ffi::EngineHandle::new(start)
            .map(|inner| Engine { inner })
            .map_err(|f| JsError::new(&failure_text(&f)))
    }

    /// The next step as JSON.
    pub fn next(&mut self, now_ms: f64, remaining_ms: Option<f64>) -> String {
        self.inner.next(now_ms, remaining_ms)
    }

    /// Feeds the answers (a JSON list) at the host's monotonic time `now_ms`.
    ///
    /// # Errors
    /// A JS `Error` whose message is the failure JSON.
    pub fn feed(&mut self, answers: &str, now_ms: f64) -> Result<(), JsError> {
        self.inner
            .feed(answers, now_ms)
            .map_err(|f| JsError::new(&failure_text(&f)))
    }

    /// Feeds one Consul answer with its body passed as the bytes read (not inside
    /// JSON, not decoded into a JS string).
    ///
    /// # Errors
    /// A JS `Error` whose message is the failure JSON.
    #[wasm_bindgen(js_name = feedBody)]
    pub fn feed_body(
        &mut self,
        id: f64,
        status: u16,
        headers: &str,
        body: Vec<u8>,
        now_ms: f64,
    ) -> Result<(), JsError> {
        self.inner
            .feed_body(id, status, headers, body, now_ms)
            .map_err(|f| JsError::new(&failure_text(&f)))
    }

    /// Takes the next bytes of a body still being read (`feed_chunk` in the
    /// core); `feedBody` ends it.
    #[wasm_bindgen(js_name = feedChunk)]
    pub fn feed_chunk(&mut self, id: f64, chunk: &[u8]) {
        self.inner.feed_chunk(id, chunk);
    }
}
