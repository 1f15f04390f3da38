//! The reconcile planner (SPEC §5): from observed Lambda, Consul and Parameter
//! Store state to a deterministic, ordered plan of exact requests.
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

use crate::arn::parse_function_arn;
use crate::config::{Config, ConfigInput};
use crate::consul::{
    config_delete_request, config_entry_request, deregister_request, register_request, CaRoots,
    EntryView, ExtensionData, LambdaEntry, Leaf, NodeServices, Request, ServiceDefaults,
    ServiceKey, SsmParameter, SsmRequest, MANAGED_TAG,
};
use crate::error::{Code, Diagnostic, Failure};
use crate::event::Trigger;
use crate::tags::{
    evaluate_function, FunctionReport, FunctionStatus, LambdaFunction, ServiceTarget,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Everything the planner needs: configuration, trigger and observed state.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// What one operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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

/// One step of a plan, with the exact request to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
#[serde(rename_all = "camelCase")]
pub struct Confirmation {
    /// The function's ARN.
    pub function: String,
    /// The services whose operations (deletion, or take-over of the name) wait for it.
    pub services: Vec<String>,
}

/// Counts of a plan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
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

/// Who a managed service belongs to, judged from its service-defaults entry.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Owner {
    /// A function of our account and region, by name.
    Ours(String),
    /// A function of another account or region.
    Elsewhere(String),
    /// Unknown: no entry, or an entry without a readable ARN.
    Unknown,
    /// The entry is not a Lambda entry.
    NotLambda,
}

#[derive(Debug, Default)]
struct Observed {
    /// The service ID of the managed catalog instance on our node.
    catalog: Option<String>,
    /// The service-defaults entry.
    entry: Option<EntryView>,
}

/// A managed service to deregister.
struct Deletion {
    key: ServiceKey,
    service_id: String,
    function: String,
    confirm: Option<String>,
    entry_ours: bool,
    reason: String,
}

struct Desired<'a> {
    target: &'a ServiceTarget,
    report: &'a FunctionReport,
}

struct Ctx<'a> {
    config: Config,
    account: &'a str,
    region: &'a str,
    local_dc: Option<&'a str>,
}

