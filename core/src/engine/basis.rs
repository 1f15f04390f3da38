//! What a plan was computed from ([`PlanBasis`]), and a reviewed plan file
//! ([`ReviewedPlan`]): the data of `plan --out`; `review.rs` checks it.

use crate::consul::ServiceKey;
use crate::plan::Plan;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What kind of Consul object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum ObjectKind {
    /// A `service-defaults` config entry.
    ServiceDefaults,
    /// A service instance on the registrator's node.
    CatalogService,
}

/// A Consul object a plan touches, as it was observed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedObject {
    /// The kind.
    pub kind: ObjectKind,
    /// Where it lives; `name` is the entry name or the service ID.
    pub service: ServiceKey,
    /// Whether it existed.
    pub present: bool,
    /// Its `ModifyIndex`, when it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modify_index: Option<u64>,
}

/// A function a plan concerns, as it was observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedFunction {
    /// Its unqualified ARN.
    pub arn: String,
    /// Its tags; `None`: it was not listed.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// What a plan was computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanBasis {
    /// Every object an operation touches.
    pub objects: Vec<ObservedObject>,
    /// Every function an operation concerns.
    pub functions: Vec<ObservedFunction>,
}

/// A plan reviewed by a person: what `plan --out` writes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewedPlan {
    /// The plan.
    pub plan: Plan,
    /// What it was computed from.
    pub basis: PlanBasis,
}
