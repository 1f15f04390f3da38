//! Mesh wiring (docs/mesh.md, docs/contract.md §11): the `terminating-gateway` and
//! `exported-services` config entries kept in step with the managed services.
//!
//! Config entries are global and shared with people and other tools, and their
//! items carry no metadata saying who added them. So the registrator merges: it
//! adds or removes only the items ([`MeshEdit`]) that name a service it manages,
//! and writes the observed entry back otherwise untouched — every other item and
//! every other field (known to us or not) is kept as it was read. The merge is
//! idempotent: merging an edit into an entry that already has it changes nothing,
//! which is how a write whose answer was lost, or a check-and-set miss, is settled
//! by reading the entry again and merging again.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The kind of a mesh config entry.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize,
)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum MeshEntryKind {
    /// `Kind: terminating-gateway`, named after the gateway service.
    #[default]
    TerminatingGateway,
    /// `Kind: exported-services`, named after the partition (`default` on open-source Consul).
    ExportedServices,
}

impl MeshEntryKind {
    /// Consul's `Kind`.
    pub fn consul_kind(self) -> &'static str {
        match self {
            MeshEntryKind::TerminatingGateway => "terminating-gateway",
            MeshEntryKind::ExportedServices => "exported-services",
        }
    }
}

/// A service an entry item names.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshItem {
    /// The service's namespace (Enterprise; `None`: `default`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The service name.
    pub name: String,
}

/// A consumer of exported services: a cluster peer or an admin partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshConsumer {
    /// A cluster peer name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// An admin partition (Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

impl MeshConsumer {
    fn to_consul(&self) -> Value {
        let mut m = Map::new();
        if let Some(p) = &self.peer {
            m.insert("Peer".into(), Value::from(p.clone()));
        }
        if let Some(p) = &self.partition {
            m.insert("Partition".into(), Value::from(p.clone()));
        }
        Value::Object(m)
    }
}

/// What the registrator changes in one mesh entry: the items it adds (or, for
/// exported services, completes with the configured consumers) and the items it
/// removes. Applied by [`merge`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MeshEdit {
    /// The entry's kind.
    pub kind: MeshEntryKind,
    /// The entry's name.
    pub name: String,
    /// Whether the entry may be created when it does not exist.
    #[serde(default)]
    pub create: bool,
    /// Whether to write the `Namespace` of each item (Enterprise).
    #[serde(default)]
    pub enterprise: bool,
    /// Managed services to list.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add: Vec<MeshItem>,
    /// Managed services to take out (deregistered).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<MeshItem>,
    /// For exported services: the consumers every added service is exported to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumers: Vec<MeshConsumer>,
}

/// What merging an edit into an observed entry gives.
#[derive(Debug, Clone, PartialEq)]
pub enum Merged {
    /// The entry already holds the edit.
    Unchanged,
    /// The entry to write (every field and item not concerned as it was read).
    Write(Value),
    /// The entry does not exist and may not be created.
    Missing,
    /// The entry cannot be merged safely (its `Services` is not a list of objects).
    Unreadable(String),
}

/// Server-kept fields of an entry as Consul answers a read; left out of a write.
const SERVER_FIELDS: [&str; 3] = ["CreateIndex", "ModifyIndex", "Hash"];

fn norm_ns(ns: Option<&str>) -> &str {
    match ns {
        None | Some("") => "default",
        Some(ns) => ns,
    }
}

fn new_item(edit: &MeshEdit, item: &MeshItem) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("Name".into(), Value::from(item.name.clone()));
    if edit.enterprise {
        m.insert(
            "Namespace".into(),
            Value::from(norm_ns(item.namespace.as_deref())),
        );
    }
    m
}

/// The items of an entry by the service they name (namespace, name).
fn index(services: &[Value]) -> std::collections::HashMap<(&str, &str), usize> {
    let mut at = std::collections::HashMap::with_capacity(services.len());
    for (i, s) in services.iter().enumerate() {
        if let Some(name) = s.get("Name").and_then(Value::as_str) {
            let ns = norm_ns(s.get("Namespace").and_then(Value::as_str));
            at.entry((ns, name)).or_insert(i);
        }
    }
    at
}

/// The entry's `Services`, if they can be merged.
fn services_of(entry: &Map<String, Value>) -> Result<Vec<Value>, Merged> {
    match entry.get("Services") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) if items.iter().all(Value::is_object) => Ok(items.clone()),
        Some(_) => Err(Merged::Unreadable(
            "its Services is not a list of objects".into(),
        )),
    }
}

