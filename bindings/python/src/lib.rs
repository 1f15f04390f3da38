//! Python binding (pyo3): re-exports the core's JSON API.
#![allow(missing_docs)]
pub use consul_lambda_sync::ffi::call_enveloped;
