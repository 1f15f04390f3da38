//! The registrator's record of the items it added to a mesh entry, kept in the
//! entry's own `Meta` (docs/contract.md §11.4), so that a restart, and another
//! registrator, can tell its items from everyone else's.
//!
//! One record per registrator node name (`NODE_NAME`): the pairs
//! `consul-lambda-sync/<node>/0`, `…/1`, … (at most 85 bytes: the node name is a
//! DNS label of at most 63). Each value is a comma-separated list of items, each
//! `NAME`, or `NAMESPACE/NAME` when the namespace is not `default` (Enterprise;
//! the partition is the entry's own: one entry per partition), at most 512 bytes;
//! an item is never split over two values. Consul names hold neither `,` nor `/`.
//!
//! Consul takes at most 64 `Meta` pairs, keys of 128 bytes and values of 512.
//! The record takes the pairs the entry's other pairs leave (`64 − others`); it
//! is edited in place — an item taken out leaves its value shorter, a new one
//! goes into the first value with room or, when none has, a new value — so a
//! record that Consul accepted never grows by a removal, and an item that does
//! not fit is not added ([`Record::push`] says so) rather than written
//! unrecorded.

use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The start of every registrator's record keys: `consul-lambda-sync/<node>/<n>`.
pub const RECORD_PREFIX: &str = "consul-lambda-sync/";
/// Consul's limit on the pairs of a config entry's `Meta`.
pub const META_MAX_PAIRS: usize = 64;
/// Consul's limit on the length of a `Meta` key, in bytes.
pub const META_MAX_KEY_BYTES: usize = 128;
/// Consul's limit on the length of a `Meta` value, in bytes.
pub const META_MAX_VALUE_BYTES: usize = 512;

/// An item as a record names it: (namespace, name), the namespace `default`
/// when absent or empty.
pub type ItemKey = (String, String);

/// The namespace as the record compares it (`None`, `""`: `default`).
pub(crate) fn norm_ns(ns: Option<&str>) -> &str {
    match ns {
        None | Some("") => "default",
        Some(ns) => ns,
    }
}

/// The record key of chunk `n` of `node`'s record.
pub fn record_key(node: &str, n: usize) -> String {
    format!("{RECORD_PREFIX}{node}/{n}")
}

/// An item as the record spells it: `name`, or `namespace/name`.
pub fn token((ns, name): &ItemKey) -> String {
    if ns == "default" {
        name.clone()
    } else {
        format!("{ns}/{name}")
    }
}

fn parse_token(t: &str) -> Option<ItemKey> {
    let t = t.trim();
    if t.is_empty() {
        return None;
    }
    Some(match t.split_once('/') {
        Some((ns, name)) => (norm_ns(Some(ns)).to_owned(), name.to_owned()),
        None => ("default".to_owned(), t.to_owned()),
    })
}

/// The owner and chunk number of a record key (`consul-lambda-sync/<node>/<n>`).
fn parse_key(key: &str) -> Option<(&str, usize)> {
    let rest = key.strip_prefix(RECORD_PREFIX)?;
    let (owner, n) = rest.split_once('/')?;
    let digits = !n.is_empty() && n.len() <= 4 && n.bytes().all(|b| b.is_ascii_digit());
    if owner.is_empty() || !digits {
        return None;
    }
    Some((owner, n.parse().ok()?))
}

/// The bytes a chunk's value takes.
fn chunk_bytes(chunk: &[ItemKey]) -> usize {
    chunk.iter().map(|k| token(k).len()).sum::<usize>() + chunk.len().saturating_sub(1)
}

/// One registrator's record in one entry, as chunks (one `Meta` value each).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Record {
    chunks: Vec<Vec<ItemKey>>,
    /// The most pairs the record may take: 64 less the entry's other pairs.
    capacity: usize,
}

/// What an entry's `Meta` says about its items: this registrator's record, and
/// the items other registrators recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Records {
    /// This registrator's.
    pub ours: Record,
    /// The items other registrators (other node names) recorded.
    pub others: BTreeSet<ItemKey>,
}

