//! The rules that keep a plan from deleting what may still be wanted: incomplete
//! inventory (docs/contract.md §5.5), confirmations (§5.6) and the
//! mass-deregistration stop (§5.7).

use super::context::Ctx;
use super::planner::Planner;
use super::rows::Row;
use super::trigger::Reach;
use super::Confirmation;
use crate::error::{Code, Diagnostic};
use std::collections::BTreeMap;

/// What a deletion or take-over on behalf of a function that no longer wants
/// a service needs before it may run.
pub(super) enum Absence {
    /// Nothing: the function is listed, or `ListTags` confirmed it absent.
    Settled,
    /// `ListTags` must confirm that the function (this ARN) does not exist.
    Confirm(String),
    /// It must wait: a full sync over an incomplete inventory, and the function was
    /// not listed (it may exist in the part that is missing).
    Withheld,
}

impl Planner<'_, '_> {
    /// What acting on behalf of the absence of function `name` needs.
    pub(super) fn absence(&self, name: &str) -> Absence {
        if self.roster.known.contains(name) || self.roster.confirmed_absent.contains(name) {
            Absence::Settled
        } else if self.reach.is_full_sync() && !self.complete {
            Absence::Withheld
        } else {
            Absence::Confirm(self.ctx.function_arn(name))
        }
    }
}

/// The warning that `withheld` deregistrations wait for a complete inventory.
pub(super) fn withheld_warning(withheld: usize) -> Diagnostic {
    Diagnostic::new(
        Code::InventoryIncomplete,
        format!(
            "the Lambda inventory is incomplete, so {withheld} deregistration(s) were withheld"
        ),
        "the next complete sync applies them",
    )
}

/// The error that stops every deregistration, when a full sync would deregister
/// more than half of more than ten managed services (`managed`, counting this
/// plan's registrations) and that is not allowed.
pub(super) fn mass_deregistration(
    ctx: &Ctx<'_>,
    reach: Reach<'_>,
    managed: usize,
    deletions: usize,
) -> Option<Diagnostic> {
    let blocked = reach.is_full_sync()
        && !ctx.config.allow_mass_deregistration
        && managed > 10
        && deletions * 2 > managed;
    blocked.then(|| {
        Diagnostic::new(
            Code::MassDeregistrationBlocked,
            format!("this sync would deregister {deletions} of {managed} managed services; nothing is deregistered"),
            "check the inventory (credentials, region, tags); if this is intended, set ALLOW_MASS_DEREGISTRATION=true for one sync",
        )
        .key("ALLOW_MASS_DEREGISTRATION")
    })
}

/// Every operation that waits for `ListTags`, deletion or take-over, listed by
/// function.
pub(super) fn confirmations(rows: &[Row<'_>]) -> Vec<Confirmation> {
    let mut confirmations: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for row in rows {
        if let Some(c) = &row.confirm {
            if row.has_steps() {
                confirmations
                    .entry(c.as_str())
                    .or_default()
                    .push(row.key.name);
            }
        }
    }
    confirmations
        .into_iter()
        .map(|(function, mut services)| {
            services.sort_unstable();
            services.dedup();
            Confirmation {
                function: function.to_owned(),
                services: services.into_iter().map(str::to_owned).collect(),
            }
        })
        .collect()
}
