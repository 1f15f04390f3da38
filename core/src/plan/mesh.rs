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
use crate::mesh::record::{META_MAX_PAIRS, META_MAX_VALUE_BYTES};
use crate::mesh::{
    assess, merge, Assessment, Merged, MeshConsumer, MeshEdit, MeshEntryKind, MeshItem,
};
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
            ops.extend(entry_operations(
                &config.node_name,
                input,
                partition,
                edit,
                out,
            ));
        }
    }
    ops
}

/// The operations that write one entry, if it changes: the removals (run before
/// the deregistrations) and the additions (run after the registrations).
fn entry_operations(
    node: &str,
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
    let unreadable = |out: &mut Plan, why: String| {
        let why = format!("the entry cannot be merged safely ({why})");
        let hint = "fix the entry by hand (consul config read), then sync again";
        out.warnings
            .push(warning(Code::MeshEntryUnchanged, &what, &edit, why, hint));
    };
    let assessed = match assess(observed, &edit, node) {
        Ok(a) => a,
        Err(Merged::Unreadable(why)) => {
            unreadable(out, why);
            return Vec::new();
        }
        Err(_) => return Vec::new(),
    };
    item_warnings(&what, &edit, &assessed, out);
    let needed = assessed.needed(&edit);
    if needed.add.is_empty() && needed.remove.is_empty() {
        return Vec::new();
    }
    match merge(observed, &needed, node) {
        Merged::Write(_) => {}
        Merged::Unchanged => return Vec::new(),
        Merged::Missing => {
            let why = format!(
                "the entry does not exist, so {} managed service(s) are not listed in it",
                needed.add.len()
            );
            let hint = "create the terminating-gateway config entry, or set TERMINATING_GATEWAY_CREATE=true";
            out.warnings
                .push(warning(Code::MeshEntryUnchanged, &what, &edit, why, hint));
            return Vec::new();
        }
        Merged::Unreadable(why) => {
            unreadable(out, why);
            return Vec::new();
        }
    }
    write_operations(partition, needed, &assessed.adopted, observed, out)
}

/// A warning about entry `what`: `{what}: {why}`, keyed by the setting that names it.
fn warning(code: Code, what: &str, edit: &MeshEdit, why: String, hint: &str) -> Diagnostic {
    let left = if code == Code::MeshEntryUnchanged {
        "; it is left as it is"
    } else {
        ""
    };
    Diagnostic::new(code, format!("{what}: {why}{left}"), hint)
        .key(match edit.kind {
            MeshEntryKind::TerminatingGateway => "TERMINATING_GATEWAY_NAME",
            MeshEntryKind::ExportedServices => "EXPORTED_SERVICES_PEERS",
        })
        .value(&edit.name)
}

/// How many items a warning names before `and N more`.
const NAMED: usize = 5;

/// `a, ns/b (why) and 3 more`: items as a warning names them.
fn named_items<'a>(
    items: impl ExactSizeIterator<Item = (&'a MeshItem, Option<&'a str>)>,
) -> String {
    let total = items.len();
    let mut shown: Vec<String> = items
        .take(NAMED)
        .map(|(i, why)| {
            let name = list(std::slice::from_ref(i));
            match why {
                Some(why) => format!("{name} ({why})"),
                None => name,
            }
        })
        .collect();
    if total > NAMED {
        shown.push(format!("and {} more", total - NAMED));
    }
    shown.join("; ")
}

