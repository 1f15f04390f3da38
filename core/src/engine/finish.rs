//! The end of an invocation: the verdict and its message, the outcomes and what
//! was confirmed done, the last log record and the metrics.

use super::basis::PlanBasis;
use super::doctor::report::DoctorReport;
use super::io::Io;
use super::outcome::{Applied, InventoryReport, OpCounts, OpStatus, Outcome, SyncResult, Verdict};
use super::{Run, Stop};
use crate::config::LogLevel;
use crate::error::{Code, Diagnostic, Failure};
use crate::event::Trigger;
use crate::lower::Lowering;
use crate::plan::{Change, OperationKind, Plan};
use std::collections::BTreeMap;

/// What became of a plan's operations.
#[derive(Debug, Default)]
pub(crate) struct Executed {
    /// Each operation's status, in the plan's order.
    pub(crate) status: Vec<OpStatus>,
    /// Why each did not succeed.
    pub(crate) errors: Vec<Option<String>>,
    /// Whether writes stopped early (time ran out).
    pub(crate) partial: bool,
}

/// Everything the result is made of.
#[derive(Debug, Default)]
pub(crate) struct Ending {
    pub(crate) stop: Option<Stop>,
    pub(crate) plan: Option<Plan>,
    pub(crate) inventory: InventoryReport,
    pub(crate) executed: Option<Executed>,
    pub(crate) basis: Option<PlanBasis>,
    /// The functions the plan keeps registered, counted before a compact run
    /// let go of the plan's rows.
    pub(crate) functions_enabled: Option<usize>,
    /// The doctor's report, verdict and message.
    pub(crate) doctor: Option<(DoctorReport, Verdict, String)>,
}

impl Ending {
    /// An ending before anything was observed.
    pub(crate) fn stopped(stop: Stop) -> Self {
        Ending {
            stop: Some(stop),
            ..Ending::default()
        }
    }
}

/// What became of the plan's operations: every outcome (in a full result) or
/// only those that did not succeed, their counts, and what was confirmed done.
struct Tally {
    outcomes: Vec<Outcome>,
    failures: Vec<Outcome>,
    counts: OpCounts,
    applied: Applied,
    mesh_written: usize,
}

/// What one service's operations came to.
#[derive(Default)]
struct Seen {
    change: Option<Change>,
    registered: bool,
    deregistered: bool,
    all_ok: bool,
    any: bool,
}

fn tally(plan: Option<&Plan>, executed: Option<&Executed>, node: &str, full: bool) -> Tally {
    let mut t = Tally {
        outcomes: Vec::new(),
        failures: Vec::new(),
        counts: OpCounts::default(),
        applied: Applied::default(),
        mesh_written: 0,
    };
    let Some(plan) = plan else { return t };
    let lowering = Lowering { node };
    let mut by_service: BTreeMap<&crate::consul::ServiceKey, Seen> = BTreeMap::new();
    for (i, op) in plan.operations.iter().enumerate() {
        let status = executed
            .and_then(|e| e.status.get(i).copied())
            .unwrap_or(OpStatus::Planned);
        t.counts.add(status);
        let ok = status == OpStatus::Ok;
        if op.mesh().is_some() {
            t.mesh_written += usize::from(ok);
        } else {
            let seen = by_service.entry(&op.service).or_insert(Seen {
                all_ok: true,
                ..Seen::default()
            });
            seen.change = Some(op.change);
            seen.any = true;
            seen.all_ok &= ok;
            seen.registered |= ok && op.kind() == OperationKind::RegisterService;
            seen.deregistered |= ok && op.kind() == OperationKind::DeregisterService;
        }
        let failed = !matches!(status, OpStatus::Ok | OpStatus::Planned);
        if !full && !failed {
            continue;
        }
        let outcome = Outcome {
            kind: op.kind(),
            service: op.service.clone(),
            change: op.change,
            status,
            request: lowering.describe(op),
            error: executed.and_then(|e| e.errors.get(i).cloned().flatten()),
        };
        if failed {
            t.failures.push(outcome.clone());
        }
        if full {
            t.outcomes.push(outcome);
        }
    }
    for s in by_service.values() {
        match s.change {
            Some(Change::Create) if s.registered => t.applied.created += 1,
            Some(Change::Delete) if s.deregistered => t.applied.deleted += 1,
            Some(Change::Update) if s.any && s.all_ok => t.applied.updated += 1,
            _ => {}
        }
    }
    t
}

