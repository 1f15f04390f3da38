//! Wave 2: catalog registrations and deregistrations in `PUT /v1/txn`
//! transactions of one scope, at most [`TXN_MAX_OPS`] operations each, every
//! operation check-and-set at its observed index; the node created in the first
//! transaction of a scope where it does not exist (the scope's other
//! transactions wait for that one). Consul answers 409 naming the rejected
//! operations (nothing is applied): those are settled, the rest sent again. A
//! lost answer is settled by reading the node's services back.

use super::{Executing, Scope, Write};
use crate::consul::{NodeServices, MANAGED_TAG};
use crate::engine::io::{parse_body, Io};
use crate::engine::outcome::OpStatus;
use crate::engine::retry::{status_text, CallError, Reply, MAX_ATTEMPTS};
use crate::lower::{ConsulRequest, Request, ScopeQuery, TxnOp};
use crate::plan::{Action, OperationKind};
use crate::text::clip;
use std::collections::{BTreeMap, BTreeSet};

/// Consul's limit on operations in one transaction (1.22: more → 413).
pub const TXN_MAX_OPS: usize = 128;
/// How often a transaction's remaining operations are resent after a rejection.
const TXN_MAX_ROUNDS: u32 = 8;

/// Catalog operations sent together in one transaction.
#[derive(Debug, Clone)]
pub(crate) struct Batch {
    scope: Scope,
    ops: Vec<usize>,
    /// Whether the transaction creates the node first.
    node_op: bool,
    round: u32,
}

fn node_write_hint(node: &str) -> String {
    format!(
        " (registering node \"{node}\" the first time needs node write: add node \"{node}\" {{ policy = \"write\" }} to the token's policy, or register the node once by hand)"
    )
}

impl Executing {
    pub(super) fn catalog_wave(&mut self, io: &mut Io, ops: Vec<usize>) {
        if !self.txn {
            for i in ops {
                self.single(io, i);
            }
            return;
        }
        let mut by_scope: BTreeMap<Scope, Vec<usize>> = BTreeMap::new();
        for i in ops {
            if let Some(op) = self.op(i) {
                by_scope
                    .entry(self.scope_of(&op.service))
                    .or_default()
                    .push(i);
            }
        }
        for (scope, ops) in by_scope {
            let registers = ops.iter().any(|i| {
                self.op(*i)
                    .is_some_and(|o| o.kind() == OperationKind::RegisterService)
            });
            let mut node_op = registers && !self.material.nodes.contains(&scope);
            let mut rest = ops.as_slice();
            while !rest.is_empty() {
                let room = TXN_MAX_OPS - usize::from(node_op);
                let (now, later) = rest.split_at(room.min(rest.len()));
                let batch = Batch {
                    scope: scope.clone(),
                    ops: now.to_vec(),
                    node_op,
                    round: 0,
                };
                self.send_txn(io, batch, 1);
                node_op = false;
                rest = later;
            }
        }
    }

    /// Whether a transaction that creates `scope`'s node is queued, waiting or in flight.
    fn node_batch_pending(&self, scope: &Scope) -> bool {
        self.calls.pending().any(|c| {
            matches!(&c.purpose, Write::Txn(b) | Write::TxnCheck(b) if b.node_op && &b.scope == scope)
        })
    }

    /// Sends the held batches of every scope whose node transaction has ended;
    /// the first of them creates the node when it still does not exist.
    pub(super) fn release_waiting(&mut self, io: &mut Io) {
        let held = std::mem::take(&mut self.waiting);
        for mut batch in held {
            if self.node_batch_pending(&batch.scope) {
                self.waiting.push(batch);
                continue;
            }
            batch.node_op = !self.material.nodes.contains(&batch.scope);
            self.send_txn(io, batch, 1);
        }
    }

    /// Sends a transaction (as attempt `attempt`), or holds it while its scope's
    /// node is being created.
    fn send_txn(&mut self, io: &mut Io, batch: Batch, attempt: u32) {
        if !batch.node_op
            && !self.material.nodes.contains(&batch.scope)
            && self.node_batch_pending(&batch.scope)
        {
            self.waiting.push(batch);
            return;
        }
        let mut ops = Vec::with_capacity(batch.ops.len() + 1);
        if batch.node_op {
            ops.push(TxnOp::CreateNode {
                node: self.node.clone(),
            });
        }
        let lowering = self.lowering();
        let mut bad = Vec::new();
        for &i in &batch.ops {
            match self.op(i).and_then(|op| lowering.txn_op(op)) {
                Some(op) => ops.push(op),
                None => bad.push(i),
            }
        }
        for i in bad {
            let why = "refused: the operation cannot be put in a transaction";
            self.set_status(io, i, OpStatus::Failed, Some(why.into()));
        }
        let (dc, partition) = batch.scope.clone();
        let request = ConsulRequest::Txn {
            dc,
            partition: Some(partition).filter(|p| !p.is_empty()),
            ops,
        };
        self.calls
            .push_attempt(Request::Consul(request), Write::Txn(batch), attempt);
    }

