//! Lowering: the one place where a plan's decision ([`Operation`]) becomes the
//! request that carries it out ([`Request`]), and where every request is spelt on
//! the wire ([`request`]). The executor, the plan display and a reviewed plan all
//! go through [`Lowering::operation`]; nothing else builds a path or a body.

#[cfg(feature = "sigv4")]
pub mod aws;
pub mod preview;
pub mod request;

use crate::consul::{extension_data_parameter, CaRoots, ExtensionDataInput, Leaf, PeerData};
use crate::mesh::{merge, Merged};
use crate::plan::{Action, Operation, OperationKind};
pub use preview::{lower_operation, plan_requests, LowerInput};
pub use request::{
    path_segment, AuthorizeItem, AwsRequest, Body, ConsulRequest, ConsulWire, Outgoing, Query,
    RawJson, Request, ScopeQuery, SecretKind, TxnOp,
};
use serde_json::Value;

/// What lowering needs beyond the operation: the registrator's node.
#[derive(Debug, Clone, Copy)]
pub struct Lowering<'a> {
    /// `NODE_NAME`.
    pub node: &'a str,
}

/// What an operation's request is made from at the moment it is sent.
#[derive(Debug, Clone, Copy, Default)]
pub enum Material<'a> {
    /// Nothing more (every operation but the two below).
    #[default]
    None,
    /// Extension data: the leaf certificate and the CA roots read in this sync.
    ExtensionData {
        /// The leaf of the operation's service, of the serial it names.
        leaf: Option<&'a Leaf>,
        /// The CA roots.
        roots: Option<&'a CaRoots>,
        /// The cluster peers.
        peers: &'a [PeerData],
        /// The registrator's datacenter (the default of upstreams without one).
        datacenter: Option<&'a str>,
    },
    /// A mesh entry as last read (`None`: absent), and its `ModifyIndex`.
    MeshEntry {
        /// The entry.
        entry: Option<&'a Value>,
        /// Its index (`0` when absent).
        index: u64,
    },
}

/// What an operation lowers to.
#[derive(Debug, Clone, PartialEq)]
pub enum Lowered {
    /// Send this request.
    Send(Request),
    /// Nothing to send: the object already is as the operation wants (a mesh entry
    /// that holds the edit).
    AlreadyDone,
    /// The object is gone and may not be created (a mesh entry deleted meanwhile).
    Absent,
    /// The operation cannot be carried out as it stands, and why.
    Refused(String),
}

/// Whether `name` can be a path segment: not empty, not only dots (some URL
/// parsers read an encoded `..` as `..`).
pub fn is_segment(name: &str) -> bool {
    !name.is_empty() && !name.bytes().all(|b| b == b'.')
}

