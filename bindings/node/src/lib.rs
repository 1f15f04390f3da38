//! Node.js binding (napi-rs): the core's JSON API as one function.
//!
//! `call(function, input)` returns the output JSON, or throws a JS `Error`
//! whose message is the failure JSON; `index.js` turns that into typed values
//! and a `ConsulLambdaSyncError` (the wasm build throws the same way).

use napi_derive::napi;

/// Calls a function of the core's JSON API with JSON `input`; returns JSON.
///
/// # Errors
/// A JS `Error` whose message is the failure JSON
/// (`{code, message, hint, key?, value?, errors}`).
#[napi]
pub fn call(function: String, input: String) -> napi::Result<String> {
    consul_lambda_sync::ffi::call(&function, &input).map_err(|failure| {
        let json = serde_json::to_string(&failure).unwrap_or_else(|_| {
            r#"{"code":"invalid_input","message":"unprintable failure","hint":"","errors":[]}"#
                .to_owned()
        });
        napi::Error::from_reason(json)
    })
}
