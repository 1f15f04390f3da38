//! Python binding (pyo3): the extension module `consul_lambda_sync._native`.
//!
//! It is deliberately thin: one function, `call(function, input)`, that hands
//! JSON text to the core's [`consul_lambda_sync::ffi::call`] and hands back
//! either the output JSON or a `CoreFailure` (a `ValueError`) whose single
//! argument is the failure JSON. The Python package (`python/consul_lambda_sync`) turns that
//! into dicts and typed exceptions.

use consul_lambda_sync::error::Failure;
use consul_lambda_sync::ffi;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes};

pyo3::create_exception!(
    consul_lambda_sync._native,
    CoreFailure,
    PyValueError,
    "The core reported a failure; the single argument is the failure as JSON."
);

/// Calls the core's JSON API: `call(function, input_json) -> output_json`.
///
/// Raises `CoreFailure(failure_json)` when the core reports a failure. The GIL
/// is released while the core works.
#[pyfunction]
#[pyo3(signature = (function, input, /))]
fn call(py: Python<'_>, function: &str, input: &str) -> PyResult<String> {
    let result = py.detach(|| ffi::call(function, input).map_err(|f| failure_json(&f)));
    result.map_err(CoreFailure::new_err)
}

/// The sync engine (docs/engine.md): `Engine(start_json)`, `next(now_ms,
/// remaining_ms) -> step_json`, `feed(answers_json)`.
#[pyclass(module = "consul_lambda_sync._native", name = "Engine")]
#[derive(Debug)]
struct Engine {
    inner: ffi::EngineHandle,
}

#[pymethods]
impl Engine {
    #[new]
    fn new(start: &str) -> PyResult<Self> {
        ffi::EngineHandle::new(start)
            .map(|inner| Engine { inner })
            .map_err(|f| CoreFailure::new_err(failure_json(&f)))
    }

    /// The next step as JSON.
    #[pyo3(signature = (now_ms, remaining_ms=None, /))]
    fn next(&mut self, now_ms: f64, remaining_ms: Option<f64>) -> String {
        self.inner.next(now_ms, remaining_ms)
    }

    /// Feeds the answers (JSON list) at the host's monotonic time `now_ms`;
    /// raises `CoreFailure` on a bad answer.
    #[pyo3(signature = (answers, now_ms, /))]
    fn feed(&mut self, answers: &str, now_ms: f64) -> PyResult<()> {
        self.inner
            .feed(answers, now_ms)
            .map_err(|f| CoreFailure::new_err(failure_json(&f)))
    }

    /// Feeds one Consul answer with its body as the bytes read (`bytes` or
    /// `bytearray`): a large body is neither decoded into a `str` nor escaped
    /// into the answers' JSON (the core's `feed_body`).
    #[pyo3(signature = (id, status, headers, body, now_ms, /))]
    fn feed_body(
        &mut self,
        id: f64,
        status: u16,
        headers: &str,
        body: &Bound<'_, PyAny>,
        now_ms: f64,
    ) -> PyResult<()> {
        let result = if let Ok(b) = body.cast::<PyBytes>() {
            self.inner
                .feed_body(id, status, headers, b.as_bytes(), now_ms)
        } else if let Ok(b) = body.cast::<PyByteArray>() {
            self.inner
                .feed_body(id, status, headers, b.to_vec(), now_ms)
        } else {
            return Err(PyTypeError::new_err(
                "feed_body: the body must be bytes or bytearray",
            ));
        };
        result.map_err(|f| CoreFailure::new_err(failure_json(&f)))
    }

    /// Takes the next bytes (`bytes`) of a body still being read (the core's
    /// `feed_chunk`): the host need not hold a large body whole; `feed_body` ends it.
    #[pyo3(signature = (id, chunk, /))]
    fn feed_chunk(&mut self, id: f64, chunk: &Bound<'_, PyBytes>) {
        self.inner.feed_chunk(id, chunk.as_bytes());
    }
}

/// The failure as JSON; never fails (falls back to a fixed failure).
fn failure_json(failure: &Failure) -> String {
    serde_json::to_string(failure).unwrap_or_else(|_| {
        r#"{"code":"invalid_input","message":"unprintable failure","hint":"","errors":[]}"#
            .to_owned()
    })
}

/// The extension module.
#[pymodule]
#[pyo3(name = "_native")]
fn native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(call, m)?)?;
    m.add_class::<Engine>()?;
    m.add("CoreFailure", m.py().get_type::<CoreFailure>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("LARGE_BODY_BYTES", ffi::LARGE_BODY_BYTES)?;
    Ok(())
}
