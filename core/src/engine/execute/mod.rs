//! The executing phase: the plan's operations, each lowered to its request
//! ([`crate::lower`]) when it is sent, in five waves, each a batch of concurrent
//! requests:
//!
//! 1. service-defaults entries (`PUT /v1/config?cas=N`: Consul cannot put config
//!    entries in a transaction), and the mesh entry writes that only take
//!    deregistered services out (the deregistrations wait for them);
//! 2. catalog registrations and deregistrations through `PUT /v1/txn`
//!    (`catalog.rs`), at most [`catalog::TXN_MAX_OPS`] operations a transaction,
//!    check-and-set at the observed index, the node created in the same
//!    transaction when it does not exist yet;
//! 3. service-defaults deletions (`DELETE …?cas=N`);
//! 4. Parameter Store writes (a service's extension data after its entry);
//! 5. mesh entries that list services (`mesh.rs`), merged and written with
//!    check-and-set after every service write, naming only services whose
//!    writes succeeded.
//!
//! A service's step runs only when its earlier steps succeeded. A check-and-set
//! miss leaves the service as it is (status `conflict`, observed afresh next
//! sync). A write whose answer was lost is checked by reading the object back
//! before it is judged (`entries.rs`, `catalog.rs`), never resent blindly.

mod catalog;
mod cleanup;
mod entries;
mod mesh;

use super::finish::{Ending, Executed};
use super::io::{Calls, Io, Settled, MAX_STEP_REQUESTS};
use super::observation::Observation;
use super::outcome::{InventoryReport, OpStatus};
use super::{Advance, Machine, Run};
use crate::config::LogLevel;
use crate::consul::{CaRoots, Leaf, ServiceKey};
use crate::lower::Lowering;
use crate::plan::{ObservedMeshEntry, Operation, OperationKind, Plan};
pub(crate) use catalog::Batch;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// A datacenter and partition (normalised: `""` for the default).
pub(crate) type Scope = (String, String);

pub(crate) fn norm(v: Option<&str>) -> String {
    match v {
        None | Some("") | Some("default") => String::new(),
        Some(v) => v.to_owned(),
    }
}

/// What a write request is for.
#[derive(Debug, Clone)]
pub(crate) enum Write {
    /// A service-defaults entry written or deleted (`ambiguous`: resent after a lost answer).
    Entry { op: usize, ambiguous: bool },
    /// The entry read back after a lost answer.
    EntryCheck { op: usize },
    /// A catalog transaction.
    Txn(Batch),
    /// The node's services read back after a transaction's answer was lost.
    TxnCheck(Batch),
    /// One catalog write (an agent without `/v1/txn`).
    Single { op: usize },
    /// A Parameter Store write.
    Parameter { op: usize },
    /// A mesh entry written (`round`: how often it was merged again).
    Mesh { op: usize, round: u32 },
    /// A mesh entry read again, to merge again.
    MeshReread { op: usize, round: u32 },
    /// An entry this sync created read again, its registration having failed.
    CleanupRead { op: usize },
    /// That entry deleted again.
    Cleanup { op: usize },
}

/// What execution needs of the observation: the leaves and CA roots (extension
/// data), the mesh entries as read, the scopes whose node exists.
#[derive(Debug, Default)]
pub(crate) struct Material {
    pub(crate) leaves: Vec<Leaf>,
    pub(crate) roots: Option<CaRoots>,
    pub(crate) peers: Vec<crate::consul::PeerData>,
    pub(crate) mesh: Vec<ObservedMeshEntry>,
    pub(crate) nodes: BTreeSet<Scope>,
    pub(crate) local_dc: String,
    pub(crate) inventory: InventoryReport,
}

