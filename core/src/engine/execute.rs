//! Execution of the plan in five waves, each a batch of concurrent requests:
//!
//! 1. service-defaults entries (`PUT /v1/config?cas=N`: Consul cannot put config
//!    entries in a transaction);
//! 2. catalog registrations and deregistrations through `PUT /v1/txn`, at most
//!    [`TXN_MAX_OPS`] operations a transaction, check-and-set verbs, the node
//!    created in the same transaction when it does not exist yet;
//! 3. service-defaults deletions (`DELETE …?cas=N`);
//! 4. Parameter Store writes (a service's extension data is deleted after its
//!    service-defaults entry);
//! 5. mesh entries (docs/mesh.md): the terminating gateway's and the exported
//!    services' entry, merged and written with `PUT /v1/config?cas=N`, after
//!    every service write, so that an item is added only for a service whose
//!    writes succeeded. Items of deregistered services are taken out earlier,
//!    in wave 1, and the deregistrations wait for that write: if it fails the
//!    service stays registered and the next sync tries both again (once
//!    deregistered, nothing would say the item was ours). A check-and-set miss
//!    or a lost answer is settled by reading the entry again and merging again
//!    (at most [`MESH_MAX_ROUNDS`] times).
//!
//! A service's step runs only when its earlier steps succeeded. A check-and-set
//! miss leaves the service as it is (status `conflict`, re-observed next sync). A
//! write whose answer was lost is checked by reading the object back before it
//! is judged, so a write that was applied is never reported as a conflict.

mod mesh;

use super::outcome::{OpCounts, OpStatus, Outcome};
use super::wire::{self, encode_segment, Answer, AwsCall, ConsulCall};
use super::{body_is_true, Call, Engine, Pending, Purpose, TIME_RESERVE_MS};
use crate::config::LogLevel;
use crate::consul::Request;
use crate::consul::{
    extension_data_parameter, ExtensionDataInput, NodeServices, ServiceDefaults, ServiceKey,
    MANAGED_TAG,
};
use crate::plan::{Operation, OperationKind};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Consul's limit on operations in one transaction (1.22: more → 413).
pub const TXN_MAX_OPS: usize = 128;
/// How often a mesh entry is read and merged again after a check-and-set miss.
pub const MESH_MAX_ROUNDS: u32 = 3;
/// How often a transaction's remaining operations are resent after a rejection.
const TXN_MAX_ROUNDS: u32 = 8;

/// What an execution request is for.
#[derive(Debug, Clone)]
pub(crate) enum ExecPurpose {
    ConfigWrite { op: usize, ambiguous: bool },
    ConfigVerify { op: usize },
    Txn(Batch),
    TxnVerify(Batch),
    Single { op: usize },
    Ssm { op: usize },
    MeshWrite { op: usize, round: u32 },
    MeshRead { op: usize, round: u32 },
}

/// Catalog operations sent together in one transaction.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    scope: Scope,
    ops: Vec<usize>,
    node_op: bool,
    round: u32,
}

/// A datacenter and partition (normalised: `""` for the default).
type Scope = (String, String);
/// A scope, namespace and name (normalised).
type ObjectKey = (String, String, String, String);

fn norm(v: Option<&str>) -> String {
    match v {
        None | Some("") | Some("default") => String::new(),
        Some(v) => v.to_owned(),
    }
}

/// The observed ModifyIndex of every object a write may touch.
#[derive(Debug, Default)]
pub(crate) struct CasIndex {
    pub(crate) entries: BTreeMap<ObjectKey, Option<u64>>,
    pub(crate) services: BTreeMap<ObjectKey, Option<u64>>,
    nodes: BTreeSet<Scope>,
    local_dc: String,
}

impl CasIndex {
    /// Indexes the observed scopes (`local_dc`: the datacenter of a scope without one).
    pub(crate) fn new(scopes: &[crate::plan::ConsulScope], local_dc: &str) -> Self {
        let mut index = CasIndex {
            local_dc: local_dc.to_owned(),
            ..CasIndex::default()
        };
        for scope in scopes {
            let dc = scope
                .datacenter
                .clone()
                .unwrap_or_else(|| local_dc.to_owned());
            let part = scope.partition.as_deref();
            for e in scope.service_defaults.iter().flatten() {
                let key = (
                    dc.clone(),
                    norm(e.partition.as_deref().or(part)),
                    norm(e.namespace.as_deref()),
                    e.name.clone(),
                );
                index.entries.insert(key, e.modify_index);
            }
            if let Some(ns) = &scope.node_services {
                // Consul answers `{"Node": null, "Services": null}` for a node that does not exist.
                if ns.node.is_some() {
                    index.nodes.insert((dc.clone(), norm(part)));
                }
                for s in ns.services.iter() {
                    let key = (
                        dc.clone(),
                        norm(s.partition.as_deref().or(part)),
                        norm(s.namespace.as_deref()),
                        s.id.clone(),
                    );
                    index.services.insert(key, s.modify_index);
                }
            }
        }
        index
    }

    /// The key of the object `name` in the scope of `service`.
    pub(crate) fn key_of(&self, service: &ServiceKey, name: &str) -> ObjectKey {
        (
            service
                .datacenter
                .clone()
                .unwrap_or_else(|| self.local_dc.clone()),
            norm(service.partition.as_deref()),
            norm(service.namespace.as_deref()),
            name.to_owned(),
        )
    }
}