/// The warnings of items left as they are: not the registrator's, or not fitting
/// in its record.
fn item_warnings(what: &str, edit: &MeshEdit, a: &Assessment, out: &mut Plan) {
    if !a.not_ours.is_empty() {
        let why = format!(
            "{} item(s) of managed services were not added by the registrator and are left exactly as they are: {}",
            a.not_ours.len(),
            named_items(a.not_ours.iter().map(|(i, why)| (i, Some(why.as_str()))))
        );
        let hint = match edit.kind {
            MeshEntryKind::TerminatingGateway => "the registrator changes and removes only the items its record in the entry's Meta names; to let it manage one of these, delete the item and the next sync adds its own",
            MeshEntryKind::ExportedServices => "the registrator changes and removes only the items its record in the entry's Meta names; to export such a service to the configured consumers, add them to the item yourself, or delete the item and the next sync writes its own",
        };
        out.warnings
            .push(warning(Code::MeshItemNotOurs, what, edit, why, hint));
    }
    if !a.full.is_empty() {
        let why = format!(
            "the registrator's record in the entry's Meta (at most {META_MAX_PAIRS} pairs of {META_MAX_VALUE_BYTES} bytes, less the entry's other pairs) has no room for {} more service(s), which are not listed: {}",
            a.full.len(),
            named_items(a.full.iter().map(|i| (i, None)))
        );
        let hint = "remove Meta pairs the entry does not need (the registrator's own keys start with consul-lambda-sync/), or list these services in the entry by hand";
        out.warnings
            .push(warning(Code::MeshRecordFull, what, edit, why, hint));
    }
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
    adopted: &[MeshItem],
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
        add: edit
            .add
            .iter()
            .filter(|i| !adopted.contains(i))
            .cloned()
            .collect(),
        adopt: edit
            .add
            .iter()
            .filter(|i| adopted.contains(i))
            .cloned()
            .collect(),
        remove: edit.remove.clone(),
        reason: reason_of(&edit, adopted, change == Change::Create),
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
            reason: reason_of(&part, adopted, create),
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

/// Why an entry changes: `create the entry; list a, b; record c (an earlier
/// version's item); take out d (deregistered)`.
fn reason_of(edit: &MeshEdit, adopted: &[MeshItem], create: bool) -> String {
    let mut why = Vec::new();
    if create {
        why.push("create the entry".to_owned());
    }
    let (adopt, add): (Vec<MeshItem>, Vec<MeshItem>) =
        edit.add.iter().cloned().partition(|i| adopted.contains(i));
    if !add.is_empty() {
        why.push(match edit.kind {
            MeshEntryKind::TerminatingGateway => format!("list {}", list(&add)),
            MeshEntryKind::ExportedServices => format!("export {}", list(&add)),
        });
    }
    if !adopt.is_empty() {
        why.push(format!(
            "record {} (listed by an earlier version, exactly as it writes them)",
            list(&adopt)
        ));
    }
    if !edit.remove.is_empty() {
        why.push(format!("take out {} (deregistered)", list(&edit.remove)));
    }
    why.join("; ")
}

#[cfg(test)]
mod tests {
    use crate::plan::{plan, Plan, PlanInput};
    use serde_json::{json, Value};

    /// A plan of functions `names`, each registered already (unchanged), with the
    /// gateway entry `tgw` as `entry`.
    fn plan_of(names: &[&str], entry: Value) -> Plan {
        let arn = |n: &str| format!("arn:aws:lambda:us-east-1:123456789012:function:{n}");
        let functions: Vec<Value> = names
            .iter()
            .map(|n| json!({"arn": arn(n), "tags": {"serverless.consul.hashicorp.com/v1alpha1/lambda/enabled": "true"}}))
            .collect();
        let services: Vec<Value> = names
            .iter()
            .map(|n| json!({"ID": n, "Service": n, "Tags": ["managed-by-lambda-registrator"]}))
            .collect();
        let defaults: Vec<Value> = names
            .iter()
            .map(|n| {
                json!({"Kind": "service-defaults", "Name": n, "Protocol": "http",
                "EnvoyExtensions": [{"Name": "builtin/aws/lambda", "Required": false, "Arguments": {
                    "arn": arn(n), "invocationMode": "synchronous", "payloadPassthrough": false}}]})
            })
            .collect();
        let input: PlanInput = serde_json::from_value(json!({
            "config": {"terminatingGatewayName": "tgw"},
            "inventory": {"accountId": "123456789012", "region": "us-east-1", "functions": functions},
            "consul": {"scopes": [{
                "nodeServices": {"Node": {"Node": "lambdas"}, "Services": services},
                "serviceDefaults": defaults
            }]},
            "mesh": [{"kind": "terminatingGateway", "entry": entry}]
        }))
        .unwrap();
        plan(&input).unwrap()
    }

    fn codes(p: &Plan) -> Vec<&str> {
        p.warnings.iter().map(|d| d.code.as_str()).collect()
    }

    #[test]
    fn an_item_not_ours_is_a_warning_and_no_operation() {
        let entry = json!({"Kind": "terminating-gateway", "Name": "tgw", "ModifyIndex": 4, "Services": [
            {"Name": "ledger-api", "CAFile": "/etc/ca.pem", "SNI": "ledger.internal"}
        ]});
        let p = plan_of(&["ledger-api"], entry);
        assert!(p.operations.is_empty(), "{:?}", p.operations);
        assert!(p.mesh.is_empty());
        assert_eq!(codes(&p), ["mesh_item_not_ours"]);
        let w = &p.warnings[0];
        assert_eq!(w.key.as_deref(), Some("TERMINATING_GATEWAY_NAME"));
        assert!(
            w.message.contains(
                "ledger-api (it has fields the registrator does not write (CAFile, SNI))"
            ),
            "{}",
            w.message
        );
    }

    #[test]
    fn a_warning_names_five_items_and_counts_the_rest() {
        let names = ["a", "b", "c", "d", "e", "f", "g"];
        let services: Vec<Value> = names
            .iter()
            .map(|n| json!({"Name": n, "SNI": "x"}))
            .collect();
        let p = plan_of(&names, json!({"Services": services}));
        assert_eq!(codes(&p), ["mesh_item_not_ours"]);
        assert!(
            p.warnings[0].message.contains("7 item(s)")
                && p.warnings[0].message.ends_with("; and 2 more"),
            "{}",
            p.warnings[0].message
        );
    }

    #[test]
    fn an_earlier_versions_item_is_adopted_in_its_own_list() {
        let entry = json!({"Kind": "terminating-gateway", "Name": "tgw", "ModifyIndex": 4,
            "Services": [{"Name": "old"}]});
        let p = plan_of(&["old"], entry);
        assert!(codes(&p).is_empty());
        assert_eq!(p.mesh.len(), 1);
        assert!(p.mesh[0].add.is_empty());
        assert_eq!(p.mesh[0].adopt.len(), 1);
        assert_eq!(
            p.mesh[0].reason,
            "record old (listed by an earlier version, exactly as it writes them)"
        );
        assert_eq!(p.operations.len(), 1);
        assert_eq!(p.operations[0].index, Some(4));
    }

    #[test]
    fn a_full_record_is_a_warning_and_lists_nothing() {
        let meta: serde_json::Map<String, Value> =
            (0..64).map(|i| (format!("k{i}"), json!("v"))).collect();
        let p = plan_of(&["new"], json!({"Meta": meta, "Services": []}));
        assert!(p.operations.is_empty());
        assert_eq!(codes(&p), ["mesh_record_full"]);
        assert!(p.warnings[0]
            .message
            .contains("no room for 1 more service(s), which are not listed: new"));
    }
}
