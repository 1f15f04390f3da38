//! The rows that deregister the managed services no function wants
//! (docs/contract.md §5.2), when they are provably ours (§5.3) and their function
//! is not frozen (§5.4).

use super::key::Key;
use super::observed::{Observed, View};
use super::ownership::Owner;
use super::planner::Planner;
use super::rows::{EntryDelete, Reason, Row, Work};
use super::safety::{withheld_warning, Absence};
use super::{Change, Ignored, Plan};
use crate::error::{Code, Diagnostic};
use std::borrow::Cow;

impl<'a> Planner<'_, 'a> {
    /// The rows that deregister what no function wants, in service order; says
    /// the orphans left alone, and the deregistrations withheld for an incomplete
    /// inventory.
    pub(super) fn unwanted_rows(
        &self,
        observed: &[(Key<'a>, Observed<'a>)],
        out: &mut Plan,
    ) -> Vec<Row<'a>> {
        let mut withheld = 0usize;
        let mut deletions: Vec<Row<'a>> = Vec::new();
        for (key, obs) in observed {
            let Some(service_id) = obs.catalog else {
                continue;
            };
            if obs.wanted.get() {
                continue;
            }
            let owner = self.ctx.owner(obs.entry.as_ref());
            if !self.reach.covers(key, None, &owner) {
                continue;
            }
            let Some(owner_name) = orphan_owner(key, owner, out) else {
                continue;
            };
            if self.roster.frozen.contains(owner_name) {
                out.ignored.push(Ignored {
                    service: Some(key.owned()),
                    reason: format!("function {owner_name} has errors; its state is left as it is"),
                });
                continue;
            }
            let listed = self.roster.known.contains(owner_name);
            let confirm = match self.absence(owner_name) {
                Absence::Settled => None,
                Absence::Withheld => {
                    withheld += 1;
                    continue;
                }
                Absence::Confirm(arn) => Some(arn),
            };
            let reason = if listed {
                Reason::Unwanted(owner_name)
            } else {
                Reason::Gone(owner_name)
            };
            deletions.push(Row {
                key: *key,
                change: Change::Delete,
                function: Some(Cow::Owned(self.ctx.function_arn(owner_name))),
                reason,
                confirm,
                work: Work::Deleted {
                    service_id,
                    index: obs.catalog_index,
                    entry: matches!(obs.entry, Some(View::Lambda(_))).then_some(EntryDelete {
                        index: obs.entry_index,
                    }),
                    parameter: None,
                },
            });
        }
        if withheld > 0 {
            out.warnings.push(withheld_warning(withheld));
        }
        deletions
    }
}

/// The function of ours that owns an unwanted managed service; `None`, with an
/// `orphan_not_owned` warning, when its entry does not name one.
fn orphan_owner<'e>(key: &Key<'_>, owner: Owner<'e>, out: &mut Plan) -> Option<&'e str> {
    let why: Cow<'_, str> = match owner {
        Owner::Ours(o) => return Some(o),
        Owner::Elsewhere(arn) => {
            format!("its service-defaults invokes {arn}, of another account or region").into()
        }
        Owner::NotLambda | Owner::Unknown => {
            "it has no service-defaults entry naming a function of this account and region".into()
        }
    };
    out.warnings.push(orphan_warning(key.name, &why));
    None
}

fn orphan_warning(name: &str, why: &str) -> Diagnostic {
    Diagnostic::new(
        Code::OrphanNotOwned,
        format!(
            "managed service {name} is wanted by no listed function, but {why}; it is left alone"
        ),
        "deregister it by hand if it is stale; another registrator may own it",
    )
    .key("service")
    .value(name)
}