/// The execution of a plan.
#[derive(Debug)]
pub(crate) struct Execution {
    ops: Vec<Operation>,
    status: Vec<OpStatus>,
    errors: Vec<Option<String>>,
    prev: Vec<Option<usize>>,
    wave: u8,
    index: CasIndex,
    txn: bool,
    partial: bool,
    /// Batches held until the transaction that creates their scope's node has ended
    /// (sent together, they would fail with "Missing node registration").
    waiting: Vec<Batch>,
    node: String,
    local_dc: String,
}

/// Whether a lost answer to this request leaves it unknown whether it was applied.
pub(crate) fn is_ambiguous_write(purpose: &Purpose) -> bool {
    matches!(
        purpose,
        Purpose::Exec(
            ExecPurpose::ConfigWrite { .. } | ExecPurpose::Txn(_) | ExecPurpose::MeshWrite { .. }
        )
    )
}

/// `PUT /v1/config` or `ssm PutParameter /name`: safe to print.
fn describe_op(op: &Operation) -> String {
    match &op.request {
        Request::Consul(r) => format!("{} {}", r.method, r.path),
        Request::Ssm(r) => format!("ssm {} {}", r.action, r.name),
    }
}

/// The outcomes of a plan that was not executed.
pub(crate) fn planned_outcomes(ops: &[Operation]) -> Vec<Outcome> {
    ops.iter()
        .map(|op| Outcome {
            kind: op.kind,
            service: op.service.clone(),
            change: op.change,
            status: OpStatus::Planned,
            request: describe_op(op),
            error: None,
        })
        .collect()
}

impl Execution {
    fn new(
        ops: Vec<Operation>,
        scopes: &[crate::plan::ConsulScope],
        node: &str,
        local_dc: &str,
    ) -> Self {
        let mut last: BTreeMap<&ServiceKey, usize> = BTreeMap::new();
        let mut prev = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            // A mesh entry is no service: it follows the services it names (wave 5).
            if op.mesh.is_some() {
                prev.push(None);
            } else {
                prev.push(last.insert(&op.service, i));
            }
        }
        let index = CasIndex::new(scopes, local_dc);
        let n = ops.len();
        Execution {
            status: vec![OpStatus::Planned; n],
            errors: vec![None; n],
            prev,
            ops,
            wave: 0,
            index,
            txn: true,
            partial: false,
            waiting: Vec::new(),
            node: node.to_owned(),
            local_dc: local_dc.to_owned(),
        }
    }

    fn key_of(&self, service: &ServiceKey, name: &str) -> ObjectKey {
        self.index.key_of(service, name)
    }

    fn scope_of(&self, service: &ServiceKey) -> Scope {
        (
            service
                .datacenter
                .clone()
                .unwrap_or_else(|| self.local_dc.clone()),
            norm(service.partition.as_deref()),
        )
    }

    /// The plan's operations, given back.
    pub(crate) fn take_operations(&mut self) -> Vec<Operation> {
        std::mem::take(&mut self.ops)
    }

    pub(crate) fn outcomes(&self) -> (Vec<Outcome>, OpCounts, bool) {
        let mut counts = OpCounts::default();
        let outcomes = self
            .ops
            .iter()
            .enumerate()
            .map(|(i, op)| {
                let status = self.status.get(i).copied().unwrap_or(OpStatus::Planned);
                match status {
                    OpStatus::Planned => counts.planned += 1,
                    OpStatus::Ok => counts.ok += 1,
                    OpStatus::Failed => counts.failed += 1,
                    OpStatus::Skipped => counts.skipped += 1,
                    OpStatus::Conflict => counts.conflicts += 1,
                }
                Outcome {
                    kind: op.kind,
                    service: op.service.clone(),
                    change: op.change,
                    status,
                    request: describe_op(op),
                    error: self.errors.get(i).cloned().flatten(),
                }
            })
            .collect();
        (outcomes, counts, self.partial)
    }

    fn wave_of(kind: OperationKind) -> u8 {
        match kind {
            OperationKind::UpsertConfigEntry => 1,
            OperationKind::RegisterService | OperationKind::DeregisterService => 2,
            OperationKind::DeleteConfigEntry => 3,
            // After the config deletion: a service's extension data goes last, and
            // one wave cannot hold two steps of the same service.
            OperationKind::PutExtensionData | OperationKind::DeleteExtensionData => 4,
            // Additions; removals run in wave 1 (see `wave_of_op`).
            OperationKind::UpdateTerminatingGateway | OperationKind::UpdateExportedServices => 5,
        }
    }

    /// The wave of an operation: a mesh entry write that only removes items runs
    /// in wave 1, before the deregistrations it is for (which wait for it).
    fn wave_of_op(op: &Operation) -> u8 {
        if crate::plan::runs_first(op) {
            1
        } else {
            Self::wave_of(op.kind)
        }
    }
}

