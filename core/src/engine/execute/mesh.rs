//! The mesh entries (docs/mesh.md): removals in wave 1 (the deregistrations they
//! are for wait for them: [`removal_blocks`]), additions in wave 5, cut down to
//! the services whose own writes succeeded. Each edit is merged into the entry as
//! last read, and written with check-and-set at that read's `ModifyIndex` (`0`
//! when the entry does not exist and may be created). A miss or a lost answer
//! reads the entry again and merges again: the merge is idempotent, so a write
//! that landed merges to nothing, and a concurrent edit is kept.

use super::{norm, Executing, Write};
use crate::config::LogLevel;
use crate::engine::io::{parse_body, Io};
use crate::engine::outcome::OpStatus;
use crate::engine::retry::{status_text, CallError, Reply};
use crate::lower::{ConsulRequest, Material, Request};
use crate::mesh::{MeshEdit, MeshItem};
use crate::plan::{Action, Operation};
use serde_json::Value;

/// How often a mesh entry is read and merged again after a check-and-set miss.
pub const MESH_MAX_ROUNDS: u32 = 3;

/// The entry's `ModifyIndex` as read.
fn modify_index(entry: Option<&Value>) -> u64 {
    entry
        .and_then(|e| e.get("ModifyIndex"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Whether deregistration `op` must wait: a mesh entry write that takes its
/// service out did not succeed (then the service stays registered, and the next
/// sync takes it out and deregisters it again). `Some((status, why))` to skip it.
pub(super) fn removal_blocks(exec: &Executing, op: &Operation) -> Option<(OpStatus, String)> {
    exec.plan.operations.iter().enumerate().find_map(|(j, m)| {
        let edit = m.mesh()?;
        let names = norm(m.service.partition.as_deref()) == norm(op.service.partition.as_deref())
            && edit.remove.iter().any(|r| {
                r.name == op.service.name
                    && norm(r.namespace.as_deref()) == norm(op.service.namespace.as_deref())
            });
        match exec.status.get(j) {
            Some(OpStatus::Ok) | None => None,
            _ if !names => None,
            Some(OpStatus::Conflict) => Some((
                OpStatus::Conflict,
                format!(
                    "not run: the {} entry changed while it was merged; the next sync tries again",
                    edit.kind.consul_kind()
                ),
            )),
            Some(_) => Some((
                OpStatus::Skipped,
                format!(
                    "not run: the service could not be taken out of the {} entry first",
                    edit.kind.consul_kind()
                ),
            )),
        }
    })
}

impl Executing {
    /// Whether every step of the service `item` names (in `op`'s partition) succeeded.
    fn written(&self, op: &Operation, item: &MeshItem) -> bool {
        self.plan.operations.iter().enumerate().all(|(j, o)| {
            o.mesh().is_some()
                || o.service.name != item.name
                || norm(o.service.partition.as_deref()) != norm(op.service.partition.as_deref())
                || norm(o.service.namespace.as_deref()) != norm(item.namespace.as_deref())
                || self.status.get(j) == Some(&OpStatus::Ok)
        })
    }

    /// Starts the write of mesh entry operation `i`.
    pub(super) fn mesh_start(&mut self, io: &mut Io, i: usize) {
        let Some(op) = self.op(i) else { return };
        let Some(edit) = op.mesh() else { return };
        // Only services whose own steps all succeeded are named; removals run first.
        let add: Vec<MeshItem> = edit
            .add
            .iter()
            .filter(|m| self.written(op, m))
            .cloned()
            .collect();
        let held = edit.add.len() - add.len();
        if add.is_empty() && edit.remove.is_empty() {
            let why = "not run: the writes of the services it names did not complete";
            self.set_status(io, i, OpStatus::Skipped, Some(why.into()));
            return;
        }
        if held > 0 {
            io.log(
                LogLevel::Warn,
                "mesh entry: services whose writes did not complete are left out",
                [
                    ("entry", Some(op.service.name.clone().into())),
                    ("leftOut", Some(held.into())),
                ],
            );
        }
        let edit = MeshEdit {
            add,
            ..edit.clone()
        };
        let observed = self
            .material
            .mesh
            .iter()
            .find(|m| {
                m.kind == edit.kind
                    && norm(m.partition.as_deref()) == norm(op.service.partition.as_deref())
            })
            .and_then(|m| m.entry.clone());
        if let Some(o) = self.plan.operations.get_mut(i) {
            o.action = Action::UpdateMeshEntry(edit);
        }
        self.mesh_put(io, i, 0, observed.as_ref());
    }

    /// Merges the edit into `entry` (as read) and writes it, or settles the operation.
    fn mesh_put(&mut self, io: &mut Io, i: usize, round: u32, entry: Option<&Value>) {
        let Some(op) = self.op(i) else { return };
        let material = Material::MeshEntry {
            entry,
            index: modify_index(entry),
        };
        let lowered = self.lowering().operation(op, material);
        self.dispatch(io, i, lowered, Write::Mesh { op: i, round });
    }

    /// Reads the entry again, to merge again.
    fn mesh_reread(&mut self, io: &mut Io, i: usize, round: u32, why: &str) {
        if round + 1 >= MESH_MAX_ROUNDS {
            let why =
                format!("{why} {MESH_MAX_ROUNDS} times: left as it is; the next sync merges again");
            self.set_status(io, i, OpStatus::Conflict, Some(why));
            return;
        }
        let Some(op) = self.op(i) else { return };
        let Some(edit) = op.mesh() else { return };
        let request = ConsulRequest::ConfigEntry {
            kind: edit.kind,
            name: edit.name.clone(),
            partition: op.service.partition.clone().filter(|_| self.enterprise),
        };
        let purpose = Write::MeshReread {
            op: i,
            round: round + 1,
        };
        self.calls.push(Request::Consul(request), purpose);
    }

    pub(super) fn on_mesh_write(
        &mut self,
        io: &mut Io,
        i: usize,
        round: u32,
        outcome: Result<Reply, CallError>,
    ) {
        match outcome {
            // The answer was lost: whether it was applied is read back.
            Err(CallError::Unreachable(_)) => self.mesh_reread(io, i, round, "the answer was lost"),
            Err(e) => self.set_status(io, i, OpStatus::Failed, Some(e.to_string())),
            Ok(Reply::Http(h)) if h.status == 200 && h.body.trim() == "true" => {
                self.set_status(io, i, OpStatus::Ok, None)
            }
            Ok(Reply::Http(h)) if h.status == 200 => self.mesh_reread(
                io,
                i,
                round,
                "check-and-set miss: the entry changed since it was read",
            ),
            Ok(Reply::Http(h)) => {
                let mut message = status_text(h.status, &h.body);
                if h.status == 403 {
                    message.push_str(" (writing mesh config entries needs mesh = \"write\" in the token's policy)");
                }
                self.set_status(io, i, OpStatus::Failed, Some(message));
            }
            Ok(_) => self.set_status(
                io,
                i,
                OpStatus::Failed,
                Some("an answer of the wrong kind".into()),
            ),
        }
    }

    pub(super) fn on_mesh_reread(
        &mut self,
        io: &mut Io,
        i: usize,
        round: u32,
        outcome: Result<Reply, CallError>,
    ) {
        let entry: Option<Value> = match outcome {
            Ok(Reply::Http(h)) if h.status == 404 => None,
            Ok(Reply::Http(h)) if h.status == 200 => match parse_body(&h.body) {
                Ok(v) => v,
                Err(_) => {
                    let why = "reading the entry again gave no JSON";
                    return self.set_status(io, i, OpStatus::Failed, Some(why.into()));
                }
            },
            Ok(Reply::Http(h)) => {
                let why = format!(
                    "reading the entry again failed: {}",
                    status_text(h.status, &h.body)
                );
                return self.set_status(io, i, OpStatus::Failed, Some(why));
            }
            Ok(_) => {
                return self.set_status(
                    io,
                    i,
                    OpStatus::Failed,
                    Some("an answer of the wrong kind".into()),
                )
            }
            Err(e) => {
                let why = format!("reading the entry again failed: {e}");
                return self.set_status(io, i, OpStatus::Failed, Some(why));
            }
        };
        self.mesh_put(io, i, round, entry.as_ref());
    }
}
