//! The reconcile planner (docs/contract.md §5): from observed Lambda, Consul and
//! Parameter Store state to a deterministic, ordered plan of decisions (each
//! lowered to its request by [`crate::lower`]).
//!
//! Safety rules, in the order they apply:
//! - a function whose tags or ARN are wrong, that failed to load, or that conflicts
//!   with another source is *frozen*: nothing it owns is changed;
//! - only services on our node carrying the managed tag, inside the configured
//!   datacenter and partitions, are ever deregistered;
//! - a service-defaults entry is ours only if it carries the Lambda extension with an
//!   ARN of our account and region;
//! - nothing is deleted on behalf of a function that may exist but was not listed
//!   (incomplete inventory), and a deletion caused only by absence from a listing
//!   carries `confirmAbsent` until the host has confirmed it with `ListTags`;
//! - a full sync that would deregister more than half of more than ten managed
//!   services deletes nothing unless the configuration allows it.
//!
//! The planner's parts, in the order a plan is made ([`plan`] → `draft::draft`):
//! - `observed`: the Consul scopes read into one record per service (what we may
//!   manage, what we must not touch);
//! - `functions`: the evaluated functions — which are listed, frozen, confirmed
//!   absent, and the names frozen ones keep;
//! - `wanted`: the services the managed functions want (alias services included),
//!   grouped by name with what Consul holds, and the rows that register and repair them;
//! - `conflicts`: names claimed twice or held by something not ours (§1.6, §5.3, §5.4);
//! - `ownership`: who an entry says owns a service;
//! - `trigger`: what a trigger lets the plan touch (§5.8);
//! - `unwanted`: the rows that deregister what no function wants;
//! - `safety`: incomplete inventory, confirmations, the mass-deregistration stop (§5.5–§5.7);
//! - `extension`: extension data writes and deletions (§4.5, §5.9);
//! - `rows`: a service's row, its steps and their order (§5.11), as operations;
//! - `operation`: what a plan's operation is (kind, object, content, observed index);
//! - `claims`, `planner`: the wanted services grouped by name, and the planner over them;
//! - `mesh`: the terminating-gateway and exported-services entries (docs/mesh.md);
//! - `draft`: the steps above put together, sorted and counted;
//! - `write`: the plan JSON written by hand from the rows;
//! - `key`, `hasher`, `context`: the borrowed service key, the maps' hasher, the planning context.

mod claims;
mod conflicts;
mod context;
mod draft;
mod extension;
mod functions;
mod hasher;
mod key;
mod mesh;
mod observed;
mod operation;
mod ownership;
mod planner;
mod rows;
mod safety;
mod trigger;
mod unwanted;
mod wanted;
mod write;

use crate::config::{Config, ConfigInput};
use crate::consul::{CaRoots, Leaf, NodeServices, ServiceDefaults, ServiceKey, SsmParameter};
use crate::error::{Code, Diagnostic, Failure};
use crate::event::Trigger;
use crate::mesh::{MeshEntryKind, MeshItem};
use crate::tags::{FunctionStatus, LambdaFunction};
use claims::AliasServices;
use context::Ctx;
use draft::Draft;
use functions::evaluate_functions;
pub use operation::{Action, LambdaArgs, Operation, OperationKind, ParameterWrite};
use serde::{Deserialize, Serialize};

/// Everything the planner needs: configuration, trigger and observed state.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanInput {
    /// The configuration (typed form).
    #[serde(default)]
    pub config: ConfigInput,
    /// What to reconcile (default: a full sync).
    #[serde(default)]
    pub trigger: Trigger,
    /// The observed Lambda functions.
    pub inventory: Inventory,
    /// The observed Consul state.
    #[serde(default)]
    pub consul: ConsulState,
    /// The observed extension data state, when extension data is enabled.
    #[serde(default)]
    pub extension_data: Option<ExtensionDataState>,
    /// The observed mesh config entries, when mesh wiring is enabled (docs/mesh.md).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mesh: Vec<ObservedMeshEntry>,
}

/// A mesh config entry as observed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedMeshEntry {
    /// The entry's kind.
    pub kind: MeshEntryKind,
    /// The partition it was read in (Enterprise).
    #[serde(default)]
    pub partition: Option<String>,
    /// `GET /v1/config/:kind/:name` as Consul answered it; `null`: not found (404).
    #[serde(default)]
    pub entry: Option<serde_json::Value>,
}

/// A change to a mesh config entry: the plan's row for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct MeshChange {
    /// The entry's kind.
    pub kind: MeshEntryKind,
    /// The entry's name (the gateway; the partition for exported services).
    pub name: String,
    /// The partition (Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// `create` or `update`.
    pub change: Change,
    /// Managed services listed (for exported services: or given a configured consumer).
    pub add: Vec<MeshItem>,
    /// Items an earlier version listed, exactly as the registrator writes them,
    /// now recorded as the registrator's (in the entry's `Meta`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopt: Vec<MeshItem>,
    /// Deregistered services taken out.
    pub remove: Vec<MeshItem>,
    /// Why.
    pub reason: String,
}

fn yes() -> bool {
    true
}

