//! Reviewed plans and pruning.
//!
//! A dry run's full result carries the plan's [`PlanBasis`]: every Consul object
//! an operation touches with the `ModifyIndex` observed (or its absence), and the
//! tags of every function an operation concerns. `plan --out FILE` writes the plan
//! with it; `sync --plan FILE` starts the engine with that [`ReviewedPlan`].
//!
//! The engine then observes again and plans afresh, and applies only the file's
//! operations that the fresh plan also decides — the same kind, object, content
//! and index — with check-and-set at the file's indexes. The file is a choice
//! among decisions the engine makes itself, never a list of requests: anything
//! else it holds (an operation of another kind, object or content, a parameter or
//! KMS key the configuration does not name, an object missing from its basis, a
//! kept operation whose earlier step it leaves out) refuses the whole apply
//! (`plan_rejected`) before any write; an object or function that moved since
//! the review refuses it too (`plan_stale`).
//!
//! Pruning plans the removal of everything the registrator manages, under the
//! ownership rules of a sync: every function is taken as gone.

pub use super::basis::{ObjectKind, ObservedFunction, ObservedObject, PlanBasis, ReviewedPlan};
use super::observation::Observation;
use super::outcome::Verdict;
use super::{Run, Stop};
use crate::arn::split_function_arn;
use crate::consul::{EntryView, ServiceKey};
use crate::error::{Code, Diagnostic};
use crate::plan::{Action, Operation, Plan};
use std::collections::{BTreeMap, BTreeSet};

fn stale(moved: &str) -> Stop {
    Stop::new(
        Verdict::Failed,
        Diagnostic::new(
            Code::PlanStale,
            format!("the reviewed plan is stale: {moved}"),
            "plan again (plan --out FILE), review, and apply the new plan",
        )
        .key("plan"),
    )
}

fn rejected(message: String) -> Stop {
    Stop::new(
        Verdict::Failed,
        Diagnostic::new(
            Code::PlanRejected,
            message,
            "apply only a plan file written by `plan --out` (operations may be left out, never added or edited): plan again, review, apply",
        )
        .key("plan"),
    )
}

/// Reads a reviewed plan file; `Err`: it cannot be one.
pub(crate) fn read(text: &str) -> Result<ReviewedPlan, Stop> {
    serde_json::from_str(text).map_err(|e| {
        rejected(format!(
            "the plan file cannot be read: {}",
            crate::text::clip(&e.to_string())
        ))
    })
}

/// `(kind, datacenter, partition, namespace, name)`, normalised: `""` for the
/// default partition and namespace, the agent's datacenter for none.
type ObjectKey = (ObjectKind, String, String, String, String);

fn norm(v: Option<&str>) -> String {
    match v {
        None | Some("") | Some("default") => String::new(),
        Some(v) => v.to_owned(),
    }
}

/// The observed `ModifyIndex` (or none) of every catalog service and entry.
struct Indexes {
    objects: BTreeMap<ObjectKey, Option<u64>>,
    local_dc: String,
}

impl Indexes {
    fn new(obs: &Observation, run: &Run) -> Self {
        let local_dc = obs.local_datacenter(run);
        let mut objects = BTreeMap::new();
        for scope in &obs.scopes {
            let dc = scope.datacenter.clone().unwrap_or_else(|| local_dc.clone());
            let part = scope.partition.as_deref();
            for e in scope.service_defaults.iter().flatten() {
                let key = (
                    ObjectKind::ServiceDefaults,
                    dc.clone(),
                    norm(e.partition.as_deref().or(part)),
                    norm(e.namespace.as_deref()),
                    e.name.clone(),
                );
                objects.insert(key, e.modify_index);
            }
            for s in scope.node_services.iter().flat_map(|n| n.services.iter()) {
                let key = (
                    ObjectKind::CatalogService,
                    dc.clone(),
                    norm(s.partition.as_deref().or(part)),
                    norm(s.namespace.as_deref()),
                    s.id.clone(),
                );
                objects.insert(key, s.modify_index);
            }
        }
        Indexes { objects, local_dc }
    }

    fn key(&self, kind: ObjectKind, service: &ServiceKey, name: &str) -> ObjectKey {
        (
            kind,
            service
                .datacenter
                .clone()
                .unwrap_or_else(|| self.local_dc.clone()),
            norm(service.partition.as_deref()),
            norm(service.namespace.as_deref()),
            name.to_owned(),
        )
    }
}

/// The Consul object an operation touches: its kind and name (entry name or
/// service ID).
fn touched(op: &Operation) -> Option<(ObjectKind, &str)> {
    match &op.action {
        Action::UpsertConfigEntry(_) | Action::DeleteConfigEntry => {
            Some((ObjectKind::ServiceDefaults, &op.service.name))
        }
        Action::RegisterService => Some((ObjectKind::CatalogService, &op.service.name)),
        Action::DeregisterService { service_id } => Some((ObjectKind::CatalogService, service_id)),
        _ => None,
    }
}

