//! The end of an invocation: the verdict and its message, the outcomes and what
//! was confirmed done, the last log record and the metrics.

use super::basis::PlanBasis;
use super::doctor::report::DoctorReport;
use super::io::Io;
use super::outcome::{Applied, InventoryReport, OpCounts, OpStatus, Outcome, SyncResult, Verdict};
use super::{Run, Stop};
use crate::config::LogLevel;
use crate::error::Code;
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

/// The outcomes of the plan's operations, and their counts.
fn outcomes(
    plan: Option<&Plan>,
    executed: Option<&Executed>,
    node: &str,
) -> (Vec<Outcome>, OpCounts) {
    let Some(plan) = plan else {
        return (Vec::new(), OpCounts::default());
    };
    let lowering = Lowering { node };
    let mut counts = OpCounts::default();
    let list = plan
        .operations
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let status = executed
                .and_then(|e| e.status.get(i).copied())
                .unwrap_or(OpStatus::Planned);
            counts.add(status);
            Outcome {
                kind: op.kind(),
                service: op.service.clone(),
                change: op.change,
                status,
                request: lowering.describe(op),
                error: executed.and_then(|e| e.errors.get(i).cloned().flatten()),
            }
        })
        .collect();
    (list, counts)
}

/// What was confirmed done: creations whose registration succeeded, deletions
/// whose deregistration did, updates whose every write did.
fn applied(outcomes: &[Outcome]) -> Applied {
    #[derive(Default)]
    struct Seen {
        change: Option<Change>,
        registered: bool,
        deregistered: bool,
        all_ok: bool,
        any: bool,
    }
    let mut by_service: BTreeMap<&crate::consul::ServiceKey, Seen> = BTreeMap::new();
    for o in outcomes {
        if matches!(
            o.kind,
            OperationKind::UpdateTerminatingGateway | OperationKind::UpdateExportedServices
        ) {
            continue;
        }
        let seen = by_service.entry(&o.service).or_insert(Seen {
            all_ok: true,
            ..Seen::default()
        });
        let ok = o.status == OpStatus::Ok;
        seen.change = Some(o.change);
        seen.any = true;
        seen.all_ok &= ok;
        seen.registered |= ok && o.kind == OperationKind::RegisterService;
        seen.deregistered |= ok && o.kind == OperationKind::DeregisterService;
    }
    let mut a = Applied::default();
    for s in by_service.values() {
        match s.change {
            Some(Change::Create) if s.registered => a.created += 1,
            Some(Change::Delete) if s.deregistered => a.deleted += 1,
            Some(Change::Update) if s.any && s.all_ok => a.updated += 1,
            _ => {}
        }
    }
    a
}

/// The verdict and its message.
fn verdict(
    run: &Run,
    ending: &Ending,
    ops: &OpCounts,
    applied: &Applied,
    partial: bool,
) -> (Verdict, String) {
    if let Some(stop) = &ending.stop {
        return (stop.verdict, stop.failure.message.clone());
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
        if e.code == Code::MassDeregistrationBlocked {
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
    let (all, operations) = outcomes(
        ending.plan.as_ref(),
        ending.executed.as_ref(),
        &run.config.node_name,
    );
    let applied = applied(&all);
    let partial = ending.executed.as_ref().is_some_and(|e| e.partial);
    let (verdict, message) = verdict(run, &ending, &operations, &applied, partial);
    let summary = ending
        .plan
        .as_ref()
        .map(|p| p.summary.clone())
        .unwrap_or_default();
    let duration_ms = io.elapsed();
    log_finished(
        io,
        run,
        verdict,
        &message,
        &applied,
        &operations,
        &summary,
        duration_ms,
    );
    let mesh_written = all
        .iter()
        .filter(|o| o.status == OpStatus::Ok)
        .filter(|o| {
            matches!(
                o.kind,
                OperationKind::UpdateTerminatingGateway | OperationKind::UpdateExportedServices
            )
        })
        .count();
    let failures = all
        .iter()
        .filter(|o| !matches!(o.status, OpStatus::Ok | OpStatus::Planned))
        .cloned()
        .collect();
    let full = !run.compact;
    let mut r = SyncResult {
        ok: verdict.ok(),
        verdict,
        exit_code: verdict.exit_code(),
        message,
        dry_run: run.config.dry_run || ending.doctor.is_some(),
        trigger: run.trigger.clone(),
        summary,
        applied,
        plan: None,
        outcomes: if full { all } else { Vec::new() },
        errors: ending
            .plan
            .as_ref()
            .map(|p| p.errors.clone())
            .unwrap_or_default(),
        failures,
        operations,
        inventory: ending.inventory,
        requests: io.counts.clone(),
        partial,
        duration_ms,
        failure: ending.stop.map(|s| s.failure),
        basis: if full { ending.basis } else { None },
        metrics: super::outcome::Metrics::default(),
        doctor: ending.doctor.map(|(report, _, _)| report),
    };
    r.metrics = r.measure(ending.plan.as_ref(), mesh_written);
    if full {
        r.plan = ending.plan;
    }
    r
}

#[allow(clippy::too_many_arguments)]
fn log_finished(
    io: &mut Io,
    run: &Run,
    verdict: Verdict,
    message: &str,
    applied: &Applied,
    ops: &OpCounts,
    summary: &crate::plan::Summary,
    duration_ms: u64,
) {
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
    ];
    io.log(level, "sync finished", fields);
}