impl Ctx<'_> {
    fn owner(&self, entry: Option<&EntryView>) -> Owner {
        match entry {
            None => Owner::Unknown,
            Some(EntryView::Foreign) => Owner::NotLambda,
            Some(EntryView::Lambda(LambdaEntry { arn, .. })) => {
                match arn.as_deref().map(parse_function_arn) {
                    Some(Ok(a)) if a.is_in(self.account, self.region) => Owner::Ours(a.name),
                    Some(Ok(a)) => Owner::Elsewhere(a.unqualified().to_string()),
                    _ => Owner::Unknown,
                }
            }
        }
    }

    /// The datacenter of a wanted service: its tag, else `DATACENTER`, else the agent's.
    fn datacenter(&self, explicit: Option<&str>) -> Option<String> {
        explicit
            .or(self.config.datacenter.as_deref())
            .or(self.local_dc)
            .map(str::to_owned)
    }

    /// The datacenter a Consul scope was read from: a scope without one is the agent's
    /// own, which is `DATACENTER` only when the agent's datacenter is unknown.
    fn scope_datacenter(&self, explicit: Option<&str>) -> Option<String> {
        explicit
            .or(self.local_dc)
            .or(self.config.datacenter.as_deref())
            .map(str::to_owned)
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

/// Computes the plan.
pub fn plan(input: &PlanInput) -> Result<Plan, Failure> {
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
    let mut out = Plan::default();

    // 1. Consul: what we manage, what we must not touch.
    let (observed, unmanaged) = observe_consul(&ctx, &input.consul, &mut out);

    // 2. Lambda: evaluate every function once, in ARN order.
    let mut functions: Vec<&LambdaFunction> = inv.functions.iter().collect();
    functions.sort_by(|a, b| a.arn.cmp(&b.arn).then_with(|| a.tags.cmp(&b.tags)));
    functions.dedup_by(|a, b| a.arn == b.arn && a.tags == b.tags);
    let mut reports: Vec<FunctionReport> = Vec::with_capacity(functions.len());
    for f in functions {
        let mut report = evaluate_function(f, &ctx.config);
        if report.errors.is_empty() {
            if let Ok(arn) = parse_function_arn(&report.arn) {
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
                        .function(report.arn.clone()),
                    );
                }
            }
        }
        if reports
            .last()
            .is_some_and(|prev: &FunctionReport| prev.arn == report.arn)
        {
            let d = Diagnostic::new(
                Code::InvalidInput,
                "the function is listed twice with different tags",
                "list each function once",
            )
            .key("arn")
            .value(&report.arn)
            .function(report.arn.clone());
            if let Some(prev) = reports.last_mut() {
                prev.status = FunctionStatus::Invalid;
                prev.errors.push(d);
            }
            continue;
        }
        reports.push(report);
    }

    // Functions by name; frozen ones keep their Consul state exactly as it is.
    let mut known: HashSet<&str> = HashSet::with_capacity(reports.len());
    let mut frozen: HashSet<String> = HashSet::new();
    for r in &reports {
        known.insert(r.name.as_str());
        match r.status {
            FunctionStatus::Invalid => {
                frozen.insert(r.name.clone());
            }
            FunctionStatus::Disabled | FunctionStatus::Skipped => out.skips.push(Skip {
                function: r.arn.clone(),
                status: r.status,
                reason: r.reason.clone().unwrap_or_default(),
            }),
            FunctionStatus::Managed => {}
        }
        // A disabled function with a bad tag is frozen too: a bad value leaves the
        // function's Consul state exactly as it is (SPEC §1).
        if !r.errors.is_empty() {
            frozen.insert(r.name.clone());
        }
        out.errors.extend(r.errors.iter().cloned());
        out.warnings.extend(r.warnings.iter().cloned());
    }
    let mut failed_names: Vec<String> = Vec::with_capacity(inv.failed.len());
    for f in &inv.failed {
        let name = parse_function_arn(&f.arn)
            .map(|a| a.name)
            .unwrap_or_else(|_| f.arn.clone());
        failed_names.push(name.clone());
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
    let confirmed_absent: HashSet<String> = inv
        .confirmed_absent
        .iter()
        .filter_map(|a| parse_function_arn(a).ok().map(|a| a.name))
        .collect();
    // The names a frozen function would register stay its own: another function that
    // wants one conflicts with it, as it would if the function were valid.
    let mut reserved: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for r in reports.iter().filter(|r| frozen.contains(&r.name)) {
        reserved
            .entry(r.name.clone())
            .or_default()
            .insert(r.name.as_str());
        for alias in &r.settings.aliases {
            reserved
                .entry(format!("{}-{alias}", r.name))
                .or_default()
                .insert(r.name.as_str());
        }
    }
    for name in &failed_names {
        reserved
            .entry(name.clone())
            .or_default()
            .insert(name.as_str());
    }

    // 3. Desired services; two sources of one name conflict and both freeze.
    let mut claims: HashMap<ServiceKey, Vec<Desired<'_>>> = HashMap::new();
    for r in reports
        .iter()
        .filter(|r| r.status == FunctionStatus::Managed)
    {
        for t in &r.services {
            let key = ServiceKey {
                datacenter: ctx.datacenter(t.datacenter.as_deref()),
                partition: t.partition.clone(),
                namespace: t.namespace.clone(),
                name: t.name.clone(),
            };
            claims.entry(key).or_default().push(Desired {
                target: t,
                report: r,
            });
        }
    }
    let mut conflicts: Vec<Diagnostic> = Vec::new();
    for (key, claimants) in &claims {
        if claimants.len() > 1 {
            let arns: Vec<&str> = claimants.iter().map(|d| d.target.arn.as_str()).collect();
            for d in claimants {
                frozen.insert(d.report.name.clone());
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
                    .value(&key.name)
                    .function(d.report.arn.clone()),
                );
            }
        }
    }
    // Blocking conflicts with what Consul holds. A name held by another function of
    // ours freezes its claimant only if that function is frozen, which may in turn come
    // from such a name: iterate to a fixed point so the outcome is order-independent.
    let mut held_by_other: Vec<(&ServiceKey, &Desired<'_>, String)> = Vec::new();
    for (key, claimants) in &claims {
        let [d] = claimants.as_slice() else { continue };
        let obs = observed.get(key);
        let entry = obs.and_then(|o| o.entry.as_ref());
        let frozen_owners: Vec<&str> = reserved
            .get(&key.name)
            .into_iter()
            .flatten()
            .copied()
            .filter(|o| *o != d.report.name)
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
        } else if unmanaged.contains(key) {
            Some(Diagnostic::new(
                Code::UnmanagedServiceConflict,
                format!("service {} is already on node {} without the {MANAGED_TAG} tag; it is not the registrator's", key.name, ctx.config.node_name),
                "rename the function or alias, or remove the other service",
            ))
        } else {
            match ctx.owner(entry) {
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
                Owner::Ours(owner) if owner != d.report.name => {
                    held_by_other.push((key, d, owner));
                    None
                }
                _ => None,
            }
        };
        if let Some(p) = problem {
            frozen.insert(d.report.name.clone());
            conflicts.push(
                p.key("service")
                    .value(&key.name)
                    .function(d.report.arn.clone()),
            );
        }
    }
    loop {
        let before = frozen.len();
        for (_, d, owner) in &held_by_other {
            if frozen.contains(owner) && !frozen.contains(&d.report.name) {
                frozen.insert(d.report.name.clone());
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
                .value(&key.name)
                .function(d.report.arn.clone()),
            );
        }
    }
    out.errors.extend(conflicts);

    // 4. What this trigger may touch.
    let scope_fn: Option<&str> = match &input.trigger {
        Trigger::FullSync => None,
        Trigger::Function { name, .. } => Some(name.as_str()),
        Trigger::Ignore { .. } => {
            finish(&mut out);
            return Ok(out);
        }
    };
    let in_scope = |key: &ServiceKey, desired_by: Option<&str>, owner: &Owner| -> bool {
        let Some(f) = scope_fn else { return true };
        desired_by == Some(f)
            || matches!(owner, Owner::Ours(o) if o == f)
            || (matches!(owner, Owner::Unknown)
                && (key.name == f || key.name.strip_prefix(f).is_some_and(|r| r.starts_with('-'))))
    };

    let ext = ExtensionPlanner::new(&ctx, input.extension_data.as_ref(), &mut out);
    let mut ops: Vec<Operation> = Vec::new();
    let mut rows: Vec<ServiceChange> = Vec::new();

    // 5. Register and repair what is wanted.
    let mut wanted_keys: HashSet<&ServiceKey> = HashSet::with_capacity(claims.len());
    for (key, claimants) in &claims {
        // A conflicted name is still wanted: it must not be deregistered as an orphan.
        wanted_keys.insert(key);
        let [d] = claimants.as_slice() else { continue };
        if frozen.contains(&d.report.name) {
            continue;
        }
        let obs = observed.get(key);
        let entry = obs.and_then(|o| o.entry.as_ref());
        let owner = ctx.owner(entry);
        if !in_scope(key, Some(&d.report.name), &owner) {
            continue;
        }
        let target = d.target;
        let settings = &d.report.settings;
        let mut reasons: Vec<String> = Vec::new();
        let mut confirm = None;
        if let Owner::Ours(o) = &owner {
            if *o != d.report.name {
                // Taking a name over from another function: only once it is gone.
                if !known.contains(o.as_str()) && !confirmed_absent.contains(o) {
                    if scope_fn.is_none() && !inv.complete {
                        out.ignored.push(Ignored {
                            service: Some(key.clone()),
                            reason: format!("belongs to function {o}, which may exist but was not listed (incomplete inventory)"),
                        });
                        continue;
                    }
                    confirm = Some(ctx.function_arn(o));
                }
                reasons.push(format!("take over from function {o}"));
            }
        }
        let entry_ok = match entry {
            Some(EntryView::Lambda(l)) => {
                let mut drift = Vec::new();
                if l.arn.as_deref() != Some(target.arn.as_str()) {
                    drift.push(format!("ARN is {}", l.arn.as_deref().unwrap_or("missing")));
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
                    reasons.push(format!("service-defaults drifted: {}", drift.join(", ")));
                }
                drift.is_empty()
            }
            _ => false,
        };
        let registered = obs.and_then(|o| o.catalog.as_ref()).is_some();
        let existed = registered || entry.is_some();
        let change = if existed {
            Change::Update
        } else {
            Change::Create
        };
        if !existed {
            reasons.push(format!(
                "function {} is enabled and not registered",
                d.report.name
            ));
        } else if entry.is_none() {
            reasons.push("service-defaults entry missing".to_owned());
        }
        if existed && !registered {
            reasons.push("catalog registration missing".to_owned());
        }
        let mut service_ops: Vec<(OperationKind, Request, Option<String>)> = Vec::new();
        if !entry_ok {
            service_ops.push((
                OperationKind::UpsertConfigEntry,
                Request::Consul(config_entry_request(
                    key,
                    &target.arn,
                    settings.invocation_mode,
                    settings.payload_passthrough,
                )),
                None,
            ));
        }
        if !registered {
            service_ops.push((
                OperationKind::RegisterService,
                Request::Consul(register_request(key, &ctx.config.node_name)),
                None,
            ));
        }
        if let Some((request, serial, why)) = ext.put(key) {
            if existed {
                reasons.push(why);
            }
            service_ops.push((OperationKind::PutExtensionData, request, Some(serial)));
        } else if ext.lacks_leaf(key) {
            out.warnings.push(
                Diagnostic::new(
                    Code::LeafMissing,
                    format!("no leaf certificate was observed for service {}; its extension data is not written", key.name),
                    "fetch GET /v1/agent/connect/ca/leaf/:service for every wanted service (Connect must be enabled)",
                )
                .key("service")
                .value(&key.name)
                .function(target.arn.clone()),
            );
        }
        let change = if service_ops.is_empty() {
            Change::Unchanged
        } else {
            change
        };
        let reason = if reasons.is_empty() {
            "as wanted".to_owned()
        } else {
            reasons.join("; ")
        };
        for (kind, request, leaf_serial) in service_ops {
            ops.push(Operation {
                kind,
                service: key.clone(),
                change,
                reason: reason.clone(),
                function: Some(target.arn.clone()),
                confirm_absent: confirm.clone(),
                leaf_serial,
                request,
            });
        }
        rows.push(ServiceChange {
            service: key.clone(),
            change,
            function: Some(target.arn.clone()),
            reason,
        });
    }

    // 6. Deregister what no function wants.
    // Managed services once this plan's registrations are done: counting them keeps the
    // guard's decision the same when the plan is applied and planned again.
    let managed_count = observed.values().filter(|o| o.catalog.is_some()).count()
        + ops
            .iter()
            .filter(|o| o.kind == OperationKind::RegisterService)
            .count();
    let mut withheld = 0usize;
    let mut deletions: Vec<Deletion> = Vec::new();
    for (key, obs) in &observed {
        let Some(service_id) = &obs.catalog else {
            continue;
        };
        if wanted_keys.contains(key) {
            continue;
        }
        let owner = ctx.owner(obs.entry.as_ref());
        if !in_scope(key, None, &owner) {
            continue;
        }
        let owner_name = match &owner {
            Owner::Ours(o) => o.clone(),
            Owner::Elsewhere(arn) => {
                out.warnings.push(orphan_warning(
                    key,
                    &format!("its service-defaults invokes {arn}, of another account or region"),
                ));
                continue;
            }
            Owner::NotLambda | Owner::Unknown => {
                out.warnings.push(orphan_warning(
                    key,
                    "it has no service-defaults entry naming a function of this account and region",
                ));
                continue;
            }
        };
        if frozen.contains(&owner_name) {
            out.ignored.push(Ignored {
                service: Some(key.clone()),
                reason: format!("function {owner_name} has errors; its state is left as it is"),
            });
            continue;
        }
        let listed = known.contains(owner_name.as_str());
        let confirm = if listed || confirmed_absent.contains(&owner_name) {
            None
        } else if scope_fn.is_none() && !inv.complete {
            withheld += 1;
            continue;
        } else {
            Some(ctx.function_arn(&owner_name))
        };
        let reason = if listed {
            format!("function {owner_name} no longer wants this service (disabled, untagged, alias removed, or moved)")
        } else {
            format!("function {owner_name} no longer exists")
        };
        deletions.push(Deletion {
            key: key.clone(),
            service_id: service_id.clone(),
            function: ctx.function_arn(&owner_name),
            confirm,
            entry_ours: matches!(obs.entry, Some(EntryView::Lambda(_))),
            reason,
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
    } else {
        let wanted_params: HashSet<(&str, &str, &str)> = if ext.prefix.is_some() {
            wanted_keys.iter().map(|k| parameter_key(k)).collect()
        } else {
            HashSet::new()
        };
        for d in deletions {
            let op = |kind, request| Operation {
                kind,
                service: d.key.clone(),
                change: Change::Delete,
                reason: d.reason.clone(),
                function: Some(d.function.clone()),
                confirm_absent: d.confirm.clone(),
                leaf_serial: None,
                request,
            };
            ops.push(op(
                OperationKind::DeregisterService,
                Request::Consul(deregister_request(
                    &d.key,
                    &ctx.config.node_name,
                    &d.service_id,
                )),
            ));
            if d.entry_ours {
                ops.push(op(
                    OperationKind::DeleteConfigEntry,
                    Request::Consul(config_delete_request(&d.key)),
                ));
            }
            // The parameter path has no datacenter: keep it if a wanted service uses it.
            if let Some(request) = ext
                .delete(&d.key)
                .filter(|_| !wanted_params.contains(&parameter_key(&d.key)))
            {
                ops.push(op(OperationKind::DeleteExtensionData, request));
            }
            rows.push(ServiceChange {
                service: d.key,
                change: Change::Delete,
                function: Some(d.function),
                reason: d.reason,
            });
        }
    }

    ops.sort_by(|a, b| a.service.cmp(&b.service).then(a.kind.cmp(&b.kind)));
    // Every operation that waits for GetFunction, deletion or take-over, is listed.
    let mut confirmations: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for op in &ops {
        if let Some(c) = &op.confirm_absent {
            confirmations
                .entry(c.as_str())
                .or_default()
                .push(op.service.name.as_str());
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
    rows.sort_by(|a, b| a.service.cmp(&b.service));
    out.operations = ops;
    out.services = rows;
    finish(&mut out);
    Ok(out)
}

/// What names a service's extension data parameter: partition, namespace, name.
fn parameter_key(key: &ServiceKey) -> (&str, &str, &str) {
    (
        key.partition.as_deref().unwrap_or("default"),
        key.namespace.as_deref().unwrap_or("default"),
        &key.name,
    )
}

fn orphan_warning(key: &ServiceKey, why: &str) -> Diagnostic {
    Diagnostic::new(
        Code::OrphanNotOwned,
        format!(
            "managed service {} is wanted by no listed function, but {why}; it is left alone",
            key.name
        ),
        "deregister it by hand if it is stale; another registrator may own it",
    )
    .key("service")
    .value(&key.name)
}

fn finish(out: &mut Plan) {
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
    let count = |c| out.services.iter().filter(|r| r.change == c).count();
    out.summary = Summary {
        create: count(Change::Create),
        update: count(Change::Update),
        delete: count(Change::Delete),
        unchanged: count(Change::Unchanged),
        operations: out.operations.len(),
        errors: out.errors.len(),
        warnings: out.warnings.len(),
        skipped: out.skips.len(),
    };
}

/// Reads the Consul scopes into the managed services and the names we must not take.
fn observe_consul(
    ctx: &Ctx<'_>,
    consul: &ConsulState,
    out: &mut Plan,
) -> (HashMap<ServiceKey, Observed>, HashSet<ServiceKey>) {
    let mut observed: HashMap<ServiceKey, Observed> = HashMap::new();
    let mut unmanaged: HashSet<ServiceKey> = HashSet::new();
    let enterprise = ctx.config.enterprise;
    for scope in &consul.scopes {
        let dc = ctx.scope_datacenter(scope.datacenter.as_deref());
        if let (Some(ours), Some(theirs)) = (&ctx.config.datacenter, &dc) {
            if ours != theirs {
                out.ignored.push(Ignored {
                    service: None,
                    reason: format!("datacenter {theirs} is not managed (DATACENTER={ours})"),
                });
                continue;
            }
        }
        let key_of = |partition: Option<&String>, namespace: Option<&String>, name: &str| {
            let (partition, namespace) = if enterprise {
                (
                    Some(
                        partition
                            .or(scope.partition.as_ref())
                            .cloned()
                            .unwrap_or_else(|| "default".to_owned()),
                    ),
                    Some(namespace.cloned().unwrap_or_else(|| "default".to_owned())),
                )
            } else {
                (None, None)
            };
            ServiceKey {
                datacenter: dc.clone(),
                partition,
                namespace,
                name: name.to_owned(),
            }
        };
        let managed_partition = |key: &ServiceKey| {
            !enterprise
                || key
                    .partition
                    .as_ref()
                    .is_some_and(|p| ctx.config.partitions.contains(p))
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
                for s in ns.services.iter() {
                    let key = key_of(s.partition.as_ref(), s.namespace.as_ref(), &s.service);
                    if !managed_partition(&key) {
                        out.ignored.push(Ignored {
                            service: Some(key),
                            reason: "partition not in PARTITIONS".to_owned(),
                        });
                        continue;
                    }
                    let managed = s
                        .tags
                        .as_deref()
                        .is_some_and(|t| t.iter().any(|t| t == MANAGED_TAG));
                    if managed {
                        observed.entry(key).or_default().catalog = Some(s.id.clone());
                    } else {
                        unmanaged.insert(key);
                    }
                }
            }
        }
        for e in scope.service_defaults.iter().flatten() {
            if e.kind.as_deref().is_some_and(|k| k != "service-defaults") {
                continue;
            }
            let key = key_of(e.partition.as_ref(), e.namespace.as_ref(), &e.name);
            if managed_partition(&key) {
                observed.entry(key).or_default().entry = Some(e.view());
            }
        }
    }
    // A name held by an unmanaged instance is not ours even if a managed one exists too.
    (observed, unmanaged)
}

/// Extension data decisions for one plan.
struct ExtensionPlanner<'a> {
    prefix: Option<&'a str>,
    tier: Option<crate::config::Tier>,
    observed: Option<&'a ExtensionDataState>,
    leaves: HashMap<&'a str, &'a Leaf>,
    stored: HashMap<&'a str, Option<ExtensionData>>,
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
            .map(|s| s.leaves.iter().map(|l| (l.service.as_str(), l)).collect())
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
            observed: state,
            leaves,
            stored,
            root,
        }
    }

    /// Whether extension data is wanted and observed, but the service's leaf is missing.
    fn lacks_leaf(&self, key: &ServiceKey) -> bool {
        self.prefix.is_some()
            && self.observed.is_some()
            && !self.leaves.contains_key(key.name.as_str())
    }

    /// The write a wanted service needs, if any: request, leaf serial, reason.
    fn put(&self, key: &ServiceKey) -> Option<(Request, String, String)> {
        let prefix = self.prefix?;
        self.observed?;
        let leaf = self.leaves.get(key.name.as_str())?;
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
            Request::Ssm(SsmRequest {
                action: "PutParameter".into(),
                name,
                tier: self.tier,
            }),
            leaf.serial_number.clone(),
            why,
        ))
    }

    /// The delete a deregistered service needs, if any.
    fn delete(&self, key: &ServiceKey) -> Option<Request> {
        let name = key.parameter_name(self.prefix?);
        if self.observed.is_some() && !self.stored.contains_key(name.as_str()) {
            return None;
        }
        Some(Request::Ssm(SsmRequest {
            action: "DeleteParameter".into(),
            name,
            tier: None,
        }))
    }
}