impl Lowering<'_> {
    /// The request that carries out `op` (catalog operations: the single request an
    /// agent without `/v1/txn` takes; the engine batches them with [`Lowering::txn_op`]).
    pub fn operation(&self, op: &Operation, material: Material<'_>) -> Lowered {
        let key = op.service.clone();
        if !is_segment(&key.name) {
            return Lowered::Refused("the name cannot be a path segment".into());
        }
        let consul = |r: ConsulRequest| Lowered::Send(Request::Consul(r));
        match &op.action {
            Action::UpsertConfigEntry(args) => consul(ConsulRequest::PutServiceDefaults {
                key,
                args: args.clone(),
                cas: op.index,
            }),
            Action::DeleteConfigEntry => {
                consul(ConsulRequest::DeleteServiceDefaults { key, cas: op.index })
            }
            Action::RegisterService => consul(ConsulRequest::Register {
                key,
                node: self.node.to_owned(),
            }),
            Action::DeregisterService { service_id } => consul(ConsulRequest::Deregister {
                key,
                node: self.node.to_owned(),
                service_id: service_id.clone(),
            }),
            Action::DeleteExtensionData { parameter } => {
                Lowered::Send(Request::Aws(AwsRequest::DeleteParameter {
                    name: parameter.clone(),
                }))
            }
            Action::PutExtensionData(w) => {
                let Material::ExtensionData {
                    leaf: Some(leaf),
                    roots: Some(roots),
                    peers,
                    datacenter,
                } = material
                else {
                    return Lowered::Refused(
                        "no leaf certificate or CA roots were read for this service".into(),
                    );
                };
                let input = ExtensionDataInput {
                    name: w.parameter.clone(),
                    tier: w.tier,
                    key_id: w.key_id.clone(),
                    leaf: leaf.clone(),
                    roots: roots.clone(),
                    datacenter: datacenter.map(str::to_owned),
                    peers: peers.to_vec(),
                };
                match extension_data_parameter(&input) {
                    Ok(put) => Lowered::Send(Request::Aws(AwsRequest::PutParameter(Box::new(put)))),
                    Err(f) => Lowered::Refused(f.message),
                }
            }
            Action::UpdateMeshEntry(edit) => {
                let Material::MeshEntry { entry, index } = material else {
                    return Lowered::Refused("the entry was not read".into());
                };
                match merge(entry, edit, self.node) {
                    Merged::Unchanged => Lowered::AlreadyDone,
                    Merged::Missing => Lowered::Absent,
                    Merged::Unreadable(why) => {
                        Lowered::Refused(format!("the entry cannot be merged safely: {why}"))
                    }
                    Merged::Write(body) => match raw(&body) {
                        Some(entry) => consul(ConsulRequest::PutConfigEntry {
                            partition: op.service.partition.clone(),
                            cas: index,
                            entry,
                        }),
                        None => Lowered::Refused("the merged entry cannot be written".into()),
                    },
                }
            }
        }
    }

    /// The transaction item of a catalog operation.
    pub fn txn_op(&self, op: &Operation) -> Option<TxnOp> {
        if !is_segment(&op.service.name) {
            return None;
        }
        match &op.action {
            Action::RegisterService => Some(TxnOp::Register {
                node: self.node.to_owned(),
                key: op.service.clone(),
                index: op.index,
            }),
            Action::DeregisterService { service_id } => Some(TxnOp::Deregister {
                node: self.node.to_owned(),
                key: op.service.clone(),
                service_id: service_id.clone(),
                index: op.index,
            }),
            _ => None,
        }
    }

    /// What `op` sends, in one line safe to print: `PUT /v1/config?cas=0&dc=dc1`,
    /// `PUT /v1/txn?dc=dc1: register orders (cas 0)`, `ssm PutParameter /p/default/default/f`.
    pub fn describe(&self, op: &Operation) -> String {
        let line = |w: ConsulWire<'_>| {
            let q: Vec<String> = w.query.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if q.is_empty() {
                format!("{} {}", w.method, w.path)
            } else {
                format!("{} {}?{}", w.method, w.path, q.join("&"))
            }
        };
        let cas = |i: Option<u64>| i.map(|i| format!(" (cas {i})")).unwrap_or_default();
        match &op.action {
            Action::RegisterService | Action::DeregisterService { .. } => {
                let verb = if op.kind() == OperationKind::RegisterService {
                    "register"
                } else {
                    "deregister"
                };
                let txn = ConsulRequest::Txn {
                    dc: op.service.datacenter.clone().unwrap_or_default(),
                    partition: op.service.partition.clone(),
                    ops: Vec::new(),
                };
                format!(
                    "{}: {verb} {}{}",
                    line(txn.wire()),
                    op.service.name,
                    cas(op.index)
                )
            }
            Action::PutExtensionData(w) => format!("ssm PutParameter {}", w.parameter),
            Action::DeleteExtensionData { parameter } => format!("ssm DeleteParameter {parameter}"),
            Action::UpdateMeshEntry(edit) => {
                let put = ConsulRequest::PutConfigEntry {
                    partition: op.service.partition.clone(),
                    cas: op.index.unwrap_or(0),
                    entry: RawEmpty::value(),
                };
                format!(
                    "{} ({} {}, merged)",
                    line(put.wire()),
                    edit.kind.consul_kind(),
                    edit.name
                )
            }
            _ => match self.operation(op, Material::None) {
                Lowered::Send(Request::Consul(c)) => line(c.wire()),
                Lowered::Send(r) => r.describe(),
                Lowered::AlreadyDone | Lowered::Absent | Lowered::Refused(_) => {
                    op.kind().as_str().to_owned()
                }
            },
        }
    }
}

/// A JSON value as raw JSON text.
fn raw(v: &Value) -> Option<RawJson> {
    serde_json::value::to_raw_value(v).ok().map(RawJson)
}

/// An empty JSON object, for requests built only to be described.
struct RawEmpty;

impl RawEmpty {
    fn value() -> RawJson {
        RawJson(
            serde_json::value::RawValue::from_string("{}".to_owned())
                .unwrap_or_else(|_| Box::<serde_json::value::RawValue>::default()),
        )
    }
}