impl Material {
    /// Keeps what execution needs of the observation; drops the rest.
    pub(crate) fn new(obs: Observation, run: &Run) -> Self {
        let local_dc = obs.local_datacenter(run);
        let mut nodes = BTreeSet::new();
        for scope in &obs.scopes {
            // Consul answers `{"Node": null, "Services": null}` for a node that does not exist.
            if scope
                .node_services
                .as_ref()
                .is_some_and(|n| n.node.is_some())
            {
                let dc = scope.datacenter.clone().unwrap_or_else(|| local_dc.clone());
                nodes.insert((dc, norm(scope.partition.as_deref())));
            }
        }
        let inventory = obs.report();
        Material {
            leaves: obs.leaves,
            roots: obs.roots,
            peers: obs.peers,
            mesh: obs.mesh,
            nodes,
            local_dc,
            inventory,
        }
    }
}

/// The executing phase.
#[derive(Debug)]
pub(crate) struct Executing {
    calls: Calls<Write>,
    plan: Plan,
    status: Vec<OpStatus>,
    errors: Vec<Option<String>>,
    /// The operation before each one of the same service.
    prev: Vec<Option<usize>>,
    wave: u8,
    /// Whether the agent takes `/v1/txn`.
    txn: bool,
    partial: bool,
    /// Batches held until the transaction that creates their scope's node has
    /// ended (sent together, they would fail with "Missing node registration").
    waiting: Vec<Batch>,
    material: Material,
    inventory: InventoryReport,
    node: String,
    enterprise: bool,
    /// Counted before a compact run let go of the plan's rows.
    functions_enabled: Option<usize>,
    /// The wave's operations not started yet.
    pending: VecDeque<usize>,
    /// Whether the clean-up after the catalog wave was done.
    cleaned: bool,
}

impl Executing {
    pub(crate) fn new(
        mut plan: Plan,
        material: Material,
        inventory: InventoryReport,
        run: &Run,
    ) -> Self {
        // A compact result shows neither the rows nor the reasons: let go of them
        // before the writes (a tenth of the engine's memory at 10,000 functions).
        let functions_enabled = run.compact.then(|| {
            let enabled = super::finish::functions_enabled(&plan);
            plan.services = Vec::new();
            for op in &mut plan.operations {
                op.reason = String::new();
            }
            enabled
        });
        let mut last: BTreeMap<&ServiceKey, usize> = BTreeMap::new();
        let mut prev = Vec::with_capacity(plan.operations.len());
        for (i, op) in plan.operations.iter().enumerate() {
            // A mesh entry is no service: it follows the services it names (wave 5).
            prev.push(if op.mesh().is_some() {
                None
            } else {
                last.insert(&op.service, i)
            });
        }
        let n = plan.operations.len();
        Executing {
            calls: Calls::default(),
            plan,
            status: vec![OpStatus::Planned; n],
            errors: vec![None; n],
            prev,
            wave: 0,
            txn: true,
            partial: false,
            waiting: Vec::new(),
            material,
            inventory,
            node: run.config.node_name.clone(),
            enterprise: run.config.enterprise,
            functions_enabled,
            pending: VecDeque::new(),
            cleaned: false,
        }
    }

