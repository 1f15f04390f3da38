//! The reconcile planner (docs/contract.md §5): from observed Lambda, Consul and
//! Parameter Store state to a deterministic, ordered plan of exact requests.
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
//!   carries `confirmAbsent` until the host has confirmed it with `GetFunction`;
//! - a full sync that would deregister more than half of more than ten managed
//!   services deletes nothing unless the configuration allows it.

use crate::arn::{resolve_function_name, split_function_arn};
use crate::config::{Config, ConfigInput, Tier};
use crate::consul::{
    config_delete_request, config_entry_request, deregister_request, is_registrator_service_name,
    path_segment, register_request, write_deregister_body, write_entry_body, write_register_body,
    CaRoots, ExtensionData, LambdaEntryRef, Leaf, NodeServices, Request, ServiceDefaults,
    ServiceKey, SsmParameter, SsmRequest, MANAGED_TAG,
};
use crate::error::{Code, Diagnostic, Failure};
use crate::event::Trigger;
use crate::json::JsonOut;
use crate::tags::{evaluate, Evaluation, FunctionStatus, InvocationMode, LambdaFunction};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};

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
    /// Function ARNs that `GetFunction` confirmed do not exist.
    #[serde(default)]
    pub confirmed_absent: Vec<String>,
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

/// What one operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum OperationKind {
    /// `PUT /v1/config` (service-defaults).
    UpsertConfigEntry,
    /// `PUT /v1/catalog/register`.
    RegisterService,
    /// `PutParameter` of extension data.
    PutExtensionData,
    /// `PUT /v1/catalog/deregister`.
    DeregisterService,
    /// `DELETE /v1/config/service-defaults/:name`.
    DeleteConfigEntry,
    /// `DeleteParameter` of extension data.
    DeleteExtensionData,
}

impl OperationKind {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::UpsertConfigEntry => "upsertConfigEntry",
            OperationKind::RegisterService => "registerService",
            OperationKind::PutExtensionData => "putExtensionData",
            OperationKind::DeregisterService => "deregisterService",
            OperationKind::DeleteConfigEntry => "deleteConfigEntry",
            OperationKind::DeleteExtensionData => "deleteExtensionData",
        }
    }
}

/// One step of a plan, with the exact request to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// What the step does.
    pub kind: OperationKind,
    /// The service it concerns.
    pub service: ServiceKey,
    /// The service's change.
    pub change: Change,
    /// Why.
    pub reason: String,
    /// The function (ARN) the service invokes or belonged to, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// When set, run the step only after `GetFunction` on this ARN says it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_absent: Option<String>,
    /// For extension data: the serial of the leaf certificate to store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leaf_serial: Option<String>,
    /// The request.
    pub request: Request,
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

/// Operations that wait for `GetFunction` to confirm that a function is gone.
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
    /// Operations (deletions and take-overs) that wait for `GetFunction`, by function.
    pub confirmations: Vec<Confirmation>,
    /// Counts.
    pub summary: Summary,
}

// ---------------------------------------------------------------------------
// Working state. The planner borrows names from its input and from the function
// reports instead of copying them, keeps one row per service (with its steps)
// rather than building every request up front, and writes the plan JSON from the
// rows directly; [`plan`] turns the same rows into an owned [`Plan`].
// ---------------------------------------------------------------------------

/// The hasher of the planner's maps: one folded multiply per 8 bytes (the mixing
/// step of FxHash and foldhash), much cheaper than the default SipHash for the
/// short names hashed here, and as evenly spread over the table for them. It is
/// not resistant to deliberately colliding keys: the keys are names from the
/// registrator's own account and Consul node (function, alias and service names,
/// which whoever can create them already controls), and collisions could only
/// slow a plan down, never change it.
#[derive(Debug, Clone, Copy)]
struct FastHasher {
    hash: u64,
}

impl Default for FastHasher {
    fn default() -> Self {
        FastHasher {
            hash: 0x24_3f_6a_88_85_a3_08_d3,
        }
    }
}

/// An odd constant with well-spread bits (FxHash's).
const MULTIPLIER: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        let product = u128::from(self.hash ^ word) * u128::from(MULTIPLIER);
        self.hash = (product as u64) ^ ((product >> 64) as u64);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            if let Ok(word) = <[u8; 8]>::try_from(chunk) {
                self.add(u64::from_le_bytes(word));
            }
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            for (w, b) in word.iter_mut().zip(rest) {
                *w = *b;
            }
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 56));
        }
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        self.hash
    }
}

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FastHasher>>;
type FxSet<K> = HashSet<K, BuildHasherDefault<FastHasher>>;

/// Where a service lives, borrowed: the planner's working form of [`ServiceKey`]
/// (same order, same JSON).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct Key<'a> {
    datacenter: Option<&'a str>,
    partition: Option<&'a str>,
    namespace: Option<&'a str>,
    name: &'a str,
}

impl<'a> Key<'a> {
    fn owned(&self) -> ServiceKey {
        ServiceKey {
            datacenter: self.datacenter.map(str::to_owned),
            partition: self.partition.map(str::to_owned),
            namespace: self.namespace.map(str::to_owned),
            name: self.name.to_owned(),
        }
    }

    /// What names the service's extension data parameter: partition, namespace, name.
    fn parameter_key(&self) -> (&'a str, &'a str, &'a str) {
        (
            self.partition.unwrap_or("default"),
            self.namespace.unwrap_or("default"),
            self.name,
        )
    }

    /// The extension data parameter name under `prefix` (as [`ServiceKey::parameter_name`]).
    fn parameter_name(&self, prefix: &str) -> String {
        let (partition, namespace, name) = self.parameter_key();
        format!("{prefix}/{partition}/{namespace}/{name}")
    }

    /// Writes the key as [`ServiceKey`] serialises.
    fn write(&self, out: &mut JsonOut) {
        out.raw("{");
        for (field, value) in [
            ("\"datacenter\":", self.datacenter),
            ("\"partition\":", self.partition),
            ("\"namespace\":", self.namespace),
        ] {
            if let Some(value) = value {
                out.raw(field);
                out.string(value);
                out.raw(",");
            }
        }
        out.raw("\"name\":");
        out.string(self.name);
        out.raw("}");
    }

    /// Writes the `query` member of a request, if any (as [`ServiceKey::query`]'s
    /// sorted map serialises: `dc`, `ns`, `partition`).
    fn write_query(&self, out: &mut JsonOut) {
        let mut sep = ",\"query\":{";
        for (field, value) in [
            ("\"dc\":", self.datacenter),
            ("\"ns\":", self.namespace),
            ("\"partition\":", self.partition),
        ] {
            if let Some(value) = value {
                out.raw(sep);
                out.raw(field);
                out.string(value);
                sep = ",";
            }
        }
        if sep == "," {
            out.raw("}");
        }
    }
}

/// Who a managed service belongs to, judged from its service-defaults entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner<'a> {
    /// A function of our account and region, by name.
    Ours(&'a str),
    /// A function of another account or region (its unqualified ARN).
    Elsewhere(String),
    /// Unknown: no entry, or an entry without a readable ARN.
    Unknown,
    /// The entry is not a Lambda entry.
    NotLambda,
}

/// A service-defaults entry as the planner reads it.
#[derive(Debug, Clone, Copy)]
enum View<'a> {
    /// Not a Lambda entry.
    Foreign,
    /// A Lambda entry.
    Lambda(LambdaEntryRef<'a>),
}

#[derive(Debug, Default)]
struct Observed<'a> {
    /// The service ID of the managed catalog instance on our node.
    catalog: Option<&'a str>,
    /// The service-defaults entry.
    entry: Option<View<'a>>,
    /// Whether an instance without the managed tag holds the name on our node
    /// (then it is not ours, even if a managed instance exists too).
    unmanaged: bool,
    /// Whether a function wants the service (then it is never deregistered).
    wanted: Cell<bool>,
}

