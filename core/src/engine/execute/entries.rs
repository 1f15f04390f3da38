//! Waves 1, 3 and 4: service-defaults entries written and deleted with
//! check-and-set, read back when an answer was lost; Parameter Store writes; and
//! the single catalog writes of an agent without `/v1/txn`.

use super::{Executing, Write};
use crate::consul::EntryView;
use crate::consul::ServiceDefaults;
use crate::engine::io::{parse_body, Io};
use crate::engine::outcome::OpStatus;
use crate::engine::retry::{aws_error_text, status_text, CallError, Reply, MAX_ATTEMPTS};
use crate::lower::{ConsulRequest, Lowered, Material, Request};
use crate::plan::{Action, Operation};

const MISS: &str = "check-and-set miss: the entry changed since it was read; left as it is";

impl Executing {
    /// Sends operation `i`'s lowered request for `purpose`, or settles it when
    /// there is nothing to send.
    pub(super) fn send_lowered(
        &mut self,
        io: &mut Io,
        i: usize,
        material: Material<'_>,
        purpose: Write,
    ) {
        let Some(op) = self.op(i) else { return };
        let lowered = self.lowering().operation(op, material);
        self.dispatch(io, i, lowered, purpose);
    }

    /// Sends a lowered request for operation `i`, or settles it.
    pub(super) fn dispatch(&mut self, io: &mut Io, i: usize, lowered: Lowered, purpose: Write) {
        match lowered {
            Lowered::Send(request) => self.calls.push(request, purpose),
            Lowered::AlreadyDone => self.set_status(io, i, OpStatus::Ok, None),
            Lowered::Absent => self.set_status(
                io,
                i,
                OpStatus::Conflict,
                Some("the entry no longer exists and may not be created; left as it is".into()),
            ),
            Lowered::Refused(why) => {
                self.set_status(io, i, OpStatus::Failed, Some(format!("refused: {why}")))
            }
        }
    }

    pub(super) fn entry_write(&mut self, io: &mut Io, i: usize, ambiguous: bool) {
        self.send_lowered(io, i, Material::None, Write::Entry { op: i, ambiguous });
    }

