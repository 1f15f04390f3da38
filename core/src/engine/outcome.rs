//! The result of one invocation: its verdict, what became of each operation, and
//! counts of what was confirmed done — never of what was only planned — for the
//! result, the log and the metrics line.

use super::basis::PlanBasis;
use super::doctor::report::DoctorReport;
use crate::consul::ServiceKey;
use crate::error::{Diagnostic, Failure};
use crate::event::Trigger;
use crate::plan::{Change, OperationKind, Plan, Summary};
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
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

    /// Whether the invocation succeeded.
    pub fn ok(self) -> bool {
        matches!(self, Verdict::Ok | Verdict::Ignored)
    }
}

/// What became of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum OpStatus {
    /// Not run (a dry run, or the sync stopped before it).
    Planned,
    /// Done, and confirmed by Consul or AWS.
    Ok,
    /// Consul or AWS refused it, or never answered.
    Failed,
    /// Not run: waiting for a confirmation, an earlier step did not complete, or time ran out.
    Skipped,
    /// Check-and-set miss: the object changed since it was read; left as it is.
    Conflict,
}

impl OpStatus {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            OpStatus::Planned => "planned",
            OpStatus::Ok => "ok",
            OpStatus::Failed => "failed",
            OpStatus::Skipped => "skipped",
            OpStatus::Conflict => "conflict",
        }
    }
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
    /// The request it lowers to, e.g. `PUT /v1/config?cas=0&dc=dc1`: safe to print.
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

impl OpCounts {
    /// Counts one more operation of `status`.
    pub fn add(&mut self, status: OpStatus) {
        *match status {
            OpStatus::Planned => &mut self.planned,
            OpStatus::Ok => &mut self.ok,
            OpStatus::Failed => &mut self.failed,
            OpStatus::Skipped => &mut self.skipped,
            OpStatus::Conflict => &mut self.conflicts,
        } += 1;
    }
}

/// Services whose change was confirmed done: a creation counts once its
/// registration succeeded, a deletion once its deregistration did, an update once
/// every one of its writes did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Applied {
    /// Services registered for the first time.
    pub created: usize,
    /// Services repaired or changed.
    pub updated: usize,
    /// Services deregistered.
    pub deleted: usize,
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
    /// Reads (and the doctor's questions).
    pub reads: u64,
    /// Writes.
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
    /// The plan's counts: what was planned (zero when no plan was made).
    pub summary: Summary,
    /// What was confirmed done (all zero in a dry run).
    pub applied: Applied,
    /// The plan, in a full result (`compact: false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// One entry per operation of the plan, in a full result.
    pub outcomes: Vec<Outcome>,
    /// The plan's errors (per function, and plan-wide).
    pub errors: Vec<Diagnostic>,
    /// The outcomes that are not `ok` or `planned`: failed, skipped, conflicts.
    pub failures: Vec<Outcome>,
    /// Counts of the outcomes.
    pub operations: OpCounts,
    /// The Lambda inventory.
    pub inventory: InventoryReport,
    /// Requests made.
    pub requests: RequestCounts,
    /// Whether writes stopped early (time ran out).
    pub partial: bool,
    /// Milliseconds from the first step to the last (by the host's clock).
    pub duration_ms: u64,
    /// The failure behind a stop, with every problem: its code and hint say the way out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<Failure>,
    /// In a dry run: what the plan was computed from (`plan --out` writes it with the plan).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub basis: Option<PlanBasis>,
    /// The invocation's metrics as a CloudWatch Embedded Metric Format document:
    /// the host sets `_aws.Timestamp` (wall clock, ms) and prints it as one line.
    pub metrics: Metrics,
    /// The doctor's report (`Start.doctor`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doctor: Option<DoctorReport>,
}

/// The metric names, in the order they are reported (README "Metrics"); the
/// confirmed service counts (`ServicesCreated`, `ServicesUpdated`,
/// `ServicesDeleted`) are left out of a dry run's document.
pub const METRIC_NAMES: &[(&str, &str)] = &[
    ("FunctionsSeen", "Count"),
    ("FunctionsEnabled", "Count"),
    ("FunctionsInvalid", "Count"),
    ("ServicesCreated", "Count"),
    ("ServicesUpdated", "Count"),
    ("ServicesDeleted", "Count"),
    ("ServicesUnchanged", "Count"),
    ("ServicesToCreate", "Count"),
    ("ServicesToUpdate", "Count"),
    ("ServicesToDelete", "Count"),
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

/// The names only a run that writes reports.
const CONFIRMED: [&str; 3] = ["ServicesCreated", "ServicesUpdated", "ServicesDeleted"];

/// The EMF namespace.
pub const METRICS_NAMESPACE: &str = "ConsulLambdaSync";

/// One invocation's metrics: low-cardinality dimensions only (the trigger kind,
/// the verdict and the registrator's own function name, one value per registrator,
/// so that two registrators in one account have metrics and alarms of their own;
/// never a managed function's name).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Metrics {
    /// `fullSync`, `function` or `ignore`.
    pub trigger: &'static str,
    /// The verdict.
    pub verdict: &'static str,
    /// The registrator's own function name (`AWS_LAMBDA_FUNCTION_NAME`): the
    /// `FunctionName` dimension.
    pub function_name: String,
    /// Whether it was a dry run (then the confirmed counts are left out).
    pub dry_run: bool,
    /// The values, by [`METRIC_NAMES`] name.
    pub values: BTreeMap<&'static str, u64>,
}

