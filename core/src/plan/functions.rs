//! The evaluated functions as the plan sees them: which are listed, which are
//! frozen (docs/contract.md §5.4), which `ListTags` confirmed absent, and the
//! names frozen functions keep.

use super::context::Ctx;
use super::hasher::FxSet;
use super::{Inventory, Plan, Skip};
use crate::arn::{resolve_function_name, split_function_arn};
use crate::error::{Code, Diagnostic};
use crate::tags::{evaluate, Evaluation, FunctionStatus, LambdaFunction};
use std::collections::{BTreeMap, BTreeSet};

/// Evaluates every function once, in ARN order; a function listed twice with
/// different tags is invalid.
pub(super) fn evaluate_functions<'a>(ctx: &'a Ctx<'a>, inv: &'a Inventory) -> Vec<Evaluation<'a>> {
    let mut functions: Vec<&LambdaFunction> = inv.functions.iter().collect();
    functions.sort_by(|a, b| a.arn.cmp(&b.arn).then_with(|| a.tags.cmp(&b.tags)));
    functions.dedup_by(|a, b| a.arn == b.arn && a.tags == b.tags);
    let mut reports: Vec<Evaluation<'a>> = Vec::with_capacity(functions.len());
    for f in functions {
        let mut report = evaluate(f, ctx.config);
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

/// The functions by name; frozen ones keep their Consul state exactly as it is.
pub(super) struct Roster<'a> {
    /// The listed functions.
    pub(super) known: FxSet<&'a str>,
    /// The functions nothing may change for: with errors, failed to load, or in a
    /// name conflict (`conflicts.rs` adds those).
    pub(super) frozen: FxSet<&'a str>,
    /// The functions of our account and region that `ListTags` confirmed absent.
    pub(super) confirmed_absent: FxSet<&'a str>,
    /// The names a frozen function would register, and the frozen functions that
    /// would register each.
    pub(super) reserved: BTreeMap<String, BTreeSet<&'a str>>,
}

impl<'a> Roster<'a> {
    /// Reads the reports and the inventory's failed and confirmed-absent functions;
    /// says the functions' errors, warnings and skips.
    pub(super) fn new(
        ctx: &Ctx<'_>,
        inv: &'a Inventory,
        reports: &'a [Evaluation<'a>],
        out: &mut Plan,
    ) -> Self {
        let mut known: FxSet<&str> = FxSet::default();
        known.reserve(reports.len());
        let mut roster = Roster {
            known,
            frozen: FxSet::default(),
            confirmed_absent: FxSet::default(),
            reserved: BTreeMap::new(),
        };
        roster.read_reports(reports, out);
        let failed_names = roster.read_failed(ctx, inv, out);
        roster.read_confirmed_absent(ctx, inv, out);
        roster.reserve_names(reports, &failed_names);
        roster
    }

    /// Lists the evaluated functions, freezes those with errors, and says their
    /// errors, warnings and skips.
    fn read_reports(&mut self, reports: &'a [Evaluation<'a>], out: &mut Plan) {
        for r in reports {
            self.known.insert(&r.name);
            match r.status {
                FunctionStatus::Invalid => {
                    self.frozen.insert(&r.name);
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
                self.frozen.insert(&r.name);
            }
            out.errors.extend(r.errors.iter().cloned());
            out.warnings.extend(r.warnings.iter().cloned());
        }
    }

    /// Freezes the functions that failed to load (ignoring other accounts' and
    /// regions'), with an error each; returns their names.
    fn read_failed(&mut self, ctx: &Ctx<'_>, inv: &'a Inventory, out: &mut Plan) -> Vec<&'a str> {
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
            self.frozen.insert(name);
        }
        failed_names
    }

    /// Only functions of our account and region can be confirmed absent: `ListTags`
    /// says nothing about ours when asked about another region's function of the same
    /// name. A name or partial ARN means ours (as `DeleteFunction` events do).
    fn read_confirmed_absent(&mut self, ctx: &Ctx<'_>, inv: &'a Inventory, out: &mut Plan) {
        for a in &inv.confirmed_absent {
            if let Some(foreign) = ctx.foreign(a, "inventory.confirmedAbsent") {
                out.warnings.push(foreign);
            } else if let Ok(parts) = split_function_arn(a) {
                self.confirmed_absent.insert(parts.name);
            } else if let Ok(arn) = resolve_function_name(a, ctx.account, ctx.region) {
                if let Some(name) = a.rsplit(':').find(|part| *part == arn.name) {
                    self.confirmed_absent.insert(name);
                }
            }
        }
    }

    /// The names a frozen function would register stay its own: another function that
    /// wants one conflicts with it, as it would if the function were valid.
    fn reserve_names(&mut self, reports: &'a [Evaluation<'a>], failed_names: &[&'a str]) {
        for r in reports.iter().filter(|r| self.frozen.contains(&*r.name)) {
            self.reserved
                .entry(r.name.to_string())
                .or_default()
                .insert(&r.name);
            for alias in r.settings.aliases() {
                self.reserved
                    .entry(format!("{}-{alias}", r.name))
                    .or_default()
                    .insert(&r.name);
            }
        }
        for &name in failed_names {
            self.reserved
                .entry(name.to_owned())
                .or_default()
                .insert(name);
        }
    }
}