/// A service a function wants.
struct Desired<'a> {
    /// The ARN it invokes.
    arn: &'a str,
    report: &'a Evaluation<'a>,
}

/// A wanted name: who claims it, and what Consul holds under it.
struct Group<'g, 'a> {
    claims: &'g [(Key<'a>, Desired<'a>)],
    observed: Option<&'g Observed<'a>>,
    owner: Owner<'a>,
}

/// Why a service changes; the common sentences are written out only when the
/// plan is.
enum Reason<'a> {
    Text(Cow<'a, str>),
    /// `function NAME is enabled and not registered`.
    NotRegistered(&'a str),
    /// `function NAME no longer wants this service (…)`.
    Unwanted(&'a str),
    /// `function NAME no longer exists`.
    Gone(&'a str),
}

impl std::fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Text(t) => f.write_str(t),
            Reason::NotRegistered(name) => {
                write!(f, "function {name} is enabled and not registered")
            }
            Reason::Unwanted(name) => write!(f, "function {name} no longer wants this service (disabled, untagged, alias removed, or moved)"),
            Reason::Gone(name) => write!(f, "function {name} no longer exists"),
        }
    }
}

impl Reason<'_> {
    /// The length of the text (without escapes).
    fn len(&self) -> usize {
        match self {
            Reason::Text(t) => t.len(),
            Reason::NotRegistered(name) => 39 + name.len(),
            Reason::Unwanted(name) => 97 + name.len(),
            Reason::Gone(name) => 26 + name.len(),
        }
    }

    /// Writes the reason as a JSON string.
    fn write(&self, out: &mut JsonOut) {
        let (before, name, after) = match self {
            Reason::Text(t) => return out.string(t),
            Reason::NotRegistered(name) => {
                ("\"function ", name, " is enabled and not registered\"")
            }
            Reason::Unwanted(name) => (
                "\"function ",
                name,
                " no longer wants this service (disabled, untagged, alias removed, or moved)\"",
            ),
            Reason::Gone(name) => ("\"function ", name, " no longer exists\""),
        };
        out.raw(before);
        out.string_content(name);
        out.raw(after);
    }
}

/// One service of the plan: its row in the table and the steps it needs.
struct Row<'a> {
    key: Key<'a>,
    change: Change,
    function: Option<Cow<'a, str>>,
    reason: Reason<'a>,
    confirm: Option<String>,
    work: Work<'a>,
}

/// The steps of one service.
enum Work<'a> {
    /// A wanted service: write its entry (ARN, mode, payload passthrough), register
    /// it, write its extension data — each when needed.
    Wanted {
        entry: Option<(&'a str, InvocationMode, bool)>,
        register: bool,
        put: Option<Put<'a>>,
    },
    /// A service no function wants: deregister it (by service ID), delete its entry
    /// if it is ours, delete its extension data parameter if one is named.
    Deleted {
        service_id: &'a str,
        entry: bool,
        parameter: Option<String>,
    },
}

/// Extension data to write.
struct Put<'a> {
    name: String,
    tier: Option<Tier>,
    key_id: Option<&'a str>,
    serial: &'a str,
}

/// One operation of a row.
#[derive(Clone, Copy)]
enum Step<'r> {
    Entry(&'r str, InvocationMode, bool),
    Register,
    Put(&'r Put<'r>),
    Deregister(&'r str),
    DeleteEntry,
    DeleteParameter(&'r str),
}

impl Step<'_> {
    /// About how long the step's operation is without its names and reason.
    fn base_len(self) -> usize {
        match self {
            Step::Entry(..) => 350,
            Step::Register => 285,
            Step::Deregister(id) => 210 + id.len(),
            Step::DeleteEntry => 185,
            Step::Put(p) => 160 + p.name.len() + p.serial.len() + p.key_id.map_or(0, str::len),
            Step::DeleteParameter(name) => 150 + name.len(),
        }
    }

    fn kind(self) -> OperationKind {
        match self {
            Step::Entry(..) => OperationKind::UpsertConfigEntry,
            Step::Register => OperationKind::RegisterService,
            Step::Put(_) => OperationKind::PutExtensionData,
            Step::Deregister(_) => OperationKind::DeregisterService,
            Step::DeleteEntry => OperationKind::DeleteConfigEntry,
            Step::DeleteParameter(_) => OperationKind::DeleteExtensionData,
        }
    }
}

impl<'a> Row<'a> {
    /// The row's operations, in execution (kind) order.
    fn steps(&self) -> impl Iterator<Item = Step<'_>> {
        let steps = match &self.work {
            Work::Wanted {
                entry,
                register,
                put,
            } => [
                entry.map(|(arn, mode, pass)| Step::Entry(arn, mode, pass)),
                register.then_some(Step::Register),
                put.as_ref().map(Step::Put),
            ],
            Work::Deleted {
                service_id,
                entry,
                parameter,
            } => [
                Some(Step::Deregister(service_id)),
                entry.then_some(Step::DeleteEntry),
                parameter.as_deref().map(Step::DeleteParameter),
            ],
        };
        steps.into_iter().flatten()
    }

    fn has_steps(&self) -> bool {
        self.steps().next().is_some()
    }

    /// Writes a step's request as [`Row::owned_request`]'s serialises.
    fn write_request(&self, out: &mut JsonOut, step: Step<'_>, node: &str) {
        let key = &self.key;
        let consul = |out: &mut JsonOut, method_path: &str| {
            out.raw("{\"target\":\"consul\",\"method\":\"");
            out.raw(method_path);
        };
        match step {
            Step::Entry(arn, mode, pass) => {
                consul(out, "PUT\",\"path\":\"/v1/config\"");
                key.write_query(out);
                out.raw(",\"body\":");
                write_entry_body(out, key.name, arn, mode, pass);
            }
            Step::Register => {
                consul(out, "PUT\",\"path\":\"/v1/catalog/register\"");
                key.write_query(out);
                out.raw(",\"body\":");
                write_register_body(out, key.name, node);
            }
            Step::Deregister(service_id) => {
                consul(out, "PUT\",\"path\":\"/v1/catalog/deregister\"");
                key.write_query(out);
                out.raw(",\"body\":");
                write_deregister_body(out, node, service_id);
            }
            Step::DeleteEntry => {
                consul(out, "DELETE\",\"path\":\"/v1/config/service-defaults/");
                out.string_content(&path_segment(key.name));
                out.raw("\"");
                key.write_query(out);
            }
            Step::Put(put) => {
                out.raw("{\"target\":\"ssm\",\"action\":\"PutParameter\",\"name\":");
                out.string(&put.name);
                if let Some(tier) = put.tier {
                    out.raw(",\"tier\":");
                    out.string(tier.as_str());
                }
                if let Some(key_id) = put.key_id {
                    out.raw(",\"keyId\":");
                    out.string(key_id);
                }
            }
            Step::DeleteParameter(name) => {
                out.raw("{\"target\":\"ssm\",\"action\":\"DeleteParameter\",\"name\":");
                out.string(name);
            }
        }
        out.raw("}");
    }

    /// A step's request, owned.
    fn owned_request(&self, step: Step<'_>, service: &ServiceKey, node: &str) -> Request {
        match step {
            Step::Entry(arn, mode, pass) => {
                Request::Consul(config_entry_request(service, arn, mode, pass))
            }
            Step::Register => Request::Consul(register_request(service, node)),
            Step::Deregister(service_id) => {
                Request::Consul(deregister_request(service, node, service_id))
            }
            Step::DeleteEntry => Request::Consul(config_delete_request(service)),
            Step::Put(put) => Request::Ssm(SsmRequest {
                action: "PutParameter".into(),
                name: put.name.clone(),
                tier: put.tier,
                key_id: put.key_id.map(str::to_owned),
            }),
            Step::DeleteParameter(name) => Request::Ssm(SsmRequest {
                action: "DeleteParameter".into(),
                name: name.to_owned(),
                tier: None,
                key_id: None,
            }),
        }
    }
}

