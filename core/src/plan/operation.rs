//! A plan's operations are decisions, not requests: each names what it does
//! ([`Action`]: its kind and the content it wants), the object it concerns (the
//! service key: scope and name) and the index it observed — never a method, a
//! path or a body. [`crate::lower`] is the one place that turns an operation into
//! a request.
//!
//! The JSON shape is flat (`{"kind": "upsertConfigEntry", "service": …, "entry":
//! …}`) and read strictly: an unknown field, a content field of another kind or a
//! missing one is an error, so a plan file cannot carry anything an operation of
//! its kind would not.

use super::Change;
use crate::config::Tier;
use crate::consul::ServiceKey;
use crate::mesh::{MeshEdit, MeshEntryKind};
use crate::tags::InvocationMode;
use serde::{Deserialize, Serialize};

/// What one operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum OperationKind {
    /// Write the service-defaults entry that invokes the function.
    UpsertConfigEntry,
    /// Register the service on the registrator's node.
    RegisterService,
    /// Write the service's extension data parameter.
    PutExtensionData,
    /// Deregister the service from the registrator's node.
    DeregisterService,
    /// Delete the service-defaults entry.
    DeleteConfigEntry,
    /// Delete the service's extension data parameter.
    DeleteExtensionData,
    /// Merge the edit into the `terminating-gateway` entry.
    UpdateTerminatingGateway,
    /// Merge the edit into the `exported-services` entry.
    UpdateExportedServices,
}

impl OperationKind {
    /// The JSON name.
    pub fn as_str(self) -> &'static str {
        match self {
            OperationKind::UpsertConfigEntry => "upsertConfigEntry",
            OperationKind::RegisterService => "registerService",
            OperationKind::PutExtensionData => "putExtensionData",
            OperationKind::DeregisterService => "deregisterService",
            OperationKind::DeleteConfigEntry => "deleteConfigEntry",
            OperationKind::DeleteExtensionData => "deleteExtensionData",
            OperationKind::UpdateTerminatingGateway => "updateTerminatingGateway",
            OperationKind::UpdateExportedServices => "updateExportedServices",
        }
    }

    /// Whether the operation changes the catalog (written in transactions).
    pub fn is_catalog(self) -> bool {
        matches!(
            self,
            OperationKind::RegisterService | OperationKind::DeregisterService
        )
    }
}

/// The Lambda extension's arguments a service-defaults entry is written with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LambdaArgs {
    /// The function's ARN (with `:alias` for an alias service).
    pub arn: String,
    /// As written to Consul: `synchronous` or `asynchronous` (lower case: Consul's
    /// extension is asynchronous only for exactly `asynchronous`).
    #[serde(with = "mode")]
    #[cfg_attr(feature = "schema", schemars(with = "ExtensionMode"))]
    pub invocation_mode: InvocationMode,
    /// Whether the payload is passed through as is.
    pub payload_passthrough: bool,
}

/// An invocation mode as the Lambda extension reads it.
#[cfg(feature = "schema")]
#[derive(schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum ExtensionMode {
    Synchronous,
    Asynchronous,
}

mod mode {
    use crate::tags::InvocationMode;
    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(m: &InvocationMode, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(m.extension_value())
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<InvocationMode, D::Error> {
        match <std::borrow::Cow<'de, str>>::deserialize(d)?.as_ref() {
            "synchronous" => Ok(InvocationMode::Synchronous),
            "asynchronous" => Ok(InvocationMode::Asynchronous),
            other => Err(serde::de::Error::invalid_value(
                serde::de::Unexpected::Str(other),
                &"synchronous or asynchronous",
            )),
        }
    }
}

/// Where a service's extension data is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ParameterWrite {
    /// The parameter name (`PREFIX/partition/namespace/service`).
    pub parameter: String,
    /// The tier for values over 4096 bytes (`CONSUL_EXTENSION_DATA_TIER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// The customer KMS key (`CONSUL_EXTENSION_DATA_KMS_KEY_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
    /// The serial of the leaf certificate to store.
    pub leaf_serial: String,
}

/// What an operation does, with the content it wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Write the service-defaults entry with these arguments.
    UpsertConfigEntry(LambdaArgs),
    /// Register the service (named after its key) on the registrator's node.
    RegisterService,
    /// Write the extension data.
    PutExtensionData(ParameterWrite),
    /// Deregister the instance with this service ID.
    DeregisterService {
        /// The observed instance's ID.
        service_id: String,
    },
    /// Delete the service-defaults entry.
    DeleteConfigEntry,
    /// Delete the extension data parameter.
    DeleteExtensionData {
        /// The parameter name.
        parameter: String,
    },
    /// Merge this edit into the mesh entry it names.
    UpdateMeshEntry(MeshEdit),
}

