//! What has been observed, and the planner's input made from it.

use crate::consul::{CaRoots, Leaf, PeerData, SsmParameter};
use crate::engine::outcome::InventoryReport;
use crate::engine::Run;
use crate::plan::{
    ConsulScope, ConsulState, ExtensionDataState, FailedFunction, Inventory, NameElsewhere,
    ObservedMeshEntry, PlanInput,
};
use crate::tags::LambdaFunction;
use std::collections::{BTreeMap, BTreeSet};

/// Where a name check reads: datacenter, namespace, partition.
pub(crate) type NameScope = (String, Option<String>, Option<String>);

/// What the name check has read (docs/contract.md §5.3).
#[derive(Debug, Default)]
pub(crate) struct Names {
    /// Per scope, the names Consul has on other nodes (`None`: asked, not answered).
    pub(crate) lists: BTreeMap<NameScope, Option<BTreeSet<String>>>,
    /// The names whose instances were read, with the scope.
    pub(crate) detailed: BTreeSet<(NameScope, String)>,
    /// The wanted names found on other nodes.
    pub(crate) found: Vec<NameElsewhere>,
    /// Per function ARN asked about (`ListAliases`), its aliases.
    pub(crate) alias_lists: BTreeMap<String, AliasList>,
    /// The alias ARNs (`FUNCTION_ARN:ALIAS`) of created alias services that the
    /// function's `ListAliases` does not name.
    pub(crate) missing_aliases: Vec<String>,
}

/// One function's `ListAliases` (docs/contract.md §5.3).
#[derive(Debug, Default)]
pub(crate) struct AliasList {
    /// The aliases of the alias services the plan would create.
    pub(crate) wanted: BTreeSet<String>,
    /// The alias names read so far.
    pub(crate) names: BTreeSet<String>,
    /// The pages read.
    pub(crate) pages: u32,
    /// Where the listing is.
    pub(crate) state: AliasListing,
}

/// Where one function's `ListAliases` is.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AliasListing {
    /// Pages still to come.
    #[default]
    Asking,
    /// Every page read, or the function is gone (`ResourceNotFoundException`).
    Known,
    /// The listing failed: the function is left as it is.
    Failed,
}

impl AliasList {
    /// Whether the function is known to lack this alias.
    pub(crate) fn lacks(&self, alias: &str) -> bool {
        self.state == AliasListing::Known && !self.names.contains(alias)
    }

    /// The wanted aliases the function lacks, as alias ARNs of `function`.
    pub(crate) fn missing<'a>(&'a self, function: &'a str) -> impl Iterator<Item = String> + 'a {
        self.wanted
            .iter()
            .filter(|a| self.lacks(a))
            .map(move |a| format!("{function}:{a}"))
    }
}

/// What has been observed so far.
#[derive(Debug, Default)]
pub(crate) struct Observation {
    pub(crate) local_dc: Option<String>,
    pub(crate) datacenters: Vec<String>,
    /// Every datacenter (`GET /v1/catalog/datacenters`): names are checked in all.
    pub(crate) all_datacenters: Vec<String>,
    /// The name and alias checks.
    pub(crate) names: Names,
    pub(crate) scopes: Vec<ConsulScope>,
    pub(crate) functions: Vec<LambdaFunction>,
    pub(crate) incomplete: Option<String>,
    pub(crate) failed: Vec<FailedFunction>,
    pub(crate) confirmed_absent: Vec<String>,
    pub(crate) pages: u32,
    pub(crate) tokens: BTreeSet<String>,
    pub(crate) roots: Option<CaRoots>,
    /// The cluster peers, for the extension data (`GET /v1/peerings`).
    pub(crate) peers: Vec<PeerData>,
    /// The active peerings the peers were read from (same order).
    pub(crate) peerings: Vec<crate::extension::data::Peering>,
    pub(crate) parameters: Vec<SsmParameter>,
    pub(crate) parameter_tokens: BTreeSet<String>,
    pub(crate) extension_failed: bool,
    pub(crate) leaves: Vec<Leaf>,
    /// The mesh config entries (docs/mesh.md), when mesh wiring is on.
    pub(crate) mesh: Vec<ObservedMeshEntry>,
}

impl Observation {
    /// What the Lambda inventory held.
    pub(crate) fn report(&self) -> InventoryReport {
        InventoryReport {
            complete: self.incomplete.is_none(),
            functions: self.functions.len(),
            pages: self.pages,
            error: self.incomplete.clone(),
            failed: self.failed.iter().map(|f| f.arn.clone()).collect(),
        }
    }

    /// Whether extension data is enabled and was observed.
    pub(crate) fn extension_enabled(&self, run: &Run) -> bool {
        run.config.consul_extension_data_prefix.is_some() && !self.extension_failed
    }

    /// The datacenter of a scope without one: the agent's, else `DATACENTER`.
    pub(crate) fn local_datacenter(&self, run: &Run) -> String {
        self.local_dc
            .clone()
            .or_else(|| run.config.datacenter.clone())
            .unwrap_or_default()
    }

    /// The planner's input. The observation's large parts (functions, scopes,
    /// leaves, parameters) move into it, and [`Observation::restore`] moves them
    /// back: planning 10,000 functions copies none of them.
    pub(crate) fn plan_input(&mut self, run: &Run, confirmed_absent: Vec<String>) -> PlanInput {
        let extension_data = self.extension_enabled(run).then(|| ExtensionDataState {
            roots: self.roots.clone(),
            peers: self.peers.clone(),
            leaves: std::mem::take(&mut self.leaves),
            parameters: std::mem::take(&mut self.parameters),
        });
        PlanInput {
            // The planner is handed the validated configuration (`plan_with`).
            config: Default::default(),
            trigger: run.trigger.clone(),
            inventory: Inventory {
                account_id: run.account.clone().unwrap_or_default(),
                region: run.region.clone(),
                complete: self.incomplete.is_none(),
                functions: std::mem::take(&mut self.functions),
                failed: self.failed.clone(),
                confirmed_absent,
                missing_aliases: self.names.missing_aliases.clone(),
            },
            consul: ConsulState {
                local_datacenter: self.local_dc.clone(),
                scopes: std::mem::take(&mut self.scopes),
                elsewhere: self.names.found.clone(),
            },
            extension_data,
            mesh: self.mesh.clone(),
        }
    }

    /// Moves the observation's parts back out of a planner input.
    pub(crate) fn restore(&mut self, input: PlanInput) {
        self.functions = input.inventory.functions;
        self.scopes = input.consul.scopes;
        if let Some(ext) = input.extension_data {
            self.leaves = ext.leaves;
            self.parameters = ext.parameters;
        }
    }
}
