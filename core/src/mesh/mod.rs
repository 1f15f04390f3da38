//! Mesh wiring (docs/mesh.md, docs/contract.md §11): the `terminating-gateway` and
//! `exported-services` config entries kept in step with the managed services.
//!
//! Config entries are global and shared with people and other tools, and their
//! items carry no metadata saying who added them. So the registrator keeps its own
//! record of the items it added in the entry's `Meta` ([`record`]), and merges: it
//! adds items only for services it manages, takes out only items its record names
//! (or an earlier version's, exactly as it writes them), and writes the observed
//! entry back otherwise untouched — every other item, every other `Meta` pair and
//! every other field (known to us or not) as it was read. An item of a managed
//! name that is not its own is left exactly as it is ([`Assessment::not_ours`]).
//! The merge is idempotent: merging an edit into an entry that already has it
//! changes nothing, which is how a write whose answer was lost, or a
//! check-and-set miss, is settled by reading the entry again and merging again.

pub mod record;

use record::{norm_ns, ItemKey, Record, Records};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};

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

fn key_of(item: &MeshItem) -> ItemKey {
    (
        norm_ns(item.namespace.as_deref()).to_owned(),
        item.name.clone(),
    )
}

fn new_item(edit: &MeshEdit, item: &MeshItem, consumers: &[Value]) -> Value {
    let mut m = Map::new();
    m.insert("Name".into(), Value::from(item.name.clone()));
    if edit.enterprise {
        m.insert(
            "Namespace".into(),
            Value::from(norm_ns(item.namespace.as_deref())),
        );
    }
    if edit.kind == MeshEntryKind::ExportedServices {
        m.insert("Consumers".into(), Value::Array(consumers.to_vec()));
    }
    Value::Object(m)
}

/// The items of an entry by the service they name (the first item of each).
fn index(services: &[Value]) -> HashMap<ItemKey, usize> {
    let mut at = HashMap::with_capacity(services.len());
    for (i, s) in services.iter().enumerate() {
        if let Some(name) = s.get("Name").and_then(Value::as_str) {
            let ns = norm_ns(s.get("Namespace").and_then(Value::as_str));
            at.entry((ns.to_owned(), name.to_owned())).or_insert(i);
        }
    }
    at
}

/// The entry as an object (`None`: absent, read as empty).
fn entry_of<'a>(
    observed: Option<&'a Value>,
    empty: &'a Map<String, Value>,
) -> Result<&'a Map<String, Value>, Merged> {
    match observed {
        Some(Value::Object(m)) => Ok(m),
        Some(other) => Err(Merged::Unreadable(format!(
            "the entry is not an object: {}",
            crate::error::clip(&other.to_string())
        ))),
        None => Ok(empty),
    }
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

/// The entry's `Meta`, if it can be merged.
fn meta_of(entry: &Map<String, Value>) -> Result<Option<&Map<String, Value>>, Merged> {
    match entry.get("Meta") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(Merged::Unreadable("its Meta is not an object".into())),
    }
}

/// Consumers, as a warning lists them: `peer west, partition team-b`.
fn describe_consumers(list: Option<&Vec<Value>>) -> String {
    let Some(list) = list.filter(|l| !l.is_empty()) else {
        return "none".into();
    };
    let one = |c: &Value| {
        let mut parts = Vec::new();
        for (field, word) in [
            ("Peer", "peer"),
            ("Partition", "partition"),
            ("SamenessGroup", "sameness group"),
        ] {
            if let Some(v) = c.get(field).and_then(Value::as_str) {
                parts.push(format!("{word} {v}"));
            }
        }
        if parts.is_empty() {
            c.to_string()
        } else {
            parts.join(" ")
        }
    };
    crate::error::clip(&list.iter().map(one).collect::<Vec<_>>().join(", "))
}