/// The part of `edit` that changes `observed`: the items to add that are not
/// listed yet (for exported services: or lack a configured consumer), the items to
/// remove that are listed. Empty when the entry already holds the edit.
pub fn needed(observed: Option<&Value>, edit: &MeshEdit) -> Result<MeshEdit, Merged> {
    let empty = Map::new();
    let entry = match observed {
        Some(Value::Object(m)) => m,
        Some(other) => {
            return Err(Merged::Unreadable(format!(
                "the entry is not an object: {}",
                crate::error::clip(&other.to_string())
            )))
        }
        None => &empty,
    };
    let services = services_of(entry)?;
    let at = index(&services);
    let find = |item: &MeshItem| {
        at.get(&(norm_ns(item.namespace.as_deref()), item.name.as_str()))
            .and_then(|i| services.get(*i))
    };
    let consumers: Vec<Value> = edit.consumers.iter().map(MeshConsumer::to_consul).collect();
    let add = edit
        .add
        .iter()
        .filter(|item| match find(item) {
            None => true,
            Some(_) if edit.kind == MeshEntryKind::TerminatingGateway => false,
            Some(existing) => {
                let listed = existing.get("Consumers").and_then(Value::as_array);
                consumers
                    .iter()
                    .any(|c| !listed.is_some_and(|l| l.contains(c)))
            }
        })
        .cloned()
        .collect();
    let remove = edit
        .remove
        .iter()
        .filter(|item| find(item).is_some())
        .cloned()
        .collect();
    Ok(MeshEdit {
        add,
        remove,
        ..edit.clone()
    })
}

/// Adds the items of `needed` to `services` (for exported services: the
/// configured consumers an existing item lacks).
fn add_items(services: &mut Vec<Value>, needed: &MeshEdit, edit: &MeshEdit) -> Result<(), Merged> {
    let consumers: Vec<Value> = edit.consumers.iter().map(MeshConsumer::to_consul).collect();
    let positions: std::collections::HashMap<(String, String), usize> = index(services)
        .into_iter()
        .map(|((ns, name), i)| ((ns.to_owned(), name.to_owned()), i))
        .collect();
    for item in &needed.add {
        let key = (
            norm_ns(item.namespace.as_deref()).to_owned(),
            item.name.clone(),
        );
        match positions.get(&key).and_then(|i| services.get_mut(*i)) {
            Some(existing) => {
                // Only exported services get here: complete the consumers.
                let Some(obj) = existing.as_object_mut() else {
                    continue;
                };
                let list = obj
                    .entry("Consumers")
                    .or_insert_with(|| Value::Array(Vec::new()));
                if list.is_null() {
                    *list = Value::Array(Vec::new());
                }
                let Some(list) = list.as_array_mut() else {
                    return Err(Merged::Unreadable(format!(
                        "the Consumers of {} is not a list",
                        crate::error::clip(&item.name)
                    )));
                };
                for c in &consumers {
                    if !list.contains(c) {
                        list.push(c.clone());
                    }
                }
            }
            None => {
                let mut m = new_item(edit, item);
                if edit.kind == MeshEntryKind::ExportedServices {
                    m.insert("Consumers".into(), Value::Array(consumers.clone()));
                }
                services.push(Value::Object(m));
            }
        }
    }
    Ok(())
}

