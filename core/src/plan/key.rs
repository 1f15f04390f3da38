//! The planner's borrowed service key, and sorting by it.

use crate::consul::ServiceKey;

/// Where a service lives, borrowed: the planner's working form of [`ServiceKey`]
/// (same order, same JSON; written by `write.rs`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct Key<'a> {
    pub(super) datacenter: Option<&'a str>,
    pub(super) partition: Option<&'a str>,
    pub(super) namespace: Option<&'a str>,
    pub(super) name: &'a str,
}

impl<'a> Key<'a> {
    /// The owned [`ServiceKey`].
    pub(super) fn owned(&self) -> ServiceKey {
        ServiceKey {
            datacenter: self.datacenter.map(str::to_owned),
            partition: self.partition.map(str::to_owned),
            namespace: self.namespace.map(str::to_owned),
            name: self.name.to_owned(),
        }
    }

    /// What names the service's extension data parameter: partition, namespace, name.
    pub(super) fn parameter_key(&self) -> (&'a str, &'a str, &'a str) {
        (
            self.partition.unwrap_or("default"),
            self.namespace.unwrap_or("default"),
            self.name,
        )
    }

    /// The extension data parameter name under `prefix` (as [`ServiceKey::parameter_name`]).
    pub(super) fn parameter_name(&self, prefix: &str) -> String {
        let (partition, namespace, name) = self.parameter_key();
        format!("{prefix}/{partition}/{namespace}/{name}")
    }
}

/// Sorts by key, keeping the order of equal keys. `runs` are where parts of the
/// list start that are each nearly in order (every item a few places from its
/// place, as in Consul's responses and the names of functions listed in order):
/// those are put in order by moving items back (about linear time), then the
/// sorted parts are merged. A part too far from order is left to the general
/// sort.
pub(super) fn sort_by_key_stable<'a, V>(items: &mut [(Key<'a>, V)], runs: &mut [usize]) {
    runs.sort_unstable();
    let mut ends = runs.iter().skip(1).copied().chain([items.len()]);
    for &start in runs.iter() {
        let end = ends.next().unwrap_or(items.len());
        let Some(part) = items.get_mut(start..end) else {
            break;
        };
        let mut budget = 4 * part.len() + 64;
        'items: for i in 1..part.len() {
            let mut j = i;
            while j > 0 {
                match (part.get(j - 1), part.get(j)) {
                    (Some(a), Some(b)) if b.0 < a.0 => part.swap(j - 1, j),
                    _ => break,
                }
                j -= 1;
                budget -= 1;
                if budget == 0 {
                    break 'items;
                }
            }
        }
    }
    // Finds the sorted parts and merges them (and sorts whatever is not yet).
    items.sort_by(|a, b| a.0.cmp(&b.0));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The run-aware sort gives what a stable sort gives: nearly sorted parts,
    /// shuffled parts, parts in reverse, repeated keys.
    #[test]
    fn sort_by_key_stable_is_a_stable_sort() {
        let names: Vec<String> = (0..300)
            .map(|i| format!("s{:03}", (i * 7919) % 97))
            .collect();
        let mut seed = 12345u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for case in 0..200 {
            let len = (next() % 300) as usize;
            let mut items: Vec<(Key<'_>, usize)> = (0..len)
                .map(|i| {
                    let at = match case % 4 {
                        0 => i,
                        1 => len - i,
                        2 => (i + (next() % 5) as usize).saturating_sub(2),
                        _ => next() as usize,
                    };
                    let name = names.get(at % names.len()).map_or("", String::as_str);
                    let key = Key {
                        datacenter: (next() % 7 == 0).then_some("dc2"),
                        partition: None,
                        namespace: None,
                        name,
                    };
                    (key, i)
                })
                .collect();
            let mut runs: Vec<usize> = (0..(next() % 4))
                .map(|_| (next() as usize) % (len + 1))
                .chain([0])
                .collect();
            let mut expected = items.clone();
            expected.sort_by(|a, b| a.0.cmp(&b.0));
            sort_by_key_stable(&mut items, &mut runs);
            assert_eq!(items, expected, "case {case}");
        }
    }
}