impl Engine {
    fn set_status(&mut self, i: usize, status: OpStatus, error: Option<String>) {
        let Some(exec) = self.exec.as_mut() else {
            return;
        };
        let (Some(slot), Some(err), Some(op)) = (
            exec.status.get_mut(i),
            exec.errors.get_mut(i),
            exec.ops.get(i),
        ) else {
            return;
        };
        *slot = status;
        *err = error.clone();
        let level = match status {
            OpStatus::Ok | OpStatus::Planned => LogLevel::Info,
            OpStatus::Failed => LogLevel::Error,
            OpStatus::Skipped | OpStatus::Conflict => LogLevel::Warn,
        };
        let fields = [
            ("op", Value::from(op.kind.as_str())),
            ("request", Value::from(describe_op(op))),
            ("service", Value::from(op.service.name.clone())),
            (
                "datacenter",
                op.service
                    .datacenter
                    .clone()
                    .map_or(Value::Null, Value::from),
            ),
            (
                "partition",
                op.service
                    .partition
                    .clone()
                    .map_or(Value::Null, Value::from),
            ),
            (
                "namespace",
                op.service
                    .namespace
                    .clone()
                    .map_or(Value::Null, Value::from),
            ),
            ("change", Value::from(op.change.as_str())),
            (
                "function",
                op.function.clone().map_or(Value::Null, Value::from),
            ),
            ("status", Value::from(format!("{status:?}").to_lowercase())),
            ("error", error.map_or(Value::Null, Value::from)),
        ];
        self.log(level, "operation", &fields);
    }

    /// Runs the next wave. Returns true when every wave is done.
    pub(super) fn execute_step(&mut self) -> bool {
        if self.stop.is_some() || self.dry_run {
            return true;
        }
        if self.exec.is_none() {
            let local = self.local_datacenter();
            // The operations move into the execution; `finish` puts them back.
            let Some(plan) = self.plan.as_mut() else {
                return true;
            };
            let ops = std::mem::take(&mut plan.operations);
            self.exec = Some(Execution::new(
                ops,
                &self.obs.scopes,
                &self.config.node_name,
                &local,
            ));
        }
        loop {
            // Batches still held (their node transaction ended without a release): send.
            if self.exec.as_ref().is_some_and(|e| !e.waiting.is_empty()) {
                self.release_waiting();
                if !self.queue.is_empty() {
                    return false;
                }
            }
            let wave = match self.exec.as_mut() {
                Some(exec) if exec.wave < 5 => {
                    exec.wave += 1;
                    exec.wave
                }
                _ => return true,
            };
            if self.out_of_time() {
                self.defer_rest();
                return true;
            }
            let runnable = self.runnable(wave);
            match wave {
                1 => {
                    for i in runnable {
                        if self.op(i).is_some_and(|op| op.mesh.is_some()) {
                            self.mesh_start(i);
                        } else {
                            self.config_write(i, false);
                        }
                    }
                }
                2 => self.catalog_wave(runnable),
                5 => {
                    for i in runnable {
                        self.mesh_start(i);
                    }
                }
                _ => {
                    for i in runnable {
                        self.wave3(i);
                    }
                }
            }
            if !self.queue.is_empty() {
                return false;
            }
        }
    }

    fn out_of_time(&self) -> bool {
        self.remaining
            .is_some_and(|left| left < TIME_RESERVE_MS + self.timeout_ms.min(TIME_RESERVE_MS))
    }

    fn defer_rest(&mut self) {
        let Some(exec) = self.exec.as_mut() else {
            return;
        };
        exec.partial = true;
        let todo: Vec<usize> = (0..exec.ops.len())
            .filter(|i| exec.status.get(*i) == Some(&OpStatus::Planned))
            .collect();
        for i in todo {
            self.set_status(
                i,
                OpStatus::Skipped,
                Some("deferred: the invocation is about to time out; the next sync does it".into()),
            );
        }
    }

    /// The operations of `wave` that may run now; marks the others skipped.
    fn runnable(&mut self, wave: u8) -> Vec<usize> {
        let Some(exec) = self.exec.as_ref() else {
            return Vec::new();
        };
        let mut run = Vec::new();
        let mut skip = Vec::new();
        for (i, op) in exec.ops.iter().enumerate() {
            if Execution::wave_of_op(op) != wave || exec.status.get(i) != Some(&OpStatus::Planned) {
                continue;
            }
            if let Some(arn) = &op.confirm_absent {
                skip.push((
                    i,
                    OpStatus::Skipped,
                    format!("waiting for GetFunction to confirm {arn} is gone"),
                ));
                continue;
            }
            if op.kind == OperationKind::DeregisterService {
                if let Some((status, why)) = mesh::removal_blocks(exec, op) {
                    skip.push((i, status, why));
                    continue;
                }
            }
            match exec
                .prev
                .get(i)
                .copied()
                .flatten()
                .and_then(|j| exec.status.get(j).map(|s| (j, *s)))
            {
                None | Some((_, OpStatus::Ok)) => run.push(i),
                Some((j, OpStatus::Conflict)) => skip.push((
                    i,
                    OpStatus::Conflict,
                    format!(
                        "not run: {} changed since it was read",
                        exec.ops.get(j).map(describe_op).unwrap_or_default()
                    ),
                )),
                Some((j, _)) => skip.push((
                    i,
                    OpStatus::Skipped,
                    format!(
                        "an earlier step of this service did not complete: {}",
                        exec.ops.get(j).map(describe_op).unwrap_or_default()
                    ),
                )),
            }
        }
        for (i, status, why) in skip {
            self.set_status(i, status, Some(why));
        }
        run
    }

