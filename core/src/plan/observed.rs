//! What Consul holds: the observed scopes read into one record per service
//! (managed instance, service-defaults entry, unmanaged instance), keeping only
//! what the registrator may manage (docs/contract.md §5.3).

use super::context::Ctx;
use super::key::{sort_by_key_stable, Key};
use super::{ConsulScope, ConsulState, Ignored, Plan};
use crate::consul::{is_registrator_service_name, LambdaEntryRef, NodeServices, MANAGED_TAG};
use crate::error::{Code, Diagnostic};
use std::cell::Cell;

/// A service-defaults entry as the planner reads it.
#[derive(Debug, Clone, Copy)]
pub(super) enum View<'a> {
    /// Not a Lambda entry.
    Foreign,
    /// A Lambda entry.
    Lambda(LambdaEntryRef<'a>),
}

/// What Consul holds under one service name.
#[derive(Debug, Default)]
pub(super) struct Observed<'a> {
    /// The service ID of the managed catalog instance on our node.
    pub(super) catalog: Option<&'a str>,
    /// That instance's `ModifyIndex`.
    pub(super) catalog_index: Option<u64>,
    /// The service-defaults entry.
    pub(super) entry: Option<View<'a>>,
    /// That entry's `ModifyIndex`.
    pub(super) entry_index: Option<u64>,
    /// Whether an instance without the managed tag holds the name on our node
    /// (then it is not ours, even if a managed instance exists too).
    pub(super) unmanaged: bool,
    /// Whether a function wants the service (then it is never deregistered).
    pub(super) wanted: Cell<bool>,
}

/// The records read so far, before they are sorted and merged.
struct Records<'a> {
    observed: Vec<(Key<'a>, Observed<'a>)>,
    /// Where each response's records start: each is usually in order already.
    runs: Vec<usize>,
    /// Managed objects whose names could not have been written by the registrator.
    unsafe_keys: Vec<Key<'a>>,
}

/// Reads the Consul scopes into what Consul holds under each name (managed
/// instance, entry, unmanaged instance), sorted by key; later responses win.
pub(super) fn observe_consul<'a>(
    ctx: &'a Ctx<'a>,
    consul: &'a ConsulState,
    out: &mut Plan,
) -> Vec<(Key<'a>, Observed<'a>)> {
    let mut records = Records {
        observed: Vec::with_capacity(
            consul
                .scopes
                .iter()
                .map(|s| {
                    let services = s.node_services.as_ref().map_or(0, |n| n.services.len());
                    let entries = s.service_defaults.as_ref().map_or(0, Vec::len);
                    services + entries
                })
                .sum(),
        ),
        runs: Vec::new(),
        unsafe_keys: Vec::new(),
    };
    for scope in &consul.scopes {
        let dc = ctx.scope_datacenter(scope.datacenter.as_deref());
        if let (Some(ours), Some(theirs)) = (&ctx.config.datacenter, dc) {
            if ours != theirs {
                out.ignored.push(Ignored {
                    service: None,
                    reason: format!("datacenter {theirs} is not managed (DATACENTER={ours})"),
                });
                continue;
            }
        }
        let reader = ScopeReader {
            ctx,
            scope,
            dc,
            enterprise: ctx.config.enterprise,
        };
        if let Some(ns) = &scope.node_services {
            reader.node_services(ns, &mut records, out);
        }
        records.runs.push(records.observed.len());
        reader.service_defaults(&mut records);
    }
    warn_unsafe_names(records.unsafe_keys, out);
    let mut observed = records.observed;
    merge(&mut observed, &mut records.runs);
    observed
}

/// Reads the responses of one datacenter and partition.
struct ScopeReader<'a> {
    ctx: &'a Ctx<'a>,
    scope: &'a ConsulScope,
    /// The datacenter the scope was read from.
    dc: Option<&'a str>,
    enterprise: bool,
}

