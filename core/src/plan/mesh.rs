//! The mesh entries of a plan (docs/mesh.md, docs/contract.md §11): the
//! terminating gateway's `Services` and the partition's `exported-services` kept in
//! step with the services this plan leaves registered.
//!
//! Only services the registrator manages are named: a wanted service (its row:
//! created, repaired or unchanged) is listed; a deregistered one (a deletion row
//! that runs now, not waiting for `ListTags`) is taken out, unless another
//! managed instance of the name stays (in another datacenter). Frozen, unreached
//! and foreign services have no row, so their items are never touched.

use super::context::Ctx;
use super::key::Key;
use super::observed::Observed;
use super::operation::{Action, Operation};
use super::rows::Row;
use super::{Change, Ignored, MeshChange, Plan, PlanInput};
use crate::consul::ServiceKey;
use crate::error::{Code, Diagnostic};
use crate::mesh::{merge, needed, Merged, MeshConsumer, MeshEdit, MeshEntryKind, MeshItem};
use std::collections::BTreeSet;

/// A service as a mesh entry names it: partition, namespace, name (normalised).
type Named<'a> = (&'a str, &'a str, &'a str);

fn norm(v: Option<&str>) -> &str {
    match v {
        None | Some("") => "default",
        Some(v) => v,
    }
}

fn named<'a>(key: &Key<'a>) -> Named<'a> {
    (norm(key.partition), norm(key.namespace), key.name)
}

/// What the entries list, what they lose: the services this plan leaves
/// registered (not waiting for `ListTags`), and the ones it deregisters (not
/// waiting either) that no other managed instance of the name keeps.
fn additions_and_removals<'a>(
    observed: &[(Key<'a>, Observed<'a>)],
    rows: &[Row<'a>],
) -> (BTreeSet<Named<'a>>, BTreeSet<Named<'a>>) {
    let mut wanted: BTreeSet<Named<'_>> = BTreeSet::new();
    let mut add: BTreeSet<Named<'_>> = BTreeSet::new();
    let mut deleted_keys = BTreeSet::new();
    let mut remove: BTreeSet<Named<'_>> = BTreeSet::new();
    for row in rows {
        if row.change == Change::Delete {
            deleted_keys.insert(row.key);
            if row.confirm.is_none() {
                remove.insert(named(&row.key));
            }
        } else {
            wanted.insert(named(&row.key));
            if row.confirm.is_none() {
                add.insert(named(&row.key));
            }
        }
    }
    for (key, o) in observed {
        if o.catalog.is_some() && !deleted_keys.contains(key) {
            wanted.insert(named(key));
        }
    }
    remove.retain(|n| !wanted.contains(n));

    (add, remove)
}

/// The mesh entries to write, as operations (one per entry that changes); their
/// rows go to `out.mesh`, entries left alone to `out.warnings` or `out.ignored`.
pub(super) fn mesh_operations<'a>(
    ctx: &Ctx<'_>,
    input: &PlanInput,
    observed: &[(Key<'a>, Observed<'a>)],
    rows: &[Row<'_>],
    out: &mut Plan,
) -> Vec<Operation> {
    let config = &ctx.config;
    let consumers: Vec<MeshConsumer> = config
        .exported_services_peers
        .iter()
        .map(|p| MeshConsumer {
            peer: Some(p.clone()),
            partition: None,
        })
        .chain(
            config
                .exported_services_partitions
                .iter()
                .map(|p| MeshConsumer {
                    peer: None,
                    partition: Some(p.clone()),
                }),
        )
        .collect();
    let gateway = config.terminating_gateway_name.as_deref();
    if gateway.is_none() && consumers.is_empty() {
        return Vec::new();
    }
    let (add, remove) = additions_and_removals(observed, rows);

    let partitions: Vec<Option<&str>> = if config.enterprise {
        config.partitions.iter().map(|p| Some(p.as_str())).collect()
    } else {
        vec![None]
    };
    let mut ops = Vec::new();
    for partition in partitions {
        let in_partition = |set: &BTreeSet<Named<'_>>| -> Vec<MeshItem> {
            set.iter()
                .filter(|(p, _, _)| *p == norm(partition))
                .map(|(_, ns, name)| MeshItem {
                    namespace: config.enterprise.then(|| (*ns).to_owned()),
                    name: (*name).to_owned(),
                })
                .collect()
        };
        let mut edits = Vec::new();
        if let Some(name) = gateway {
            edits.push(MeshEdit {
                kind: MeshEntryKind::TerminatingGateway,
                name: name.to_owned(),
                create: config.terminating_gateway_create,
                enterprise: config.enterprise,
                add: in_partition(&add),
                remove: in_partition(&remove),
                consumers: Vec::new(),
            });
        }
        if !consumers.is_empty() {
            edits.push(MeshEdit {
                kind: MeshEntryKind::ExportedServices,
                name: norm(partition).to_owned(),
                // The partition's one exported-services entry: creating it (cas=0)
                // cannot overwrite anything.
                create: true,
                enterprise: config.enterprise,
                add: in_partition(&add),
                remove: in_partition(&remove),
                consumers: consumers.clone(),
            });
        }
        for edit in edits {
            ops.extend(entry_operations(input, partition, edit, out));
        }
    }
    ops
}

