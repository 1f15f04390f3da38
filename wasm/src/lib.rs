//! WebAssembly binding (wasm-bindgen): the core's JSON API as one function.
//!
//! `call(function, input)` returns the output JSON, or throws a JS `Error`
//! whose message is the failure JSON, exactly like the Node addon, so one JS
//! wrapper (`bindings/node/index.js`) serves both.

use wasm_bindgen::prelude::*;

/// Calls `function`; the error is the failure as JSON (never itself fails).
pub fn call_json(function: &str, input: &str) -> Result<String, String> {
    consul_lambda_sync::ffi::call(function, input).map_err(|failure| {
        serde_json::to_string(&failure).unwrap_or_else(|_| {
            r#"{"code":"invalid_input","message":"unprintable failure","hint":"","errors":[]}"#
                .to_owned()
        })
    })
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