    pub(super) fn on_txn(
        &mut self,
        io: &mut Io,
        batch: Batch,
        attempt: u32,
        outcome: Result<Reply, CallError>,
    ) {
        let h = match outcome {
            Err(CallError::Unreachable(_)) if attempt < MAX_ATTEMPTS => {
                // Lost answer: read the node back, then send what is still needed.
                let wait = io.jitter.backoff(attempt);
                let (dc, partition) = batch.scope.clone();
                let request = ConsulRequest::NodeServices {
                    node: self.node.clone(),
                    scope: ScopeQuery {
                        dc: Some(dc),
                        all_namespaces: self.enterprise,
                        partition: Some(partition).filter(|p| self.enterprise && !p.is_empty()),
                    },
                };
                let purpose = Write::TxnCheck(batch);
                self.calls
                    .push_after(io, Request::Consul(request), purpose, attempt + 1, wait);
                return;
            }
            Err(e) => return self.fail_batch(io, &batch, &e.to_string()),
            Ok(Reply::Http(h)) => h,
            Ok(_) => return self.fail_batch(io, &batch, "an answer of the wrong kind"),
        };
        match h.status {
            200 => {
                self.material.nodes.insert(batch.scope.clone());
                for &i in &batch.ops {
                    if self.status_of(i) == Some(OpStatus::Planned) {
                        self.set_status(io, i, OpStatus::Ok, None);
                    }
                }
            }
            409 => self.on_txn_rejected(io, batch, &h.body),
            413 if batch.ops.len() > 1 => {
                let (a, b) = batch.ops.split_at(batch.ops.len() / 2);
                let half = |ops: &[usize], node_op| Batch {
                    scope: batch.scope.clone(),
                    ops: ops.to_vec(),
                    node_op,
                    round: batch.round,
                };
                self.send_txn(io, half(a, batch.node_op), 1);
                self.send_txn(io, half(b, false), 1);
            }
            404 | 405 => {
                io.log(
                    crate::config::LogLevel::Warn,
                    "the agent has no /v1/txn; catalog writes go one by one",
                    [],
                );
                self.txn = false;
                for i in batch.ops {
                    self.single(io, i);
                }
            }
            status => {
                let mut message = status_text(status, &h.body);
                if batch.node_op && status == 403 {
                    message.push_str(&node_write_hint(&self.node));
                }
                self.fail_batch(io, &batch, &message);
            }
        }
    }

    fn fail_batch(&mut self, io: &mut Io, batch: &Batch, message: &str) {
        for &i in &batch.ops {
            if self.status_of(i) == Some(OpStatus::Planned) {
                self.set_status(io, i, OpStatus::Failed, Some(message.to_owned()));
            }
        }
    }

    fn on_txn_rejected(&mut self, io: &mut Io, batch: Batch, body: &str) {
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
        let parsed: Option<Rejected> = parse_body(body).ok();
        let Some(errors) = parsed.and_then(|r| r.errors).filter(|e| !e.is_empty()) else {
            let why = format!("transaction rejected: {}", status_text(409, body));
            return self.fail_batch(io, &batch, &why);
        };
        let offset = usize::from(batch.node_op);
        let mut node_op = batch.node_op;
        let mut named = BTreeSet::new();
        for e in errors {
            let stale = e.what.contains("index is stale");
            if batch.node_op && e.op_index == 0 {
                node_op = false;
                if stale {
                    // The node exists now: nothing to create.
                    continue;
                }
                let why = format!("{}{}", clip(&e.what), node_write_hint(&self.node));
                return self.fail_batch(io, &batch, &why);
            }
            let Some(&i) = e
                .op_index
                .checked_sub(offset)
                .and_then(|k| batch.ops.get(k))
            else {
                continue;
            };
            named.insert(i);
            if stale {
                let why =
                    "check-and-set miss: the service changed since it was read; left as it is";
                self.set_status(io, i, OpStatus::Conflict, Some(why.into()));
            } else {
                self.set_status(io, i, OpStatus::Failed, Some(clip(&e.what)));
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
            let rest = Batch { ops: rest, ..batch };
            return self.fail_batch(io, &rest, "transaction rejected too often");
        }
        let again = Batch {
            scope: batch.scope,
            ops: rest,
            node_op,
            round: batch.round + 1,
        };
        self.send_txn(io, again, 1);
    }

    pub(super) fn on_txn_check(
        &mut self,
        io: &mut Io,
        batch: Batch,
        attempt: u32,
        outcome: Result<Reply, CallError>,
    ) {
        let body = match outcome {
            Ok(Reply::Http(h)) => h.body,
            Ok(_) => String::new(),
            Err(e) => {
                let why = format!("the transaction's answer was lost and the check failed: {e}");
                return self.fail_batch(io, &batch, &why);
            }
        };
        let services: Option<NodeServices> = parse_body(&body).ok().flatten();
        let present: BTreeMap<&str, (bool, Option<u64>)> = services
            .iter()
            .flat_map(|ns| ns.services.iter())
            .map(|s| {
                let managed = s.tags.iter().flatten().any(|t| t == MANAGED_TAG);
                (s.id.as_str(), (managed, s.modify_index))
            })
            .collect();
        let node_present = services.as_ref().is_some_and(|s| s.node.is_some());
        if node_present {
            self.material.nodes.insert(batch.scope.clone());
        }
        let mut rest = Vec::new();
        for &i in &batch.ops {
            let Some(op) = self.op(i) else { continue };
            let done = match &op.action {
                // Applied when the service is there, managed, and changed since it
                // was observed (a create: there at all).
                Action::RegisterService => match present.get(op.service.name.as_str()) {
                    Some((true, now)) => op.index.map_or(true, |i| i == 0) || *now != op.index,
                    _ => false,
                },
                Action::DeregisterService { service_id } => {
                    !present.contains_key(service_id.as_str())
                }
                _ => false,
            };
            if done {
                self.set_status(io, i, OpStatus::Ok, None);
            } else {
                rest.push(i);
            }
        }
        if !rest.is_empty() {
            let again = Batch {
                scope: batch.scope,
                ops: rest,
                node_op: batch.node_op && !node_present,
                round: batch.round + 1,
            };
            // Sent as a retry of the lost transaction.
            self.send_txn(io, again, attempt);
        }
    }
}