/// The observed Lambda functions of one account and region.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Inventory {
    /// The registrator's AWS account.
    pub account_id: String,
    /// The registrator's AWS region.
    pub region: String,
    /// Whether the listing covered every function (no page failed).
    #[serde(default = "yes")]
    pub complete: bool,
    /// The tagged functions.
    #[serde(default)]
    pub functions: Vec<LambdaFunction>,
    /// Functions that could not be loaded; their Consul state is left as it is.
    #[serde(default)]
    pub failed: Vec<FailedFunction>,
    /// Function ARNs that `ListTags` confirmed do not exist.
    #[serde(default)]
    pub confirmed_absent: Vec<String>,
    /// Alias ARNs (`FUNCTION_ARN:ALIAS`) that `ListAliases` confirmed do not exist:
    /// their alias services are not created (docs/contract.md §5.3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing_aliases: Vec<String>,
}

/// A function that could not be loaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FailedFunction {
    /// The function's ARN.
    pub arn: String,
    /// What went wrong.
    #[serde(default)]
    pub error: String,
}

/// The observed Consul state: raw responses per datacenter and partition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsulState {
    /// The agent's own datacenter (`/v1/agent/self` → `Config.Datacenter`).
    #[serde(default)]
    pub local_datacenter: Option<String>,
    /// One entry per datacenter (and partition) observed.
    #[serde(default)]
    pub scopes: Vec<ConsulScope>,
    /// Wanted names that Consul also has on nodes other than the registrator's,
    /// in any datacenter: their functions are refused (docs/contract.md §5.3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub elsewhere: Vec<NameElsewhere>,
}

/// A service name Consul has on a node other than the registrator's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NameElsewhere {
    /// The service name.
    pub name: String,
    /// Its namespace (Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Its partition (Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The datacenter it was found in.
    pub datacenter: String,
    /// The nodes it is on (the first few; empty when the token may not read them).
    #[serde(default)]
    pub nodes: Vec<String>,
}

/// The raw Consul responses for one datacenter and partition.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConsulScope {
    /// The datacenter (`None`: the agent's own).
    #[serde(default)]
    pub datacenter: Option<String>,
    /// The partition (Enterprise).
    #[serde(default)]
    pub partition: Option<String>,
    /// `GET /v1/catalog/node-services/:node?ns=*` (`null` when the node does not exist).
    #[serde(default)]
    pub node_services: Option<NodeServices>,
    /// `GET /v1/config/service-defaults?ns=*`.
    #[serde(default)]
    pub service_defaults: Option<Vec<ServiceDefaults>>,
}

/// The observed extension data state.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtensionDataState {
    /// `GET /v1/agent/connect/ca/roots`.
    #[serde(default)]
    pub roots: Option<CaRoots>,
    /// `GET /v1/agent/connect/ca/leaf/:service`, one per wanted service.
    #[serde(default)]
    pub leaves: Vec<Leaf>,
    /// `GetParametersByPath` (recursive, decrypted) under the prefix.
    #[serde(default)]
    pub parameters: Vec<SsmParameter>,
    /// The cluster peers the extension data names (`GET /v1/peerings`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<crate::consul::PeerData>,
}

/// The kind of change a service undergoes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum Change {
    /// Registered for the first time.
    Create,
    /// Repaired or changed.
    Update,
    /// Deregistered.
    Delete,
    /// Already as wanted.
    Unchanged,
}

impl Change {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Create => "create",
            Change::Update => "update",
            Change::Delete => "delete",
            Change::Unchanged => "unchanged",
        }
    }
}

/// One row of the plan's table: a service and its change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServiceChange {
    /// The service.
    pub service: ServiceKey,
    /// Its change.
    pub change: Change,
    /// The function (ARN) it invokes or belonged to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Why.
    pub reason: String,
}

/// A function the plan does not register, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Skip {
    /// The function's ARN.
    pub function: String,
    /// `disabled` or `skipped`.
    pub status: FunctionStatus,
    /// Why.
    pub reason: String,
}

/// An observed Consul object the plan leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Ignored {
    /// The service, when one is concerned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<ServiceKey>,
    /// Why it is left alone.
    pub reason: String,
}

/// Operations that wait for `ListTags` to confirm that a function is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Confirmation {
    /// The function's ARN.
    pub function: String,
    /// The services whose operations (deletion, or take-over of the name) wait for it.
    pub services: Vec<String>,
}

/// Counts of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Services to create.
    pub create: usize,
    /// Services to update.
    pub update: usize,
    /// Services to delete.
    pub delete: usize,
    /// Services already as wanted.
    pub unchanged: usize,
    /// Operations.
    pub operations: usize,
    /// Errors.
    pub errors: usize,
    /// Warnings.
    pub warnings: usize,
    /// Functions skipped or disabled.
    pub skipped: usize,
}