/// One operation of a plan: a decision about one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// What it does, with the content it wants.
    pub action: Action,
    /// The service it concerns (for a mesh entry: the entry's name and partition).
    pub service: ServiceKey,
    /// The service's change.
    pub change: Change,
    /// Why.
    pub reason: String,
    /// The function (ARN) the service invokes or belonged to, when known.
    pub function: Option<String>,
    /// When set, run only after `ListTags` says this function does not exist.
    pub confirm_absent: Option<String>,
    /// The `ModifyIndex` of the object as observed: the write is check-and-set at it
    /// (`0`: the object was absent, so create only). `None`: no index applies
    /// (Parameter Store) or none was observed.
    pub index: Option<u64>,
}

impl Operation {
    /// What the operation does.
    pub fn kind(&self) -> OperationKind {
        match &self.action {
            Action::UpsertConfigEntry(_) => OperationKind::UpsertConfigEntry,
            Action::RegisterService => OperationKind::RegisterService,
            Action::PutExtensionData(_) => OperationKind::PutExtensionData,
            Action::DeregisterService { .. } => OperationKind::DeregisterService,
            Action::DeleteConfigEntry => OperationKind::DeleteConfigEntry,
            Action::DeleteExtensionData { .. } => OperationKind::DeleteExtensionData,
            Action::UpdateMeshEntry(edit) => match edit.kind {
                MeshEntryKind::TerminatingGateway => OperationKind::UpdateTerminatingGateway,
                MeshEntryKind::ExportedServices => OperationKind::UpdateExportedServices,
            },
        }
    }

    /// The mesh edit, for a mesh entry operation.
    pub fn mesh(&self) -> Option<&MeshEdit> {
        match &self.action {
            Action::UpdateMeshEntry(edit) => Some(edit),
            _ => None,
        }
    }

    /// Whether this is a mesh entry write that only removes items (it runs before
    /// every service's operations, and the deregistrations it is for wait for it).
    pub fn runs_first(&self) -> bool {
        self.mesh().is_some_and(|m| m.add.is_empty())
    }

    /// The same decision: kind, object and content (not the reason, the change or
    /// the confirmation, which say why and when).
    pub fn same_decision(&self, other: &Operation) -> bool {
        self.action == other.action
            && self.service == other.service
            && self.function == other.function
            && self.index == other.index
    }
}

/// The flat JSON form of an [`Operation`].
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OperationJson {
    kind: OperationKind,
    service: ServiceKey,
    change: Change,
    reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    confirm_absent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    index: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entry: Option<LambdaArgs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    parameter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tier: Option<Tier>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    leaf_serial: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mesh: Option<MeshEdit>,
}

impl Serialize for Operation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut json = OperationJson {
            kind: self.kind(),
            service: self.service.clone(),
            change: self.change,
            reason: self.reason.clone(),
            function: self.function.clone(),
            confirm_absent: self.confirm_absent.clone(),
            index: self.index,
            entry: None,
            service_id: None,
            parameter: None,
            tier: None,
            key_id: None,
            leaf_serial: None,
            mesh: None,
        };
        match &self.action {
            Action::UpsertConfigEntry(args) => json.entry = Some(args.clone()),
            Action::RegisterService | Action::DeleteConfigEntry => {}
            Action::PutExtensionData(w) => {
                json.parameter = Some(w.parameter.clone());
                json.tier = w.tier;
                json.key_id = w.key_id.clone();
                json.leaf_serial = Some(w.leaf_serial.clone());
            }
            Action::DeregisterService { service_id } => json.service_id = Some(service_id.clone()),
            Action::DeleteExtensionData { parameter } => json.parameter = Some(parameter.clone()),
            Action::UpdateMeshEntry(edit) => json.mesh = Some(edit.clone()),
        }
        json.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Operation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let j = OperationJson::deserialize(d)?;
        let kind = j.kind;
        let action = action_of(
            j.kind,
            j.entry,
            j.service_id,
            j.parameter,
            j.tier,
            j.key_id,
            j.leaf_serial,
            j.mesh,
        )
        .map_err(|field| {
            serde::de::Error::custom(format!("a {} operation {field}", kind.as_str()))
        })?;
        Ok(Operation {
            action,
            service: j.service,
            change: j.change,
            reason: j.reason,
            function: j.function,
            confirm_absent: j.confirm_absent,
            index: j.index,
        })
    }
}

