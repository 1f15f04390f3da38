//! Extension data (docs/contract.md §4.5, §5.9): which parameters a plan writes
//! and deletes, from the observed leaves, CA roots and stored parameters.

use super::claims::Group;
use super::context::Ctx;
use super::hasher::{FxMap, FxSet};
use super::key::Key;
use super::rows::{Put, Row, Work};
use super::{ExtensionDataState, Plan};
use crate::config::Tier;
use crate::consul::{ExtensionData, Leaf};
use crate::error::{Code, Diagnostic};

/// Extension data decisions for one plan.
pub(super) struct ExtensionPlanner<'a> {
    /// The parameter prefix, when extension data is enabled.
    prefix: Option<&'a str>,
    tier: Option<Tier>,
    key_id: Option<&'a str>,
    observed: Option<&'a ExtensionDataState>,
    /// By partition, namespace and name (absent: `default`), as a service's
    /// [`Key::parameter_key`]: a leaf is never used for a service of another scope.
    leaves: FxMap<(&'a str, &'a str, &'a str), &'a Leaf>,
    stored: FxMap<&'a str, Option<ExtensionData>>,
    root: Option<(&'a str, &'a str)>,
    /// The registrator's datacenter, written into every value.
    datacenter: Option<&'a str>,
}

impl<'a> ExtensionPlanner<'a> {
    /// Reads the observed extension data state; warns when extension data is
    /// enabled but was not observed.
    pub(super) fn new(
        ctx: &'a Ctx<'a>,
        state: Option<&'a ExtensionDataState>,
        out: &mut Plan,
    ) -> Self {
        let prefix = ctx.config.consul_extension_data_prefix.as_deref();
        if prefix.is_some() && state.is_none() {
            out.warnings.push(Diagnostic::new(
                Code::LeafMissing,
                "extension data is enabled but was not observed; no extension data is written",
                "pass extensionData (roots, leaves, parameters) to plan extension data",
            ));
        }
        let leaves = state
            .map(|s| {
                s.leaves
                    .iter()
                    .map(|l| {
                        let scope = |v: &'a Option<String>| v.as_deref().unwrap_or("default");
                        (
                            (scope(&l.partition), scope(&l.namespace), l.service.as_str()),
                            l,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let stored = state
            .map(|s| {
                s.parameters
                    .iter()
                    .map(|p| {
                        (
                            p.name.as_str(),
                            p.value
                                .as_deref()
                                .and_then(|v| serde_json::from_str(v).ok()),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let root = state
            .and_then(|s| s.roots.as_ref())
            .and_then(|r| r.active_pem().map(|pem| (pem, r.trust_domain.as_str())));
        ExtensionPlanner {
            prefix,
            tier: ctx.config.consul_extension_data_tier,
            key_id: ctx.config.consul_extension_data_kms_key_id.as_deref(),
            observed: state,
            leaves,
            stored,
            root,
            datacenter: ctx.datacenter(None),
        }
    }

    /// Whether extension data is wanted and observed, but the service's leaf is missing.
    fn lacks_leaf(&self, key: &Key<'_>) -> bool {
        self.prefix.is_some()
            && self.observed.is_some()
            && !self.leaves.contains_key(&key.parameter_key())
    }

    /// The write a wanted service needs, if any, and why; a warning when extension
    /// data is wanted and observed but the service's leaf is missing.
    pub(super) fn wanted(
        &self,
        key: &Key<'_>,
        function: &str,
        out: &mut Plan,
    ) -> Option<(Put<'a>, String)> {
        let put = self.put(key);
        if put.is_none() && self.lacks_leaf(key) {
            out.warnings.push(
                Diagnostic::new(
                    Code::LeafMissing,
                    format!("no leaf certificate was observed for service {}; its extension data is not written", key.name),
                    "fetch GET /v1/agent/connect/ca/leaf/:service for every wanted service (Connect must be enabled)",
                )
                .key("service")
                .value(key.name)
                .function(function.to_owned()),
            );
        }
        put
    }

    /// The write a wanted service needs, if any, and why.
    fn put(&self, key: &Key<'_>) -> Option<(Put<'a>, String)> {
        let prefix = self.prefix?;
        self.observed?;
        let leaf = self.leaves.get(&key.parameter_key())?;
        let name = key.parameter_name(prefix);
        let why = match self.stored.get(name.as_str()) {
            None => "extension data missing".to_owned(),
            Some(None) => "extension data unreadable".to_owned(),
            Some(Some(data)) => {
                if data.cert_pem != leaf.cert_pem {
                    format!("leaf certificate changed (serial {})", leaf.serial_number)
                } else if self
                    .root
                    .is_some_and(|(pem, td)| data.root_cert_pem != pem || data.trust_domain != td)
                {
                    "CA root changed".to_owned()
                } else if data.datacenter.as_deref() != self.datacenter {
                    "the registrator's datacenter is not in the extension data".to_owned()
                } else if !self.same_peers(&data.peers) {
                    "cluster peers changed".to_owned()
                } else {
                    return None;
                }
            }
        };
        Some((
            Put {
                name,
                tier: self.tier,
                key_id: self.key_id,
                serial: &leaf.serial_number,
            },
            why,
        ))
    }

    /// Whether stored peers are the observed ones (the registrator writes them sorted).
    fn same_peers(&self, stored: &[crate::consul::PeerData]) -> bool {
        let observed = self
            .observed
            .map(|o| o.peers.as_slice())
            .unwrap_or_default();
        let mut sorted: Vec<&crate::consul::PeerData> = observed.iter().collect();
        sorted.sort_by(|a, b| a.name.cmp(&b.name));
        sorted.len() == stored.len() && sorted.iter().zip(stored).all(|(a, b)| *a == b)
    }

    /// The parameter a deregistered service's extension data is deleted from, if any.
    fn delete(&self, key: &Key<'_>) -> Option<String> {
        let name = key.parameter_name(self.prefix?);
        if self.observed.is_some() && !self.stored.contains_key(name.as_str()) {
            return None;
        }
        Some(name)
    }

    /// Names the extension data parameter each deregistered service also loses,
    /// when extension data is enabled. The parameter path has no datacenter: keep
    /// it if a wanted service uses it.
    pub(super) fn delete_parameters(&self, groups: &[Group<'_, 'a>], deletions: &mut [Row<'a>]) {
        if self.prefix.is_none() {
            return;
        }
        let wanted_params: FxSet<(&str, &str, &str)> = groups
            .iter()
            .filter_map(|g| g.claims.first())
            .map(|(k, _)| k.parameter_key())
            .collect();
        for d in deletions {
            if let Work::Deleted { parameter, .. } = &mut d.work {
                *parameter = self
                    .delete(&d.key)
                    .filter(|_| !wanted_params.contains(&d.key.parameter_key()));
            }
        }
    }
}