impl Records {
    /// Reads the records of `meta` (the entry's `Meta`), `node`'s as its own.
    /// `Err` when a record value is not text.
    pub fn read(meta: Option<&Map<String, Value>>, node: &str) -> Result<Records, String> {
        let mut numbered: Vec<(usize, Vec<ItemKey>)> = Vec::new();
        let mut others = BTreeSet::new();
        let mut other_pairs = 0usize;
        for (key, value) in meta.into_iter().flatten() {
            let Some((owner, n)) = parse_key(key) else {
                other_pairs += 1;
                continue;
            };
            let Some(text) = value.as_str() else {
                return Err(format!(
                    "its Meta value {} is not text",
                    crate::error::clip(key)
                ));
            };
            let items = text.split(',').filter_map(parse_token);
            if owner == node {
                numbered.push((n, items.collect()));
            } else {
                other_pairs += 1;
                others.extend(items);
            }
        }
        numbered.sort_by_key(|(n, _)| *n);
        let mut seen = BTreeSet::new();
        let chunks = numbered
            .into_iter()
            .map(|(_, items)| {
                items
                    .into_iter()
                    .filter(|k| seen.insert(k.clone()))
                    .collect::<Vec<_>>()
            })
            .filter(|c| !c.is_empty())
            .collect();
        let mut capacity = META_MAX_PAIRS.saturating_sub(other_pairs);
        if record_key(node, capacity).len() > META_MAX_KEY_BYTES {
            capacity = 0;
        }
        Ok(Records {
            ours: Record { chunks, capacity },
            others,
        })
    }
}

impl Record {
    /// Whether the record names `key`.
    pub fn contains(&self, key: &ItemKey) -> bool {
        self.chunks.iter().any(|c| c.contains(key))
    }

    /// The items recorded.
    pub fn items(&self) -> impl Iterator<Item = &ItemKey> {
        self.chunks.iter().flatten()
    }

    /// The `Meta` pairs the record takes.
    pub fn pairs(&self) -> usize {
        self.chunks.len()
    }

    /// Takes `key` out (its value gets shorter; an emptied value goes).
    pub fn remove(&mut self, key: &ItemKey) {
        self.retain(|k| k != key);
    }

    /// Keeps the items `keep` says.
    pub fn retain(&mut self, mut keep: impl FnMut(&ItemKey) -> bool) {
        for chunk in &mut self.chunks {
            chunk.retain(&mut keep);
        }
        self.chunks.retain(|c| !c.is_empty());
    }

    /// Records `key`: appended to the first value it fits in, else in a new one if
    /// the entry has a pair left. `false` when it does not fit, or cannot be spelt
    /// in a record (a name with `,` or `/`, which Consul names never hold): then
    /// nothing changes.
    pub fn push(&mut self, key: ItemKey) -> bool {
        if self.contains(&key) {
            return true;
        }
        let spelt = |s: &str| !s.is_empty() && !s.contains([',', '/']) && s.trim() == s;
        let len = token(&key).len();
        if len > META_MAX_VALUE_BYTES || !spelt(&key.0) || !spelt(&key.1) {
            return false;
        }
        let room = self
            .chunks
            .iter_mut()
            .find(|c| chunk_bytes(c) + 1 + len <= META_MAX_VALUE_BYTES);
        if let Some(chunk) = room {
            chunk.push(key);
            return true;
        }
        if self.chunks.len() < self.capacity {
            self.chunks.push(vec![key]);
            return true;
        }
        false
    }