    fn op(&self, i: usize) -> Option<&Operation> {
        self.exec.as_ref().and_then(|e| e.ops.get(i))
    }

    // -- wave 1 and 3: config entries -------------------------------------------

    fn config_write(&mut self, i: usize, ambiguous: bool) {
        let Some((exec, op)) = self
            .exec
            .as_ref()
            .and_then(|e| e.ops.get(i).map(|op| (e, op)))
        else {
            return;
        };
        let Request::Consul(req) = &op.request else {
            return;
        };
        let mut query = req.query.clone();
        let (method, path, body) = match op.kind {
            OperationKind::DeleteConfigEntry => {
                let Some(name) = encode_segment(&op.service.name) else {
                    self.set_status(
                        i,
                        OpStatus::Failed,
                        Some("refused: the service name cannot be a path segment".into()),
                    );
                    return;
                };
                if let Some(Some(idx)) = exec
                    .index
                    .entries
                    .get(&exec.key_of(&op.service, &op.service.name))
                {
                    query.insert("cas".into(), idx.to_string());
                }
                (
                    "DELETE",
                    format!("/v1/config/service-defaults/{name}"),
                    None,
                )
            }
            _ => {
                match exec
                    .index
                    .entries
                    .get(&exec.key_of(&op.service, &op.service.name))
                {
                    Some(Some(idx)) => {
                        query.insert("cas".into(), idx.to_string());
                    }
                    Some(None) => {}
                    None => {
                        query.insert("cas".into(), "0".into());
                    }
                }
                ("PUT", "/v1/config".to_owned(), req.body.clone())
            }
        };
        self.push(
            Call::Consul(ConsulCall {
                method: method.into(),
                path,
                query,
                body,
            }),
            Purpose::Exec(ExecPurpose::ConfigWrite { op: i, ambiguous }),
        );
    }

    fn config_verify(&mut self, i: usize) {
        let Some(op) = self.op(i) else { return };
        let Some(name) = encode_segment(&op.service.name) else {
            return;
        };
        let query = op.service.query();
        self.consul_get(
            format!("/v1/config/service-defaults/{name}"),
            query,
            Purpose::Exec(ExecPurpose::ConfigVerify { op: i }),
        );
    }

    fn on_config_write(
        &mut self,
        p: &Pending,
        i: usize,
        ambiguous: bool,
        outcome: Result<(), (String, bool)>,
        answer: &Answer,
    ) {
        match outcome {
            Err((_, true)) if p.attempt < wire::MAX_ATTEMPTS => {
                // The answer was lost: send again; a miss then is checked by a read.
                let wait = self.jitter.backoff(p.attempt);
                let mut again = p.clone();
                again.attempt += 1;
                again.purpose = Purpose::Exec(ExecPurpose::ConfigWrite {
                    op: i,
                    ambiguous: true,
                });
                self.delayed.push((None, wait, again));
            }
            Err((message, _)) => self.set_status(i, OpStatus::Failed, Some(message)),
            Ok(()) if answer.status == Some(200) => {
                let deleted_plain = answer.body.as_deref().map(str::trim) == Some("{}");
                if body_is_true(answer) || deleted_plain {
                    self.set_status(i, OpStatus::Ok, None);
                } else if ambiguous {
                    self.config_verify(i);
                } else {
                    self.set_status(i, OpStatus::Conflict, Some("check-and-set miss: the entry changed since it was read; left as it is".into()));
                }
            }
            Ok(()) => {
                let message = wire::status_message(answer);
                self.set_status(i, OpStatus::Failed, Some(message));
            }
        }
    }

    fn on_config_verify(&mut self, i: usize, outcome: Result<(), (String, bool)>, answer: &Answer) {
        let Some(op) = self.op(i).cloned() else {
            return;
        };
        if let Err((message, _)) = outcome {
            self.set_status(
                i,
                OpStatus::Failed,
                Some(format!("answer lost, and the check failed: {message}")),
            );
            return;
        }
        let applied = match (op.kind, answer.status) {
            (OperationKind::DeleteConfigEntry, Some(404)) => true,
            (OperationKind::DeleteConfigEntry, _) => false,
            (_, Some(200)) => {
                let Request::Consul(req) = &op.request else {
                    return;
                };
                let now: Option<ServiceDefaults> = answer
                    .body
                    .as_deref()
                    .and_then(|b| serde_json::from_str(b).ok());
                let wanted: Option<ServiceDefaults> = req
                    .body
                    .clone()
                    .and_then(|b| serde_json::from_value(b).ok());
                match (now, wanted) {
                    (Some(n), Some(w)) => n.lambda_view() == w.lambda_view(),
                    _ => false,
                }
            }
            _ => false,
        };
        if applied {
            self.set_status(i, OpStatus::Ok, None);
        } else {
            self.set_status(
                i,
                OpStatus::Conflict,
                Some(
                    "check-and-set miss: the entry changed since it was read; left as it is".into(),
                ),
            );
        }
    }

    // -- wave 2: the catalog --------------------------------------------------------