/// The operations that write one entry, if it changes: the removals (run before
/// the deregistrations) and the additions (run after the registrations).
fn entry_operations(
    input: &PlanInput,
    partition: Option<&str>,
    edit: MeshEdit,
    out: &mut Plan,
) -> Vec<Operation> {
    let what = format!("{} {}", edit.kind.consul_kind(), edit.name);
    let Some(seen) = input
        .mesh
        .iter()
        .find(|m| m.kind == edit.kind && norm(m.partition.as_deref()) == norm(partition))
    else {
        out.ignored.push(Ignored {
            service: None,
            reason: format!("{what} was not observed; it is left as it is"),
        });
        return Vec::new();
    };
    let observed = seen.entry.as_ref();
    let left_alone = |out: &mut Plan, why: String, hint: &str| {
        out.warnings.push(
            Diagnostic::new(
                Code::MeshEntryUnchanged,
                format!("{what}: {why}; it is left as it is"),
                hint,
            )
            .key(match edit.kind {
                MeshEntryKind::TerminatingGateway => "TERMINATING_GATEWAY_NAME",
                MeshEntryKind::ExportedServices => "EXPORTED_SERVICES_PEERS",
            })
            .value(&edit.name),
        );
    };
    let edit = match needed(observed, &edit) {
        Ok(e) => e,
        Err(Merged::Unreadable(why)) => {
            left_alone(
                out,
                format!("the entry cannot be merged safely ({why})"),
                "fix the entry by hand (consul config read), then sync again",
            );
            return Vec::new();
        }
        Err(_) => return Vec::new(),
    };
    if edit.add.is_empty() && edit.remove.is_empty() {
        return Vec::new();
    }
    match merge(observed, &edit) {
        Merged::Write(_) => {}
        Merged::Unchanged => return Vec::new(),
        Merged::Missing => {
            left_alone(
                out,
                format!(
                    "the entry does not exist, so {} managed service(s) are not listed in it",
                    edit.add.len()
                ),
                "create the terminating-gateway config entry, or set TERMINATING_GATEWAY_CREATE=true",
            );
            return Vec::new();
        }
        Merged::Unreadable(why) => {
            left_alone(
                out,
                format!("the entry cannot be merged safely ({why})"),
                "fix the entry by hand (consul config read), then sync again",
            );
            return Vec::new();
        }
    }
    write_operations(partition, edit, observed, out)
}

/// The entry's `ModifyIndex` as read (`0`: absent, or read without one).
fn modify_index(entry: Option<&serde_json::Value>) -> u64 {
    entry
        .and_then(|e| e.get("ModifyIndex"))
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0)
}

/// The plan's row for an entry that changes, and its operations: the removals
/// (before the deregistrations they are for, so a failed write keeps the service
/// registered and the next sync tries again) and the additions (after the
/// registrations).
fn write_operations(
    partition: Option<&str>,
    edit: MeshEdit,
    observed: Option<&serde_json::Value>,
    out: &mut Plan,
) -> Vec<Operation> {
    let change = if observed.is_some() {
        Change::Update
    } else {
        Change::Create
    };
    out.mesh.push(MeshChange {
        kind: edit.kind,
        name: edit.name.clone(),
        partition: partition.map(str::to_owned),
        change,
        add: edit.add.clone(),
        remove: edit.remove.clone(),
        reason: reason_of(&edit, change == Change::Create),
    });
    let removal = MeshEdit {
        add: Vec::new(),
        ..edit.clone()
    };
    let addition = MeshEdit {
        remove: Vec::new(),
        ..edit
    };
    let index = modify_index(observed);
    [(removal, false), (addition, change == Change::Create)]
        .into_iter()
        .filter(|(part, _)| !part.add.is_empty() || !part.remove.is_empty())
        .map(|(part, create)| Operation {
            service: ServiceKey {
                datacenter: None,
                partition: partition.map(str::to_owned),
                namespace: None,
                name: part.name.clone(),
            },
            change: if create {
                Change::Create
            } else {
                Change::Update
            },
            reason: reason_of(&part, create),
            function: None,
            confirm_absent: None,
            index: Some(index),
            action: Action::UpdateMeshEntry(part),
        })
        .collect()
}

/// `a, ns/b`: the items, as a reason names them.
fn list(items: &[MeshItem]) -> String {
    items
        .iter()
        .map(|i| match &i.namespace {
            Some(ns) if ns != "default" => format!("{ns}/{}", i.name),
            _ => i.name.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why an entry changes: `create the entry; list a, b; take out c (deregistered)`.
fn reason_of(edit: &MeshEdit, create: bool) -> String {
    let mut why = Vec::new();
    if create {
        why.push("create the entry".to_owned());
    }
    if !edit.add.is_empty() {
        why.push(match edit.kind {
            MeshEntryKind::TerminatingGateway => format!("list {}", list(&edit.add)),
            MeshEntryKind::ExportedServices => format!("export {}", list(&edit.add)),
        });
    }
    if !edit.remove.is_empty() {
        why.push(format!("take out {} (deregistered)", list(&edit.remove)));
    }
    why.join("; ")
}