    fn lowering(&self) -> Lowering<'_> {
        Lowering { node: &self.node }
    }

    pub(crate) fn op(&self, i: usize) -> Option<&Operation> {
        self.plan.operations.get(i)
    }

    fn status_of(&self, i: usize) -> Option<OpStatus> {
        self.status.get(i).copied()
    }

    /// Settles operation `i` and logs it.
    pub(crate) fn set_status(
        &mut self,
        io: &mut Io,
        i: usize,
        status: OpStatus,
        error: Option<String>,
    ) {
        let (Some(slot), Some(err)) = (self.status.get_mut(i), self.errors.get_mut(i)) else {
            return;
        };
        *slot = status;
        err.clone_from(&error);
        let Some(op) = self.plan.operations.get(i) else {
            return;
        };
        let level = match status {
            OpStatus::Ok | OpStatus::Planned => LogLevel::Info,
            OpStatus::Failed => LogLevel::Error,
            OpStatus::Skipped | OpStatus::Conflict => LogLevel::Warn,
        };
        if !io.logs_at(level) {
            return;
        }
        let request = Lowering { node: &self.node }.describe(op);
        let s = &op.service;
        io.log(
            level,
            "operation",
            [
                ("op", Some(op.kind().as_str().into())),
                ("request", Some(request.into())),
                ("service", Some(s.name.clone().into())),
                ("datacenter", s.datacenter.clone().map(Into::into)),
                ("partition", s.partition.clone().map(Into::into)),
                ("namespace", s.namespace.clone().map(Into::into)),
                ("change", Some(op.change.as_str().into())),
                ("function", op.function.clone().map(Into::into)),
                ("status", Some(status.as_str().into())),
                ("error", error.map(Into::into)),
            ],
        );
    }

    fn scope_of(&self, service: &ServiceKey) -> Scope {
        (
            service
                .datacenter
                .clone()
                .unwrap_or_else(|| self.material.local_dc.clone()),
            norm(service.partition.as_deref()),
        )
    }

    fn wave_of(kind: OperationKind) -> u8 {
        match kind {
            OperationKind::UpsertConfigEntry => 1,
            OperationKind::RegisterService | OperationKind::DeregisterService => 2,
            OperationKind::DeleteConfigEntry => 3,
            // After the config deletion: a service's extension data goes last, and
            // one wave cannot hold two steps of the same service.
            OperationKind::PutExtensionData | OperationKind::DeleteExtensionData => 4,
            // Additions; removals run in wave 1.
            OperationKind::UpdateTerminatingGateway | OperationKind::UpdateExportedServices => 5,
        }
    }

    /// The wave of an operation: a mesh entry write that only removes items runs
    /// in wave 1, before the deregistrations it is for (which wait for it).
    fn wave_of_op(op: &Operation) -> u8 {
        if op.runs_first() {
            1
        } else {
            Self::wave_of(op.kind())
        }
    }

    /// Marks every operation not run yet skipped: the invocation is about to time out.
    fn defer_rest(&mut self, io: &mut Io) {
        self.partial = true;
        let todo: Vec<usize> = (0..self.status.len())
            .filter(|i| self.status_of(*i) == Some(OpStatus::Planned))
            .collect();
        for i in todo {
            let why = "deferred: the invocation is about to time out; the next sync does it";
            self.set_status(io, i, OpStatus::Skipped, Some(why.into()));
        }
    }

    /// The operations of `wave` that may run now; marks the others skipped.
    fn runnable(&mut self, io: &mut Io, wave: u8) -> Vec<usize> {
        let mut run = Vec::new();
        let mut skip = Vec::new();
        for (i, op) in self.plan.operations.iter().enumerate() {
            if Self::wave_of_op(op) != wave || self.status_of(i) != Some(OpStatus::Planned) {
                continue;
            }
            if let Some(arn) = &op.confirm_absent {
                let why = format!("waiting for ListTags to confirm {arn} is gone");
                skip.push((i, OpStatus::Skipped, why));
                continue;
            }
            if op.kind() == OperationKind::DeregisterService {
                if let Some((status, why)) = mesh::removal_blocks(self, op) {
                    skip.push((i, status, why));
                    continue;
                }
            }
            let before = self.prev.get(i).copied().flatten();
            match before.map(|j| (j, self.status_of(j))) {
                None | Some((_, Some(OpStatus::Ok))) => run.push(i),
                Some((j, status)) => {
                    let what = self
                        .op(j)
                        .map(|o| self.lowering().describe(o))
                        .unwrap_or_default();
                    skip.push(if status == Some(OpStatus::Conflict) {
                        (
                            i,
                            OpStatus::Conflict,
                            format!("not run: {what} changed since it was read"),
                        )
                    } else {
                        (
                            i,
                            OpStatus::Skipped,
                            format!("an earlier step of this service did not complete: {what}"),
                        )
                    });
                }
            }
        }
        for (i, status, why) in skip {
            self.set_status(io, i, status, Some(why));
        }
        run
    }

    /// Starts the next wave with anything to send. `false`: every wave is done.
    fn next_wave(&mut self, io: &mut Io) -> bool {
        while self.wave < 5 {
            self.wave += 1;
            io.reopen_gates();
            if io.out_of_time() {
                self.defer_rest(io);
                return false;
            }
            // After the catalog: what a lost race left behind goes first.
            if self.wave == 3 && !self.cleaned && self.start_cleanup() {
                self.cleaned = true;
                self.wave -= 1;
                return true;
            }
            let runnable = self.runnable(io, self.wave);
            if self.wave == 2 {
                self.catalog_wave(io, runnable);
            } else {
                // Lowered as the step has room (`refill`): a wave of 25,000 entries
                // holds at most one step's requests at a time.
                self.pending = runnable.into();
                self.refill(io);
            }
            if !self.calls.idle() || !self.pending.is_empty() {
                return true;
            }
        }
        false
    }

    /// Starts the wave's next operations, up to one step's worth of requests.
    fn refill(&mut self, io: &mut Io) {
        while self.calls.queued() < MAX_STEP_REQUESTS {
            let Some(i) = self.pending.pop_front() else {
                return;
            };
            match self.op(i).map(|op| (op.kind(), op.mesh().is_some())) {
                Some((_, true)) => self.mesh_start(io, i),
                Some((OperationKind::UpsertConfigEntry | OperationKind::DeleteConfigEntry, _)) => {
                    self.entry_write(io, i, false)
                }
                Some(_) => self.parameter_write(io, i),
                None => {}
            }
        }
    }

    fn ending(&mut self) -> Ending {
        Ending {
            stop: None,
            plan: Some(std::mem::take(&mut self.plan)),
            inventory: std::mem::take(&mut self.inventory),
            executed: Some(Executed {
                status: std::mem::take(&mut self.status),
                errors: std::mem::take(&mut self.errors),
                partial: self.partial,
            }),
            basis: None,
            functions_enabled: self.functions_enabled,
            doctor: None,
        }
    }
}