/// A plan before it is written out: the rows (in service order) and everything
/// else of the [`Plan`] (whose `operations` and `services` are left empty).
struct Draft<'a> {
    rows: Rows<'a>,
    rest: Plan,
    node: &'a str,
}

impl Draft<'_> {
    /// Writes the plan JSON: the same text as `serde_json::to_string(&self.to_plan())`.
    fn write_json(&self) -> serde_json::Result<String> {
        // The length of the text when nothing needs escaping (about; the text
        // grows a little if this falls short).
        let estimate: usize = self
            .rows
            .rows
            .iter()
            .map(|r| {
                let key = r.key.name.len()
                    + [r.key.datacenter, r.key.partition, r.key.namespace]
                        .iter()
                        .flatten()
                        .map(|v| 2 * v.len() + 25)
                        .sum::<usize>();
                let text = key + r.function.as_deref().map_or(0, str::len) + r.reason.len();
                let per_step = 2 * key + text + r.confirm.as_deref().map_or(0, str::len);
                let steps: usize = r.steps().map(|s| s.base_len() + per_step).sum();
                steps + 65 + text
            })
            .sum();
        let mut out = JsonOut::with_capacity(estimate);
        out.raw("{\"operations\":[");
        let mut sep = "";
        for row in self.rows.ordered() {
            for step in row.steps() {
                out.raw(sep);
                sep = ",";
                out.raw("{\"kind\":\"");
                out.raw(step.kind().as_str());
                out.raw("\",\"service\":");
                row.key.write(&mut out);
                out.raw(",\"change\":\"");
                out.raw(row.change.as_str());
                out.raw("\",\"reason\":");
                row.reason.write(&mut out);
                for (field, value) in [
                    (",\"function\":", row.function.as_deref()),
                    (",\"confirmAbsent\":", row.confirm.as_deref()),
                    (
                        ",\"leafSerial\":",
                        match step {
                            Step::Put(p) => Some(p.serial),
                            _ => None,
                        },
                    ),
                ] {
                    if let Some(value) = value {
                        out.raw(field);
                        out.string(value);
                    }
                }
                out.raw(",\"request\":");
                row.write_request(&mut out, step, self.node);
                out.raw("}");
            }
        }
        out.raw("],\"services\":[");
        let mut sep = "";
        for row in self.rows.ordered() {
            out.raw(sep);
            sep = ",";
            out.raw("{\"service\":");
            row.key.write(&mut out);
            out.raw(",\"change\":\"");
            out.raw(row.change.as_str());
            out.raw("\"");
            if let Some(function) = row.function.as_deref() {
                out.raw(",\"function\":");
                out.string(function);
            }
            out.raw(",\"reason\":");
            row.reason.write(&mut out);
            out.raw("}");
        }
        let p = &self.rest;
        out.raw("],\"errors\":");
        out.value(&p.errors)?;
        out.raw(",\"warnings\":");
        out.value(&p.warnings)?;
        out.raw(",\"skips\":");
        out.value(&p.skips)?;
        out.raw(",\"ignored\":");
        out.value(&p.ignored)?;
        out.raw(",\"confirmations\":");
        out.value(&p.confirmations)?;
        out.raw(",\"summary\":");
        out.value(&p.summary)?;
        out.raw("}");
        Ok(out.finish())
    }

    fn to_plan(&self) -> Plan {
        let mut plan = self.rest.clone();
        let mut operations = Vec::with_capacity(plan.summary.operations);
        let mut services = Vec::with_capacity(self.rows.rows.len());
        for row in self.rows.ordered() {
            let service = row.key.owned();
            let function = row.function.as_deref().map(str::to_owned);
            let reason = row.reason.to_string();
            for step in row.steps() {
                operations.push(Operation {
                    kind: step.kind(),
                    service: service.clone(),
                    change: row.change,
                    reason: reason.clone(),
                    function: function.clone(),
                    confirm_absent: row.confirm.clone(),
                    leaf_serial: match step {
                        Step::Put(p) => Some(p.serial.to_owned()),
                        _ => None,
                    },
                    request: row.owned_request(step, &service, self.node),
                });
            }
            services.push(ServiceChange {
                service,
                change: row.change,
                function,
                reason,
            });
        }
        plan.operations = operations;
        plan.services = services;
        plan
    }
}

struct Ctx<'a> {
    config: Config,
    account: &'a str,
    region: &'a str,
    local_dc: Option<&'a str>,
}

impl<'a> Ctx<'a> {
    fn owner<'e>(&self, entry: Option<&View<'e>>) -> Owner<'e> {
        match entry {
            None => Owner::Unknown,
            Some(View::Foreign) => Owner::NotLambda,
            Some(View::Lambda(l)) => match l.arn.map(split_function_arn) {
                Some(Ok(a)) if a.is_in(self.account, self.region) => Owner::Ours(a.name),
                Some(Ok(a)) => Owner::Elsewhere(a.to_arn().unqualified().to_string()),
                _ => Owner::Unknown,
            },
        }
    }

    /// The datacenter of a wanted service: its tag, else `DATACENTER`, else the agent's.
    fn datacenter<'s>(&'s self, explicit: Option<&'s str>) -> Option<&'s str> {
        explicit
            .or(self.config.datacenter.as_deref())
            .or(self.local_dc)
    }

    /// The datacenter a Consul scope was read from: a scope without one is the agent's
    /// own, which is `DATACENTER` only when the agent's datacenter is unknown.
    fn scope_datacenter<'s>(&'s self, explicit: Option<&'s str>) -> Option<&'s str> {
        explicit
            .or(self.local_dc)
            .or(self.config.datacenter.as_deref())
    }

    /// A warning when `value` (an ARN, a partial ARN or a name, at `key` of the
    /// input) names a function of another account or region: such a function is
    /// ignored, never a reason to change or delete anything of ours.
    fn foreign(&self, value: &str, key: &str) -> Option<Diagnostic> {
        let (account, region) = match split_function_arn(value) {
            Ok(a) => (a.account.to_owned(), a.region.to_owned()),
            Err(_) => {
                let a = resolve_function_name(value, self.account, self.region).ok()?;
                (a.account, a.region)
            }
        };
        if account == self.account && region == self.region {
            return None;
        }
        Some(
            Diagnostic::new(
                Code::ForeignFunction,
                format!(
                    "function {} is in account {account} region {region}, not the registrator's {} {}; it is ignored",
                    crate::error::clip(value),
                    self.account,
                    self.region
                ),
                "each registrator manages the functions of its own account and region; route only those events to it",
            )
            .key(key)
            .value(value)
            .function(value.to_owned()),
        )
    }

    /// Why a single-function trigger must be ignored, if it must: its ARN names a
    /// function of another account or region, is not an ARN, or names another function.
    fn trigger_problem(&self, arn: &str, name: &str) -> Option<Diagnostic> {
        if let Some(foreign) = self.foreign(arn, "trigger.arn") {
            return Some(foreign);
        }
        match resolve_function_name(arn, self.account, self.region) {
            Ok(a) if a.name == name => None,
            Ok(_) => Some(
                Diagnostic::new(
                    Code::InvalidInput,
                    "the trigger's name is not the name in its ARN",
                    "pass the trigger that classifyEvent returns",
                )
                .key("trigger.name")
                .value(name),
            ),
            Err(d) => Some(d.key("trigger.arn")),
        }
    }

    fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{name}",
            crate::arn::partition_of_region(self.region),
            self.region,
            self.account
        )
    }
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
    with_draft(input, |draft| {
        draft.write_json().map_err(|e| Failure::input("output", &e))
    })?
}

/// The counts of the plan, without building or writing the plan itself (the
/// benchmarks time planning alone with it).
pub fn plan_summary(input: &PlanInput) -> Result<Summary, Failure> {
    with_draft(input, |draft| draft.rest.summary.clone())
}