/// A failure as one line that says the way out: `[code] message (hint)`, every
/// problem of a failure that has several.
pub(crate) fn way_out(f: &Failure) -> String {
    match f.errors.as_slice() {
        [] => Diagnostic::new(f.code, f.message.clone(), f.hint.clone()).to_string(),
        [one] => one.to_string(),
        many => format!(
            "[{}] {} ({} problems): {}",
            f.code,
            f.message,
            many.len(),
            many.iter()
                .map(|d| match &d.key {
                    Some(k) => format!("{k}: {d}"),
                    None => d.to_string(),
                })
                .collect::<Vec<_>>()
                .join("; ")
        ),
    }
}

/// The verdict and its message (a stop's says its code and the way out).
fn verdict(
    run: &Run,
    ending: &Ending,
    ops: &OpCounts,
    applied: &Applied,
    partial: bool,
) -> (Verdict, String) {
    if let Some(stop) = &ending.stop {
        return (stop.verdict, way_out(&stop.failure));
    }
    if let Some((_, verdict, message)) = &ending.doctor {
        return (*verdict, message.clone());
    }
    if matches!(run.trigger, Trigger::Ignore { .. }) {
        return (Verdict::Ignored, "the event needs nothing".into());
    }
    let mut problems = Vec::new();
    if ops.failed > 0 {
        problems.push(format!("{} operation(s) failed", ops.failed));
    }
    if ops.skipped > 0 {
        problems.push(format!("{} operation(s) skipped", ops.skipped));
    }
    if !ending.inventory.complete {
        problems.push("the Lambda inventory was incomplete".into());
    }
    if !ending.inventory.failed.is_empty() {
        problems.push("functions could not be loaded".into());
    }
    let plan = ending.plan.as_ref();
    for e in plan.map(|p| p.errors.as_slice()).unwrap_or_default() {
        if BLOCKING.contains(&e.code) {
            problems.push(format!("[{}] {} ({})", e.code, e.message, e.hint));
        }
    }
    let listed = || {
        if problems.is_empty() {
            String::new()
        } else {
            format!(" ({})", problems.join(", "))
        }
    };
    if partial {
        let m = format!(
            "sync incomplete: the invocation ran out of time; the next sync completes it{}",
            listed()
        );
        return (Verdict::Partial, m);
    }
    if !problems.is_empty() {
        return (
            Verdict::Failed,
            format!("sync incomplete: {}", problems.join(", ")),
        );
    }
    let s = plan.map(|p| p.summary.clone()).unwrap_or_default();
    let conflicts = if ops.conflicts > 0 {
        format!(
            "; {} check-and-set conflict(s) left for the next sync",
            ops.conflicts
        )
    } else {
        String::new()
    };
    let message = if run.config.dry_run {
        format!(
            "dry run, nothing changed: {} to create, {} to update, {} to delete, {} unchanged",
            s.create, s.update, s.delete, s.unchanged
        )
    } else {
        format!(
            "synced: {} created, {} updated, {} deleted, {} unchanged{conflicts}",
            applied.created, applied.updated, applied.deleted, s.unchanged
        )
    };
    (Verdict::Ok, message)
}

