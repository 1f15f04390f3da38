//! The services the managed functions want — each function's own and its alias
//! services — grouped by name with what Consul holds (docs/contract.md §5.2).

use super::context::Ctx;
use super::key::{sort_by_key_stable, Key};
use super::observed::Observed;
use super::ownership::Owner;
use super::Plan;
use crate::error::{Code, Diagnostic};
use crate::tags::{Evaluation, FunctionStatus};

/// An alias the aliases tag names that the function's `ListAliases` lacks: its
/// service would invoke nothing, and could take a name that is not the
/// function's to take (docs/contract.md §5.3).
fn alias_not_found(function: &str, alias_arn: &str, service: &str) -> Diagnostic {
    let alias = alias_arn.rsplit(':').next().unwrap_or_default();
    Diagnostic::new(
        Code::AliasNotFound,
        format!("function {function} has no alias {alias}; service {service} is not created"),
        "create the alias (aws lambda create-alias), or take it out of the aliases tag",
    )
    .key("aliases")
    .value(alias)
    .function(function.to_owned())
}

/// The names and ARNs of the alias services of the managed functions
/// (`NAME-ALIAS`, `ARN:ALIAS`), written into one buffer, in function order.
pub(super) struct AliasServices {
    text: String,
    /// Where each name starts, where its ARN starts, and where the ARN ends.
    spans: Vec<[usize; 3]>,
}

impl AliasServices {
    pub(super) fn new(reports: &[Evaluation<'_>]) -> Self {
        let managed = || {
            reports
                .iter()
                .filter(|r| r.status == FunctionStatus::Managed)
                .flat_map(|r| r.settings.aliases().map(move |alias| (r, alias)))
        };
        let (count, len) = managed().fold((0, 0), |(n, len), (r, alias)| {
            (
                n + 1,
                len + r.name.len() + r.arn.len() + 2 * (alias.len() + 1),
            )
        });
        let mut text = String::with_capacity(len);
        let mut spans = Vec::with_capacity(count);
        for (r, alias) in managed() {
            let start = text.len();
            for part in [&*r.name, "-", alias] {
                text.push_str(part);
            }
            let mid = text.len();
            for part in [&*r.arn, ":", alias] {
                text.push_str(part);
            }
            spans.push([start, mid, text.len()]);
        }
        AliasServices { text, spans }
    }
}

/// A service a function wants.
pub(super) struct Desired<'a> {
    /// The ARN it invokes.
    pub(super) arn: &'a str,
    pub(super) report: &'a Evaluation<'a>,
}

/// A wanted name: who claims it, and what Consul holds under it.
pub(super) struct Group<'g, 'a> {
    pub(super) claims: &'g [(Key<'a>, Desired<'a>)],
    pub(super) observed: Option<&'g Observed<'a>>,
    pub(super) owner: Owner<'a>,
}

/// The services the managed functions want, in service order (claimants of one
/// name in ARN order).
pub(super) fn claims<'a>(
    ctx: &'a Ctx<'a>,
    reports: &'a [Evaluation<'a>],
    aliases: &'a AliasServices,
    missing: &[String],
    out: &mut Plan,
) -> Vec<(Key<'a>, Desired<'a>)> {
    let managed = || {
        reports
            .iter()
            .filter(|r| r.status == FunctionStatus::Managed)
    };
    let mut claims: Vec<(Key<'a>, Desired<'a>)> =
        Vec::with_capacity(managed().count() + aliases.spans.len());
    let mut alias_spans = aliases.spans.iter();
    for r in managed() {
        let start = claims.len();
        let key = |name| Key {
            datacenter: ctx.datacenter(r.datacenter),
            partition: r.partition,
            namespace: r.namespace,
            name,
        };
        claims.push((
            key(&r.name),
            Desired {
                arn: &r.arn,
                report: r,
            },
        ));
        for _ in r.settings.aliases() {
            let Some(&[a, b, c]) = alias_spans.next() else {
                break;
            };
            let text = |range| aliases.text.get(range).unwrap_or_default();
            if missing.iter().any(|m| m == text(b..c)) {
                out.errors
                    .push(alias_not_found(&r.arn, text(b..c), text(a..b)));
                continue;
            }
            claims.push((
                key(text(a..b)),
                Desired {
                    arn: text(b..c),
                    report: r,
                },
            ));
        }
        // Each function's names in order, so that the list is mostly in order.
        if let Some(own) = claims.get_mut(start..) {
            own.sort_by(|a, b| a.0.cmp(&b.0));
        }
    }
    sort_by_key_stable(&mut claims, &mut [0]);
    claims
}

/// Each name with its claimants and what Consul holds for it (both lists are
/// sorted by key: one pass over each). Marks every claimed name wanted.
pub(super) fn groups<'g, 'a>(
    ctx: &Ctx<'_>,
    claims: &'g [(Key<'a>, Desired<'a>)],
    observed: &'g [(Key<'a>, Observed<'a>)],
) -> Vec<Group<'g, 'a>> {
    let mut held = observed.iter().peekable();
    claims
        .chunk_by(|a, b| a.0 == b.0)
        .map(|claims| {
            let observed = claims.first().and_then(|(key, _)| {
                while held.next_if(|(k, _)| k < key).is_some() {}
                held.next_if(|(k, _)| k == key).map(|(_, o)| o)
            });
            // A conflicted name is still wanted: it must not be deregistered as an orphan.
            if let Some(o) = observed {
                o.wanted.set(true);
            }
            let owner = ctx.owner(observed.and_then(|o| o.entry.as_ref()));
            Group {
                claims,
                observed,
                owner,
            }
        })
        .collect()
}