#[cfg(feature = "schema")]
impl schemars::JsonSchema for Metrics {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Metrics".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A CloudWatch Embedded Metric Format document.",
            "type": "object",
            "additionalProperties": true,
        })
    }
}

impl Serialize for Metrics {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Aws<'a> {
            #[serde(rename = "Timestamp")]
            timestamp: u64,
            #[serde(rename = "CloudWatchMetrics")]
            cloud_watch_metrics: [Directive<'a>; 1],
        }
        #[derive(Serialize)]
        struct Directive<'a> {
            #[serde(rename = "Namespace")]
            namespace: &'static str,
            #[serde(rename = "Dimensions")]
            dimensions: [&'static [&'static str]; 3],
            #[serde(rename = "Metrics")]
            metrics: Vec<Metric<'a>>,
        }
        #[derive(Serialize)]
        struct Metric<'a> {
            #[serde(rename = "Name")]
            name: &'a str,
            #[serde(rename = "Unit")]
            unit: &'a str,
        }
        let reported = |name: &&str| !(self.dry_run && CONFIRMED.contains(name));
        let mut m = s.serialize_map(None)?;
        m.serialize_entry(
            "_aws",
            &Aws {
                timestamp: 0,
                cloud_watch_metrics: [Directive {
                    namespace: METRICS_NAMESPACE,
                    dimensions: [
                        &["Trigger"],
                        &["Trigger", "Verdict"],
                        &["FunctionName", "Trigger"],
                    ],
                    metrics: METRIC_NAMES
                        .iter()
                        .filter(|(n, _)| reported(n))
                        .map(|(name, unit)| Metric { name, unit })
                        .collect(),
                }],
            },
        )?;
        m.serialize_entry("Trigger", self.trigger)?;
        m.serialize_entry("FunctionName", &self.function_name)?;
        m.serialize_entry("Verdict", self.verdict)?;
        m.serialize_entry("DryRun", &self.dry_run)?;
        for (name, _) in METRIC_NAMES.iter().filter(|(n, _)| reported(n)) {
            m.serialize_entry(name, &self.values.get(name).copied().unwrap_or(0))?;
        }
        m.end()
    }
}

impl SyncResult {
    /// The metrics of this result; `enabled`: the functions the plan keeps
    /// registered; `mesh_written`: the mesh entry writes confirmed; `registrator`:
    /// the registrator's own function name.
    pub(crate) fn measure(
        &self,
        enabled: usize,
        mesh_written: usize,
        registrator: &str,
    ) -> Metrics {
        let s = &self.summary;
        let invalid = self
            .errors
            .iter()
            .filter_map(|e| e.function.as_deref())
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let r = &self.requests;
        let values: [(&'static str, u64); 19] = [
            ("FunctionsSeen", self.inventory.functions as u64),
            ("FunctionsEnabled", enabled as u64),
            ("FunctionsInvalid", invalid as u64),
            ("ServicesCreated", self.applied.created as u64),
            ("ServicesUpdated", self.applied.updated as u64),
            ("ServicesDeleted", self.applied.deleted as u64),
            ("ServicesUnchanged", s.unchanged as u64),
            ("ServicesToCreate", s.create as u64),
            ("ServicesToUpdate", s.update as u64),
            ("ServicesToDelete", s.delete as u64),
            ("OperationsFailed", self.operations.failed as u64),
            ("OperationsSkipped", self.operations.skipped as u64),
            ("CasConflicts", self.operations.conflicts as u64),
            ("ConsulRequests", r.consul.reads + r.consul.writes),
            ("ConsulWrites", r.consul.writes),
            ("AwsRequests", r.aws.reads + r.aws.writes),
            ("SyncFailed", u64::from(!self.ok)),
            ("Duration", self.duration_ms),
            ("MeshEntriesWritten", mesh_written as u64),
        ];
        Metrics {
            trigger: match self.trigger {
                Trigger::FullSync => "fullSync",
                Trigger::Function { .. } => "function",
                Trigger::Ignore { .. } => "ignore",
            },
            verdict: self.verdict.as_str(),
            function_name: registrator.to_owned(),
            dry_run: self.dry_run,
            values: values.into_iter().collect(),
        }
    }
}
