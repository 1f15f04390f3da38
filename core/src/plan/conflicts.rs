//! Name conflicts, which freeze the functions concerned (docs/contract.md §1.6,
//! §5.3, §5.4): a name two functions claim, a name a frozen function keeps, and a
//! name held by something not ours or by another function of ours.

use super::claims::{Desired, Group};
use super::context::Ctx;
use super::functions::Roster;
use super::hasher::FxSet;
use super::key::Key;
use super::ownership::Owner;
use super::NameElsewhere;
use crate::consul::MANAGED_TAG;
use crate::error::{Code, Diagnostic};
use std::collections::BTreeMap;

/// The wanted names Consul has on other nodes, by namespace, partition and name.
pub(super) struct Elsewhere<'a>(
    BTreeMap<(Option<&'a str>, Option<&'a str>, &'a str), &'a NameElsewhere>,
);

impl<'a> Elsewhere<'a> {
    pub(super) fn new(found: &'a [NameElsewhere]) -> Self {
        Elsewhere(
            found
                .iter()
                .map(|f| {
                    let key = (
                        f.namespace.as_deref(),
                        f.partition.as_deref(),
                        f.name.as_str(),
                    );
                    (key, f)
                })
                .collect(),
        )
    }

    fn get(&self, key: &Key<'_>) -> Option<&'a NameElsewhere> {
        self.0
            .get(&(key.namespace, key.partition, key.name))
            .copied()
    }
}

/// The refusal of a name Consul has on another node: taking it would send that
/// service's mesh traffic to the function (docs/contract.md §5.3).
fn on_other_node(ctx: &Ctx<'_>, found: &NameElsewhere) -> Diagnostic {
    let nodes = match found.nodes.as_slice() {
        [] => "a node the token may not read".to_owned(),
        [one] => format!("node {one}"),
        many => format!("nodes {}", many.join(", ")),
    };
    Diagnostic::new(
        Code::NameOnOtherNode,
        format!(
            "service {} is registered on {nodes} in datacenter {}; the registrator does not take over a name Consul already uses, and writes nothing for this function",
            found.name, found.datacenter
        ),
        format!(
            "rename the function or alias, or deregister the other instances; only services on node {} are the registrator's",
            ctx.config.node_name
        ),
    )
}

/// Every conflict of the wanted names, freezing the functions concerned; two
/// sources of one name conflict and both freeze.
pub(super) fn conflicts<'a>(
    ctx: &Ctx<'_>,
    groups: &[Group<'_, 'a>],
    roster: &mut Roster<'a>,
    elsewhere: &Elsewhere<'_>,
) -> Vec<Diagnostic> {
    let mut conflicts: Vec<Diagnostic> = Vec::new();
    claimed_twice(groups, &mut roster.frozen, &mut conflicts);
    // Blocking conflicts with what Consul holds. A name held by another function of
    // ours freezes its claimant only if that function is frozen, which may in turn come
    // from such a name: iterate to a fixed point so the outcome is order-independent.
    let mut held_by_other: Vec<(&Key<'a>, &Desired<'a>, &str)> = Vec::new();
    for g in groups {
        let [(key, d)] = g.claims else { continue };
        let held = match elsewhere.get(key) {
            Some(found) => Held::Blocked(on_other_node(ctx, found)),
            None => held(ctx, g, key, d, roster),
        };
        match held {
            Held::Free => {}
            Held::ByOther(owner) => held_by_other.push((key, d, owner)),
            Held::Blocked(problem) => {
                roster.frozen.insert(&*d.report.name);
                conflicts.push(
                    problem
                        .key("service")
                        .value(key.name)
                        .function(d.report.arn.to_string()),
                );
            }
        }
    }
    freeze_to_fixed_point(&held_by_other, &mut roster.frozen);
    for (key, d, owner) in &held_by_other {
        if roster.frozen.contains(owner) {
            conflicts.push(
                Diagnostic::new(
                    Code::ServiceNameConflict,
                    format!(
                        "service {} belongs to function {owner}, whose state is frozen by an error",
                        key.name
                    ),
                    "fix the other function's error first",
                )
                .key("service")
                .value(key.name)
                .function(d.report.arn.to_string()),
            );
        }
    }
    conflicts
}