/// Computes the plan.
pub fn plan(input: &PlanInput) -> Result<Plan, Failure> {
    with_draft(input, |draft| draft.to_plan())
}

/// Plans, and hands the draft to `finish`.
fn with_draft<R>(input: &PlanInput, finish: impl FnOnce(&Draft<'_>) -> R) -> Result<R, Failure> {
    let config = input
        .config
        .validate()
        .map_err(|errors| Failure::many(Code::InvalidConfig, "invalid configuration", errors))?;
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
    Ok(finish(&draft(&ctx, input, &reports, &aliases)))
}

/// Evaluates every function once, in ARN order; a function listed twice with
/// different tags is invalid.
fn evaluate_functions<'a>(ctx: &'a Ctx<'a>, inv: &'a Inventory) -> Vec<Evaluation<'a>> {
    let mut functions: Vec<&LambdaFunction> = inv.functions.iter().collect();
    functions.sort_by(|a, b| a.arn.cmp(&b.arn).then_with(|| a.tags.cmp(&b.tags)));
    functions.dedup_by(|a, b| a.arn == b.arn && a.tags == b.tags);
    let mut reports: Vec<Evaluation<'a>> = Vec::with_capacity(functions.len());
    for f in functions {
        let mut report = evaluate(f, &ctx.config);
        if report.errors.is_empty() {
            if let Ok(arn) = split_function_arn(&report.arn) {
                if !arn.is_in(ctx.account, ctx.region) {
                    report.status = FunctionStatus::Invalid;
                    report.errors.push(
                        Diagnostic::new(
                            Code::InvalidArn,
                            format!("the function is in account {} region {}, not the inventory's {} {}", arn.account, arn.region, ctx.account, ctx.region),
                            "list only the functions of the registrator's own account and region",
                        )
                        .key("arn")
                        .value(&report.arn)
                        .function(report.arn.to_string()),
                    );
                }
            }
        }
        if reports
            .last()
            .is_some_and(|prev: &Evaluation<'_>| prev.arn == report.arn)
        {
            let d = Diagnostic::new(
                Code::InvalidInput,
                "the function is listed twice with different tags",
                "list each function once",
            )
            .key("arn")
            .value(&report.arn)
            .function(report.arn.to_string());
            if let Some(prev) = reports.last_mut() {
                prev.status = FunctionStatus::Invalid;
                prev.errors.push(d);
            }
            continue;
        }
        reports.push(report);
    }
    reports
}

/// The names and ARNs of the alias services of the managed functions
/// (`NAME-ALIAS`, `ARN:ALIAS`), written into one buffer, in function order.
struct AliasServices {
    text: String,
    /// Where each name starts, where its ARN starts, and where the ARN ends.
    spans: Vec<[usize; 3]>,
}