    fn catalog_wave(&mut self, ops: Vec<usize>) {
        let Some(exec) = self.exec.as_ref() else {
            return;
        };
        if !exec.txn {
            for i in ops {
                self.single(i);
            }
            return;
        }
        let mut by_scope: BTreeMap<Scope, Vec<usize>> = BTreeMap::new();
        for i in ops {
            if let Some(op) = exec.ops.get(i) {
                by_scope
                    .entry(exec.scope_of(&op.service))
                    .or_default()
                    .push(i);
            }
        }
        let mut batches = Vec::new();
        for (scope, ops) in by_scope {
            let needs_node = !exec.index.nodes.contains(&scope)
                && ops.iter().any(|i| {
                    exec.ops
                        .get(*i)
                        .is_some_and(|o| o.kind == OperationKind::RegisterService)
                });
            let mut rest = ops.as_slice();
            let mut node_op = needs_node;
            while !rest.is_empty() {
                let room = TXN_MAX_OPS - usize::from(node_op);
                let (now, later) = rest.split_at(room.min(rest.len()));
                batches.push(Batch {
                    scope: scope.clone(),
                    ops: now.to_vec(),
                    node_op,
                    round: 0,
                });
                node_op = false;
                rest = later;
            }
        }
        for b in batches {
            self.send_txn(b);
        }
    }

    fn txn_op(&self, i: usize) -> Option<Value> {
        let exec = self.exec.as_ref()?;
        let op = exec.ops.get(i)?;
        let Request::Consul(req) = &op.request else {
            return None;
        };
        let body = req.body.as_ref()?;
        let enterprise = |svc: &mut serde_json::Map<String, Value>| {
            if let Some(ns) = &op.service.namespace {
                svc.insert("Namespace".into(), Value::from(ns.clone()));
            }
            if let Some(p) = &op.service.partition {
                svc.insert("Partition".into(), Value::from(p.clone()));
            }
        };
        match op.kind {
            OperationKind::RegisterService => {
                let mut svc = body.get("Service")?.as_object()?.clone();
                enterprise(&mut svc);
                let verb = match exec
                    .index
                    .services
                    .get(&exec.key_of(&op.service, &op.service.name))
                {
                    Some(Some(idx)) => {
                        svc.insert("ModifyIndex".into(), Value::from(*idx));
                        "cas"
                    }
                    Some(None) => "set",
                    None => {
                        svc.insert("ModifyIndex".into(), Value::from(0));
                        "cas"
                    }
                };
                Some(json!({"Service": {"Verb": verb, "Node": exec.node, "Service": svc}}))
            }
            OperationKind::DeregisterService => {
                let id = body.get("ServiceID")?.as_str()?;
                let mut svc = serde_json::Map::new();
                svc.insert("ID".into(), Value::from(id));
                // Consul's txn rejects a service ID without the name ("Must provide service
                // name (Service.Service) when service ID is provided").
                svc.insert("Service".into(), Value::from(op.service.name.clone()));
                enterprise(&mut svc);
                let verb = match exec.index.services.get(&exec.key_of(&op.service, id)) {
                    Some(Some(idx)) => {
                        svc.insert("ModifyIndex".into(), Value::from(*idx));
                        "delete-cas"
                    }
                    _ => "delete",
                };
                Some(json!({"Service": {"Verb": verb, "Node": exec.node, "Service": svc}}))
            }
            _ => None,
        }
    }

    /// Whether a transaction that creates `scope`'s node is queued, in flight or delayed.
    fn node_batch_pending(&self, scope: &Scope) -> bool {
        let creates = |p: &Pending| {
            matches!(&p.purpose, Purpose::Exec(ExecPurpose::Txn(b) | ExecPurpose::TxnVerify(b))
                if b.node_op && &b.scope == scope)
        };
        self.queue.iter().any(creates)
            || self.inflight.values().any(creates)
            || self.delayed.iter().any(|(_, _, p)| creates(p))
    }

    /// Sends the held batches of every scope whose node transaction has ended; the
    /// first of them creates the node when it still does not exist.
    fn release_waiting(&mut self) {
        let Some(exec) = self.exec.as_mut() else {
            return;
        };
        let held = std::mem::take(&mut exec.waiting);
        let mut keep = Vec::new();
        for mut batch in held {
            if self.node_batch_pending(&batch.scope) {
                keep.push(batch);
                continue;
            }
            let known = self
                .exec
                .as_ref()
                .is_some_and(|e| e.index.nodes.contains(&batch.scope));
            batch.node_op = !known;
            self.send_txn(batch);
        }
        if let Some(exec) = self.exec.as_mut() {
            exec.waiting.extend(keep);
        }
    }