/// The plan: what to do, in order, and everything worth saying about it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// The steps, in execution order.
    pub operations: Vec<Operation>,
    /// One row per service considered.
    pub services: Vec<ServiceChange>,
    /// Per-function and plan-wide errors.
    pub errors: Vec<Diagnostic>,
    /// Warnings.
    pub warnings: Vec<Diagnostic>,
    /// Functions not registered, with reasons.
    pub skips: Vec<Skip>,
    /// Observed objects left alone, with reasons.
    pub ignored: Vec<Ignored>,
    /// Operations (deletions and take-overs) that wait for `ListTags`, by function.
    pub confirmations: Vec<Confirmation>,
    /// Counts.
    pub summary: Summary,
    /// Changes to mesh config entries (terminating gateway, exported services).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mesh: Vec<MeshChange>,
}

/// Parses plan input from JSON text and plans.
pub fn plan_json(input: &str) -> Result<Plan, Failure> {
    let input: PlanInput =
        serde_json::from_str(input).map_err(|e| Failure::input("plan input", &e))?;
    plan(&input)
}

/// Parses plan input from JSON text, plans, and returns the plan as JSON text:
/// the same text as `serde_json::to_string(&plan_json(input)?)`, written straight
/// from the planner's working state (what `ffi::call("plan", …)` returns).
pub fn plan_json_text(input: &str) -> Result<String, Failure> {
    let input: PlanInput =
        serde_json::from_str(input).map_err(|e| Failure::input("plan input", &e))?;
    plan_to_json(&input)
}

/// Plans and returns the plan as JSON text: the same text as
/// `serde_json::to_string(&plan(input)?)`, written straight from the planner's
/// working state without building the [`Plan`].
pub fn plan_to_json(input: &PlanInput) -> Result<String, Failure> {
    let config = validated(&input.config)?;
    with_draft(&config, input, |draft| {
        draft.write_json().map_err(|e| Failure::input("output", &e))
    })?
}

/// The counts of the plan, without building or writing the plan itself (the
/// benchmarks time planning alone with it).
pub fn plan_summary(input: &PlanInput) -> Result<Summary, Failure> {
    let config = validated(&input.config)?;
    with_draft(&config, input, |draft| draft.rest.summary.clone())
}

/// Computes the plan; `input.config` is validated first.
pub fn plan(input: &PlanInput) -> Result<Plan, Failure> {
    plan_with(&validated(&input.config)?, input)
}

/// Computes the plan with a configuration already validated (`input.config` is
/// not read): what the sync engine does on every (re-)plan.
pub fn plan_with(config: &Config, input: &PlanInput) -> Result<Plan, Failure> {
    with_draft(config, input, |draft| draft.to_plan())
}

fn validated(config: &ConfigInput) -> Result<Config, Failure> {
    config
        .validate()
        .map_err(|errors| Failure::many(Code::InvalidConfig, "invalid configuration", errors))
}

/// Plans, and hands the draft to `finish`.
fn with_draft<R>(
    config: &Config,
    input: &PlanInput,
    finish: impl FnOnce(&Draft<'_>) -> R,
) -> Result<R, Failure> {
    let inv = &input.inventory;
    if inv.account_id.len() != 12 || !inv.account_id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Diagnostic::new(
            Code::InvalidInput,
            "inventory.accountId must be the 12-digit AWS account of the registrator",
            "pass the account ID from STS GetCallerIdentity or the Lambda context",
        )
        .key("inventory.accountId")
        .value(&inv.account_id)
        .into());
    }
    if inv.region.is_empty() {
        return Err(Diagnostic::new(
            Code::InvalidInput,
            "inventory.region must be the registrator's AWS region",
            "pass AWS_REGION",
        )
        .key("inventory.region")
        .into());
    }
    let ctx = Ctx {
        config,
        account: &inv.account_id,
        region: &inv.region,
        local_dc: input.consul.local_datacenter.as_deref(),
    };
    let reports = evaluate_functions(&ctx, inv);
    let aliases = AliasServices::new(&reports);
    Ok(finish(&draft::draft(&ctx, input, &reports, &aliases)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Tier;

    /// The names written by hand are the serde names.
    #[test]
    fn names_are_the_serde_names() {
        let json = |v: &dyn erased::Json| v.json();
        for c in [
            Change::Create,
            Change::Update,
            Change::Delete,
            Change::Unchanged,
        ] {
            assert_eq!(json(&c), format!("\"{}\"", c.as_str()));
        }
        for k in [
            OperationKind::UpsertConfigEntry,
            OperationKind::RegisterService,
            OperationKind::PutExtensionData,
            OperationKind::DeregisterService,
            OperationKind::DeleteConfigEntry,
            OperationKind::DeleteExtensionData,
            OperationKind::UpdateTerminatingGateway,
            OperationKind::UpdateExportedServices,
        ] {
            assert_eq!(json(&k), format!("\"{}\"", k.as_str()));
        }
        for t in [Tier::Standard, Tier::Advanced, Tier::IntelligentTiering] {
            assert_eq!(json(&t), format!("\"{}\"", t.as_str()));
        }
    }

    mod erased {
        pub(super) trait Json {
            fn json(&self) -> String;
        }
        impl<T: serde::Serialize> Json for T {
            fn json(&self) -> String {
                serde_json::to_string(self).unwrap_or_default()
            }
        }
    }
}