impl AliasServices {
    fn new(reports: &[Evaluation<'_>]) -> Self {
        let managed = || {
            reports
                .iter()
                .filter(|r| r.status == FunctionStatus::Managed)
                .flat_map(|r| r.settings.aliases().map(move |alias| (r, alias)))
        };
        let (count, len) = managed().fold((0, 0), |(n, len), (r, alias)| {
            (
                n + 1,
                len + r.name.len() + r.arn.len() + 2 * (alias.len() + 1),
            )
        });
        let mut text = String::with_capacity(len);
        let mut spans = Vec::with_capacity(count);
        for (r, alias) in managed() {
            let start = text.len();
            for part in [&*r.name, "-", alias] {
                text.push_str(part);
            }
            let mid = text.len();
            for part in [&*r.arn, ":", alias] {
                text.push_str(part);
            }
            spans.push([start, mid, text.len()]);
        }
        AliasServices { text, spans }
    }
}

/// The planner proper, over the evaluated functions.
fn draft<'a>(
    ctx: &'a Ctx<'a>,
    input: &'a PlanInput,
    reports: &'a [Evaluation<'a>],
    aliases: &'a AliasServices,
) -> Draft<'a> {
    let inv = &input.inventory;
    let mut out = Plan::default();
    let node = ctx.config.node_name.as_str();

    // Settings that weaken security are said in every plan.
    out.warnings.extend(ctx.config.warnings.iter().cloned());

    // 1. Consul: what we manage, what we must not touch.
    let observed = observe_consul(ctx, &input.consul, &mut out);

    // 2. Lambda: functions by name; frozen ones keep their Consul state exactly as it is.
    let mut known: FxSet<&str> = FxSet::default();
    known.reserve(reports.len());
    let mut frozen: FxSet<&str> = FxSet::default();
    for r in reports {
        known.insert(&r.name);
        match r.status {
            FunctionStatus::Invalid => {
                frozen.insert(&r.name);
            }
            FunctionStatus::Disabled | FunctionStatus::Skipped => out.skips.push(Skip {
                function: r.arn.to_string(),
                status: r.status,
                reason: r.reason.clone().unwrap_or_default(),
            }),
            FunctionStatus::Managed => {}
        }
        // A disabled function with a bad tag is frozen too: a bad value leaves the
        // function's Consul state exactly as it is (docs/contract.md §1.4).
        if !r.errors.is_empty() {
            frozen.insert(&r.name);
        }
        out.errors.extend(r.errors.iter().cloned());
        out.warnings.extend(r.warnings.iter().cloned());
    }
    let mut failed_names: Vec<&str> = Vec::with_capacity(inv.failed.len());
    for f in &inv.failed {
        if let Some(foreign) = ctx.foreign(&f.arn, "inventory.failed") {
            out.warnings.push(foreign);
            continue;
        }
        let name = split_function_arn(&f.arn).map_or(f.arn.as_str(), |a| a.name);
        failed_names.push(name);
        out.errors.push(
            Diagnostic::new(
                Code::FunctionLoadFailed,
                format!(
                    "the function could not be loaded ({}); its Consul state is left as it is",
                    crate::error::clip(&f.error)
                ),
                "the next sync retries it",
            )
            .function(f.arn.clone()),
        );
        frozen.insert(name);
    }
    // Only functions of our account and region can be confirmed absent: `GetFunction`
    // says nothing about ours when asked about another region's function of the same
    // name. A name or partial ARN means ours (as `DeleteFunction` events do).
    let mut confirmed_absent: FxSet<&str> = FxSet::default();
    for a in &inv.confirmed_absent {
        if let Some(foreign) = ctx.foreign(a, "inventory.confirmedAbsent") {
            out.warnings.push(foreign);
        } else if let Ok(parts) = split_function_arn(a) {
            confirmed_absent.insert(parts.name);
        } else if let Ok(arn) = resolve_function_name(a, ctx.account, ctx.region) {
            if let Some(name) = a.rsplit(':').find(|part| *part == arn.name) {
                confirmed_absent.insert(name);
            }
        }
    }
    // The names a frozen function would register stay its own: another function that
    // wants one conflicts with it, as it would if the function were valid.
    let mut reserved: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for r in reports.iter().filter(|r| frozen.contains(&*r.name)) {
        reserved
            .entry(r.name.to_string())
            .or_default()
            .insert(&r.name);
        for alias in r.settings.aliases() {
            reserved
                .entry(format!("{}-{alias}", r.name))
                .or_default()
                .insert(&r.name);
        }
    }
    for name in &failed_names {
        reserved.entry((*name).to_owned()).or_default().insert(name);
    }

    // 3. Desired services, in service order (claimants of one name in ARN order);
    // two sources of one name conflict and both freeze.
    let managed = || {
        reports
            .iter()
            .filter(|r| r.status == FunctionStatus::Managed)
    };
    let mut claims: Vec<(Key<'a>, Desired<'a>)> =
        Vec::with_capacity(managed().count() + aliases.spans.len());
    let mut alias_spans = aliases.spans.iter();
    for r in managed() {
        let start = claims.len();
        let key = |name| Key {
            datacenter: ctx.datacenter(r.datacenter),
            partition: r.partition,
            namespace: r.namespace,
            name,
        };
        claims.push((
            key(&r.name),
            Desired {
                arn: &r.arn,
                report: r,
            },
        ));
        for _ in r.settings.aliases() {
            let Some(&[a, b, c]) = alias_spans.next() else {
                break;
            };
            let text = |range| aliases.text.get(range).unwrap_or_default();
            claims.push((
                key(text(a..b)),
                Desired {
                    arn: text(b..c),
                    report: r,
                },
            ));
        }
        // Each function's names in order, so that the list is mostly in order.
        if let Some(own) = claims.get_mut(start..) {
            own.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }
    sort_by_key_stable(&mut claims, &mut [0]);
    // Each name with its claimants and what Consul holds for it (both lists are
    // sorted by key: one pass over each).
    let mut held = observed.iter().peekable();
    let groups: Vec<Group<'_, 'a>> = claims
        .chunk_by(|a, b| a.0 == b.0)
        .map(|claims| {
            let observed = claims.first().and_then(|(key, _)| {
                while held.next_if(|(k, _)| k < key).is_some() {}
                held.next_if(|(k, _)| k == key).map(|(_, o)| o)
            });
            // A conflicted name is still wanted: it must not be deregistered as an orphan.
            if let Some(o) = observed {
                o.wanted.set(true);
            }
            let owner = ctx.owner(observed.and_then(|o| o.entry.as_ref()));
            Group {
                claims,
                observed,
                owner,
            }
        })
        .collect();
    let mut conflicts: Vec<Diagnostic> = Vec::new();
    for Group { claims: group, .. } in &groups {
        if group.len() > 1 {
            let arns: Vec<&str> = group.iter().map(|(_, d)| d.arn).collect();
            for (key, d) in group.iter() {
                frozen.insert(&*d.report.name);
                conflicts.push(
                    Diagnostic::new(
                        Code::ServiceNameConflict,
                        format!(
                            "service {} would be registered by {}; neither is changed",
                            key.name,
                            arns.join(" and ")
                        ),
                        "rename a function or an alias so that every service name is unique",
                    )
                    .key("service")
                    .value(key.name)
                    .function(d.report.arn.to_string()),
                );
            }
        }
    }
    // Blocking conflicts with what Consul holds. A name held by another function of
    // ours freezes its claimant only if that function is frozen, which may in turn come
    // from such a name: iterate to a fixed point so the outcome is order-independent.
    let mut held_by_other: Vec<(&Key<'a>, &Desired<'a>, &str)> = Vec::new();
    for g in &groups {
        let [(key, d)] = g.claims else { continue };
        let frozen_owners: Vec<&str> = reserved
            .get(key.name)
            .into_iter()
            .flatten()
            .copied()
            .filter(|o| **o != *d.report.name)
            .collect();
        let problem = if !frozen_owners.is_empty() {
            Some(Diagnostic::new(
                Code::ServiceNameConflict,
                format!(
                    "service {} is also a name of function {}, which has errors; neither is changed",
                    key.name,
                    frozen_owners.join(" and ")
                ),
                "fix the other function's error first, or rename the function or alias",
            ))
        } else if g.observed.is_some_and(|o| o.unmanaged) {
            Some(Diagnostic::new(
                Code::UnmanagedServiceConflict,
                format!("service {} is already on node {} without the {MANAGED_TAG} tag; it is not the registrator's", key.name, ctx.config.node_name),
                "rename the function or alias, or remove the other service",
            ))
        } else {
            match &g.owner {
                Owner::NotLambda => Some(Diagnostic::new(
                    Code::ForeignConfigEntry,
                    format!("service-defaults {} exists without the builtin/aws/lambda extension; it belongs to another service and is not overwritten", key.name),
                    "rename the function or alias, or remove that service-defaults entry",
                )),
                Owner::Elsewhere(arn) => Some(Diagnostic::new(
                    Code::OwnedByOtherRegistrator,
                    format!("service-defaults {} invokes {arn}, of another account or region; config entries are global, so the registrators would fight", key.name),
                    "give the functions of each region distinct names, or let one registrator manage this name",
                )),
                Owner::Ours(owner) if **owner != *d.report.name => {
                    held_by_other.push((key, d, owner));
                    None
                }
                _ => None,
            }
        };
        if let Some(p) = problem {
            frozen.insert(&*d.report.name);
            conflicts.push(
                p.key("service")
                    .value(key.name)
                    .function(d.report.arn.to_string()),
            );
        }
    }
    loop {
        let before = frozen.len();
        for (_, d, owner) in &held_by_other {
            if frozen.contains(owner) && !frozen.contains(&*d.report.name) {
                frozen.insert(&*d.report.name);
            }
        }
        if frozen.len() == before {
            break;
        }
    }
    for (key, d, owner) in &held_by_other {
        if frozen.contains(owner) {
            conflicts.push(
                Diagnostic::new(
                    Code::ServiceNameConflict,
                    format!(
                        "service {} belongs to function {owner}, whose state is frozen by an error",
                        key.name
                    ),
                    "fix the other function's error first",
                )
                .key("service")
                .value(key.name)
                .function(d.report.arn.to_string()),
            );
        }
    }
    out.errors.extend(conflicts);

    // 4. What this trigger may touch.
    let scope_fn: Option<&str> = match &input.trigger {
        Trigger::FullSync => None,
        Trigger::Function { arn, name, .. } => match ctx.trigger_problem(arn, name) {
            None => Some(name.as_str()),
            Some(problem) => {
                out.ignored.push(Ignored {
                    service: None,
                    reason: format!(
                        "the trigger names function {}, which this registrator does not manage: {}",
                        crate::error::clip(arn),
                        problem.message
                    ),
                });
                out.warnings.push(problem);
                finish(&mut out, &[]);
                return Draft {
                    rows: Rows::default(),
                    rest: out,
                    node,
                };
            }
        },
        Trigger::Ignore { .. } => {
            finish(&mut out, &[]);
            return Draft {
                rows: Rows::default(),
                rest: out,
                node,
            };
        }
    };
    let in_scope = |key: &Key<'_>, desired_by: Option<&str>, owner: &Owner<'_>| -> bool {
        let Some(f) = scope_fn else { return true };
        desired_by == Some(f)
            || matches!(owner, Owner::Ours(o) if *o == f)
            || (matches!(owner, Owner::Unknown)
                && (key.name == f || key.name.strip_prefix(f).is_some_and(|r| r.starts_with('-'))))
    };

    let ext = ExtensionPlanner::new(ctx, input.extension_data.as_ref(), &mut out);
    let mut rows: Vec<Row<'a>> = Vec::with_capacity(claims.len());
    let mut registrations = 0usize;

    // 5. Register and repair what is wanted (in service order).
    for g in &groups {
        let [(key, d)] = g.claims else { continue };
        if frozen.contains(&*d.report.name) {
            continue;
        }
        let obs = g.observed;
        let entry = obs.and_then(|o| o.entry.as_ref());
        let owner = &g.owner;
        if !in_scope(key, Some(&*d.report.name), owner) {
            continue;
        }
        let target_arn = d.arn;
        let settings = &d.report.settings;
        let mut reasons: Vec<Cow<'a, str>> = Vec::new();
        let mut confirm = None;
        if let Owner::Ours(o) = *owner {
            if *o != *d.report.name {
                // Taking a name over from another function: only once it is gone.
                if !known.contains(o) && !confirmed_absent.contains(o) {
                    if scope_fn.is_none() && !inv.complete {
                        out.ignored.push(Ignored {
                            service: Some(key.owned()),
                            reason: format!("belongs to function {o}, which may exist but was not listed (incomplete inventory)"),
                        });
                        continue;
                    }
                    confirm = Some(ctx.function_arn(o));
                }
                reasons.push(format!("take over from function {o}").into());
            }
        }
        let entry_ok = match entry {
            Some(View::Lambda(l)) => {
                let mut drift = Vec::new();
                if l.arn != Some(target_arn) {
                    drift.push(format!("ARN is {}", l.arn.unwrap_or("missing")));
                }
                if l.mode != settings.invocation_mode {
                    drift.push(format!(
                        "invocation mode is {} for Consul, {} in the tags",
                        l.mode.extension_value(),
                        settings.invocation_mode.extension_value()
                    ));
                }
                if l.payload_passthrough != settings.payload_passthrough {
                    drift.push(format!("payloadPassthrough is {}", l.payload_passthrough));
                }
                if !l.canonical {
                    drift.push("protocol or extension settings differ".to_owned());
                }
                if !drift.is_empty() {
                    reasons.push(format!("service-defaults drifted: {}", drift.join(", ")).into());
                }
                drift.is_empty()
            }
            _ => false,
        };
        let registered = obs.and_then(|o| o.catalog).is_some();
        let existed = registered || entry.is_some();
        let change = if existed {
            Change::Update
        } else {
            Change::Create
        };
        let mut not_registered = false;
        if !existed {
            not_registered = true;
        } else if entry.is_none() {
            reasons.push("service-defaults entry missing".into());
        }
        if existed && !registered {
            reasons.push("catalog registration missing".into());
        }
        let put = match ext.put(key) {
            Some((put, why)) => {
                if existed {
                    reasons.push(why.into());
                }
                Some(put)
            }
            None => {
                if ext.lacks_leaf(key) {
                    out.warnings.push(
                        Diagnostic::new(
                            Code::LeafMissing,
                            format!("no leaf certificate was observed for service {}; its extension data is not written", key.name),
                            "fetch GET /v1/agent/connect/ca/leaf/:service for every wanted service (Connect must be enabled)",
                        )
                        .key("service")
                        .value(key.name)
                        .function(target_arn.to_owned()),
                    );
                }
                None
            }
        };
        let work = Work::Wanted {
            entry: (!entry_ok).then_some((
                target_arn,
                settings.invocation_mode,
                settings.payload_passthrough,
            )),
            register: !registered,
            put,
        };
        registrations += usize::from(!registered);
        let unchanged = entry_ok && registered && matches!(&work, Work::Wanted { put: None, .. });
        let change = if unchanged { Change::Unchanged } else { change };
        if not_registered && !reasons.is_empty() {
            // (Only for a new service, so nothing was said after it.)
            reasons.push(Reason::NotRegistered(&d.report.name).to_string().into());
        }
        let reason = match reasons.len() {
            0 if not_registered => Reason::NotRegistered(&d.report.name),
            0 => Reason::Text(Cow::Borrowed("as wanted")),
            1 => Reason::Text(reasons.pop().unwrap_or_default()),
            _ => Reason::Text(Cow::Owned(reasons.join("; "))),
        };
        rows.push(Row {
            key: *key,
            change,
            function: Some(Cow::Borrowed(target_arn)),
            reason,
            confirm,
            work,
        });
    }

    // 6. Deregister what no function wants.
    // Managed services once this plan's registrations are done: counting them keeps the
    // guard's decision the same when the plan is applied and planned again.
    let managed_count =
        observed.iter().filter(|(_, o)| o.catalog.is_some()).count() + registrations;
    let mut withheld = 0usize;
    let mut deletions: Vec<Row<'a>> = Vec::new();
    for (key, obs) in &observed {
        let Some(service_id) = obs.catalog else {
            continue;
        };
        if obs.wanted.get() {
            continue;
        }
        let owner = ctx.owner(obs.entry.as_ref());
        if !in_scope(key, None, &owner) {
            continue;
        }
        let owner_name = match owner {
            Owner::Ours(o) => o,
            Owner::Elsewhere(arn) => {
                out.warnings.push(orphan_warning(
                    key.name,
                    &format!("its service-defaults invokes {arn}, of another account or region"),
                ));
                continue;
            }
            Owner::NotLambda | Owner::Unknown => {
                out.warnings.push(orphan_warning(
                    key.name,
                    "it has no service-defaults entry naming a function of this account and region",
                ));
                continue;
            }
        };
        if frozen.contains(owner_name) {
            out.ignored.push(Ignored {
                service: Some(key.owned()),
                reason: format!("function {owner_name} has errors; its state is left as it is"),
            });
            continue;
        }
        let listed = known.contains(owner_name);
        let confirm = if listed || confirmed_absent.contains(owner_name) {
            None
        } else if scope_fn.is_none() && !inv.complete {
            withheld += 1;
            continue;
        } else {
            Some(ctx.function_arn(owner_name))
        };
        let reason = if listed {
            Reason::Unwanted(owner_name)
        } else {
            Reason::Gone(owner_name)
        };
        deletions.push(Row {
            key: *key,
            change: Change::Delete,
            function: Some(Cow::Owned(ctx.function_arn(owner_name))),
            reason,
            confirm,
            work: Work::Deleted {
                service_id,
                entry: matches!(obs.entry, Some(View::Lambda(_))),
                parameter: None,
            },
        });
    }
    if withheld > 0 {
        out.warnings.push(Diagnostic::new(
            Code::InventoryIncomplete,
            format!(
                "the Lambda inventory is incomplete, so {withheld} deregistration(s) were withheld"
            ),
            "the next complete sync applies them",
        ));
    }
    let blocked = scope_fn.is_none()
        && !ctx.config.allow_mass_deregistration
        && managed_count > 10
        && deletions.len() * 2 > managed_count;
    if blocked {
        out.errors.push(
            Diagnostic::new(
                Code::MassDeregistrationBlocked,
                format!("this sync would deregister {} of {managed_count} managed services; nothing is deregistered", deletions.len()),
                "check the inventory (credentials, region, tags); if this is intended, set ALLOW_MASS_DEREGISTRATION=true for one sync",
            )
            .key("ALLOW_MASS_DEREGISTRATION"),
        );
        deletions.clear();
    } else if ext.prefix.is_some() {
        // The parameter path has no datacenter: keep it if a wanted service uses it.
        let wanted_params: FxSet<(&str, &str, &str)> = groups
            .iter()
            .filter_map(|g| g.claims.first())
            .map(|(k, _)| k.parameter_key())
            .collect();
        for d in &mut deletions {
            if let Work::Deleted { parameter, .. } = &mut d.work {
                *parameter = ext
                    .delete(&d.key)
                    .filter(|_| !wanted_params.contains(&d.key.parameter_key()));
            }
        }
    }
    deletions.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    let draft_rows = Rows::new(rows, deletions);

    // Every operation that waits for GetFunction, deletion or take-over, is listed.
    let mut confirmations: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for row in &draft_rows.rows {
        if let Some(c) = &row.confirm {
            if row.has_steps() {
                confirmations
                    .entry(c.as_str())
                    .or_default()
                    .push(row.key.name);
            }
        }
    }
    out.confirmations = confirmations
        .into_iter()
        .map(|(function, mut services)| {
            services.sort_unstable();
            services.dedup();
            Confirmation {
                function: function.to_owned(),
                services: services.into_iter().map(str::to_owned).collect(),
            }
        })
        .collect();
    finish(&mut out, &draft_rows.rows);
    Draft {
        rows: draft_rows,
        rest: out,
        node,
    }
}