    fn send_txn(&mut self, batch: Batch) {
        let Some(exec) = self.exec.as_ref() else {
            return;
        };
        if !batch.node_op
            && !exec.index.nodes.contains(&batch.scope)
            && self.node_batch_pending(&batch.scope)
        {
            if let Some(exec) = self.exec.as_mut() {
                exec.waiting.push(batch);
            }
            return;
        }
        let Some(exec) = self.exec.as_ref() else {
            return;
        };
        let mut body = Vec::with_capacity(batch.ops.len() + 1);
        if batch.node_op {
            body.push(json!({"Node": {"Verb": "cas", "Node": {
                "Node": exec.node,
                "Meta": {"external-node": "true", "external-probe": "true"},
                "ModifyIndex": 0
            }}}));
        }
        let mut bad = Vec::new();
        for i in &batch.ops {
            match self.txn_op(*i) {
                Some(op) => body.push(op),
                None => bad.push(*i),
            }
        }
        for i in bad {
            self.set_status(
                i,
                OpStatus::Failed,
                Some("the plan's request cannot be put in a transaction".into()),
            );
        }
        let mut query = BTreeMap::new();
        query.insert("dc".to_owned(), batch.scope.0.clone());
        if !batch.scope.1.is_empty() {
            query.insert("partition".to_owned(), batch.scope.1.clone());
        }
        self.push(
            Call::Consul(ConsulCall {
                method: "PUT".into(),
                path: "/v1/txn".into(),
                query,
                body: Some(Value::Array(body)),
            }),
            Purpose::Exec(ExecPurpose::Txn(batch)),
        );
    }

    fn single(&mut self, i: usize) {
        let Some(op) = self.op(i) else { return };
        let Request::Consul(req) = &op.request else {
            return;
        };
        let call = ConsulCall {
            method: req.method.clone(),
            path: req.path.clone(),
            query: req.query.clone(),
            body: req.body.clone(),
        };
        self.push(
            Call::Consul(call),
            Purpose::Exec(ExecPurpose::Single { op: i }),
        );
    }

    fn on_txn(
        &mut self,
        p: &Pending,
        batch: Batch,
        outcome: Result<(), (String, bool)>,
        answer: &Answer,
    ) {
        match outcome {
            Err((_, true)) if p.attempt < wire::MAX_ATTEMPTS => {
                // Lost answer: read the node back, then send what is still needed.
                let wait = self.jitter.backoff(p.attempt);
                let node = encode_segment(&self.config.node_name).unwrap_or_default();
                let mut query = BTreeMap::new();
                query.insert("dc".to_owned(), batch.scope.0.clone());
                if self.config.enterprise {
                    query.insert("ns".to_owned(), "*".to_owned());
                    if !batch.scope.1.is_empty() {
                        query.insert("partition".to_owned(), batch.scope.1.clone());
                    }
                }
                let verify = Pending {
                    call: Call::Consul(ConsulCall {
                        method: "GET".into(),
                        path: format!("/v1/catalog/node-services/{node}"),
                        query,
                        body: None,
                    }),
                    purpose: Purpose::Exec(ExecPurpose::TxnVerify(batch)),
                    attempt: p.attempt + 1,
                };
                self.delayed.push((None, wait, verify));
            }
            Err((message, _)) => self.fail_batch(&batch, &message),
            Ok(()) => match answer.status {
                Some(200) => {
                    if let Some(exec) = self.exec.as_mut() {
                        exec.index.nodes.insert(batch.scope.clone());
                    }
                    for i in &batch.ops {
                        if self.exec.as_ref().and_then(|e| e.status.get(*i))
                            == Some(&OpStatus::Planned)
                        {
                            self.set_status(*i, OpStatus::Ok, None);
                        }
                    }
                }
                Some(409) => self.on_txn_rejected(batch, answer),
                Some(413) if batch.ops.len() > 1 => {
                    let (a, b) = batch.ops.split_at(batch.ops.len() / 2);
                    self.send_txn(Batch {
                        scope: batch.scope.clone(),
                        ops: a.to_vec(),
                        node_op: batch.node_op,
                        round: batch.round,
                    });
                    self.send_txn(Batch {
                        scope: batch.scope,
                        ops: b.to_vec(),
                        node_op: false,
                        round: batch.round,
                    });
                }
                Some(404 | 405) => {
                    self.log(
                        LogLevel::Warn,
                        "the agent has no /v1/txn; catalog writes go one by one",
                        &[],
                    );
                    if let Some(exec) = self.exec.as_mut() {
                        exec.txn = false;
                    }
                    for i in batch.ops {
                        self.single(i);
                    }
                }
                _ => {
                    let mut message = wire::status_message(answer);
                    if batch.node_op && answer.status == Some(403) {
                        message.push_str(&node_write_hint(&self.config.node_name));
                    }
                    self.fail_batch(&batch, &message);
                }
            },
        }
    }

    fn fail_batch(&mut self, batch: &Batch, message: &str) {
        for i in &batch.ops {
            if self.exec.as_ref().and_then(|e| e.status.get(*i)) == Some(&OpStatus::Planned) {
                self.set_status(*i, OpStatus::Failed, Some(message.to_owned()));
            }
        }
    }