impl Machine for Executing {
    type Purpose = Write;

    fn calls(&mut self) -> &mut Calls<Write> {
        &mut self.calls
    }

    fn calls_ref(&self) -> &Calls<Write> {
        &self.calls
    }

    fn settle(&mut self, io: &mut Io, _: &mut Run, (call, outcome): Settled<Write>) {
        let attempt = call.attempt;
        match call.purpose {
            Write::Entry { op, ambiguous } => {
                self.on_entry(io, op, ambiguous, attempt, call.request, outcome)
            }
            Write::EntryCheck { op } => self.on_entry_check(io, op, outcome),
            Write::Txn(batch) => {
                self.on_txn(io, batch, attempt, outcome);
                self.release_waiting(io);
            }
            Write::TxnCheck(batch) => {
                self.on_txn_check(io, batch, attempt, outcome);
                self.release_waiting(io);
            }
            Write::Single { op } => self.on_single(io, op, outcome),
            Write::Parameter { op } => self.on_parameter(io, op, outcome),
            Write::Mesh { op, round } => self.on_mesh_write(io, op, round, outcome),
            Write::MeshReread { op, round } => self.on_mesh_reread(io, op, round, outcome),
            Write::CleanupRead { op } => self.on_cleanup_read(io, op, outcome),
            Write::Cleanup { op } => self.on_cleanup(io, op, outcome),
        }
    }

    fn refill(&mut self, io: &mut Io) {
        Executing::refill(self, io);
    }

    fn advance(&mut self, io: &mut Io, _: &mut Run) -> Advance {
        if !self.pending.is_empty() {
            self.refill(io);
            return Advance::Continue;
        }
        // Batches still held (their node transaction ended without a release): send.
        if !self.waiting.is_empty() {
            self.release_waiting(io);
            if !self.calls.idle() {
                return Advance::Continue;
            }
        }
        if self.next_wave(io) {
            return Advance::Continue;
        }
        Advance::Finish(Box::new(self.ending()))
    }
}
