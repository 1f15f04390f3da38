//! The mesh entries (docs/mesh.md): removals in wave 1 (the deregistrations they
//! are for wait for them: [`removal_blocks`]), additions in wave 5, cut down to the
//! services whose own writes succeeded. Each edit is merged into the entry as last read, and
//! written with check-and-set at that read's `ModifyIndex` (`cas=0` when the
//! entry does not exist and may be created). A miss or a lost answer reads the
//! entry again and merges again: the merge is idempotent, so a write that landed
//! merges to nothing, and a concurrent edit is kept.

use super::super::wire::{self, Answer, ConsulCall};
use super::super::{body_is_true, Call, Engine, Purpose};
use super::{norm, ExecPurpose, Execution, MESH_MAX_ROUNDS};
use crate::consul::Request;
use crate::engine::outcome::OpStatus;
use crate::mesh::{merge, Merged, MeshEdit, MeshItem};
use crate::plan::Operation;
use serde_json::Value;

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
pub(super) fn removal_blocks(exec: &Execution, op: &Operation) -> Option<(OpStatus, String)> {
    exec.ops.iter().enumerate().find_map(|(j, m)| {
        let edit = m.mesh.as_ref()?;
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

impl Engine {
    /// Starts the write of mesh entry operation `i`.
    pub(super) fn mesh_start(&mut self, i: usize) {
        let Some((op, edit)) = self
            .op(i)
            .and_then(|op| op.mesh.clone().map(|m| (op.clone(), m)))
        else {
            return;
        };
        // Only services whose own steps all succeeded are named.
        let done = |item: &MeshItem, this: &Engine| {
            let Some(exec) = this.exec.as_ref() else {
                return false;
            };
            exec.ops.iter().enumerate().all(|(j, o)| {
                o.mesh.is_some()
                    || o.service.name != item.name
                    || norm(o.service.partition.as_deref()) != norm(op.service.partition.as_deref())
                    || norm(o.service.namespace.as_deref()) != norm(item.namespace.as_deref())
                    || exec.status.get(j) == Some(&OpStatus::Ok)
            })
        };
        // Removals run first (wave 1): the deregistrations wait for them instead.
        let add: Vec<MeshItem> = edit.add.iter().filter(|m| done(m, self)).cloned().collect();
        let remove = edit.remove.clone();
        let held = edit.add.len() + edit.remove.len() - add.len() - remove.len();
        if add.is_empty() && remove.is_empty() {
            self.set_status(
                i,
                OpStatus::Skipped,
                Some("not run: the writes of the services it names did not complete".into()),
            );
            return;
        }
        if held > 0 {
            self.log(
                crate::config::LogLevel::Warn,
                "mesh entry: services whose writes did not complete are left out",
                &[
                    ("entry", Value::from(op.service.name.clone())),
                    ("leftOut", Value::from(held)),
                ],
            );
        }
        let edit = MeshEdit {
            add,
            remove,
            ..edit
        };
        if let Some(o) = self.exec.as_mut().and_then(|e| e.ops.get_mut(i)) {
            o.mesh = Some(edit.clone());
        }
        let observed = self
            .obs
            .mesh
            .iter()
            .find(|m| {
                m.kind == edit.kind
                    && norm(m.partition.as_deref()) == norm(op.service.partition.as_deref())
            })
            .and_then(|m| m.entry.clone());
        self.mesh_put(i, 0, observed.as_ref(), &edit);
    }

    /// Merges the edit into `entry` (as read) and writes it, or settles the operation.
    fn mesh_put(&mut self, i: usize, round: u32, entry: Option<&Value>, edit: &MeshEdit) {
        let Some(Request::Consul(req)) = self.op(i).map(|o| o.request.clone()) else {
            return;
        };
        match merge(entry, edit) {
            Merged::Unchanged => self.set_status(i, OpStatus::Ok, None),
            Merged::Missing => self.set_status(
                i,
                OpStatus::Conflict,
                Some("the entry no longer exists and may not be created; left as it is".into()),
            ),
            Merged::Unreadable(why) => self.set_status(
                i,
                OpStatus::Failed,
                Some(format!("the entry cannot be merged safely: {why}")),
            ),
            Merged::Write(body) => {
                let mut query = req.query.clone();
                query.insert("cas".into(), modify_index(entry).to_string());
                self.push(
                    Call::Consul(ConsulCall {
                        method: "PUT".into(),
                        path: "/v1/config".into(),
                        query,
                        body: Some(body),
                    }),
                    Purpose::Exec(ExecPurpose::MeshWrite { op: i, round }),
                );
            }
        }
    }

    /// Reads the entry again, to merge again.
    fn mesh_reread(&mut self, i: usize, round: u32, why: &str) {
        if round + 1 >= MESH_MAX_ROUNDS {
            self.set_status(
                i,
                OpStatus::Conflict,
                Some(format!(
                    "{why} {MESH_MAX_ROUNDS} times: left as it is; the next sync merges again"
                )),
            );
            return;
        }
        let Some(edit) = self.op(i).and_then(|o| o.mesh.clone()) else {
            return;
        };
        let partition = self.op(i).and_then(|o| o.service.partition.clone());
        let (path, query) = self.mesh_entry_path(edit.kind, &edit.name, partition.as_deref());
        self.consul_get(
            path,
            query,
            Purpose::Exec(ExecPurpose::MeshRead {
                op: i,
                round: round + 1,
            }),
        );
    }

    pub(super) fn on_mesh_write(
        &mut self,
        i: usize,
        round: u32,
        outcome: Result<(), (String, bool)>,
        answer: &Answer,
    ) {
        match outcome {
            // The answer was lost: whether it was applied is read back.
            Err((_, true)) => self.mesh_reread(i, round, "the answer was lost"),
            Err((message, _)) => self.set_status(i, OpStatus::Failed, Some(message)),
            Ok(()) if answer.status == Some(200) && body_is_true(answer) => {
                self.set_status(i, OpStatus::Ok, None)
            }
            Ok(()) if answer.status == Some(200) => self.mesh_reread(
                i,
                round,
                "check-and-set miss: the entry changed since it was read",
            ),
            Ok(()) => {
                let mut message = wire::status_message(answer);
                if answer.status == Some(403) {
                    message.push_str(" (writing mesh config entries needs mesh = \"write\" in the token's policy)");
                }
                self.set_status(i, OpStatus::Failed, Some(message));
            }
        }
    }

    pub(super) fn on_mesh_read(
        &mut self,
        i: usize,
        round: u32,
        outcome: Result<(), (String, bool)>,
        answer: &Answer,
    ) {
        if let Err((message, _)) = outcome {
            self.set_status(
                i,
                OpStatus::Failed,
                Some(format!("reading the entry again failed: {message}")),
            );
            return;
        }
        let entry: Option<Value> = match answer.status {
            Some(404) => None,
            Some(200) => match answer.body.as_deref().map(serde_json::from_str::<Value>) {
                Some(Ok(v)) => Some(v),
                _ => {
                    self.set_status(
                        i,
                        OpStatus::Failed,
                        Some("reading the entry again gave no JSON".into()),
                    );
                    return;
                }
            },
            _ => {
                let message = wire::status_message(answer);
                self.set_status(
                    i,
                    OpStatus::Failed,
                    Some(format!("reading the entry again failed: {message}")),
                );
                return;
            }
        };
        let Some(edit) = self.op(i).and_then(|o| o.mesh.clone()) else {
            return;
        };
        self.mesh_put(i, round, entry.as_ref(), &edit);
    }
}
