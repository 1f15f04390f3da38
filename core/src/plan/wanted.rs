//! The services the managed functions want — each function's own and its alias
//! services — grouped by name with what Consul holds, and the rows that register
//! and repair them (docs/contract.md §5.2).

use super::context::Ctx;
use super::draft::Planner;
use super::key::{sort_by_key_stable, Key};
use super::observed::{Observed, View};
use super::ownership::Owner;
use super::rows::{Reason, Row, Work};
use super::safety::Absence;
use super::{Change, Ignored, Plan};
use crate::consul::LambdaEntryRef;
use crate::tags::{Evaluation, FunctionStatus, Settings};
use std::borrow::Cow;

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

impl<'a> Planner<'_, 'a> {
    /// The row that registers or repairs a wanted name: none when two functions
    /// claim it, its function is frozen, the trigger does not reach it, or it is
    /// held by a function that may exist but was not listed (then it is ignored).
    pub(super) fn wanted_row(&self, g: &Group<'_, 'a>, out: &mut Plan) -> Option<Row<'a>> {
        let [(key, d)] = g.claims else { return None };
        if self.roster.frozen.contains(&*d.report.name) {
            return None;
        }
        let obs = g.observed;
        let entry = obs.and_then(|o| o.entry.as_ref());
        let owner = &g.owner;
        if !self.reach.covers(key, Some(&*d.report.name), owner) {
            return None;
        }
        let target_arn = d.arn;
        let settings = &d.report.settings;
        let mut reasons: Vec<Cow<'a, str>> = Vec::new();
        let mut confirm = None;
        if let Owner::Ours(o) = *owner {
            if *o != *d.report.name {
                // Taking a name over from another function: only once it is gone.
                match self.absence(o) {
                    Absence::Settled => {}
                    Absence::Withheld => {
                        out.ignored.push(Ignored {
                            service: Some(key.owned()),
                            reason: format!("belongs to function {o}, which may exist but was not listed (incomplete inventory)"),
                        });
                        return None;
                    }
                    Absence::Confirm(arn) => confirm = Some(arn),
                }
                reasons.push(format!("take over from function {o}").into());
            }
        }
        let entry_ok = match entry {
            Some(View::Lambda(l)) => {
                let drift = entry_drift(l, target_arn, settings);
                if !drift.is_empty() {
                    reasons.push(format!("service-defaults drifted: {}", drift.join(", ")).into());
                }
                drift.is_empty()
            }
            _ => false,
        };
        let registered = obs.and_then(|o| o.catalog).is_some();
        let existed = registered || entry.is_some();
        let change = if existed {
            Change::Update
        } else {
            Change::Create
        };
        let mut not_registered = false;
        if !existed {
            not_registered = true;
        } else if entry.is_none() {
            reasons.push("service-defaults entry missing".into());
        }
        if existed && !registered {
            reasons.push("catalog registration missing".into());
        }
        let put = self.ext.wanted(key, target_arn, out).map(|(put, why)| {
            if existed {
                reasons.push(why.into());
            }
            put
        });
        let work = Work::Wanted {
            entry: (!entry_ok).then_some((
                target_arn,
                settings.invocation_mode,
                settings.payload_passthrough,
            )),
            register: !registered,
            put,
        };
        let unchanged = entry_ok && registered && matches!(&work, Work::Wanted { put: None, .. });
        let change = if unchanged { Change::Unchanged } else { change };
        Some(Row {
            key: *key,
            change,
            function: Some(Cow::Borrowed(target_arn)),
            reason: wanted_reason(reasons, not_registered, &d.report.name),
            confirm,
            work,
        })
    }
}

/// How a Lambda entry differs from what the function's tags want (nothing: empty).
fn entry_drift(l: &LambdaEntryRef<'_>, target_arn: &str, settings: &Settings<'_>) -> Vec<String> {
    let mut drift = Vec::new();
    if l.arn != Some(target_arn) {
        drift.push(format!("ARN is {}", l.arn.unwrap_or("missing")));
    }
    if l.mode != settings.invocation_mode {
        drift.push(format!(
            "invocation mode is {} for Consul, {} in the tags",
            l.mode.extension_value(),
            settings.invocation_mode.extension_value()
        ));
    }
    if l.payload_passthrough != settings.payload_passthrough {
        drift.push(format!("payloadPassthrough is {}", l.payload_passthrough));
    }
    if !l.canonical {
        drift.push("protocol or extension settings differ".to_owned());
    }
    drift
}

/// The reason of a wanted service's row, from what was found wrong with it.
fn wanted_reason<'a>(
    mut reasons: Vec<Cow<'a, str>>,
    not_registered: bool,
    function: &'a str,
) -> Reason<'a> {
    if not_registered && !reasons.is_empty() {
        // (Only for a new service, so nothing was said after it.)
        reasons.push(Reason::NotRegistered(function).to_string().into());
    }
    match reasons.len() {
        0 if not_registered => Reason::NotRegistered(function),
        0 => Reason::Text(Cow::Borrowed("as wanted")),
        1 => Reason::Text(reasons.pop().unwrap_or_default()),
        _ => Reason::Text(Cow::Owned(reasons.join("; "))),
    }
}
