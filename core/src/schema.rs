//! The JSON shapes of the API as JSON Schema (feature `schema`, not a default
//! feature), read by `tools/gen-types` to generate the TypeScript declarations
//! (`bindings/node/types.d.ts`) and the Python TypedDicts
//! (`bindings/python/python/consul_lambda_sync/_types.py`).
//!
//! [`register`] is the one list of root types: a type registered here, and every
//! type it refers to, is declared in both languages. To add a shape, derive
//! `schemars::JsonSchema` behind the feature next to its serde derive —
//! `#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]` — register it
//! below as an output (written by the core) or an input (read by the core), then
//! run `cargo run -p gen-types` and commit the generated files.

use crate::error::{Code, Diagnostic, Failure};
use crate::ffi::ErrorCodeInfo;
use crate::{aws, config, consul, doctor, engine, event, extension, plan, tags};
use schemars::JsonSchema;

/// Receives the root types of the API.
pub trait Registry {
    /// A type the core writes: its serialize shape (a field skipped when empty
    /// is an optional key; an `Option` field always written may be `null`).
    fn output<T: JsonSchema>(&mut self);
    /// A type the core reads: its deserialize shape (a field with a default is
    /// an optional key; an `Option` field may be `null` or absent). When the same
    /// type is also an output with another shape, its input shape is named
    /// `<Name>Input`.
    fn input<T: JsonSchema>(&mut self);
}

/// Registers every root type of the API, in the order they are declared.
pub fn register(r: &mut impl Registry) {
    // Errors.
    r.output::<Code>();
    r.output::<ErrorCodeInfo>();
    r.output::<Diagnostic>();
    r.output::<Failure>();
    // Configuration.
    r.input::<config::ConfigInput>();
    r.output::<config::Config>();
    // Tags and functions.
    r.input::<tags::TagOptions>();
    r.output::<tags::TagReport>();
    r.output::<tags::LambdaFunction>();
    r.input::<tags::LambdaFunction>();
    r.output::<tags::FunctionReport>();
    r.output::<aws::FunctionPage>();
    // Events.
    r.output::<event::Trigger>();
    // Plans.
    r.input::<plan::PlanInput>();
    r.output::<plan::Plan>();
    r.output::<crate::lower::preview::RequestPreviewSchema>();
    r.input::<crate::lower::LowerInput>();
    r.input::<consul::ExtensionDataInput>();
    r.output::<consul::PutParameter>();
    // The sync engine.
    r.input::<engine::Start>();
    r.output::<engine::wire::Step>();
    r.input::<engine::wire::Answer>();
    // A plan file is what a dry run wrote (the output shape).
    r.output::<engine::review::ReviewedPlan>();
    // The doctor's report (the result's `doctor`; the hosts' `doctor()` returns it).
    r.output::<doctor::DoctorReport>();
    // The Lambda extension (docs/contract.md §12).
    r.output::<extension::ExtensionSettings>();
    r.output::<extension::Upstream>();
    r.input::<crate::ffi::TargetInput>();
    r.output::<extension::DialTarget>();
    r.output::<extension::data::ExtensionDataSummary>();
    r.input::<extension::data::PeerInput>();
    r.output::<extension::PeerData>();
}