/// Whether `found`, an item no record names, is exactly what the registrator
/// writes for `item` (an earlier version's, which kept no record): the same
/// fields, nothing more; for exported services, the configured consumers and no
/// other. `Err(why)` when it is not.
fn exact(
    found: &Value,
    edit: &MeshEdit,
    item: &MeshItem,
    consumers: &[Value],
) -> Result<(), String> {
    let Some(obj) = found.as_object() else {
        return Err("it is not an object".into());
    };
    let ns = norm_ns(item.namespace.as_deref());
    let extra: Vec<&str> = obj
        .iter()
        .filter(|(k, v)| match k.as_str() {
            "Name" => false,
            "Namespace" => v.as_str().map(|v| norm_ns(Some(v))) != Some(ns),
            "Consumers" => edit.kind != MeshEntryKind::ExportedServices,
            _ => true,
        })
        .map(|(k, _)| k.as_str())
        .collect();
    if !extra.is_empty() {
        return Err(format!(
            "it has fields the registrator does not write ({})",
            crate::error::clip(&extra.join(", "))
        ));
    }
    if edit.kind == MeshEntryKind::ExportedServices {
        let listed = obj.get("Consumers").and_then(Value::as_array);
        let same = listed.is_some_and(|l| {
            l.iter().all(|c| consumers.contains(c)) && consumers.iter().all(|c| l.contains(c))
        });
        if !same {
            return Err(format!(
                "its consumers ({}) are not the configured ones",
                describe_consumers(listed)
            ));
        }
    }
    Ok(())
}

/// What an edit does to an entry as read ([`assess`]): the items it lists,
/// adopts and takes out, and the ones it leaves as they are.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Assessment {
    /// Items added (absent before), and (exported services) items of the
    /// registrator given a configured consumer they lacked.
    pub listed: Vec<MeshItem>,
    /// Items no record names that are exactly what the registrator writes (an
    /// earlier version's): recorded now, otherwise unchanged.
    pub adopted: Vec<MeshItem>,
    /// Items taken out: recorded as the registrator's, or an earlier version's.
    pub removed: Vec<MeshItem>,
    /// Items of a name the edit concerns that are not the registrator's (a
    /// person's, or listed with more than it writes), and why: left exactly as
    /// they are.
    pub not_ours: Vec<(MeshItem, String)>,
    /// Items not added (or not adopted) because the record would not fit in the
    /// entry's `Meta`.
    pub full: Vec<MeshItem>,
    /// The entry's `Services` after the edit.
    services: Vec<Value>,
    /// The registrator's record after the edit.
    record: Record,
}

impl Assessment {
    /// Whether the edit changes the entry.
    pub fn changes(&self) -> bool {
        !self.listed.is_empty() || !self.adopted.is_empty() || !self.removed.is_empty()
    }

    /// The part of `edit` that changes the entry: the items listed or adopted, the
    /// items taken out.
    pub fn needed(&self, edit: &MeshEdit) -> MeshEdit {
        let add = edit
            .add
            .iter()
            .filter(|i| self.listed.contains(i) || self.adopted.contains(i))
            .cloned()
            .collect();
        let remove = edit
            .remove
            .iter()
            .filter(|i| self.removed.contains(i))
            .cloned()
            .collect();
        MeshEdit {
            add,
            remove,
            ..edit.clone()
        }
    }

    /// Takes out the items of `edit.remove` that are the registrator's.
    fn take_out(&mut self, edit: &MeshEdit, others: &BTreeSet<ItemKey>, consumers: &[Value]) {
        let mut at = index(&self.services);
        let mut gone = BTreeSet::new();
        for item in &edit.remove {
            let key = key_of(item);
            let Some(i) = at.get(&key).copied() else {
                self.record.remove(&key);
                continue;
            };
            let found = self.services.get(i).unwrap_or(&Value::Null);
            let ours = self.record.contains(&key);
            if ours || (!others.contains(&key) && exact(found, edit, item, consumers).is_ok()) {
                gone.insert(i);
                at.remove(&key);
                self.record.remove(&key);
                self.removed.push(item.clone());
            } else if !others.contains(&key) {
                let why = exact(found, edit, item, consumers)
                    .err()
                    .unwrap_or_default();
                self.not_ours.push((item.clone(), why));
            }
        }
        if !gone.is_empty() {
            let mut i = 0;
            self.services.retain(|_| {
                i += 1;
                !gone.contains(&(i - 1))
            });
        }
    }

    /// Lists the items of `edit.add`: new ones added and recorded, an earlier
    /// version's adopted, the registrator's completed with the consumers.
    fn list(
        &mut self,
        edit: &MeshEdit,
        others: &BTreeSet<ItemKey>,
        consumers: &[Value],
    ) -> Result<(), Merged> {
        let at = index(&self.services);
        for item in &edit.add {
            let key = key_of(item);
            let Some(i) = at.get(&key).copied() else {
                if self.record.push(key) {
                    self.services.push(new_item(edit, item, consumers));
                    self.listed.push(item.clone());
                } else {
                    self.full.push(item.clone());
                }
                continue;
            };
            let Some(found) = self.services.get_mut(i) else {
                continue;
            };
            if self.record.contains(&key) {
                if edit.kind == MeshEntryKind::ExportedServices && complete(found, consumers, item)?
                {
                    self.listed.push(item.clone());
                }
            } else if others.contains(&key) {
                // Another registrator's item: it keeps it in step.
            } else if let Err(why) = exact(found, edit, item, consumers) {
                self.not_ours.push((item.clone(), why));
            } else if self.record.push(key) {
                self.adopted.push(item.clone());
            } else {
                self.full.push(item.clone());
            }
        }
        Ok(())
    }
}