fn unqualified(arn: &str) -> Option<String> {
    split_function_arn(arn)
        .ok()
        .map(|a| a.to_arn().unqualified().to_string())
}

/// The basis of `plan` in the current observation.
pub(crate) fn basis(plan: &Plan, obs: &Observation, run: &Run) -> PlanBasis {
    let index = Indexes::new(obs, run);
    let mut objects = BTreeSet::new();
    let mut arns = BTreeSet::new();
    for op in &plan.operations {
        if let Some((kind, name)) = touched(op) {
            let seen = index.objects.get(&index.key(kind, &op.service, name));
            objects.insert(ObservedObject {
                kind,
                service: ServiceKey {
                    name: name.to_owned(),
                    ..op.service.clone()
                },
                present: seen.is_some(),
                modify_index: seen.copied().flatten(),
            });
        }
        if let Some(arn) = op.function.as_deref().and_then(unqualified) {
            arns.insert(arn);
        }
    }
    let tags: BTreeMap<&str, &BTreeMap<String, String>> = obs
        .functions
        .iter()
        .map(|f| (f.arn.as_str(), &f.tags))
        .collect();
    PlanBasis {
        objects: objects.into_iter().collect(),
        functions: arns
            .into_iter()
            .map(|arn| ObservedFunction {
                tags: tags.get(arn.as_str()).map(|t| (*t).clone()),
                arn,
            })
            .collect(),
    }
}

/// What moved since the plan was reviewed (empty: nothing): every object and
/// function of the file's basis, looked up in the current observation.
fn moved(reviewed: &ReviewedPlan, obs: &Observation, run: &Run) -> Vec<String> {
    let index = Indexes::new(obs, run);
    let mut moved = Vec::new();
    let describe = |present: bool, modify_index: Option<u64>| match present {
        true => format!(
            "ModifyIndex {}",
            modify_index.map_or("?".into(), |i| i.to_string())
        ),
        false => "absent".to_owned(),
    };
    for was in &reviewed.basis.objects {
        let is = index
            .objects
            .get(&index.key(was.kind, &was.service, &was.service.name));
        if is.is_some() == was.present && is.copied().flatten() == was.modify_index {
            continue;
        }
        let what = match was.kind {
            ObjectKind::ServiceDefaults => "service-defaults entry",
            ObjectKind::CatalogService => "catalog service",
        };
        moved.push(format!(
            "{what} {} ({} then, {} now)",
            crate::text::printable(&was.service.name),
            describe(was.present, was.modify_index),
            describe(is.is_some(), is.copied().flatten())
        ));
    }
    let tags: BTreeMap<&str, &BTreeMap<String, String>> = obs
        .functions
        .iter()
        .map(|f| (f.arn.as_str(), &f.tags))
        .collect();
    for was in &reviewed.basis.functions {
        if tags.get(was.arn.as_str()).copied() != was.tags.as_ref() {
            moved.push(format!(
                "function {} (its tags changed, or it appeared or went)",
                crate::text::printable(&was.arn)
            ));
        }
    }
    moved
}

/// `operation 3 (registerService vault)`.
fn name_of(i: usize, op: &Operation) -> String {
    format!(
        "operation {} ({} {})",
        i + 1,
        op.kind().as_str(),
        crate::text::clip(&crate::text::printable(&op.service.name))
    )
}

/// Each operation of the file that touches a Consul object must have it in the
/// basis, at the index the operation names.
fn check_basis(reviewed: &ReviewedPlan) -> Result<(), Stop> {
    let listed: BTreeMap<(ObjectKind, &ServiceKey), &ObservedObject> = reviewed
        .basis
        .objects
        .iter()
        .map(|o| ((o.kind, &o.service), o))
        .collect();
    for (i, op) in reviewed.plan.operations.iter().enumerate() {
        let Some((kind, name)) = touched(op) else {
            continue;
        };
        let key = ServiceKey {
            name: name.to_owned(),
            ..op.service.clone()
        };
        let Some(seen) = listed.get(&(kind, &key)) else {
            return Err(rejected(format!(
                "{} touches an object the plan's basis does not list; nothing is applied",
                name_of(i, op)
            )));
        };
        let index = if seen.present {
            seen.modify_index
        } else {
            Some(0)
        };
        if op.index.is_some() && op.index != index {
            return Err(rejected(format!(
                "{} names index {:?}, the basis {:?}; nothing is applied",
                name_of(i, op),
                op.index,
                index
            )));
        }
    }
    Ok(())
}

