//! # consul-lambda-sync core
//!
//! The pure heart of consul-lambda-sync: it reads Lambda function tags and the
//! registrator's configuration, classifies EventBridge events, and computes the
//! reconcile plan — the exact Consul and Parameter Store requests that make Consul
//! match the tagged functions. It does no I/O, reads no clock and no environment;
//! hosts (Python, Node, the browser) observe, ask this crate for a plan, and
//! execute it.
//!
//! Every input and output has one JSON shape (camelCase), defined by the types
//! here; [`ffi::call`] is the JSON API that every binding exposes unchanged.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![warn(clippy::too_many_lines)]

pub mod arn;
pub mod aws;
pub mod config;
pub mod consul;
#[cfg(feature = "engine")]
pub mod engine;
pub mod error;
pub mod event;
pub mod extension;
pub mod ffi;
mod json;
pub mod lower;
pub mod mesh;
pub mod plan;
pub mod render;
#[cfg(feature = "schema")]
pub mod schema;
pub mod tags;
pub mod text;

pub use config::{config_from_env, config_from_input, Config, ConfigInput};
#[cfg(feature = "engine")]
pub use engine::{doctor, Engine};
pub use error::{Code, Diagnostic, Failure};
pub use event::{classify_event, Trigger};
pub use plan::{plan, plan_json, Plan, PlanInput};
pub use tags::{evaluate_function, parse_tags, tags_from_options, LambdaFunction, TagOptions};
