//! The planner proper: the steps of a plan put together, over the evaluated
//! functions.
//!
//! The planner borrows names from its input and from the function reports instead
//! of copying them, keeps one row per service (with its steps) rather than building
//! every request up front, and writes the plan JSON from the rows directly
//! (`write.rs`); [`super::plan`] turns the same rows into an owned [`Plan`].

use super::claims::{claims, groups, AliasServices};
use super::conflicts::{conflicts, Elsewhere};
use super::context::Ctx;
use super::extension::ExtensionPlanner;
use super::functions::Roster;
use super::mesh::mesh_operations;
use super::observed::observe_consul;
use super::planner::Planner;
use super::rows::{Row, Rows};
use super::safety::{confirmations, mass_deregistration};
use super::trigger::Reach;
use super::{Change, Operation, Plan, PlanInput, ServiceChange, Summary};
use crate::error::Diagnostic;
use crate::tags::Evaluation;

/// A plan before it is written out: the rows (in service order) and everything
/// else of the [`Plan`] (whose `services` are left empty, and whose `operations`
/// hold only the mesh entry writes: removals before every service's, additions after).
pub(super) struct Draft<'a> {
    pub(super) rows: Rows<'a>,
    pub(super) rest: Plan,
}

/// The planner proper, over the evaluated functions.
pub(super) fn draft<'a>(
    ctx: &'a Ctx<'a>,
    input: &'a PlanInput,
    reports: &'a [Evaluation<'a>],
    aliases: &'a AliasServices,
) -> Draft<'a> {
    let inv = &input.inventory;
    let mut out = Plan::default();

    // Settings that weaken security are said in every plan.
    out.warnings.extend(ctx.config.warnings.iter().cloned());

    // 1. Consul: what we manage, what we must not touch.
    let observed = observe_consul(ctx, &input.consul, &mut out);

    // 2. Lambda: functions by name; frozen ones keep their Consul state exactly as it is.
    let mut roster = Roster::new(ctx, inv, reports, &mut out);

    // 3. Desired services, in service order (claimants of one name in ARN order);
    // two sources of one name conflict and both freeze.
    let claims = claims(ctx, reports, aliases, &inv.missing_aliases, &mut out);
    let groups = groups(ctx, &claims, &observed);
    let elsewhere = Elsewhere::new(&input.consul.elsewhere);
    let conflicts = conflicts(ctx, &groups, &mut roster, &elsewhere);
    out.errors.extend(conflicts);

    // 4. What this trigger may touch.
    let Some(reach) = Reach::of(ctx, &input.trigger, &mut out) else {
        finish(&mut out, &[]);
        return Draft {
            rows: Rows::default(),
            rest: out,
        };
    };
    let ext = ExtensionPlanner::new(ctx, input.extension_data.as_ref(), &mut out);
    let planner = Planner {
        ctx,
        roster: &roster,
        reach,
        complete: inv.complete,
        ext: &ext,
    };

    // 5. Register and repair what is wanted (in service order).
    let mut rows: Vec<Row<'a>> = Vec::with_capacity(claims.len());
    let mut registrations = 0usize;
    for g in &groups {
        if let Some(row) = planner.wanted_row(g, &mut out) {
            registrations += usize::from(row.registers());
            rows.push(row);
        }
    }

    // 6. Deregister what no function wants.
    let mut deletions = planner.unwanted_rows(&observed, &mut out);
    // Managed services once this plan's registrations are done: counting them keeps the
    // guard's decision the same when the plan is applied and planned again.
    let managed_count =
        observed.iter().filter(|(_, o)| o.catalog.is_some()).count() + registrations;
    if let Some(stop) = mass_deregistration(ctx, reach, managed_count, deletions.len()) {
        out.errors.push(stop);
        deletions.clear();
    } else {
        ext.delete_parameters(&groups, &mut deletions);
    }
    deletions.sort_unstable_by(|a, b| a.key.cmp(&b.key));
    let draft_rows = Rows::new(rows, deletions);

    out.confirmations = confirmations(&draft_rows.rows);
    // 7. Mesh entries: list what is wanted, take out what is deregistered.
    out.operations = mesh_operations(ctx, input, &observed, &draft_rows.rows, &mut out);
    finish(&mut out, &draft_rows.rows);
    Draft {
        rows: draft_rows,
        rest: out,
    }
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
    summary.operations += out.operations.len();
    out.summary = summary;
}

impl Draft<'_> {
    /// The owned [`Plan`].
    pub(super) fn to_plan(&self) -> Plan {
        let mut plan = self.rest.clone();
        let mut operations = Vec::with_capacity(plan.summary.operations);
        let (mut first, mut last): (Vec<Operation>, Vec<Operation>) =
            std::mem::take(&mut plan.operations)
                .into_iter()
                .partition(Operation::runs_first);
        operations.append(&mut first);
        let mut services = Vec::with_capacity(self.rows.rows.len());
        for row in self.rows.ordered() {
            let service = row.key.owned();
            let function = row.function.as_deref().map(str::to_owned);
            let reason = row.reason.to_string();
            for step in row.steps() {
                operations.push(row.operation(step, &service, &reason, function.as_deref()));
            }
            services.push(ServiceChange {
                service,
                change: row.change,
                function,
                reason,
            });
        }
        operations.append(&mut last);
        plan.operations = operations;
        plan.services = services;
        plan
    }
}
