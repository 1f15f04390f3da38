//! A plan as text, like `terraform plan`: safe to paste into a ticket (plans hold
//! no secrets).

use crate::consul::{Request, ServiceKey};
use crate::plan::{Change, Plan};
use std::fmt::Write;

fn place(key: &ServiceKey) -> String {
    let mut s = key.name.clone();
    let scope: Vec<&str> = [&key.datacenter, &key.partition, &key.namespace]
        .into_iter()
        .filter_map(|p| p.as_deref())
        .collect();
    if !scope.is_empty() {
        let _ = write!(s, " ({})", scope.join("/"));
    }
    s
}

/// Renders a plan as readable text.
pub fn format_plan(plan: &Plan) -> String {
    let mut s = String::new();
    for row in &plan.services {
        let sign = match row.change {
            Change::Create => "+",
            Change::Update => "~",
            Change::Delete => "-",
            Change::Unchanged => continue,
        };
        let _ = writeln!(s, "{sign} {}  {}", place(&row.service), row.reason);
        for op in plan
            .operations
            .iter()
            .filter(|o| o.service == row.service && o.mesh.is_none())
        {
            let what = match &op.request {
                Request::Consul(r) => {
                    let q: Vec<String> = r.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    if q.is_empty() {
                        format!("{} {}", r.method, r.path)
                    } else {
                        format!("{} {}?{}", r.method, r.path, q.join("&"))
                    }
                }
                Request::Ssm(r) => format!("ssm {} {}", r.action, r.name),
            };
            let gate = op
                .confirm_absent
                .as_deref()
                .map(|a| format!("  (after GetFunction confirms {a} is gone)"))
                .unwrap_or_default();
            let _ = writeln!(s, "    {what}{gate}");
        }
    }
    for m in &plan.mesh {
        let sign = if m.change == Change::Create { "+" } else { "~" };
        let partition = m
            .partition
            .as_deref()
            .map(|p| format!(" (partition {p})"))
            .unwrap_or_default();
        let _ = writeln!(
            s,
            "{sign} {} {}{partition}  {}",
            m.kind.consul_kind(),
            m.name,
            m.reason
        );
        let _ = writeln!(s, "    PUT /v1/config (merged, check-and-set)");
    }
    for e in &plan.errors {
        let who = e
            .function
            .as_deref()
            .map(|f| format!("{f}: "))
            .unwrap_or_default();
        let _ = writeln!(s, "error: {who}{e}");
    }
    for w in &plan.warnings {
        let who = w
            .function
            .as_deref()
            .map(|f| format!("{f}: "))
            .unwrap_or_default();
        let _ = writeln!(s, "warning: {who}{w}");
    }
    let m = &plan.summary;
    let _ = writeln!(
        s,
        "Plan: {} to create, {} to update, {} to delete, {} unchanged; {} operations, {} errors, {} warnings, {} functions skipped.",
        m.create, m.update, m.delete, m.unchanged, m.operations, m.errors, m.warnings, m.skipped
    );
    s
}