    fn on_txn_rejected(&mut self, batch: Batch, answer: &Answer) {
        #[derive(serde::Deserialize)]
        struct Rejected {
            #[serde(rename = "Errors", default)]
            errors: Option<Vec<TxnError>>,
        }
        #[derive(serde::Deserialize)]
        struct TxnError {
            #[serde(rename = "OpIndex", default)]
            op_index: usize,
            #[serde(rename = "What", default)]
            what: String,
        }
        let parsed: Option<Rejected> = answer
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok());
        let Some(errors) = parsed.and_then(|r| r.errors).filter(|e| !e.is_empty()) else {
            self.fail_batch(
                &batch,
                &format!("transaction rejected: {}", wire::status_message(answer)),
            );
            return;
        };
        let offset = usize::from(batch.node_op);
        let mut node_op = batch.node_op;
        let mut named = BTreeSet::new();
        for e in errors {
            if batch.node_op && e.op_index == 0 {
                node_op = false;
                if e.what.contains("index is stale") {
                    // The node exists now: nothing to create.
                    continue;
                }
                let message = format!(
                    "{}{}",
                    wire::clip_text(&e.what),
                    node_write_hint(&self.config.node_name)
                );
                self.fail_batch(&batch, &message);
                return;
            }
            let Some(i) = e
                .op_index
                .checked_sub(offset)
                .and_then(|k| batch.ops.get(k))
                .copied()
            else {
                continue;
            };
            named.insert(i);
            if e.what.contains("index is stale") {
                self.set_status(
                    i,
                    OpStatus::Conflict,
                    Some(
                        "check-and-set miss: the service changed since it was read; left as it is"
                            .into(),
                    ),
                );
            } else {
                self.set_status(i, OpStatus::Failed, Some(wire::clip_text(&e.what)));
            }
        }
        let rest: Vec<usize> = batch
            .ops
            .iter()
            .copied()
            .filter(|i| !named.contains(i))
            .collect();
        if rest.is_empty() {
            return;
        }
        if batch.round + 1 >= TXN_MAX_ROUNDS {
            self.fail_batch(
                &Batch { ops: rest, ..batch },
                "transaction rejected too often",
            );
            return;
        }
        self.send_txn(Batch {
            scope: batch.scope,
            ops: rest,
            node_op,
            round: batch.round + 1,
        });
    }

    fn on_txn_verify(
        &mut self,
        p: &Pending,
        batch: Batch,
        outcome: Result<(), (String, bool)>,
        answer: &Answer,
    ) {
        if let Err((message, _)) = outcome {
            self.fail_batch(
                &batch,
                &format!("the transaction's answer was lost and the check failed: {message}"),
            );
            return;
        }
        let services: Option<NodeServices> = answer
            .body
            .as_deref()
            .and_then(|b| serde_json::from_str(b).ok())
            .flatten();
        let mut present: BTreeMap<String, (bool, Option<u64>)> = BTreeMap::new();
        if let Some(ns) = &services {
            for s in ns.services.iter() {
                let managed = s.tags.iter().flatten().any(|t| t == MANAGED_TAG);
                present.insert(s.id.clone(), (managed, s.modify_index));
            }
        }
        let node_present = services.as_ref().is_some_and(|s| s.node.is_some());
        if node_present {
            if let Some(exec) = self.exec.as_mut() {
                exec.index.nodes.insert(batch.scope.clone());
            }
        }
        let mut rest = Vec::new();
        for i in &batch.ops {
            let Some(op) = self.op(*i).cloned() else {
                continue;
            };
            let done = match op.kind {
                OperationKind::RegisterService => {
                    // Applied when the service is there and changed since it was observed
                    // (an update whose answer was lost leaves the old ModifyIndex otherwise).
                    let observed = self.exec.as_ref().and_then(|e| {
                        e.index
                            .services
                            .get(&e.key_of(&op.service, &op.service.name))
                            .copied()
                            .flatten()
                    });
                    match present.get(&op.service.name) {
                        Some((true, now)) => observed.is_none() || *now != observed,
                        _ => false,
                    }
                }
                _ => {
                    let id = match &op.request {
                        Request::Consul(r) => r
                            .body
                            .as_ref()
                            .and_then(|b| b.get("ServiceID"))
                            .and_then(Value::as_str)
                            .map(str::to_owned),
                        Request::Ssm(_) => None,
                    };
                    id.is_some_and(|id| !present.contains_key(&id))
                }
            };
            if done {
                self.set_status(*i, OpStatus::Ok, None);
            } else {
                rest.push(*i);
            }
        }
        if !rest.is_empty() {
            let node_op = batch.node_op && !node_present;
            let again = Batch {
                scope: batch.scope,
                ops: rest,
                node_op,
                round: batch.round + 1,
            };
            // Sent as a retry of the lost transaction.
            self.send_txn(again);
            if let Some(last) = self.queue.last_mut() {
                last.attempt = p.attempt;
            }
        }
    }

    // -- waves 3 and 4: config deletions, Parameter Store ----------------------------------------------------

    fn wave3(&mut self, i: usize) {
        let Some(op) = self.op(i).cloned() else {
            return;
        };
        match (&op.kind, &op.request) {
            (OperationKind::DeleteConfigEntry, _) => self.config_write(i, false),
            (OperationKind::DeleteExtensionData, Request::Ssm(r)) => {
                self.push(
                    Call::Aws {
                        call: AwsCall {
                            service: "ssm".into(),
                            operation: "DeleteParameter".into(),
                            input: json!({"Name": r.name}),
                        },
                        secret: None,
                        sensitive: false,
                    },
                    Purpose::Exec(ExecPurpose::Ssm { op: i }),
                );
            }
            (OperationKind::PutExtensionData, Request::Ssm(r)) => {
                let enterprise = self.config.enterprise;
                let leaf = self.obs.leaves.iter().find(|l| {
                    l.service == op.service.name
                        && op
                            .leaf_serial
                            .as_deref()
                            .map_or(true, |s| s == l.serial_number)
                        && (!enterprise
                            || (norm(l.namespace.as_deref())
                                == norm(op.service.namespace.as_deref())
                                && norm(l.partition.as_deref())
                                    == norm(op.service.partition.as_deref())))
                });
                let (Some(leaf), Some(roots)) = (leaf.cloned(), self.obs.roots.clone()) else {
                    self.set_status(
                        i,
                        OpStatus::Failed,
                        Some("no leaf certificate or CA roots were read for this service".into()),
                    );
                    return;
                };
                let input = ExtensionDataInput {
                    name: r.name.clone(),
                    tier: r.tier,
                    key_id: r.key_id.clone(),
                    leaf,
                    roots,
                };
                match extension_data_parameter(&input) {
                    Ok(put) => match serde_json::to_value(&put) {
                        Ok(value) => self.push(
                            Call::Aws {
                                call: AwsCall {
                                    service: "ssm".into(),
                                    operation: "PutParameter".into(),
                                    input: value,
                                },
                                secret: None,
                                sensitive: true,
                            },
                            Purpose::Exec(ExecPurpose::Ssm { op: i }),
                        ),
                        Err(e) => self.set_status(i, OpStatus::Failed, Some(e.to_string())),
                    },
                    Err(f) => self.set_status(i, OpStatus::Failed, Some(f.message)),
                }
            }
            _ => self.set_status(i, OpStatus::Failed, Some("unknown operation".into())),
        }
    }

    /// Takes the answer to an execution request.
    pub(super) fn exec_answer(
        &mut self,
        p: Pending,
        purpose: ExecPurpose,
        outcome: Result<(), (String, bool)>,
        answer: Answer,
    ) {
        match purpose {
            ExecPurpose::ConfigWrite { op, ambiguous } => {
                self.on_config_write(&p, op, ambiguous, outcome, &answer)
            }
            ExecPurpose::ConfigVerify { op } => self.on_config_verify(op, outcome, &answer),
            ExecPurpose::Txn(batch) => {
                self.on_txn(&p, batch, outcome, &answer);
                self.release_waiting();
            }
            ExecPurpose::TxnVerify(batch) => {
                self.on_txn_verify(&p, batch, outcome, &answer);
                self.release_waiting();
            }
            ExecPurpose::Single { op } => match outcome {
                Ok(()) if answer.status == Some(200) => self.set_status(op, OpStatus::Ok, None),
                Ok(()) => {
                    let m = wire::status_message(&answer);
                    self.set_status(op, OpStatus::Failed, Some(m));
                }
                Err((m, _)) => self.set_status(op, OpStatus::Failed, Some(m)),
            },
            ExecPurpose::Ssm { op } => match (&outcome, &answer.error) {
                (Ok(()), None) => self.set_status(op, OpStatus::Ok, None),
                (Ok(()), Some(e)) if e.code == "ParameterNotFound" => {
                    self.set_status(op, OpStatus::Ok, None)
                }
                (Ok(()), Some(e)) => {
                    let m = wire::aws_error_text(e);
                    self.set_status(op, OpStatus::Failed, Some(m));
                }
                (Err((m, _)), _) => self.set_status(op, OpStatus::Failed, Some(m.clone())),
            },
            ExecPurpose::MeshWrite { op, round } => self.on_mesh_write(op, round, outcome, &answer),
            ExecPurpose::MeshRead { op, round } => self.on_mesh_read(op, round, outcome, &answer),
        }
    }
}

