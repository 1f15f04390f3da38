//! A service's row of the plan: its change, its reason, and the steps it needs in
//! execution order (docs/contract.md §5.11), with their owned requests.

use super::key::Key;
use super::{Change, OperationKind};
use crate::config::Tier;
use crate::consul::{
    config_delete_request, config_entry_request, deregister_request, register_request, Request,
    ServiceKey, SsmRequest,
};
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
    /// A wanted service: write its entry (ARN, mode, payload passthrough), register
    /// it, write its extension data — each when needed.
    Wanted {
        entry: Option<(&'a str, InvocationMode, bool)>,
        register: bool,
        put: Option<Put<'a>>,
    },
    /// A service no function wants: deregister it (by service ID), delete its entry
    /// if it is ours, delete its extension data parameter if one is named.
    Deleted {
        service_id: &'a str,
        entry: bool,
        parameter: Option<String>,
    },
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
    Entry(&'r str, InvocationMode, bool),
    Register,
    Put(&'r Put<'r>),
    Deregister(&'r str),
    DeleteEntry,
    DeleteParameter(&'r str),
}

impl Step<'_> {
    /// What the step does.
    pub(super) fn kind(self) -> OperationKind {
        match self {
            Step::Entry(..) => OperationKind::UpsertConfigEntry,
            Step::Register => OperationKind::RegisterService,
            Step::Put(_) => OperationKind::PutExtensionData,
            Step::Deregister(_) => OperationKind::DeregisterService,
            Step::DeleteEntry => OperationKind::DeleteConfigEntry,
            Step::DeleteParameter(_) => OperationKind::DeleteExtensionData,
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
                entry.map(|(arn, mode, pass)| Step::Entry(arn, mode, pass)),
                register.then_some(Step::Register),
                put.as_ref().map(Step::Put),
            ],
            Work::Deleted {
                service_id,
                entry,
                parameter,
            } => [
                Some(Step::Deregister(service_id)),
                entry.then_some(Step::DeleteEntry),
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

    /// A step's request, owned.
    pub(super) fn owned_request(
        &self,
        step: Step<'_>,
        service: &ServiceKey,
        node: &str,
    ) -> Request {
        match step {
            Step::Entry(arn, mode, pass) => {
                Request::Consul(config_entry_request(service, arn, mode, pass))
            }
            Step::Register => Request::Consul(register_request(service, node)),
            Step::Deregister(service_id) => {
                Request::Consul(deregister_request(service, node, service_id))
            }
            Step::DeleteEntry => Request::Consul(config_delete_request(service)),
            Step::Put(put) => Request::Ssm(SsmRequest {
                action: "PutParameter".into(),
                name: put.name.clone(),
                tier: put.tier,
                key_id: put.key_id.map(str::to_owned),
            }),
            Step::DeleteParameter(name) => Request::Ssm(SsmRequest {
                action: "DeleteParameter".into(),
                name: name.to_owned(),
                tier: None,
                key_id: None,
            }),
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
