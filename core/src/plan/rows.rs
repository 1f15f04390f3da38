//! A service's row of the plan: its change, its reason, and the steps it needs in
//! execution order (docs/contract.md §5.11), as decisions.

use super::key::Key;
use super::operation::{Action, LambdaArgs, Operation, OperationKind, ParameterWrite};
use super::Change;
use crate::config::Tier;
use crate::consul::ServiceKey;
use crate::tags::InvocationMode;
use std::borrow::Cow;

/// Why a service changes; the common sentences are written out only when the
/// plan is.
pub(super) enum Reason<'a> {
    /// A text of its own.
    Text(Cow<'a, str>),
    /// `function NAME is enabled and not registered`.
    NotRegistered(&'a str),
    /// `function NAME no longer wants this service (…)`.
    Unwanted(&'a str),
    /// `function NAME no longer exists`.
    Gone(&'a str),
}

impl Reason<'_> {
    /// The text as a fixed start, the part that varies, and a fixed end: the one
    /// place the common sentences are spelled (the fixed parts need no JSON escapes).
    pub(super) fn parts(&self) -> (&'static str, &str, &'static str) {
        match self {
            Reason::Text(t) => ("", t, ""),
            Reason::NotRegistered(name) => ("function ", name, " is enabled and not registered"),
            Reason::Unwanted(name) => (
                "function ",
                name,
                " no longer wants this service (disabled, untagged, alias removed, or moved)",
            ),
            Reason::Gone(name) => ("function ", name, " no longer exists"),
        }
    }

    /// The length of the text (without escapes).
    pub(super) fn len(&self) -> usize {
        let (before, part, after) = self.parts();
        before.len() + part.len() + after.len()
    }
}

impl std::fmt::Display for Reason<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (before, part, after) = self.parts();
        f.write_str(before)?;
        f.write_str(part)?;
        f.write_str(after)
    }
}

/// One service of the plan: its row in the table and the steps it needs.
pub(super) struct Row<'a> {
    pub(super) key: Key<'a>,
    pub(super) change: Change,
    pub(super) function: Option<Cow<'a, str>>,
    pub(super) reason: Reason<'a>,
    pub(super) confirm: Option<String>,
    pub(super) work: Work<'a>,
}

/// The steps of one service.
pub(super) enum Work<'a> {
    /// A wanted service: write its entry, register it, write its extension data —
    /// each when needed.
    Wanted {
        entry: Option<EntryWrite<'a>>,
        register: bool,
        put: Option<Put<'a>>,
    },
    /// A service no function wants: deregister it (by service ID, at the observed
    /// index), delete its entry if it is ours, delete its extension data parameter
    /// if one is named.
    Deleted {
        service_id: &'a str,
        index: Option<u64>,
        entry: Option<EntryDelete>,
        parameter: Option<String>,
    },
}

/// A service-defaults entry to write: the Lambda extension's arguments, and the
/// entry's index as observed (`0`: absent).
pub(super) struct EntryWrite<'a> {
    pub(super) arn: &'a str,
    pub(super) mode: InvocationMode,
    pub(super) payload_passthrough: bool,
    pub(super) index: Option<u64>,
}

/// A service-defaults entry of ours to delete, at its observed index.
#[derive(Clone, Copy)]
pub(super) struct EntryDelete {
    pub(super) index: Option<u64>,
}

/// Extension data to write.
pub(super) struct Put<'a> {
    pub(super) name: String,
    pub(super) tier: Option<Tier>,
    pub(super) key_id: Option<&'a str>,
    pub(super) serial: &'a str,
}