    pub(super) fn on_entry(
        &mut self,
        io: &mut Io,
        i: usize,
        ambiguous: bool,
        attempt: u32,
        request: Request,
        outcome: Result<Reply, CallError>,
    ) {
        match outcome {
            Err(CallError::Unreachable(_)) if attempt < MAX_ATTEMPTS => {
                // The answer was lost: send again; a miss then is checked by a read.
                let wait = io.jitter.backoff(attempt);
                let purpose = Write::Entry {
                    op: i,
                    ambiguous: true,
                };
                self.calls
                    .push_after(io, request, purpose, attempt + 1, wait);
            }
            Err(e) => self.set_status(io, i, OpStatus::Failed, Some(e.to_string())),
            Ok(Reply::Http(h)) if h.status == 200 => {
                let body = h.body.trim();
                // `true`: written; `{}`: an unconditional delete.
                if body == "true" || body == "{}" {
                    self.set_status(io, i, OpStatus::Ok, None);
                } else if ambiguous {
                    self.entry_check(i);
                } else {
                    self.set_status(io, i, OpStatus::Conflict, Some(MISS.into()));
                }
            }
            Ok(Reply::Http(h)) => {
                let message = status_text(h.status, &h.body);
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

    fn entry_check(&mut self, i: usize) {
        let Some(op) = self.op(i) else { return };
        let request = ConsulRequest::ServiceDefaults {
            key: op.service.clone(),
        };
        self.calls
            .push(Request::Consul(request), Write::EntryCheck { op: i });
    }

    pub(super) fn on_entry_check(
        &mut self,
        io: &mut Io,
        i: usize,
        outcome: Result<Reply, CallError>,
    ) {
        let Some(op) = self.op(i) else { return };
        let applied = match (&op.action, outcome) {
            (_, Err(e)) => {
                let why = format!("answer lost, and the check failed: {e}");
                self.set_status(io, i, OpStatus::Failed, Some(why));
                return;
            }
            (Action::DeleteConfigEntry, Ok(Reply::Http(h))) => h.status == 404,
            (Action::UpsertConfigEntry(args), Ok(Reply::Http(h))) if h.status == 200 => {
                let now: Option<ServiceDefaults> = parse_body(&h.body).ok();
                match now.map(|e| e.view()) {
                    Some(EntryView::Lambda(l)) => {
                        l.arn.as_deref() == Some(args.arn.as_str())
                            && l.mode == args.invocation_mode
                            && l.payload_passthrough == args.payload_passthrough
                            && l.canonical
                    }
                    _ => false,
                }
            }
            _ => false,
        };
        if applied {
            self.set_status(io, i, OpStatus::Ok, None);
        } else {
            self.set_status(io, i, OpStatus::Conflict, Some(MISS.into()));
        }
    }

    /// A Parameter Store write: extension data built from this sync's leaf and roots.
    pub(super) fn parameter_write(&mut self, io: &mut Io, i: usize) {
        let Some(op) = self.op(i) else { return };
        let material = match &op.action {
            Action::PutExtensionData(w) => Material::ExtensionData {
                leaf: self.leaf_of(op, &w.leaf_serial),
                roots: self.material.roots.as_ref(),
                peers: &self.material.peers,
                datacenter: Some(self.material.local_dc.as_str()).filter(|d| !d.is_empty()),
            },
            _ => Material::None,
        };
        let lowered = self.lowering().operation(op, material);
        self.dispatch(io, i, lowered, Write::Parameter { op: i });
    }

    /// The leaf read for `op`'s service (of its scope in Enterprise), of `serial`.
    fn leaf_of(&self, op: &Operation, serial: &str) -> Option<&crate::consul::Leaf> {
        use super::norm;
        self.material.leaves.iter().find(|l| {
            l.service == op.service.name
                && l.serial_number == serial
                && (!self.enterprise
                    || (norm(l.namespace.as_deref()) == norm(op.service.namespace.as_deref())
                        && norm(l.partition.as_deref()) == norm(op.service.partition.as_deref())))
        })
    }

    pub(super) fn on_parameter(
        &mut self,
        io: &mut Io,
        i: usize,
        outcome: Result<Reply, CallError>,
    ) {
        match outcome {
            Ok(Reply::Aws(_)) => self.set_status(io, i, OpStatus::Ok, None),
            // Deleting what is already gone is done.
            Ok(Reply::AwsError(e)) if e.code == "ParameterNotFound" => {
                self.set_status(io, i, OpStatus::Ok, None)
            }
            Ok(Reply::AwsError(e)) => {
                self.set_status(io, i, OpStatus::Failed, Some(aws_error_text(&e)))
            }
            Ok(Reply::Http(_)) => self.set_status(
                io,
                i,
                OpStatus::Failed,
                Some("an answer of the wrong kind".into()),
            ),
            Err(e) => self.set_status(io, i, OpStatus::Failed, Some(e.to_string())),
        }
    }

    pub(super) fn single(&mut self, io: &mut Io, i: usize) {
        self.send_lowered(io, i, Material::None, Write::Single { op: i });
    }

    pub(super) fn on_single(&mut self, io: &mut Io, i: usize, outcome: Result<Reply, CallError>) {
        match outcome {
            Ok(Reply::Http(h)) if h.status == 200 => self.set_status(io, i, OpStatus::Ok, None),
            Ok(Reply::Http(h)) => {
                let message = status_text(h.status, &h.body);
                self.set_status(io, i, OpStatus::Failed, Some(message));
            }
            Ok(_) => self.set_status(
                io,
                i,
                OpStatus::Failed,
                Some("an answer of the wrong kind".into()),
            ),
            Err(e) => self.set_status(io, i, OpStatus::Failed, Some(e.to_string())),
        }
    }
}
