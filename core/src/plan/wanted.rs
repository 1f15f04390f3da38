//! The rows that register and repair the wanted services (docs/contract.md §5.2).

use super::claims::Group;
use super::observed::View;
use super::ownership::Owner;
use super::planner::Planner;
use super::rows::{EntryWrite, Reason, Row, Work};
use super::safety::Absence;
use super::{Change, Ignored, Plan};
use crate::consul::LambdaEntryRef;
use crate::tags::Settings;
use std::borrow::Cow;

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
        let confirm = match self.take_over(key, &d.report.name, owner, &mut reasons, out) {
            Ok(confirm) => confirm,
            Err(()) => return None,
        };
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
            entry: (!entry_ok).then(|| EntryWrite {
                arn: target_arn,
                mode: settings.invocation_mode,
                payload_passthrough: settings.payload_passthrough,
                // Check-and-set at the observed entry; create only when there was none.
                index: match entry {
                    Some(_) => obs.and_then(|o| o.entry_index),
                    None => Some(0),
                },
            }),
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

impl<'a> Planner<'_, 'a> {
    /// Taking a name over from another function of ours: only once it is gone.
    /// `Ok`: the confirmation it waits for, if any; `Err`: it must wait (ignored).
    fn take_over(
        &self,
        key: &super::key::Key<'a>,
        function: &str,
        owner: &Owner<'_>,
        reasons: &mut Vec<Cow<'a, str>>,
        out: &mut Plan,
    ) -> Result<Option<String>, ()> {
        let Owner::Ours(o) = *owner else {
            return Ok(None);
        };
        if *o == *function {
            return Ok(None);
        }
        let confirm = match self.absence(o) {
            Absence::Settled => None,
            Absence::Withheld => {
                out.ignored.push(Ignored {
                    service: Some(key.owned()),
                    reason: format!("belongs to function {o}, which may exist but was not listed (incomplete inventory)"),
                });
                return Err(());
            }
            Absence::Confirm(arn) => Some(arn),
        };
        reasons.push(format!("take over from function {o}").into());
        Ok(confirm)
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
