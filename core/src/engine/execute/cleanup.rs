//! Races clean up (docs/contract.md §7.3): a service-defaults entry this sync
//! created for a service whose registration then conflicted or was refused
//! would send that name's traffic to the function although the name is someone
//! else's. After the catalog wave, each such entry is read again and, when it
//! still is exactly what this sync wrote, deleted with check-and-set at the index
//! read (`PUT /v1/config` returns none): a newer write by anyone else stands.

use super::{Executing, Write};
use crate::config::LogLevel;
use crate::consul::{EntryView, ServiceDefaults, ServiceKey};
use crate::engine::io::{parse_body, Io};
use crate::engine::outcome::OpStatus;
use crate::engine::retry::{CallError, Reply};
use crate::lower::{ConsulRequest, Lowered, Material, Request};
use crate::plan::{Action, Operation, OperationKind};
use std::collections::BTreeSet;

impl Executing {
    /// The entries this sync created whose service's registration did not succeed
    /// (one pass over the operations for the registrations that failed, one for the
    /// entries: a sync of 25,000 services compared every pair before).
    fn orphaned_entries(&self) -> Vec<usize> {
        let ops = &self.plan.operations;
        let refused: BTreeSet<&ServiceKey> = ops
            .iter()
            .enumerate()
            .filter(|(j, op)| {
                op.kind() == OperationKind::RegisterService
                    && matches!(
                        self.status.get(*j),
                        Some(OpStatus::Conflict | OpStatus::Failed)
                    )
            })
            .map(|(_, op)| &op.service)
            .collect();
        if refused.is_empty() {
            return Vec::new();
        }
        ops.iter()
            .enumerate()
            .filter(|(i, op)| {
                matches!(op.action, Action::UpsertConfigEntry(_))
                    && op.index == Some(0)
                    && self.status.get(*i) == Some(&OpStatus::Ok)
                    && refused.contains(&op.service)
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Reads each entry to clean up; `true` when any was asked for.
    pub(super) fn start_cleanup(&mut self) -> bool {
        let orphans = self.orphaned_entries();
        for &i in &orphans {
            let Some(op) = self.op(i) else { continue };
            let request = ConsulRequest::ServiceDefaults {
                key: op.service.clone(),
            };
            self.calls
                .push(Request::Consul(request), Write::CleanupRead { op: i });
        }
        !orphans.is_empty()
    }

    pub(super) fn on_cleanup_read(
        &mut self,
        io: &mut Io,
        i: usize,
        outcome: Result<Reply, CallError>,
    ) {
        let Some(op) = self.op(i) else { return };
        let Action::UpsertConfigEntry(args) = &op.action else {
            return;
        };
        let entry: Option<ServiceDefaults> = match outcome {
            Ok(Reply::Http(h)) if h.status == 200 => parse_body(&h.body).ok(),
            _ => None,
        };
        let ours = entry.as_ref().and_then(|e| match e.view() {
            EntryView::Lambda(l)
                if l.arn.as_deref() == Some(args.arn.as_str())
                    && l.mode == args.invocation_mode
                    && l.payload_passthrough == args.payload_passthrough
                    && l.canonical =>
            {
                e.modify_index
            }
            _ => None,
        });
        let Some(index) = ours else {
            io.log(
                LogLevel::Warn,
                "an entry written for a service whose registration did not complete was changed by someone else since; it stands",
                [("service", Some(op.service.name.clone().into()))],
            );
            return;
        };
        let delete = Operation {
            action: Action::DeleteConfigEntry,
            index: Some(index),
            ..op.clone()
        };
        if let Lowered::Send(request) = self.lowering().operation(&delete, Material::None) {
            self.calls.push(request, Write::Cleanup { op: i });
        }
    }

    pub(super) fn on_cleanup(&mut self, io: &mut Io, i: usize, outcome: Result<Reply, CallError>) {
        let Some(op) = self.op(i) else { return };
        let removed =
            matches!(&outcome, Ok(Reply::Http(h)) if h.status == 200 && h.body.trim() == "true");
        let msg = if removed {
            "an entry written for a service whose registration did not complete was removed again"
        } else {
            "an entry written for a service whose registration did not complete could not be removed again (changed meanwhile, or refused); the next sync sees it"
        };
        io.log(
            if removed {
                LogLevel::Info
            } else {
                LogLevel::Warn
            },
            msg,
            [("service", Some(op.service.name.clone().into()))],
        );
    }
}
