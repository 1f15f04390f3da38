//! # consul-lambda-sync core
//!
//! The pure heart of consul-lambda-sync, and its sync engine. It reads Lambda
//! function tags and the registrator's configuration, classifies EventBridge
//! events, plans — decisions ([`plan::Operation`]: a kind, an object, the content
//! wanted, the index observed), lowered to typed requests in one place
//! ([`lower`]) — and drives a whole invocation sans-IO ([`engine::Engine`]: each
//! `next(now, remaining)` yields the requests to carry, a sleep or the result;
//! `feed(answers, now)` takes what came back). It does no I/O, reads no clock, no
//! randomness and no environment: hosts (Python, Node, the Rust Lambda extension)
//! only carry requests; the browser plans and previews.
//!
//! The parts: [`tags`], [`config`], [`event`] (inputs); [`plan`] (the reconcile
//! rules, docs/contract.md §5); [`lower`] (the wire: methods, paths, bodies);
//! [`engine`] (observe → plan → execute or review → finish, retries with a shared
//! budget, the doctor); [`consul`], [`aws`], [`mesh`] (answers and entries);
//! [`extension`] (the Lambda extension's pure parts, §12); [`text`] (escaping
//! what came from outside); [`error`] (stable codes, errors as data).
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
#[cfg(feature = "sigv4")]
pub mod sigv4;
pub mod tags;
pub mod text;

pub use config::{config_from_env, config_from_input, Config, ConfigInput};
#[cfg(feature = "engine")]
pub use engine::{doctor, Engine};
pub use error::{Code, Diagnostic, Failure};
pub use event::{classify_event, Trigger};
pub use plan::{plan, plan_json, Plan, PlanInput};
pub use tags::{evaluate_function, parse_tags, tags_from_options, LambdaFunction, TagOptions};