/// The action of `kind` from the content fields, which must be exactly those of
/// the kind. `Err`: what is wrong.
#[allow(clippy::too_many_arguments)]
fn action_of(
    kind: OperationKind,
    entry: Option<LambdaArgs>,
    service_id: Option<String>,
    parameter: Option<String>,
    tier: Option<Tier>,
    key_id: Option<String>,
    leaf_serial: Option<String>,
    mesh: Option<MeshEdit>,
) -> Result<Action, &'static str> {
    use OperationKind as K;
    let extra = |present: [bool; 6]| -> Result<(), &'static str> {
        if present.iter().any(|p| *p) {
            Err("carries content of another kind of operation")
        } else {
            Ok(())
        }
    };
    let (e, s, p, t, k, l, m) = (
        entry.is_some(),
        service_id.is_some(),
        parameter.is_some(),
        tier.is_some(),
        key_id.is_some(),
        leaf_serial.is_some(),
        mesh.is_some(),
    );
    match kind {
        K::UpsertConfigEntry => {
            extra([s, p, t, k, l, m])?;
            entry.map(Action::UpsertConfigEntry).ok_or("needs `entry`")
        }
        K::RegisterService | K::DeleteConfigEntry => {
            extra([e, s, p || t, k, l, m])?;
            Ok(if kind == K::RegisterService {
                Action::RegisterService
            } else {
                Action::DeleteConfigEntry
            })
        }
        K::DeregisterService => {
            extra([e, p, t, k, l, m])?;
            service_id
                .map(|service_id| Action::DeregisterService { service_id })
                .ok_or("needs `serviceId`")
        }
        K::PutExtensionData => {
            extra([e, s, m, false, false, false])?;
            match (parameter, leaf_serial) {
                (Some(parameter), Some(leaf_serial)) => {
                    Ok(Action::PutExtensionData(ParameterWrite {
                        parameter,
                        tier,
                        key_id,
                        leaf_serial,
                    }))
                }
                _ => Err("needs `parameter` and `leafSerial`"),
            }
        }
        K::DeleteExtensionData => {
            extra([e, s, t, k, l, m])?;
            parameter
                .map(|parameter| Action::DeleteExtensionData { parameter })
                .ok_or("needs `parameter`")
        }
        K::UpdateTerminatingGateway | K::UpdateExportedServices => {
            extra([e, s, p, t, k, l])?;
            let edit = mesh.ok_or("needs `mesh`")?;
            let want = if kind == K::UpdateTerminatingGateway {
                MeshEntryKind::TerminatingGateway
            } else {
                MeshEntryKind::ExportedServices
            };
            if edit.kind != want {
                return Err("names a mesh entry of another kind");
            }
            Ok(Action::UpdateMeshEntry(edit))
        }
    }
}

/// The schema of an [`Operation`]: one object per kind (gen-types makes it a
/// union tagged by `kind`).
#[cfg(feature = "schema")]
mod schema {
    use super::{Change, LambdaArgs, MeshEdit, Operation, ServiceKey, Tier};
    use std::borrow::Cow;