/// Freezes each claimant of a name another function of ours holds when that
/// function is frozen, until nothing changes.
fn freeze_to_fixed_point<'a>(
    held_by_other: &[(&Key<'a>, &Desired<'a>, &str)],
    frozen: &mut FxSet<&'a str>,
) {
    loop {
        let before = frozen.len();
        for (_, d, owner) in held_by_other {
            if frozen.contains(owner) && !frozen.contains(&*d.report.name) {
                frozen.insert(&*d.report.name);
            }
        }
        if frozen.len() == before {
            break;
        }
    }
}

/// Names that more than one function claims: every claimant freezes.
fn claimed_twice<'a>(
    groups: &[Group<'_, 'a>],
    frozen: &mut FxSet<&'a str>,
    conflicts: &mut Vec<Diagnostic>,
) {
    for Group { claims: group, .. } in groups {
        if group.len() > 1 {
            let arns: Vec<&str> = group.iter().map(|(_, d)| d.arn).collect();
            for (key, d) in group.iter() {
                frozen.insert(&*d.report.name);
                conflicts.push(
                    Diagnostic::new(
                        Code::ServiceNameConflict,
                        format!(
                            "service {} would be registered by {}; neither is changed",
                            key.name,
                            arns.join(" and ")
                        ),
                        "rename a function or an alias so that every service name is unique",
                    )
                    .key("service")
                    .value(key.name)
                    .function(d.report.arn.to_string()),
                );
            }
        }
    }
}

/// Who holds a name one function claims.
enum Held<'a> {
    /// Nobody, or the claimant itself.
    Free,
    /// Another function of ours (a conflict only if that function is frozen).
    ByOther(&'a str),
    /// Something the claimant must not take: the conflict (without its key,
    /// value and function).
    Blocked(Diagnostic),
}

/// Who holds the name `key` that function `d` alone claims: a frozen function
/// (which keeps its names), an instance without the managed tag, an entry that is
/// not a Lambda entry or invokes another account or region, or another function of ours.
fn held<'a>(
    ctx: &Ctx<'_>,
    g: &Group<'_, 'a>,
    key: &Key<'_>,
    d: &Desired<'_>,
    roster: &Roster<'_>,
) -> Held<'a> {
    let frozen_owners: Vec<&str> = roster
        .reserved
        .get(key.name)
        .into_iter()
        .flatten()
        .copied()
        .filter(|o| **o != *d.report.name)
        .collect();
    if !frozen_owners.is_empty() {
        return Held::Blocked(Diagnostic::new(
            Code::ServiceNameConflict,
            format!(
                "service {} is also a name of function {}, which has errors; neither is changed",
                key.name,
                frozen_owners.join(" and ")
            ),
            "fix the other function's error first, or rename the function or alias",
        ));
    }
    if g.observed.is_some_and(|o| o.unmanaged) {
        return Held::Blocked(Diagnostic::new(
            Code::UnmanagedServiceConflict,
            format!("service {} is already on node {} without the {MANAGED_TAG} tag; it is not the registrator's", key.name, ctx.config.node_name),
            "rename the function or alias, or remove the other service",
        ));
    }
    match &g.owner {
        Owner::NotLambda => Held::Blocked(Diagnostic::new(
            Code::ForeignConfigEntry,
            format!("service-defaults {} exists without the builtin/aws/lambda extension; it belongs to another service and is not overwritten", key.name),
            "rename the function or alias, or remove that service-defaults entry",
        )),
        Owner::Elsewhere(arn) => Held::Blocked(Diagnostic::new(
            Code::OwnedByOtherRegistrator,
            format!("service-defaults {} invokes {arn}, of another account or region; config entries are global, so the registrators would fight", key.name),
            "give the functions of each region distinct names, or let one registrator manage this name",
        )),
        Owner::Ours(owner) if **owner != *d.report.name => Held::ByOther(owner),
        _ => Held::Free,
    }
}
