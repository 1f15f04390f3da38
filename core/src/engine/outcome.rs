//! The result of one invocation: verdict, per-service outcomes, counts.

use crate::consul::ServiceKey;
use crate::error::Failure;
use crate::event::Trigger;
use crate::plan::{Change, OperationKind, Plan};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// How an invocation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Everything planned was done (or, in a dry run, planned).
    Ok,
    /// The event needs nothing.
    Ignored,
    /// Something failed: an operation, the inventory, a function load, a safety stop.
    Failed,
    /// Writes stopped early because the invocation was about to time out; the next sync completes it.
    Partial,
    /// Consul or AWS gave no answer while observing; nothing was written.
    Unreachable,
    /// The configuration is invalid.
    InvalidConfig,
    /// The host could not set up (no credentials, no region).
    Setup,
}

impl Verdict {
    /// The JSON name (as serialised).
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Ignored => "ignored",
            Verdict::Failed => "failed",
            Verdict::Partial => "partial",
            Verdict::Unreachable => "unreachable",
            Verdict::InvalidConfig => "invalid_config",
            Verdict::Setup => "setup",
        }
    }

    /// The command line's exit code for it.
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Ok | Verdict::Ignored => 0,
            Verdict::Failed | Verdict::Partial => 1,
            Verdict::InvalidConfig | Verdict::Setup => 3,
            Verdict::Unreachable => 4,
        }
    }
}

/// What became of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum OpStatus {
    /// Not run (a dry run, or the sync stopped before it).
    Planned,
    /// Done.
    Ok,
    /// Consul or AWS refused it, or never answered.
    Failed,
    /// Not run: waiting for a confirmation, an earlier step did not complete, or time ran out.
    Skipped,
    /// Check-and-set miss: the object changed since it was read; left as it is.
    Conflict,
}

/// One operation's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Outcome {
    /// What the operation does.
    pub kind: OperationKind,
    /// The service.
    pub service: ServiceKey,
    /// The service's change.
    pub change: Change,
    /// What became of it.
    pub status: OpStatus,
    /// `PUT /v1/config`, `ssm PutParameter /name`: safe to print.
    pub request: String,
    /// Why it failed, was skipped or conflicted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Counts of operations by outcome.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct OpCounts {
    /// Done.
    pub ok: usize,
    /// Failed.
    pub failed: usize,
    /// Skipped.
    pub skipped: usize,
    /// Check-and-set misses.
    pub conflicts: usize,
    /// Not run.
    pub planned: usize,
}

/// What the Lambda inventory held.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct InventoryReport {
    /// Whether every page was read.
    pub complete: bool,
    /// Functions seen.
    pub functions: usize,
    /// `GetResources` pages read.
    pub pages: u32,
    /// Why the listing is incomplete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Functions that could not be loaded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed: Vec<String>,
}

/// Requests made, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct RequestCounts {
    /// Consul requests.
    pub consul: ReadWrite,
    /// AWS calls.
    pub aws: AwsCounts,
}

/// Reads and writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ReadWrite {
    /// GETs.
    pub reads: u64,
    /// Everything else.
    pub writes: u64,
    /// `/v1/txn` requests (counted among the writes).
    pub transactions: u64,
}

/// AWS calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct AwsCounts {
    /// Reads.
    pub reads: u64,
    /// Writes (`PutParameter`, `DeleteParameter`).
    pub writes: u64,
    /// Calls by API name.
    pub calls: BTreeMap<String, u64>,
}

/// The result of one invocation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SyncResult {
    /// Whether the invocation succeeded (the Lambda handler raises when not).
    pub ok: bool,
    /// How it ended.
    pub verdict: Verdict,
    /// The command line's exit code.
    pub exit_code: i32,
    /// One line that says what happened.
    pub message: String,
    /// Whether nothing was to be changed.
    pub dry_run: bool,
    /// What was reconciled.
    pub trigger: Trigger,
    /// The plan's counts (zero when no plan was made).
    pub summary: crate::plan::Summary,
    /// The plan, when one was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// One entry per operation of the plan.
    pub outcomes: Vec<Outcome>,
    /// The plan's errors (per function, and plan-wide).
    pub errors: Vec<crate::error::Diagnostic>,
    /// The outcomes that are not `ok` or `planned`: failed, skipped, conflicts.
    pub failures: Vec<Outcome>,
    /// Counts of `outcomes`.
    pub operations: OpCounts,
    /// The Lambda inventory.
    pub inventory: InventoryReport,
    /// Requests made.
    pub requests: RequestCounts,
    /// Whether writes stopped early (time ran out).
    pub partial: bool,
    /// Milliseconds from the first step to the last (by the host's clock).
    pub duration_ms: u64,
    /// The failure behind `invalid_config` or another stop, with every problem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// In a dry run: what the plan was computed from (`plan --out` writes it with the plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<super::review::PlanBasis>,
    /// The invocation's metrics as a CloudWatch Embedded Metric Format document:
    /// the host sets `_aws.Timestamp` (wall clock, ms) and prints it as one line.
    pub metrics: serde_json::Value,
    /// The doctor's report (`Start.doctor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor: Option<crate::doctor::DoctorReport>,
}