/// The fresh operation each of the file's operations is, by position in the
/// fresh plan.
fn match_fresh(reviewed: &ReviewedPlan, fresh: &Plan) -> Result<Vec<usize>, Stop> {
    let mut taken = vec![false; fresh.operations.len()];
    let mut kept = Vec::with_capacity(reviewed.plan.operations.len());
    for (i, op) in reviewed.plan.operations.iter().enumerate() {
        let found = fresh
            .operations
            .iter()
            .enumerate()
            .position(|(j, f)| !taken.get(j).copied().unwrap_or(true) && f.same_decision(op));
        let Some(j) = found else {
            // The same write of the same object, read at another index: the object
            // (a mesh entry, which the basis does not hold) changed since review.
            let moved = fresh.operations.iter().find(|f| {
                f.kind() == op.kind()
                    && f.service == op.service
                    && f.index.is_some()
                    && op.index.is_some()
                    && f.index != op.index
            });
            if let Some(f) = moved {
                return Err(stale(&format!(
                    "{} changed since review (index {} then, {} now)",
                    name_of(i, op),
                    op.index.unwrap_or_default(),
                    f.index.unwrap_or_default()
                )));
            }
            return Err(rejected(format!(
                "{} is not what a fresh plan decides (another kind, object, content, parameter or key); nothing is applied",
                name_of(i, op)
            )));
        };
        if let Some(t) = taken.get_mut(j) {
            *t = true;
        }
        kept.push(j);
    }
    Ok(kept)
}

/// A kept operation must not need one the file leaves out: a service's earlier
/// steps (its entry, registration and extension data; its deregistration before
/// its entry's deletion), the mesh removal a deregistration waits for, and the
/// steps of every service a mesh addition lists.
fn check_dependencies(fresh: &Plan, kept: &[usize]) -> Result<(), Stop> {
    let keep: BTreeSet<usize> = kept.iter().copied().collect();
    let ops = &fresh.operations;
    let missing = |j: usize, why: &str, needed: &Operation| {
        let op = ops.get(j).map(|o| name_of(j, o)).unwrap_or_default();
        Err(rejected(format!(
            "{op} {why} {} {}, which the plan file leaves out; nothing is applied",
            needed.kind().as_str(),
            crate::text::printable(&needed.service.name)
        )))
    };
    for &j in kept {
        let Some(op) = ops.get(j) else { continue };
        let service_steps =
            |k: usize, o: &Operation| o.mesh().is_none() && o.service == op.service && k < j;
        if op.mesh().is_none() {
            for (k, o) in ops.iter().enumerate() {
                if service_steps(k, o) && !keep.contains(&k) {
                    return missing(j, "needs", o);
                }
            }
        }
        for (k, o) in ops.iter().enumerate() {
            let Some(edit) = o.mesh() else { continue };
            let names = |name: &str| {
                edit.remove
                    .iter()
                    .chain(&edit.add)
                    .any(|item| item.name == name)
            };
            let removal_for_this =
                op.mesh().is_none() && edit.add.is_empty() && names(&op.service.name);
            if removal_for_this && !keep.contains(&k) {
                return missing(j, "waits for", o);
            }
        }
        if let Some(edit) = op.mesh() {
            for (k, o) in ops.iter().enumerate() {
                let listed = edit.add.iter().any(|item| item.name == o.service.name);
                if o.mesh().is_none() && listed && !keep.contains(&k) {
                    return missing(j, "lists a service whose step", o);
                }
            }
        }
    }
    Ok(())
}

/// The fresh plan cut down to the reviewed operations, or why it may not be applied.
pub(crate) fn apply(
    reviewed: &ReviewedPlan,
    mut fresh: Plan,
    obs: &Observation,
    run: &Run,
) -> Result<Plan, Stop> {
    check_basis(reviewed)?;
    let moved = moved(reviewed, obs, run);
    if !moved.is_empty() {
        return Err(stale(&moved.join("; ")));
    }
    let kept = match_fresh(reviewed, &fresh)?;
    check_dependencies(&fresh, &kept)?;
    let keep: BTreeSet<usize> = kept.into_iter().collect();
    let operations = std::mem::take(&mut fresh.operations);
    fresh.operations = operations
        .into_iter()
        .enumerate()
        .filter(|(j, _)| keep.contains(j))
        .map(|(_, op)| op)
        .collect();
    Ok(fresh)
}

/// The unqualified ARNs of this account and region named by the observed
/// service-defaults entries (pruning takes them all as gone).
pub(crate) fn owned_arns(obs: &Observation, run: &Run) -> Vec<String> {
    let account = run.account.as_deref().unwrap_or_default();
    let mut out = BTreeSet::new();
    for scope in &obs.scopes {
        for e in scope.service_defaults.iter().flatten() {
            let EntryView::Lambda(l) = e.view() else {
                continue;
            };
            if let Some(a) = l.arn.as_deref().and_then(|a| split_function_arn(a).ok()) {
                if a.is_in(account, &run.region) {
                    out.insert(a.to_arn().unqualified().to_string());
                }
            }
        }
    }
    out.into_iter().collect()
}