impl<'a> ScopeReader<'a> {
    /// The key of a record of this scope.
    fn key_of(
        &self,
        partition: Option<&'a String>,
        namespace: Option<&'a String>,
        name: &'a str,
    ) -> Key<'a> {
        let (partition, namespace) = if self.enterprise {
            (
                Some(
                    partition
                        .or(self.scope.partition.as_ref())
                        .map_or("default", String::as_str),
                ),
                Some(namespace.map_or("default", String::as_str)),
            )
        } else {
            (None, None)
        };
        Key {
            datacenter: self.dc,
            partition,
            namespace,
            name,
        }
    }

    /// Whether the key lies in a managed partition.
    fn managed_partition(&self, key: &Key<'_>) -> bool {
        !self.enterprise
            || key
                .partition
                .is_some_and(|p| self.ctx.config.partitions.iter().any(|q| q == p))
    }

    /// Reads the node-services response: the instances on our node, managed or not.
    fn node_services(&self, ns: &'a NodeServices, records: &mut Records<'a>, out: &mut Plan) {
        let ctx = self.ctx;
        let node = ns
            .node
            .as_ref()
            .map(|n| n.node.as_str())
            .unwrap_or(&ctx.config.node_name);
        if node != ctx.config.node_name {
            out.ignored.push(Ignored {
                service: None,
                reason: format!(
                    "node-services response is for node {node}, not the registrator's node {}",
                    ctx.config.node_name
                ),
            });
            return;
        }
        records.runs.push(records.observed.len());
        for s in ns.services.iter() {
            let key = self.key_of(s.partition.as_ref(), s.namespace.as_ref(), &s.service);
            let managed = s
                .tags
                .as_deref()
                .is_some_and(|t| t.iter().any(|t| t == MANAGED_TAG));
            if !safe_key(&key) {
                if managed {
                    records.unsafe_keys.push(key);
                }
                continue;
            }
            if !self.managed_partition(&key) {
                out.ignored.push(Ignored {
                    service: Some(key.owned()),
                    reason: "partition not in PARTITIONS".to_owned(),
                });
                continue;
            }
            records.observed.push((
                key,
                if managed {
                    Observed {
                        catalog: Some(&s.id),
                        catalog_index: s.modify_index,
                        ..Observed::default()
                    }
                } else {
                    Observed {
                        unmanaged: true,
                        ..Observed::default()
                    }
                },
            ));
        }
    }

    /// Reads the service-defaults list: the entries of managed partitions.
    fn service_defaults(&self, records: &mut Records<'a>) {
        for e in self.scope.service_defaults.iter().flatten() {
            if e.kind.as_deref().is_some_and(|k| k != "service-defaults") {
                continue;
            }
            let key = self.key_of(e.partition.as_ref(), e.namespace.as_ref(), &e.name);
            let lambda = e.lambda_view();
            if !safe_key(&key) {
                if lambda.is_some() {
                    records.unsafe_keys.push(key);
                }
                continue;
            }
            if self.managed_partition(&key) {
                let entry = lambda.map_or(View::Foreign, View::Lambda);
                records.observed.push((
                    key,
                    Observed {
                        entry: Some(entry),
                        entry_index: e.modify_index,
                        ..Observed::default()
                    },
                ));
            }
        }
    }
}

/// One warning per managed object whose name the registrator never writes.
fn warn_unsafe_names(mut unsafe_keys: Vec<Key<'_>>, out: &mut Plan) {
    unsafe_keys.sort_unstable();
    unsafe_keys.dedup();
    for key in unsafe_keys {
        out.warnings.push(
            Diagnostic::new(
                Code::UnsafeConsulName,
                format!(
                    "managed service or Lambda service-defaults entry {:?}{} has a name the registrator never writes; nothing is planned for it",
                    crate::error::clip(key.name),
                    match (key.partition, key.namespace) {
                        (Some(p), Some(n)) => format!(" (partition {:?}, namespace {:?})", crate::error::clip(p), crate::error::clip(n)),
                        _ => String::new(),
                    }
                ),
                "remove or rename it in Consul by hand: registrator services are named after Lambda functions and aliases (letters, digits, `-`, `_`)",
            )
            .key("service")
            .value(key.name),
        );
    }
}

/// One record per key (a stable sort keeps the responses' order among equals).
fn merge(observed: &mut Vec<(Key<'_>, Observed<'_>)>, runs: &mut [usize]) {
    sort_by_key_stable(observed, runs);
    observed.dedup_by(|(key, later), (kept_key, kept)| {
        if key != kept_key {
            return false;
        }
        if later.catalog.is_some() {
            kept.catalog = later.catalog;
            kept.catalog_index = later.catalog_index;
        }
        if later.entry.is_some() {
            kept.entry = later.entry;
            kept.entry_index = later.entry_index;
        }
        kept.unmanaged |= later.unmanaged;
        true
    });
}

/// Whether a key read from Consul may be planned for. Names read from Consul end up
/// in a request path (`DELETE /v1/config/service-defaults/:name`), in query
/// parameters (`ns`, `partition`) and in Parameter Store names. The registrator only
/// writes service names made of a Lambda function name and alias (1 to 193 of
/// `[A-Za-z0-9_-]`, [`is_registrator_service_name`]) in namespaces and partitions
/// that pass `validate_consul_name` (what the namespace and partition tags accept).
/// Anything else cannot be ours: it gets no write and no delete, whatever its tags
/// or service-defaults say. (The delete path is percent-encoded besides.)
fn safe_key(key: &Key<'_>) -> bool {
    is_registrator_service_name(key.name)
        && [key.partition, key.namespace]
            .into_iter()
            .flatten()
            .all(|v| crate::config::validate_consul_name("", v).is_ok())
}