/// Gives the registrator's exported item `found` the configured consumers it
/// lacks; whether it lacked any.
fn complete(found: &mut Value, consumers: &[Value], item: &MeshItem) -> Result<bool, Merged> {
    let Some(obj) = found.as_object_mut() else {
        return Ok(false);
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
    let mut changed = false;
    for c in consumers {
        if !list.contains(c) {
            list.push(c.clone());
            changed = true;
        }
    }
    Ok(changed)
}

/// What `edit` does to `observed` (the entry as read; `None`: it does not
/// exist), for registrator `node`: it takes out the items of `edit.remove` that
/// its record names (or that an earlier version wrote: exactly what it writes),
/// lists the items of `edit.add` that are absent (recording them, if the record
/// fits), adopts an earlier version's, and leaves every other item as it is.
pub fn assess(observed: Option<&Value>, edit: &MeshEdit, node: &str) -> Result<Assessment, Merged> {
    let empty = Map::new();
    let entry = entry_of(observed, &empty)?;
    let services = services_of(entry)?;
    let records = Records::read(meta_of(entry)?, node).map_err(Merged::Unreadable)?;
    let consumers: Vec<Value> = edit.consumers.iter().map(MeshConsumer::to_consul).collect();
    let mut a = Assessment {
        services,
        record: records.ours,
        ..Assessment::default()
    };
    a.take_out(edit, &records.others, &consumers);
    a.list(edit, &records.others, &consumers)?;
    // An item of the record that is no longer listed (a person took it out) is
    // forgotten: a later item of that name is not the registrator's.
    let listed = index(&a.services);
    a.record.retain(|k| listed.contains_key(k));
    Ok(a)
}

/// The part of `edit` that changes `observed` (see [`Assessment::needed`]).
pub fn needed(observed: Option<&Value>, edit: &MeshEdit, node: &str) -> Result<MeshEdit, Merged> {
    assess(observed, edit, node).map(|a| a.needed(edit))
}

/// Merges `edit` into `observed` (the entry as read; `None`: it does not exist)
/// for registrator `node`: the entry to write, its record in `Meta` updated.
pub fn merge(observed: Option<&Value>, edit: &MeshEdit, node: &str) -> Merged {
    let a = match assess(observed, edit, node) {
        Ok(a) => a,
        Err(m) => return m,
    };
    if observed.is_some() && !a.changes() {
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
    entry.insert("Services".into(), Value::Array(a.services));
    let mut meta = match entry.remove("Meta") {
        Some(Value::Object(m)) => m,
        _ => Map::new(),
    };
    a.record.write(&mut meta, node);
    if !meta.is_empty() {
        entry.insert("Meta".into(), Value::Object(meta));
    }
    Merged::Write(Value::Object(entry))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NODE: &str = "lambdas";
    const REC: &str = "consul-lambda-sync/lambdas/0";

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

    fn exports(add: &[&str], remove: &[&str]) -> MeshEdit {
        MeshEdit {
            kind: MeshEntryKind::ExportedServices,
            name: "default".into(),
            create: true,
            consumers: vec![MeshConsumer {
                peer: Some("west".into()),
                partition: None,
            }],
            ..gateway(add, remove, true)
        }
    }

    fn write(observed: Option<&Value>, edit: &MeshEdit) -> Value {
        match merge(observed, edit, NODE) {
            Merged::Write(w) => w,
            other => panic!("a write, not {other:?}"),
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
        let edit = gateway(&["orders", "new"], &["gone"], false);
        let w = write(Some(&observed), &edit);
        assert_eq!(
            w,
            json!({
                "Kind": "terminating-gateway", "Name": "tgw",
                "Meta": {"team": "net", REC: "new"},
                "Services": [
                    {"Name": "human", "CAFile": "/ca.pem", "SNI": "x"},
                    {"Name": "orders", "CertFile": "/c.pem"},
                    {"Name": "new"}
                ],
                "Future": [1, 2]
            })
        );
        // Merging again into what was written changes nothing.
        assert_eq!(merge(Some(&w), &edit, NODE), Merged::Unchanged);
        let a = assess(Some(&observed), &edit, NODE).unwrap();
        assert_eq!(a.listed, [item("new")]);
        assert_eq!(a.removed, [item("gone")], "an earlier version's item");
        assert_eq!(
            a.not_ours,
            [(
                item("orders"),
                "it has fields the registrator does not write (CertFile)".to_owned()
            )]
        );
    }

    #[test]
    fn a_missing_entry_is_created_only_when_allowed() {
        assert_eq!(
            merge(None, &gateway(&["a"], &[], false), NODE),
            Merged::Missing
        );
        assert_eq!(
            write(None, &gateway(&["a", "b"], &[], true)),
            json!({"Kind": "terminating-gateway", "Name": "tgw",
                   "Services": [{"Name": "a"}, {"Name": "b"}], "Meta": {REC: "a,b"}})
        );
    }

    #[test]
    fn a_persons_gateway_item_is_unchanged_across_our_add_and_withdraw() {
        let theirs =
            json!({"Name": "ledger-api", "CAFile": "/etc/ca.pem", "SNI": "ledger.internal"});
        let observed = json!({"Kind": "terminating-gateway", "Name": "tgw", "Services": [theirs]});
        let add = gateway(&["ledger-api", "ledger"], &[], false);
        let added = write(Some(&observed), &add);
        assert_eq!(added["Services"], json!([theirs, {"Name": "ledger"}]));
        assert_eq!(added["Meta"], json!({REC: "ledger"}));
        let withdraw = gateway(&[], &["ledger-api", "ledger"], false);
        let withdrawn = write(Some(&added), &withdraw);
        assert_eq!(withdrawn["Services"], json!([theirs]));
        assert!(withdrawn.get("Meta").is_none(), "{withdrawn}");
        // Their item alone: nothing to write, and it is named in a warning.
        assert_eq!(merge(Some(&withdrawn), &withdraw, NODE), Merged::Unchanged);
        let a = assess(Some(&withdrawn), &withdraw, NODE).unwrap();
        assert_eq!(a.not_ours.len(), 1);
    }

    #[test]
    fn a_persons_exported_item_keeps_its_consumers_and_is_not_withdrawn() {
        let theirs = json!({"Name": "payments", "Consumers": [{"Peer": "east"}]});
        let observed =
            json!({"Kind": "exported-services", "Name": "default", "Services": [theirs]});
        let add = exports(&["payments", "orders"], &[]);
        let added = write(Some(&observed), &add);
        assert_eq!(
            added["Services"],
            json!([theirs, {"Name": "orders", "Consumers": [{"Peer": "west"}]}])
        );
        let a = assess(Some(&observed), &add, NODE).unwrap();
        assert_eq!(
            a.not_ours,
            [(
                item("payments"),
                "its consumers (peer east) are not the configured ones".to_owned()
            )]
        );
        let withdrawn = write(Some(&added), &exports(&[], &["payments", "orders"]));
        assert_eq!(withdrawn["Services"], json!([theirs]));
    }

    #[test]
    fn our_exported_items_get_the_consumers_they_lack_and_keep_the_others() {
        let observed = json!({"Kind": "exported-services", "Name": "default",
            "Meta": {REC: "a"},
            "Services": [{"Name": "a", "Consumers": [{"Peer": "east"}]}]});
        let edit = exports(&["a"], &[]);
        let w = write(Some(&observed), &edit);
        assert_eq!(
            w["Services"],
            json!([{"Name": "a", "Consumers": [{"Peer": "east"}, {"Peer": "west"}]}])
        );
        assert_eq!(merge(Some(&w), &edit, NODE), Merged::Unchanged);
    }

    #[test]
    fn an_earlier_versions_item_is_adopted_only_when_exact() {
        let observed = json!({"Kind": "terminating-gateway", "Name": "tgw", "Services": [
            {"Name": "a"}, {"Name": "b", "SNI": "b.internal"}
        ]});
        let edit = gateway(&["a", "b"], &[], false);
        let a = assess(Some(&observed), &edit, NODE).unwrap();
        assert_eq!(a.adopted, [item("a")]);
        assert_eq!(a.not_ours.len(), 1);
        let w = write(Some(&observed), &edit);
        assert_eq!(
            w["Services"], observed["Services"],
            "only the record changes"
        );
        assert_eq!(w["Meta"], json!({REC: "a"}));
        // Withdrawn: the adopted item goes, the other stays.
        let w = write(Some(&w), &gateway(&[], &["a", "b"], false));
        assert_eq!(w["Services"], json!([{"Name": "b", "SNI": "b.internal"}]));
        // Exported: the configured consumers exactly (in any order), nothing more.
        let observed = json!({"Kind": "exported-services", "Name": "default", "Services": [
            {"Name": "a", "Consumers": [{"Peer": "west"}]},
            {"Name": "b", "Consumers": [{"Peer": "east"}, {"Peer": "west"}]}
        ]});
        let a = assess(Some(&observed), &exports(&["a", "b"], &[]), NODE).unwrap();
        assert_eq!(a.adopted, [item("a")]);
        assert_eq!(a.not_ours[0].0, item("b"));
    }

    #[test]
    fn a_recorded_item_stays_ours_and_a_forgotten_one_is_not() {
        // A person added a field to our item: it is still ours, and withdrawn.
        let observed = json!({"Kind": "terminating-gateway", "Name": "tgw",
            "Meta": {REC: "a,gone"},
            "Services": [{"Name": "a", "SNI": "x"}]});
        let w = write(Some(&observed), &gateway(&[], &["a"], false));
        assert_eq!(w["Services"], json!([]));
        assert!(
            w.get("Meta").is_none(),
            "gone, no longer listed, is forgotten"
        );
    }

    #[test]
    fn other_registrators_items_and_everyones_meta_are_left_as_they_are() {
        let meta = json!({
            "owner": "net", "odd key ü": "x".repeat(512),
            "consul-lambda-sync/east/0": "shared,b"
        });
        let observed = json!({"Kind": "terminating-gateway", "Name": "tgw", "Meta": meta,
            "Services": [{"Name": "shared"}, {"Name": "b"}]});
        let edit = gateway(&["shared", "mine"], &["b"], false);
        let a = assess(Some(&observed), &edit, NODE).unwrap();
        assert!(a.not_ours.is_empty() && a.adopted.is_empty() && a.removed.is_empty());
        let w = write(Some(&observed), &edit);
        assert_eq!(
            w["Services"],
            json!([{"Name": "shared"}, {"Name": "b"}, {"Name": "mine"}])
        );
        let mut want = meta.clone();
        want[REC] = json!("mine");
        assert_eq!(w["Meta"], want);
    }

    #[test]
    fn a_full_record_adds_only_what_fits_and_keeps_what_it_has() {
        let mut meta = Map::new();
        for i in 0..63 {
            meta.insert(format!("k{i}"), Value::from(format!("v{i}")));
        }
        meta.insert(REC.into(), Value::from("kept"));
        let observed = json!({"Kind": "terminating-gateway", "Name": "tgw",
            "Meta": meta, "Services": [{"Name": "kept"}]});
        // One pair left (ours): 512 bytes: `kept` and 25 names of 19 bytes (504 bytes).
        let names: Vec<String> = (0..30).map(|i| format!("svc-{i:015}")).collect();
        let add: Vec<&str> = names.iter().map(String::as_str).collect();
        let edit = gateway(&add, &[], false);
        let a = assess(Some(&observed), &edit, NODE).unwrap();
        assert_eq!(a.listed.len(), 25);
        assert_eq!(a.full.len(), 5);
        let w = write(Some(&observed), &edit);
        let m = w["Meta"].as_object().unwrap();
        assert_eq!(m.len(), 64);
        assert!(m[REC].as_str().unwrap().len() <= 512);
        assert!(m[REC].as_str().unwrap().starts_with("kept,"));
        assert_eq!(w["Services"].as_array().unwrap().len(), 26);
        // Every item listed is recorded: the next merge changes nothing but
        // still cannot add the rest.
        assert_eq!(merge(Some(&w), &edit, NODE), Merged::Unchanged);
        assert_eq!(assess(Some(&w), &edit, NODE).unwrap().full.len(), 5);
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
        let observed = json!({"Services": [{"Name": "a"}, {"Name": "a", "Namespace": "team"}],
            "Meta": {REC: "team/a"}});
        let w = write(Some(&observed), &edit);
        assert_eq!(
            w["Services"],
            json!([{"Name": "a"}, {"Name": "b", "Namespace": "default"}])
        );
        assert_eq!(w["Meta"], json!({REC: "b"}));
    }

    #[test]
    fn an_entry_that_cannot_be_read_is_left_alone() {
        for observed in [
            json!({"Services": {"Name": "a"}}),
            json!({"Services": [], "Meta": ["x"]}),
            json!({"Services": [], "Meta": {REC: 1}}),
        ] {
            assert!(matches!(
                merge(Some(&observed), &gateway(&["x"], &[], false), NODE),
                Merged::Unreadable(_)
            ));
        }
    }
}