    /// The fields every operation has.
    #[allow(dead_code)]
    #[derive(schemars::JsonSchema)]
    #[serde(
        tag = "kind",
        rename_all = "camelCase",
        rename_all_fields = "camelCase",
        deny_unknown_fields
    )]
    #[schemars(rename = "Operation")]
    enum OperationSchema {
        /// Write the service-defaults entry that invokes the function.
        UpsertConfigEntry {
            /// The service.
            service: ServiceKey,
            /// The service's change.
            change: Change,
            /// Why.
            reason: String,
            /// The function (ARN).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            function: Option<String>,
            /// Run only after `ListTags` says this function does not exist.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            confirm_absent: Option<String>,
            /// The entry's `ModifyIndex` as observed (`0`: absent, create only).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            index: Option<u64>,
            /// The Lambda extension's arguments.
            entry: LambdaArgs,
        },
        /// Register the service on the registrator's node.
        RegisterService {
            /// The service.
            service: ServiceKey,
            /// The service's change.
            change: Change,
            /// Why.
            reason: String,
            /// The function (ARN).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            function: Option<String>,
            /// Run only after `ListTags` says this function does not exist.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            confirm_absent: Option<String>,
            /// The instance's `ModifyIndex` as observed (`0`: absent, create only).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            index: Option<u64>,
        },
        /// Write the service's extension data parameter.
        PutExtensionData {
            /// The service.
            service: ServiceKey,
            /// The service's change.
            change: Change,
            /// Why.
            reason: String,
            /// The function (ARN).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            function: Option<String>,
            /// Run only after `ListTags` says this function does not exist.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            confirm_absent: Option<String>,
            /// The parameter name.
            parameter: String,
            /// The tier for values over 4096 bytes.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            tier: Option<Tier>,
            /// The customer KMS key.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            key_id: Option<String>,
            /// The serial of the leaf certificate to store.
            leaf_serial: String,
        },
        /// Deregister the service from the registrator's node.
        DeregisterService {
            /// The service.
            service: ServiceKey,
            /// The service's change.
            change: Change,
            /// Why.
            reason: String,
            /// The function (ARN).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            function: Option<String>,
            /// Run only after `ListTags` says this function does not exist.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            confirm_absent: Option<String>,
            /// The instance's `ModifyIndex` as observed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            index: Option<u64>,
            /// The observed instance's service ID.
            service_id: String,
        },
        /// Delete the service-defaults entry.
        DeleteConfigEntry {
            /// The service.
            service: ServiceKey,
            /// The service's change.
            change: Change,
            /// Why.
            reason: String,
            /// The function (ARN).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            function: Option<String>,
            /// Run only after `ListTags` says this function does not exist.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            confirm_absent: Option<String>,
            /// The entry's `ModifyIndex` as observed.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            index: Option<u64>,
        },
        /// Delete the service's extension data parameter.
        DeleteExtensionData {
            /// The service.
            service: ServiceKey,
            /// The service's change.
            change: Change,
            /// Why.
            reason: String,
            /// The function (ARN).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            function: Option<String>,
            /// Run only after `ListTags` says this function does not exist.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            confirm_absent: Option<String>,
            /// The parameter name.
            parameter: String,
        },
        /// Merge the edit into the `terminating-gateway` entry.
        UpdateTerminatingGateway {
            /// The entry's name and partition.
            service: ServiceKey,
            /// `create` or `update`.
            change: Change,
            /// Why.
            reason: String,
            /// The entry's `ModifyIndex` as observed (`0`: absent).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            index: Option<u64>,
            /// The items added and removed.
            mesh: MeshEdit,
        },
        /// Merge the edit into the `exported-services` entry.
        UpdateExportedServices {
            /// The entry's name and partition.
            service: ServiceKey,
            /// `create` or `update`.
            change: Change,
            /// Why.
            reason: String,
            /// The entry's `ModifyIndex` as observed (`0`: absent).
            #[serde(default, skip_serializing_if = "Option::is_none")]
            index: Option<u64>,
            /// The items added and removed.
            mesh: MeshEdit,
        },
    }

    impl schemars::JsonSchema for Operation {
        fn schema_name() -> Cow<'static, str> {
            OperationSchema::schema_name()
        }

        fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
            OperationSchema::json_schema(g)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<Operation, String> {
        serde_json::from_value(v).map_err(|e| e.to_string())
    }

    #[test]
    fn operations_read_back_what_they_write() {
        let op = Operation {
            action: Action::UpsertConfigEntry(LambdaArgs {
                arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
                invocation_mode: InvocationMode::Asynchronous,
                payload_passthrough: true,
            }),
            service: ServiceKey {
                datacenter: Some("dc1".into()),
                partition: None,
                namespace: None,
                name: "f".into(),
            },
            change: Change::Create,
            reason: "new".into(),
            function: Some("arn:aws:lambda:us-east-1:123456789012:function:f".into()),
            confirm_absent: None,
            index: Some(0),
        };
        let v = serde_json::to_value(&op).unwrap();
        assert_eq!(v["kind"], "upsertConfigEntry");
        assert_eq!(v["entry"]["invocationMode"], "asynchronous");
        assert_eq!(v["index"], 0);
        assert_eq!(parse(v).unwrap(), op);
    }

    #[test]
    fn a_request_or_foreign_content_is_refused() {
        let base = json!({"kind": "registerService", "service": {"name": "f"}, "change": "create", "reason": "r"});
        assert!(parse(base.clone()).is_ok());
        let mut with_request = base.clone();
        with_request["request"] =
            json!({"target": "consul", "method": "PUT", "path": "/v1/acl/token"});
        assert!(parse(with_request).unwrap_err().contains("unknown field"));
        let mut with_entry = base.clone();
        with_entry["entry"] =
            json!({"arn": "x", "invocationMode": "synchronous", "payloadPassthrough": false});
        assert!(parse(with_entry).unwrap_err().contains("another kind"));
        let mut unknown = base;
        unknown["kind"] = json!("deleteAclToken");
        assert!(parse(unknown).unwrap_err().contains("unknown variant"));
        let mesh = json!({"kind": "updateExportedServices", "service": {"name": "default"}, "change": "update", "reason": "r",
            "mesh": {"kind": "terminatingGateway", "name": "tgw"}});
        assert!(parse(mesh).unwrap_err().contains("another kind"));
    }
}