/// Merges `edit` into `observed` (the entry as read; `None`: it does not exist).
pub fn merge(observed: Option<&Value>, edit: &MeshEdit) -> Merged {
    let needed = match needed(observed, edit) {
        Ok(n) => n,
        Err(m) => return m,
    };
    if observed.is_some() && needed.add.is_empty() && needed.remove.is_empty() {
        return Merged::Unchanged;
    }
    let mut entry = match observed {
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Merged::Unreadable("the entry is not an object".into()),
        None if !edit.create => return Merged::Missing,
        None => {
            let mut m = Map::new();
            m.insert("Kind".into(), Value::from(edit.kind.consul_kind()));
            m.insert("Name".into(), Value::from(edit.name.clone()));
            m
        }
    };
    for f in SERVER_FIELDS {
        entry.remove(f);
    }
    let mut services = match services_of(&entry) {
        Ok(s) => s,
        Err(m) => return m,
    };
    if !needed.remove.is_empty() {
        let gone: std::collections::HashSet<(&str, &str)> = needed
            .remove
            .iter()
            .map(|r| (norm_ns(r.namespace.as_deref()), r.name.as_str()))
            .collect();
        services.retain(|s| {
            let name = s.get("Name").and_then(Value::as_str).unwrap_or_default();
            let ns = norm_ns(s.get("Namespace").and_then(Value::as_str));
            !gone.contains(&(ns, name))
        });
    }
    if let Err(m) = add_items(&mut services, &needed, edit) {
        return m;
    }
    entry.insert("Services".into(), Value::Array(services));
    Merged::Write(Value::Object(entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(name: &str) -> MeshItem {
        MeshItem {
            namespace: None,
            name: name.into(),
        }
    }

    fn gateway(add: &[&str], remove: &[&str], create: bool) -> MeshEdit {
        MeshEdit {
            kind: MeshEntryKind::TerminatingGateway,
            name: "tgw".into(),
            create,
            add: add.iter().map(|n| item(n)).collect(),
            remove: remove.iter().map(|n| item(n)).collect(),
            ..MeshEdit::default()
        }
    }

    #[test]
    fn items_and_fields_not_ours_are_kept_as_read() {
        let observed = json!({
            "Kind": "terminating-gateway", "Name": "tgw", "Meta": {"team": "net"},
            "Services": [
                {"Name": "human", "CAFile": "/ca.pem", "SNI": "x"},
                {"Name": "gone"},
                {"Name": "orders", "CertFile": "/c.pem"}
            ],
            "Future": [1, 2], "CreateIndex": 5, "ModifyIndex": 9, "Hash": 1
        });
        let Merged::Write(w) = merge(
            Some(&observed),
            &gateway(&["orders", "new"], &["gone"], false),
        ) else {
            panic!("a write")
        };
        assert_eq!(
            w,
            json!({
                "Kind": "terminating-gateway", "Name": "tgw", "Meta": {"team": "net"},
                "Services": [
                    {"Name": "human", "CAFile": "/ca.pem", "SNI": "x"},
                    {"Name": "orders", "CertFile": "/c.pem"},
                    {"Name": "new"}
                ],
                "Future": [1, 2]
            })
        );
        // Merging again into what was written changes nothing.
        assert_eq!(
            merge(Some(&w), &gateway(&["orders", "new"], &["gone"], false)),
            Merged::Unchanged
        );
    }

    #[test]
    fn a_missing_entry_is_created_only_when_allowed() {
        assert_eq!(merge(None, &gateway(&["a"], &[], false)), Merged::Missing);
        assert_eq!(
            merge(None, &gateway(&["a"], &[], true)),
            Merged::Write(
                json!({"Kind": "terminating-gateway", "Name": "tgw", "Services": [{"Name": "a"}]})
            )
        );
    }

    #[test]
    fn exported_services_complete_consumers_and_keep_the_others() {
        let edit = MeshEdit {
            kind: MeshEntryKind::ExportedServices,
            name: "default".into(),
            create: true,
            add: vec![item("a"), item("b")],
            consumers: vec![MeshConsumer {
                peer: Some("west".into()),
                partition: None,
            }],
            ..MeshEdit::default()
        };
        let observed = json!({"Kind": "exported-services", "Name": "default", "Services": [
            {"Name": "a", "Consumers": [{"Peer": "east"}]},
            {"Name": "web", "Consumers": [{"Peer": "west"}]}
        ]});
        let Merged::Write(w) = merge(Some(&observed), &edit) else {
            panic!("a write")
        };
        assert_eq!(
            w["Services"],
            json!([
                {"Name": "a", "Consumers": [{"Peer": "east"}, {"Peer": "west"}]},
                {"Name": "web", "Consumers": [{"Peer": "west"}]},
                {"Name": "b", "Consumers": [{"Peer": "west"}]}
            ])
        );
        assert_eq!(merge(Some(&w), &edit), Merged::Unchanged);
    }

    #[test]
    fn namespaces_tell_items_apart() {
        let edit = MeshEdit {
            enterprise: true,
            remove: vec![MeshItem {
                namespace: Some("team".into()),
                name: "a".into(),
            }],
            add: vec![item("b")],
            ..gateway(&[], &[], false)
        };
        let observed = json!({"Services": [{"Name": "a"}, {"Name": "a", "Namespace": "team"}]});
        let Merged::Write(w) = merge(Some(&observed), &edit) else {
            panic!("a write")
        };
        assert_eq!(
            w["Services"],
            json!([{"Name": "a"}, {"Name": "b", "Namespace": "default"}])
        );
    }

    #[test]
    fn an_entry_that_cannot_be_read_is_left_alone() {
        let observed = json!({"Services": {"Name": "a"}});
        assert!(matches!(
            merge(Some(&observed), &gateway(&["x"], &[], false)),
            Merged::Unreadable(_)
        ));
    }
}