/// The rows of a plan: the wanted services, then the deregistered ones, each part
/// sorted by key (no key in both), and where each deregistered one goes among the
/// wanted ones.
#[derive(Default)]
struct Rows<'a> {
    rows: Vec<Row<'a>>,
    wanted: usize,
    /// For each deregistered row, how many wanted rows come before it.
    places: Vec<usize>,
}

impl<'a> Rows<'a> {
    /// `wanted` and `deleted` are each sorted by key.
    fn new(mut wanted: Vec<Row<'a>>, mut deleted: Vec<Row<'a>>) -> Self {
        let places = deleted
            .iter()
            .map(|d| wanted.partition_point(|w| w.key < d.key))
            .collect();
        let count = wanted.len();
        wanted.reserve_exact(deleted.len());
        wanted.append(&mut deleted);
        Rows {
            rows: wanted,
            wanted: count,
            places,
        }
    }

    /// The rows in service order.
    fn ordered(&self) -> impl Iterator<Item = &Row<'a>> {
        let (wanted, deleted) = self
            .rows
            .split_at_checked(self.wanted)
            .unwrap_or((&self.rows, &[]));
        let mut deleted = deleted.iter().zip(&self.places).peekable();
        let mut wanted = wanted.iter().enumerate();
        let mut next_wanted = wanted.next();
        std::iter::from_fn(move || match (next_wanted, deleted.peek()) {
            (Some((i, _)), Some((_, &place))) if place <= i => deleted.next().map(|(d, _)| d),
            (Some((_, w)), _) => {
                next_wanted = wanted.next();
                Some(w)
            }
            (None, _) => deleted.next().map(|(d, _)| d),
        })
    }
}

