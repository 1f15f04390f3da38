//! A plan as text, like `terraform plan`: safe to paste into a ticket (plans hold
//! no secrets). Every operation of the plan is shown, with the request it lowers
//! to ([`crate::lower`]): under its service's row, under its mesh entry, or —
//! an operation no row explains, as a hand-edited plan file may hold — on its own.

use crate::consul::ServiceKey;
use crate::lower::Lowering;
use crate::plan::{Change, Operation, Plan};
use crate::text::printable;
use std::fmt::Write;

fn place(key: &ServiceKey) -> String {
    let mut s = printable(&key.name).into_owned();
    let scope: Vec<&str> = [&key.datacenter, &key.partition, &key.namespace]
        .into_iter()
        .filter_map(|p| p.as_deref())
        .collect();
    if !scope.is_empty() {
        let _ = write!(s, " ({})", printable(&scope.join("/")));
    }
    s
}

/// The line of one operation: the request it sends, and what it waits for.
fn operation_line(op: &Operation) -> String {
    let what = Lowering { node: "" }.describe(op);
    let gate = op
        .confirm_absent
        .as_deref()
        .map(|a| format!("  (after ListTags confirms {} is gone)", printable(a)))
        .unwrap_or_default();
    format!("    {}{gate}", printable(&what))
}

/// The mesh entries that change, each with its operations.
fn mesh_section(s: &mut String, plan: &Plan, shown: &mut [bool]) {
    for m in &plan.mesh {
        let sign = if m.change == Change::Create { "+" } else { "~" };
        let partition = m
            .partition
            .as_deref()
            .map(|p| format!(" (partition {})", printable(p)))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{sign} {} {}{partition}  {}",
            m.kind.consul_kind(),
            printable(&m.name),
            printable(&m.reason)
        );
        for (i, op) in plan.operations.iter().enumerate() {
            let same = op
                .mesh()
                .is_some_and(|e| e.kind == m.kind && e.name == m.name)
                && op.service.partition == m.partition;
            if same {
                let _ = writeln!(s, "{}", operation_line(op));
                if let Some(seen) = shown.get_mut(i) {
                    *seen = true;
                }
            }
        }
    }
}

/// Renders a plan as readable text.
pub fn format_plan(plan: &Plan) -> String {
    let mut s = String::new();
    let mut shown = vec![false; plan.operations.len()];
    for row in &plan.services {
        let sign = match row.change {
            Change::Create => "+",
            Change::Update => "~",
            Change::Delete => "-",
            Change::Unchanged => continue,
        };
        let _ = writeln!(
            s,
            "{sign} {}  {}",
            place(&row.service),
            printable(&row.reason)
        );
        for (i, op) in plan.operations.iter().enumerate() {
            if op.service == row.service && op.mesh().is_none() {
                let _ = writeln!(s, "{}", operation_line(op));
                if let Some(seen) = shown.get_mut(i) {
                    *seen = true;
                }
            }
        }
    }
    mesh_section(&mut s, plan, &mut shown);
    let rest: Vec<&Operation> = plan
        .operations
        .iter()
        .zip(&shown)
        .filter(|(_, seen)| !**seen)
        .map(|(op, _)| op)
        .collect();
    if !rest.is_empty() {
        let _ = writeln!(s, "Operations no row of this plan explains:");
        for op in rest {
            let _ = writeln!(
                s,
                "! {} {}  {}",
                op.kind().as_str(),
                place(&op.service),
                printable(&op.reason)
            );
            let _ = writeln!(s, "{}", operation_line(op));
        }
    }
    for (label, list) in [("error", &plan.errors), ("warning", &plan.warnings)] {
        for d in list {
            let who = d
                .function
                .as_deref()
                .map(|f| format!("{}: ", printable(f)))
                .unwrap_or_default();
            let _ = writeln!(s, "{label}: {who}{}", printable(&d.to_string()));
        }
    }
    let m = &plan.summary;
    let _ = writeln!(
        s,
        "Plan: {} to create, {} to update, {} to delete, {} unchanged; {} operations, {} errors, {} warnings, {} functions skipped.",
        m.create, m.update, m.delete, m.unchanged, plan.operations.len(), m.errors, m.warnings, m.skipped
    );
    s
}