/// The result of an ending; logs "sync finished".
pub(crate) fn result(io: &mut Io, run: &Run, ending: Ending) -> SyncResult {
    let full = !run.compact;
    let t = tally(
        ending.plan.as_ref(),
        ending.executed.as_ref(),
        &run.config.node_name,
        full,
    );
    let partial = ending.executed.as_ref().is_some_and(|e| e.partial);
    let (verdict, message) = verdict(run, &ending, &t.counts, &t.applied, partial);
    // Said on a terminal by the command line: nothing in it may act there.
    let message = crate::text::printable(&message).into_owned();
    let summary = ending
        .plan
        .as_ref()
        .map(|p| p.summary.clone())
        .unwrap_or_default();
    let duration_ms = io.elapsed();
    let failure = ending
        .stop
        .as_ref()
        .map(|s| s.failure.clone())
        .or_else(|| blocking(ending.plan.as_ref()));
    log_finished(
        io,
        run,
        verdict,
        &message,
        &t,
        &summary,
        failure.as_ref(),
        duration_ms,
    );
    let mut r = SyncResult {
        ok: verdict.ok(),
        verdict,
        exit_code: verdict.exit_code(),
        message,
        dry_run: run.config.dry_run || ending.doctor.is_some(),
        trigger: run.trigger.clone(),
        summary,
        applied: t.applied,
        plan: None,
        outcomes: t.outcomes,
        errors: ending
            .plan
            .as_ref()
            .map(|p| p.errors.clone())
            .unwrap_or_default(),
        failures: t.failures,
        operations: t.counts,
        inventory: ending.inventory,
        requests: io.counts.clone(),
        partial,
        duration_ms,
        failure,
        basis: if full { ending.basis } else { None },
        metrics: super::outcome::Metrics::default(),
        doctor: ending.doctor.map(|(report, _, _)| report),
    };
    let enabled = ending
        .functions_enabled
        .unwrap_or_else(|| ending.plan.as_ref().map_or(0, functions_enabled));
    r.metrics = r.measure(enabled, t.mesh_written, &run.config.name);
    if full {
        r.plan = ending.plan;
    }
    r
}

/// The plan errors that fail a sync without stopping the rest of it: the
/// mass-deregistration stop, and a name Consul has on another node (a take-over
/// refused, which the operator must hear of).
const BLOCKING: [Code; 2] = [Code::MassDeregistrationBlocked, Code::NameOnOtherNode];

/// The plan errors that failed the sync without a stop, as the result's failure.
fn blocking(plan: Option<&Plan>) -> Option<Failure> {
    let errors: Vec<&Diagnostic> = plan?
        .errors
        .iter()
        .filter(|e| BLOCKING.contains(&e.code))
        .collect();
    match errors.as_slice() {
        [] => None,
        [one] => Some((*one).clone().into()),
        [first, ..] => Some(Failure::many(
            first.code,
            "the sync did not do everything it should",
            errors.iter().map(|e| (*e).clone()).collect(),
        )),
    }
}

/// The functions a plan keeps registered (for the metrics).
pub(crate) fn functions_enabled(plan: &Plan) -> usize {
    plan.services
        .iter()
        .filter(|s| s.change != Change::Delete)
        .filter_map(|s| s.function.as_deref())
        .map(|f| f.split(':').take(7).last().unwrap_or(f))
        .collect::<std::collections::BTreeSet<_>>()
        .len()
}

#[allow(clippy::too_many_arguments)]
fn log_finished(
    io: &mut Io,
    run: &Run,
    verdict: Verdict,
    message: &str,
    t: &Tally,
    summary: &crate::plan::Summary,
    failure: Option<&Failure>,
    duration_ms: u64,
) {
    let (applied, ops) = (&t.applied, &t.counts);
    let level = if verdict.ok() {
        LogLevel::Info
    } else {
        LogLevel::Error
    };
    let c = &io.counts;
    let fields = [
        ("verdict", Some(verdict.as_str().into())),
        ("message", Some(message.into())),
        ("dryRun", Some(run.config.dry_run.into())),
        ("created", Some(applied.created.into())),
        ("updated", Some(applied.updated.into())),
        ("deleted", Some(applied.deleted.into())),
        ("toCreate", Some(summary.create.into())),
        ("toUpdate", Some(summary.update.into())),
        ("toDelete", Some(summary.delete.into())),
        ("unchanged", Some(summary.unchanged.into())),
        ("ok", Some(ops.ok.into())),
        ("failed", Some(ops.failed.into())),
        ("skipped", Some(ops.skipped.into())),
        ("conflicts", Some(ops.conflicts.into())),
        ("consulReads", Some(c.consul.reads.into())),
        ("consulWrites", Some(c.consul.writes.into())),
        ("awsCalls", Some((c.aws.reads + c.aws.writes).into())),
        ("durationMs", Some(duration_ms.into())),
        ("code", failure.map(|f| f.code.as_str().into())),
        ("hint", failure.map(|f| f.hint.clone().into())),
    ];
    io.log(level, "sync finished", fields);
}