/// Sorts by key, keeping the order of equal keys. `runs` are where parts of the
/// list start that are each nearly in order (every item a few places from its
/// place, as in Consul's responses and the names of functions listed in order):
/// those are put in order by moving items back (about linear time), then the
/// sorted parts are merged. A part too far from order is left to the general
/// sort.
fn sort_by_key_stable<'a, V>(items: &mut [(Key<'a>, V)], runs: &mut [usize]) {
    runs.sort_unstable();
    let mut ends = runs.iter().skip(1).copied().chain([items.len()]);
    for &start in runs.iter() {
        let end = ends.next().unwrap_or(items.len());
        let Some(part) = items.get_mut(start..end) else {
            break;
        };
        let mut budget = 4 * part.len() + 64;
        'items: for i in 1..part.len() {
            let mut j = i;
            while j > 0 {
                match (part.get(j - 1), part.get(j)) {
                    (Some(a), Some(b)) if b.0 < a.0 => part.swap(j - 1, j),
                    _ => break,
                }
                j -= 1;
                budget -= 1;
                if budget == 0 {
                    break 'items;
                }
            }
        }
    }
    // Finds the sorted parts and merges them (and sorts whatever is not yet).
    items.sort_by(|a, b| a.0.cmp(&b.0));
}

fn orphan_warning(name: &str, why: &str) -> Diagnostic {
    Diagnostic::new(
        Code::OrphanNotOwned,
        format!(
            "managed service {name} is wanted by no listed function, but {why}; it is left alone"
        ),
        "deregister it by hand if it is stale; another registrator may own it",
    )
    .key("service")
    .value(name)
}

/// Sorts the diagnostics, skips and ignored objects, and counts.
fn finish(out: &mut Plan, rows: &[Row<'_>]) {
    let order = |a: &Diagnostic, b: &Diagnostic| {
        (&a.function, &a.key, a.code, &a.message, &a.value, &a.hint).cmp(&(
            &b.function,
            &b.key,
            b.code,
            &b.message,
            &b.value,
            &b.hint,
        ))
    };
    out.errors.sort_by(order);
    out.warnings.sort_by(order);
    out.skips.sort_by(|a, b| a.function.cmp(&b.function));
    out.ignored
        .sort_by(|a, b| (&a.service, &a.reason).cmp(&(&b.service, &b.reason)));
    let mut summary = Summary {
        errors: out.errors.len(),
        warnings: out.warnings.len(),
        skipped: out.skips.len(),
        ..Summary::default()
    };
    for r in rows {
        *match r.change {
            Change::Create => &mut summary.create,
            Change::Update => &mut summary.update,
            Change::Delete => &mut summary.delete,
            Change::Unchanged => &mut summary.unchanged,
        } += 1;
        summary.operations += r.steps().count();
    }
    out.summary = summary;
}

/// Reads the Consul scopes into what Consul holds under each name (managed
/// instance, entry, unmanaged instance), sorted by key; later responses win.
fn observe_consul<'a>(
    ctx: &'a Ctx<'a>,
    consul: &'a ConsulState,
    out: &mut Plan,
) -> Vec<(Key<'a>, Observed<'a>)> {
    let mut observed: Vec<(Key<'a>, Observed<'a>)> = Vec::with_capacity(
        consul
            .scopes
            .iter()
            .map(|s| {
                let services = s.node_services.as_ref().map_or(0, |n| n.services.len());
                let entries = s.service_defaults.as_ref().map_or(0, Vec::len);
                services + entries
            })
            .sum(),
    );
    // Where each response's records start: each is usually in order already.
    let mut runs: Vec<usize> = Vec::new();
    // Managed objects whose names could not have been written by the registrator.
    let mut unsafe_keys: Vec<Key<'a>> = Vec::new();
    let enterprise = ctx.config.enterprise;
    for scope in &consul.scopes {
        let dc = ctx.scope_datacenter(scope.datacenter.as_deref());
        if let (Some(ours), Some(theirs)) = (&ctx.config.datacenter, dc) {
            if ours != theirs {
                out.ignored.push(Ignored {
                    service: None,
                    reason: format!("datacenter {theirs} is not managed (DATACENTER={ours})"),
                });
                continue;
            }
        }
        let key_of = |partition: Option<&'a String>, namespace: Option<&'a String>, name| {
            let (partition, namespace) = if enterprise {
                (
                    Some(
                        partition
                            .or(scope.partition.as_ref())
                            .map_or("default", String::as_str),
                    ),
                    Some(namespace.map_or("default", String::as_str)),
                )
            } else {
                (None, None)
            };
            Key {
                datacenter: dc,
                partition,
                namespace,
                name,
            }
        };
        let managed_partition = |key: &Key<'_>| {
            !enterprise
                || key
                    .partition
                    .is_some_and(|p| ctx.config.partitions.iter().any(|q| q == p))
        };
        if let Some(ns) = &scope.node_services {
            let node = ns
                .node
                .as_ref()
                .map(|n| n.node.as_str())
                .unwrap_or(&ctx.config.node_name);
            if node != ctx.config.node_name {
                out.ignored.push(Ignored {
                    service: None,
                    reason: format!(
                        "node-services response is for node {node}, not the registrator's node {}",
                        ctx.config.node_name
                    ),
                });
            } else {
                runs.push(observed.len());
                for s in ns.services.iter() {
                    let key = key_of(s.partition.as_ref(), s.namespace.as_ref(), &s.service);
                    let managed = s
                        .tags
                        .as_deref()
                        .is_some_and(|t| t.iter().any(|t| t == MANAGED_TAG));
                    if !safe_key(&key) {
                        if managed {
                            unsafe_keys.push(key);
                        }
                        continue;
                    }
                    if !managed_partition(&key) {
                        out.ignored.push(Ignored {
                            service: Some(key.owned()),
                            reason: "partition not in PARTITIONS".to_owned(),
                        });
                        continue;
                    }
                    observed.push((
                        key,
                        if managed {
                            Observed {
                                catalog: Some(&s.id),
                                ..Observed::default()
                            }
                        } else {
                            Observed {
                                unmanaged: true,
                                ..Observed::default()
                            }
                        },
                    ));
                }
            }
        }
        runs.push(observed.len());
        for e in scope.service_defaults.iter().flatten() {
            if e.kind.as_deref().is_some_and(|k| k != "service-defaults") {
                continue;
            }
            let key = key_of(e.partition.as_ref(), e.namespace.as_ref(), &e.name);
            let lambda = e.lambda_view();
            if !safe_key(&key) {
                if lambda.is_some() {
                    unsafe_keys.push(key);
                }
                continue;
            }
            if managed_partition(&key) {
                let entry = lambda.map_or(View::Foreign, View::Lambda);
                observed.push((
                    key,
                    Observed {
                        entry: Some(entry),
                        ..Observed::default()
                    },
                ));
            }
        }
    }
    unsafe_keys.sort_unstable();
    unsafe_keys.dedup();
    for key in unsafe_keys {
        out.warnings.push(
            Diagnostic::new(
                Code::UnsafeConsulName,
                format!(
                    "managed service or Lambda service-defaults entry {:?}{} has a name the registrator never writes; nothing is planned for it",
                    crate::error::clip(key.name),
                    match (key.partition, key.namespace) {
                        (Some(p), Some(n)) => format!(" (partition {:?}, namespace {:?})", crate::error::clip(p), crate::error::clip(n)),
                        _ => String::new(),
                    }
                ),
                "remove or rename it in Consul by hand: registrator services are named after Lambda functions and aliases (letters, digits, `-`, `_`)",
            )
            .key("service")
            .value(key.name),
        );
    }
    // One record per key (a stable sort keeps the responses' order among equals).
    sort_by_key_stable(&mut observed, &mut runs);
    observed.dedup_by(|(key, later), (kept_key, kept)| {
        if key != kept_key {
            return false;
        }
        if later.catalog.is_some() {
            kept.catalog = later.catalog;
        }
        if later.entry.is_some() {
            kept.entry = later.entry;
        }
        kept.unmanaged |= later.unmanaged;
        true
    });
    observed
}