/// One operation of a row.
#[derive(Clone, Copy)]
pub(super) enum Step<'r> {
    Entry(&'r EntryWrite<'r>),
    Register,
    Put(&'r Put<'r>),
    Deregister(&'r str, Option<u64>),
    DeleteEntry(EntryDelete),
    DeleteParameter(&'r str),
}

impl Step<'_> {
    /// What the step does.
    pub(super) fn kind(self) -> OperationKind {
        match self {
            Step::Entry(..) => OperationKind::UpsertConfigEntry,
            Step::Register => OperationKind::RegisterService,
            Step::Put(_) => OperationKind::PutExtensionData,
            Step::Deregister(..) => OperationKind::DeregisterService,
            Step::DeleteEntry(_) => OperationKind::DeleteConfigEntry,
            Step::DeleteParameter(_) => OperationKind::DeleteExtensionData,
        }
    }

    /// The index the step's write is conditional on.
    pub(super) fn index(self) -> Option<u64> {
        match self {
            Step::Entry(e) => e.index,
            // A registration creates the instance named after the service.
            Step::Register => Some(0),
            Step::Deregister(_, index) => index,
            Step::DeleteEntry(e) => e.index,
            Step::Put(_) | Step::DeleteParameter(_) => None,
        }
    }

    /// What the step does, with the content it wants.
    pub(super) fn action(self) -> Action {
        match self {
            Step::Entry(e) => Action::UpsertConfigEntry(LambdaArgs {
                arn: e.arn.to_owned(),
                invocation_mode: e.mode,
                payload_passthrough: e.payload_passthrough,
            }),
            Step::Register => Action::RegisterService,
            Step::Put(p) => Action::PutExtensionData(ParameterWrite {
                parameter: p.name.clone(),
                tier: p.tier,
                key_id: p.key_id.map(str::to_owned),
                leaf_serial: p.serial.to_owned(),
            }),
            Step::Deregister(id, _) => Action::DeregisterService {
                service_id: id.to_owned(),
            },
            Step::DeleteEntry(_) => Action::DeleteConfigEntry,
            Step::DeleteParameter(name) => Action::DeleteExtensionData {
                parameter: name.to_owned(),
            },
        }
    }
}

impl<'a> Row<'a> {
    /// The row's operations, in execution (kind) order.
    pub(super) fn steps(&self) -> impl Iterator<Item = Step<'_>> {
        let steps = match &self.work {
            Work::Wanted {
                entry,
                register,
                put,
            } => [
                entry.as_ref().map(Step::Entry),
                register.then_some(Step::Register),
                put.as_ref().map(Step::Put),
            ],
            Work::Deleted {
                service_id,
                index,
                entry,
                parameter,
            } => [
                Some(Step::Deregister(service_id, *index)),
                entry.map(Step::DeleteEntry),
                parameter.as_deref().map(Step::DeleteParameter),
            ],
        };
        steps.into_iter().flatten()
    }

    /// Whether the row has any operation.
    pub(super) fn has_steps(&self) -> bool {
        self.steps().next().is_some()
    }

    /// Whether the row registers its service in the catalog.
    pub(super) fn registers(&self) -> bool {
        matches!(self.work, Work::Wanted { register: true, .. })
    }

    /// A step as an owned [`Operation`] (`service`, `reason` and `function` given
    /// once for the row's steps).
    pub(super) fn operation(
        &self,
        step: Step<'_>,
        service: &ServiceKey,
        reason: &str,
        function: Option<&str>,
    ) -> Operation {
        Operation {
            action: step.action(),
            service: service.clone(),
            change: self.change,
            reason: reason.to_owned(),
            function: function.map(str::to_owned),
            confirm_absent: self.confirm.clone(),
            index: step.index(),
        }
    }
}

/// The rows of a plan: the wanted services, then the deregistered ones, each part
/// sorted by key (no key in both), and where each deregistered one goes among the
/// wanted ones.
#[derive(Default)]
pub(super) struct Rows<'a> {
    pub(super) rows: Vec<Row<'a>>,
    wanted: usize,
    /// For each deregistered row, how many wanted rows come before it.
    places: Vec<usize>,
}

impl<'a> Rows<'a> {
    /// `wanted` and `deleted` are each sorted by key.
    pub(super) fn new(mut wanted: Vec<Row<'a>>, mut deleted: Vec<Row<'a>>) -> Self {
        let places = deleted
            .iter()
            .map(|d| wanted.partition_point(|w| w.key < d.key))
            .collect();
        let count = wanted.len();
        wanted.reserve_exact(deleted.len());
        wanted.append(&mut deleted);
        Rows {
            rows: wanted,
            wanted: count,
            places,
        }
    }

    /// The rows in service order.
    pub(super) fn ordered(&self) -> impl Iterator<Item = &Row<'a>> {
        let (wanted, deleted) = self
            .rows
            .split_at_checked(self.wanted)
            .unwrap_or((&self.rows, &[]));
        let mut deleted = deleted.iter().zip(&self.places).peekable();
        let mut wanted = wanted.iter().enumerate();
        let mut next_wanted = wanted.next();
        std::iter::from_fn(move || match (next_wanted, deleted.peek()) {
            (Some((i, _)), Some((_, &place))) if place <= i => deleted.next().map(|(d, _)| d),
            (Some((_, w)), _) => {
                next_wanted = wanted.next();
                Some(w)
            }
            (None, _) => deleted.next().map(|(d, _)| d),
        })
    }
}