    /// Writes the record into `meta` as `node`'s: its old pairs replaced, every
    /// other pair as it was.
    pub fn write(&self, meta: &mut Map<String, Value>, node: &str) {
        meta.retain(|k, _| !matches!(parse_key(k), Some((owner, _)) if owner == node));
        for (n, chunk) in self.chunks.iter().enumerate() {
            let value: Vec<String> = chunk.iter().map(token).collect();
            meta.insert(record_key(node, n), Value::from(value.join(",")));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str) -> ItemKey {
        ("default".into(), name.into())
    }

    fn meta(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_record_is_read_from_its_own_keys_and_others_are_told_apart() {
        let m = meta(json!({
            "owner": "net",
            "consul-lambda-sync/lambdas/1": "c",
            "consul-lambda-sync/lambdas/0": "a, team/b,,a",
            "consul-lambda-sync/lambdas-2/0": "x",
            "consul-lambda-sync/lambdas/notes": "kept as anyone's"
        }));
        let r = Records::read(Some(&m), "lambdas").unwrap();
        let items: Vec<&ItemKey> = r.ours.items().collect();
        assert_eq!(items, [&key("a"), &("team".into(), "b".into()), &key("c")]);
        assert_eq!(r.others, BTreeSet::from([key("x")]));
        // Three pairs are not this registrator's.
        assert_eq!(r.ours.capacity, 61);
        let mut out = m.clone();
        r.ours.write(&mut out, "lambdas");
        assert_eq!(
            Value::Object(out),
            json!({
                "owner": "net",
                "consul-lambda-sync/lambdas/0": "a,team/b",
                "consul-lambda-sync/lambdas/1": "c",
                "consul-lambda-sync/lambdas-2/0": "x",
                "consul-lambda-sync/lambdas/notes": "kept as anyone's"
            })
        );
    }

    #[test]
    fn a_record_value_that_is_not_text_cannot_be_read() {
        let m = meta(json!({"consul-lambda-sync/lambdas/0": 1}));
        assert!(Records::read(Some(&m), "lambdas").is_err());
    }

    #[test]
    fn values_stay_within_512_bytes_and_pairs_within_64() {
        // 20 pairs of others: 44 left for the record.
        let mut m = Map::new();
        for i in 0..20 {
            m.insert(format!("k{i}"), Value::from("v"));
        }
        let mut r = Records::read(Some(&m), "lambdas").unwrap().ours;
        // 20-byte names: 24 of them (24 × 21 − 1 = 503 bytes) per value.
        let mut n = 0;
        while r.push(key(&format!("{n:020}"))) {
            n += 1;
        }
        assert_eq!(n, 24 * 44);
        assert_eq!(r.pairs(), 44);
        let mut out = m.clone();
        r.write(&mut out, "lambdas");
        assert_eq!(out.len(), META_MAX_PAIRS);
        assert!(out.iter().all(|(k, v)| k.len() <= META_MAX_KEY_BYTES
            && v.as_str().unwrap().len() <= META_MAX_VALUE_BYTES));
        // Full: taking one out makes room for exactly one.
        r.remove(&key(&format!("{:020}", 5)));
        assert!(r.push(key("a-new-item-of-20byte")));
        assert!(!r.push(key("another-of-20-bytes!")));
    }

    #[test]
    fn an_item_longer_than_a_value_never_fits() {
        let mut r = Records::read(None, "lambdas").unwrap().ours;
        assert!(!r.push(key(&"x".repeat(513))));
        assert!(r.push(key(&"x".repeat(512))));
        assert_eq!(r.pairs(), 1);
    }

    #[test]
    fn a_removal_never_takes_more_pairs() {
        // Someone packed the record tighter than pushing would: removals keep it so.
        let mut m = Map::new();
        for i in 0..62 {
            m.insert(format!("k{i}"), Value::from("v"));
        }
        m.insert(
            "consul-lambda-sync/lambdas/0".into(),
            Value::from(vec!["a".repeat(100); 5].join(",")),
        );
        m.insert("consul-lambda-sync/lambdas/1".into(), Value::from("b"));
        let mut r = Records::read(Some(&m), "lambdas").unwrap().ours;
        assert_eq!(r.pairs(), 2);
        r.remove(&key("b"));
        assert_eq!(r.pairs(), 1);
        let mut out = m.clone();
        r.write(&mut out, "lambdas");
        assert_eq!(out.len(), 63);
        assert!(!out.contains_key("consul-lambda-sync/lambdas/1"));
    }
}