/// Whether a key read from Consul may be planned for. Names read from Consul end up
/// in a request path (`DELETE /v1/config/service-defaults/:name`), in query
/// parameters (`ns`, `partition`) and in Parameter Store names. The registrator only
/// writes service names made of a Lambda function name and alias (1 to 193 of
/// `[A-Za-z0-9_-]`, [`is_registrator_service_name`]) in namespaces and partitions
/// that pass `validate_consul_name` (what the namespace and partition tags accept).
/// Anything else cannot be ours: it gets no write and no delete, whatever its tags
/// or service-defaults say. (The delete path is percent-encoded besides.)
fn safe_key(key: &Key<'_>) -> bool {
    is_registrator_service_name(key.name)
        && [key.partition, key.namespace]
            .into_iter()
            .flatten()
            .all(|v| crate::config::validate_consul_name("", v).is_ok())
}

/// Extension data decisions for one plan.
struct ExtensionPlanner<'a> {
    prefix: Option<&'a str>,
    tier: Option<Tier>,
    key_id: Option<&'a str>,
    observed: Option<&'a ExtensionDataState>,
    /// By partition, namespace and name (absent: `default`), as a service's
    /// [`Key::parameter_key`]: a leaf is never used for a service of another scope.
    leaves: FxMap<(&'a str, &'a str, &'a str), &'a Leaf>,
    stored: FxMap<&'a str, Option<ExtensionData>>,
    root: Option<(&'a str, &'a str)>,
}

impl<'a> ExtensionPlanner<'a> {
    fn new(ctx: &'a Ctx<'a>, state: Option<&'a ExtensionDataState>, out: &mut Plan) -> Self {
        let prefix = ctx.config.consul_extension_data_prefix.as_deref();
        if prefix.is_some() && state.is_none() {
            out.warnings.push(Diagnostic::new(
                Code::LeafMissing,
                "extension data is enabled but was not observed; no extension data is written",
                "pass extensionData (roots, leaves, parameters) to plan extension data",
            ));
        }
        let leaves = state
            .map(|s| {
                s.leaves
                    .iter()
                    .map(|l| {
                        let scope = |v: &'a Option<String>| v.as_deref().unwrap_or("default");
                        (
                            (scope(&l.partition), scope(&l.namespace), l.service.as_str()),
                            l,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let stored = state
            .map(|s| {
                s.parameters
                    .iter()
                    .map(|p| {
                        (
                            p.name.as_str(),
                            p.value
                                .as_deref()
                                .and_then(|v| serde_json::from_str(v).ok()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let root = state
            .and_then(|s| s.roots.as_ref())
            .and_then(|r| r.active_pem().map(|pem| (pem, r.trust_domain.as_str())));
        ExtensionPlanner {
            prefix,
            tier: ctx.config.consul_extension_data_tier,
            key_id: ctx.config.consul_extension_data_kms_key_id.as_deref(),
            observed: state,
            leaves,
            stored,
            root,
        }
    }

    /// Whether extension data is wanted and observed, but the service's leaf is missing.
    fn lacks_leaf(&self, key: &Key<'_>) -> bool {
        self.prefix.is_some()
            && self.observed.is_some()
            && !self.leaves.contains_key(&key.parameter_key())
    }

    /// The write a wanted service needs, if any, and why.
    fn put(&self, key: &Key<'_>) -> Option<(Put<'a>, String)> {
        let prefix = self.prefix?;
        self.observed?;
        let leaf = self.leaves.get(&key.parameter_key())?;
        let name = key.parameter_name(prefix);
        let why = match self.stored.get(name.as_str()) {
            None => "extension data missing".to_owned(),
            Some(None) => "extension data unreadable".to_owned(),
            Some(Some(data)) => {
                if data.cert_pem != leaf.cert_pem {
                    format!("leaf certificate changed (serial {})", leaf.serial_number)
                } else if self
                    .root
                    .is_some_and(|(pem, td)| data.root_cert_pem != pem || data.trust_domain != td)
                {
                    "CA root changed".to_owned()
                } else {
                    return None;
                }
            }
        };
        Some((
            Put {
                name,
                tier: self.tier,
                key_id: self.key_id,
                serial: &leaf.serial_number,
            },
            why,
        ))
    }

    /// The parameter a deregistered service's extension data is deleted from, if any.
    fn delete(&self, key: &Key<'_>) -> Option<String> {
        let name = key.parameter_name(self.prefix?);
        if self.observed.is_some() && !self.stored.contains_key(name.as_str()) {
            return None;
        }
        Some(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The run-aware sort gives what a stable sort gives: nearly sorted parts,
    /// shuffled parts, parts in reverse, repeated keys.
    #[test]
    fn sort_by_key_stable_is_a_stable_sort() {
        let names: Vec<String> = (0..300)
            .map(|i| format!("s{:03}", (i * 7919) % 97))
            .collect();
        let mut seed = 12345u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..200 {
            let len = (next() % 300) as usize;
            let mut items: Vec<(Key<'_>, usize)> = (0..len)
                .map(|i| {
                    let at = match case % 4 {
                        0 => i,
                        1 => len - i,
                        2 => (i + (next() % 5) as usize).saturating_sub(2),
                        _ => next() as usize,
                    };
                    let name = names.get(at % names.len()).map_or("", String::as_str);
                    let key = Key {
                        datacenter: (next() % 7 == 0).then_some("dc2"),
                        partition: None,
                        namespace: None,
                        name,
                    };
                    (key, i)
                })
                .collect();
            let mut runs: Vec<usize> = (0..(next() % 4))
                .map(|_| (next() as usize) % (len + 1))
                .chain([0])
                .collect();
            let mut expected = items.clone();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            sort_by_key_stable(&mut items, &mut runs);
            assert_eq!(items, expected, "case {case}");
        }
    }

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

    /// The hasher spreads the benchmark's names evenly (it indexes hash tables by
    /// the low bits).
    #[test]
    fn hasher_spreads_names() {
        use std::hash::BuildHasher;
        let build = BuildHasherDefault::<FastHasher>::default();
        let mut buckets = FxSet::default();
        let mut names = 0;
        for i in 0..10_000 {
            for suffix in ["", "-live", "-beta", "-canary"] {
                let name = format!("fn-{i:06}{suffix}");
                let key = Key {
                    datacenter: None,
                    partition: None,
                    namespace: None,
                    name: &name,
                };
                buckets.insert(build.hash_one(key) & 0xffff);
                names += 1;
            }
        }
        // 40,000 keys in 65,536 buckets: about 30,000 distinct if spread at random.
        assert!(buckets.len() > 28_000, "{} of {names}", buckets.len());
    }
}