fn node_write_hint(node: &str) -> String {
    format!(
        " (registering node \"{node}\" the first time needs node write: add node \"{node}\" {{ policy = \"write\" }} to the token's policy, or register the node once by hand)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ConsulScope;

    fn scope(body: &str) -> ConsulScope {
        ConsulScope {
            datacenter: Some("dc1".into()),
            partition: None,
            node_services: serde_json::from_str(body).unwrap(),
            service_defaults: None,
        }
    }

    #[test]
    fn each_step_of_a_service_is_in_a_later_wave_than_the_one_before() {
        use OperationKind::*;
        // The planner's per-service orders (plan.rs): create, delete, extension data.
        for order in [
            [UpsertConfigEntry, RegisterService, PutExtensionData],
            [DeregisterService, DeleteConfigEntry, DeleteExtensionData],
        ] {
            for pair in order.windows(2) {
                assert!(
                    Execution::wave_of(pair[0]) < Execution::wave_of(pair[1]),
                    "{pair:?}"
                );
            }
        }
    }

    #[test]
    fn a_null_node_in_node_services_is_a_missing_node() {
        // Consul 1.22 answers 200 `{"Node": null, "Services": null}` for an unknown node.
        let exec = Execution::new(
            Vec::new(),
            &[scope(r#"{"Node": null, "Services": null}"#)],
            "lambdas",
            "dc1",
        );
        assert!(exec.index.nodes.is_empty());
        let exec = Execution::new(Vec::new(), &[scope("null")], "lambdas", "dc1");
        assert!(exec.index.nodes.is_empty());
        let exec = Execution::new(
            Vec::new(),
            &[scope(r#"{"Node": {"Node": "lambdas"}, "Services": []}"#)],
            "lambdas",
            "dc1",
        );
        assert_eq!(exec.index.nodes.len(), 1);
    }
}