/// The metric names, in the order they are reported (docs: README "Metrics").
pub const METRIC_NAMES: &[(&str, &str)] = &[
    ("FunctionsSeen", "Count"),
    ("FunctionsEnabled", "Count"),
    ("FunctionsInvalid", "Count"),
    ("ServicesCreated", "Count"),
    ("ServicesUpdated", "Count"),
    ("ServicesDeleted", "Count"),
    ("ServicesUnchanged", "Count"),
    ("OperationsFailed", "Count"),
    ("OperationsSkipped", "Count"),
    ("CasConflicts", "Count"),
    ("ConsulRequests", "Count"),
    ("ConsulWrites", "Count"),
    ("AwsRequests", "Count"),
    ("SyncFailed", "Count"),
    ("Duration", "Milliseconds"),
    ("MeshEntriesWritten", "Count"),
];

/// The EMF namespace.
pub const METRICS_NAMESPACE: &str = "ConsulLambdaSync";

/// Builds the EMF document of a result (without its timestamp). Dimensions are
/// low-cardinality only: the trigger kind, the verdict and the registrator's own
/// function name (`registrator`, one value per registrator, so that two registrators
/// in one account have metrics and alarms of their own), never a managed function's name.
pub fn metrics_document(r: &SyncResult, registrator: &str) -> serde_json::Value {
    use serde_json::{json, Map, Value};
    let summary = r
        .plan
        .as_ref()
        .map(|p| p.summary.clone())
        .unwrap_or_default();
    let enabled = r.plan.as_ref().map_or(0, |p| {
        let mut names: std::collections::BTreeSet<&str> = std::collections::BTreeSet::new();
        for s in &p.services {
            if s.change != Change::Delete {
                if let Some(f) = s.function.as_deref() {
                    names.insert(f.split(':').take(7).last().unwrap_or(f));
                }
            }
        }
        names.len()
    });
    let invalid = r.plan.as_ref().map_or(0, |p| {
        p.errors
            .iter()
            .filter_map(|e| e.function.as_deref())
            .collect::<std::collections::BTreeSet<_>>()
            .len()
    });
    let mesh_written = r
        .outcomes
        .iter()
        .filter(|o| {
            matches!(
                o.kind,
                OperationKind::UpdateTerminatingGateway | OperationKind::UpdateExportedServices
            ) && o.status == OpStatus::Ok
        })
        .count();
    let values: [u64; 16] = [
        r.inventory.functions as u64,
        enabled as u64,
        invalid as u64,
        summary.create as u64,
        summary.update as u64,
        summary.delete as u64,
        summary.unchanged as u64,
        r.operations.failed as u64,
        r.operations.skipped as u64,
        r.operations.conflicts as u64,
        r.requests.consul.reads + r.requests.consul.writes,
        r.requests.consul.writes,
        r.requests.aws.reads + r.requests.aws.writes,
        u64::from(!r.ok),
        r.duration_ms,
        mesh_written as u64,
    ];
    let trigger = match r.trigger {
        Trigger::FullSync => "fullSync",
        Trigger::Function { .. } => "function",
        Trigger::Ignore { .. } => "ignore",
    };
    let mut doc = Map::new();
    doc.insert(
        "_aws".into(),
        json!({
            "Timestamp": 0,
            "CloudWatchMetrics": [{
                "Namespace": METRICS_NAMESPACE,
                "Dimensions": [["Trigger"], ["Trigger", "Verdict"], ["FunctionName", "Trigger"]],
                "Metrics": METRIC_NAMES.iter().map(|(n, u)| json!({"Name": n, "Unit": u})).collect::<Vec<_>>(),
            }]
        }),
    );
    doc.insert("Trigger".into(), Value::from(trigger));
    doc.insert("FunctionName".into(), Value::from(registrator));
    doc.insert(
        "Verdict".into(),
        serde_json::to_value(r.verdict).unwrap_or(Value::Null),
    );
    doc.insert("DryRun".into(), Value::from(r.dry_run));
    for ((name, _), v) in METRIC_NAMES.iter().zip(values) {
        doc.insert((*name).into(), Value::from(v));
    }
    Value::Object(doc)
}
