//! Consul's and Parameter Store's answers as the planner reads them (PascalCase,
//! unknown fields ignored): hosts pass them through unchanged.

use super::{LAMBDA_EXTENSION, MANAGED_TAG};
use crate::tags::InvocationMode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// `GET /v1/catalog/node-services/:node` (or `/v1/catalog/node/:node`, whose
/// `Services` is a map) — `null` when the node does not exist.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NodeServices {
    /// The node.
    #[serde(rename = "Node", default)]
    pub node: Option<NodeInfo>,
    /// The node's services.
    #[serde(rename = "Services", default)]
    pub services: ServiceList,
}

/// The node part of a node-services response.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct NodeInfo {
    /// The node name.
    #[serde(rename = "Node", default)]
    pub node: String,
}

/// A node's services: a list (`node-services`) or a map by ID (`catalog/node`).
/// Read by hand rather than as an untagged enum, which would first copy the
/// whole answer into a generic tree (three times its size at 25,000 services).
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub enum ServiceList {
    /// `/v1/catalog/node-services/:node`.
    List(Vec<CatalogService>),
    /// `/v1/catalog/node/:node`.
    Map(BTreeMap<String, CatalogService>),
    /// Absent.
    #[default]
    None,
}

impl<'de> Deserialize<'de> for ServiceList {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = ServiceList;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a list or a map of services, or null")
            }
            fn visit_unit<E>(self) -> Result<ServiceList, E> {
                Ok(ServiceList::None)
            }
            fn visit_none<E>(self) -> Result<ServiceList, E> {
                Ok(ServiceList::None)
            }
            fn visit_some<D: serde::Deserializer<'de>>(
                self,
                d: D,
            ) -> Result<ServiceList, D::Error> {
                d.deserialize_any(V)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<ServiceList, A::Error> {
                let mut list = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                while let Some(s) = seq.next_element()? {
                    list.push(s);
                }
                list.shrink_to_fit();
                Ok(ServiceList::List(list))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<ServiceList, A::Error> {
                let mut out = BTreeMap::new();
                while let Some((k, v)) = map.next_entry()? {
                    out.insert(k, v);
                }
                Ok(ServiceList::Map(out))
            }
        }
        d.deserialize_any(V)
    }
}

impl ServiceList {
    /// How many services there are.
    pub fn len(&self) -> usize {
        match self {
            ServiceList::List(l) => l.len(),
            ServiceList::Map(m) => m.len(),
            ServiceList::None => 0,
        }
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The services, in either form.
    pub fn iter(&self) -> Box<dyn Iterator<Item = &CatalogService> + '_> {
        match self {
            ServiceList::List(l) => Box::new(l.iter()),
            ServiceList::Map(m) => Box::new(m.values()),
            ServiceList::None => Box::new(std::iter::empty()),
        }
    }
}

/// One service instance on a node.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CatalogService {
    /// Service ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// Service name.
    #[serde(rename = "Service")]
    pub service: String,
    /// Tags.
    #[serde(rename = "Tags", default, deserialize_with = "known::option_list")]
    pub tags: Option<Vec<Cow<'static, str>>>,
    /// Namespace (Enterprise).
    #[serde(rename = "Namespace", default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Partition (Enterprise).
    #[serde(rename = "Partition", default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The Raft index of the instance's last change (check-and-set writes use it).
    #[serde(
        rename = "ModifyIndex",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub modify_index: Option<u64>,
}

/// One entry of `GET /v1/config/service-defaults`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ServiceDefaults {
    /// `service-defaults`.
    #[serde(rename = "Kind", default, deserialize_with = "known::option")]
    pub kind: Option<Cow<'static, str>>,
    /// The service name.
    #[serde(rename = "Name")]
    pub name: String,
    /// The protocol.
    #[serde(rename = "Protocol", default, deserialize_with = "known::option")]
    pub protocol: Option<Cow<'static, str>>,
    /// Envoy extensions.
    #[serde(rename = "EnvoyExtensions", default)]
    pub envoy_extensions: Option<Vec<EnvoyExtension>>,
    /// Namespace (Enterprise).
    #[serde(rename = "Namespace", default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Partition (Enterprise).
    #[serde(rename = "Partition", default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The Raft index of the entry's last change (check-and-set writes use it).
    #[serde(
        rename = "ModifyIndex",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub modify_index: Option<u64>,
}

/// One Envoy extension of a service-defaults entry.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct EnvoyExtension {
    /// Extension name.
    #[serde(rename = "Name", default, deserialize_with = "known::text")]
    pub name: Cow<'static, str>,
    /// Whether the extension is required.
    #[serde(rename = "Required", default)]
    pub required: Option<bool>,
    /// Its arguments (keys read case-insensitively by Consul).
    #[serde(rename = "Arguments", default)]
    pub arguments: Option<ExtensionArguments>,
}

/// The arguments of an Envoy extension: a JSON object, held as its members in
/// key order (a repeated key keeps its last value), as a map would hold them but
/// smaller: a planner reads one per service-defaults entry.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExtensionArguments(Vec<(Cow<'static, str>, Value)>);

impl ExtensionArguments {
    /// The members, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (&**k, v))
    }

    /// The value of `key` (exact match).
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(key))
            .ok()
            .and_then(|i| self.0.get(i))
            .map(|(_, v)| v)
    }
}

impl FromIterator<(String, Value)> for ExtensionArguments {
    fn from_iter<I: IntoIterator<Item = (String, Value)>>(members: I) -> Self {
        ExtensionArguments::from_members(
            members
                .into_iter()
                .map(|(k, v)| (Cow::Owned(k), v))
                .collect(),
        )
    }
}

impl ExtensionArguments {
    fn from_members(mut members: Vec<(Cow<'static, str>, Value)>) -> Self {
        // A stable sort keeps repeated keys in order; the last one wins.
        members.sort_by(|a, b| a.0.cmp(&b.0));
        members.dedup_by(|later, kept| {
            if later.0 != kept.0 {
                return false;
            }
            std::mem::swap(&mut later.1, &mut kept.1);
            true
        });
        ExtensionArguments(members)
    }
}

impl Serialize for ExtensionArguments {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.iter())
    }
}

/// Any JSON object (Consul reads the keys case-insensitively).
#[cfg(feature = "schema")]
impl schemars::JsonSchema for ExtensionArguments {
    fn schema_name() -> Cow<'static, str> {
        "ExtensionArguments".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "The arguments of an Envoy extension: any JSON object.",
            "type": "object",
            "additionalProperties": true,
        })
    }
}

impl<'de> Deserialize<'de> for ExtensionArguments {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // As `serde_json::Map` reads itself (same accepted input, same errors).
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = ExtensionArguments;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(ExtensionArguments::default())
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some((known::Text(key), value)) = map.next_entry()? {
                    members.push((key, value));
                }
                Ok(ExtensionArguments::from_members(members))
            }
        }
        d.deserialize_map(Members)
    }
}

/// Strings that are usually one of a few values (kinds, protocols, extension
/// names, argument keys, the managed tag) are kept without a copy when they are.
/// The readers accept what `String` accepts and fail as it fails.
mod known {
    use super::{LAMBDA_EXTENSION, MANAGED_TAG};
    use serde::de::{Deserializer, SeqAccess, Visitor};
    use serde::Deserialize;
    use std::borrow::Cow;
    use std::fmt;

    const VALUES: [&str; 10] = [
        "service-defaults",
        "http",
        LAMBDA_EXTENSION,
        "arn",
        "invocationMode",
        "payloadPassthrough",
        MANAGED_TAG,
        "tcp",
        "http2",
        "grpc",
    ];

    fn of(value: &str) -> Option<&'static str> {
        VALUES.iter().copied().find(|v| *v == value)
    }

    /// A string, as `String` reads one.
    pub(super) struct Text(pub(super) Cow<'static, str>);

    impl<'de> Deserialize<'de> for Text {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct V;
            impl Visitor<'_> for V {
                type Value = Text;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a string")
                }
                fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                    Ok(Text(
                        of(v).map_or_else(|| Cow::Owned(v.to_owned()), Cow::Borrowed),
                    ))
                }
                fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Text, E> {
                    Ok(Text(of(&v).map_or(Cow::Owned(v), Cow::Borrowed)))
                }
                fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<Text, E> {
                    match std::str::from_utf8(v) {
                        Ok(s) => self.visit_str(s),
                        Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(v), &self)),
                    }
                }
            }
            d.deserialize_string(V)
        }
    }

    pub(super) fn text<'de, D: Deserializer<'de>>(d: D) -> Result<Cow<'static, str>, D::Error> {
        Text::deserialize(d).map(|t| t.0)
    }

    /// `Option<String>`.
    pub(super) fn option<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Cow<'static, str>>, D::Error> {
        Option::<Text>::deserialize(d).map(|t| t.map(|t| t.0))
    }

    /// `Option<Vec<String>>`.
    pub(super) fn option_list<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Vec<Cow<'static, str>>>, D::Error> {
        struct List(Vec<Cow<'static, str>>);
        impl<'de> Deserialize<'de> for List {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = List;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a sequence")
                    }
                    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<List, A::Error> {
                        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
                        while let Some(Text(t)) = seq.next_element()? {
                            items.push(t);
                        }
                        Ok(List(items))
                    }
                }
                d.deserialize_seq(V)
            }
        }
        Option::<List>::deserialize(d).map(|l| l.map(|l| l.0))
    }
}

/// What a service-defaults entry says about a Lambda function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryView {
    /// The entry has no Lambda extension: it is not the registrator's.
    Foreign,
    /// The entry invokes a Lambda function.
    Lambda(LambdaEntry),
}

/// The Lambda extension of an entry, as Consul would read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LambdaEntry {
    /// The `arn` argument.
    pub arn: Option<String>,
    /// The mode Consul applies: asynchronous only for exactly `asynchronous`.
    pub mode: InvocationMode,
    /// The `payloadPassthrough` argument.
    pub payload_passthrough: bool,
    /// Whether everything else (protocol, required, a single extension) matches what the registrator writes.
    pub canonical: bool,
}

fn argument<'a>(args: &'a ExtensionArguments, key: &str) -> Option<&'a Value> {
    args.get(key).or_else(|| {
        args.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

/// [`LambdaEntry`] borrowed from its entry: what the planner reads per service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LambdaEntryRef<'a> {
    pub(crate) arn: Option<&'a str>,
    pub(crate) mode: InvocationMode,
    pub(crate) payload_passthrough: bool,
    pub(crate) canonical: bool,
}

impl ServiceDefaults {
    /// Reads the entry the way Consul's Lambda extension does.
    pub fn view(&self) -> EntryView {
        match self.lambda_view() {
            None => EntryView::Foreign,
            Some(l) => EntryView::Lambda(LambdaEntry {
                arn: l.arn.map(str::to_owned),
                mode: l.mode,
                payload_passthrough: l.payload_passthrough,
                canonical: l.canonical,
            }),
        }
    }

    /// [`ServiceDefaults::view`] without copying: `None` for a foreign entry.
    pub(crate) fn lambda_view(&self) -> Option<LambdaEntryRef<'_>> {
        let extensions = self.envoy_extensions.as_deref().unwrap_or_default();
        let ext = extensions.iter().find(|e| e.name == LAMBDA_EXTENSION)?;
        let (arn, mode, payload) = match &ext.arguments {
            Some(args) => (
                argument(args, "arn").and_then(Value::as_str),
                argument(args, "invocationMode").and_then(Value::as_str),
                argument(args, "payloadPassthrough"),
            ),
            None => (None, None, None),
        };
        let mode = match mode {
            Some("asynchronous") => InvocationMode::Asynchronous,
            _ => InvocationMode::Synchronous,
        };
        let payload_passthrough = matches!(payload, Some(Value::Bool(true)));
        // Consul rejects a non-boolean payloadPassthrough, so such an entry needs rewriting.
        let typed = matches!(payload, None | Some(Value::Bool(_)));
        let canonical = typed
            && extensions.len() == 1
            && !ext.required.unwrap_or(false)
            && self.protocol.as_deref() == Some("http");
        Some(LambdaEntryRef {
            arn,
            mode,
            payload_passthrough,
            canonical,
        })
    }
}

/// `GET /v1/agent/connect/ca/leaf/:service`. The planner uses a leaf only for the
/// service of its own partition, namespace and name (absent: `default`): hosts set
/// `partition` and `namespace` (or Consul Enterprise's `Partition` and `Namespace`)
/// to those of the request they made.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Leaf {
    /// Service name.
    #[serde(rename = "Service", default)]
    pub service: String,
    /// Namespace (Enterprise; absent: `default`).
    #[serde(
        rename = "Namespace",
        alias = "namespace",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub namespace: Option<String>,
    /// Partition (Enterprise; absent: `default`).
    #[serde(
        rename = "Partition",
        alias = "partition",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub partition: Option<String>,
    /// Certificate serial number.
    #[serde(rename = "SerialNumber", default)]
    pub serial_number: String,
    /// Certificate PEM.
    #[serde(rename = "CertPEM", default)]
    pub cert_pem: String,
    /// Private key PEM (a secret: never printed, never put in a plan).
    #[serde(rename = "PrivateKeyPEM", default, skip_serializing)]
    pub private_key_pem: String,
}

impl std::fmt::Debug for Leaf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leaf")
            .field("service", &self.service)
            .field("namespace", &self.namespace)
            .field("partition", &self.partition)
            .field("serial_number", &self.serial_number)
            .field("private_key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// `GET /v1/agent/connect/ca/roots`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CaRoots {
    /// ID of the active root.
    #[serde(rename = "ActiveRootID", default)]
    pub active_root_id: String,
    /// SPIFFE trust domain.
    #[serde(rename = "TrustDomain", default)]
    pub trust_domain: String,
    /// The roots.
    #[serde(rename = "Roots", default)]
    pub roots: Option<Vec<CaRoot>>,
}

/// One CA root.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CaRoot {
    /// Root ID.
    #[serde(rename = "ID", default)]
    pub id: String,
    /// PEM of the root certificate.
    #[serde(rename = "RootCert", default)]
    pub root_cert: String,
    /// Whether it is the active root.
    #[serde(rename = "Active", default)]
    pub active: bool,
}

impl CaRoots {
    /// The active root's PEM.
    pub fn active_pem(&self) -> Option<&str> {
        let roots = self.roots.as_deref().unwrap_or_default();
        roots
            .iter()
            .find(|r| r.active)
            .or_else(|| roots.iter().find(|r| r.id == self.active_root_id))
            .map(|r| r.root_cert.as_str())
    }

    /// The other roots' PEMs (still trusted during a CA rotation), in the answer's order.
    pub fn inactive_pems(&self, active: &str) -> Vec<String> {
        let roots = self.roots.as_deref().unwrap_or_default();
        roots
            .iter()
            .filter(|r| !r.root_cert.is_empty() && r.root_cert != active)
            .map(|r| r.root_cert.clone())
            .collect()
    }
}

/// A Parameter Store parameter as `GetParametersByPath` (with decryption) returns it.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SsmParameter {
    /// Full name (path).
    #[serde(rename = "Name")]
    pub name: String,
    /// The value (extension data JSON; holds a private key, never printed).
    #[serde(rename = "Value", default, skip_serializing)]
    pub value: Option<String>,
}

impl std::fmt::Debug for SsmParameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SsmParameter")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_entries_case_insensitively() {
        let entry: ServiceDefaults = serde_json::from_value(json!({
            "Kind": "service-defaults", "Name": "f", "Protocol": "http",
            "EnvoyExtensions": [{"Name": LAMBDA_EXTENSION, "Required": false,
                "Arguments": {"ARN": "arn:aws:lambda:us-east-1:123456789012:function:f", "InvocationMode": "ASYNCHRONOUS", "PayloadPassthrough": true}}]
        }))
        .unwrap_or_default();
        let EntryView::Lambda(l) = entry.view() else {
            unreachable!("a Lambda entry")
        };
        assert_eq!(
            l.arn.as_deref(),
            Some("arn:aws:lambda:us-east-1:123456789012:function:f")
        );
        // Upstream's upper-case value means synchronous to Consul.
        assert_eq!(l.mode, InvocationMode::Synchronous);
        assert!(l.payload_passthrough && l.canonical);
    }

    #[test]
    fn secrets_do_not_serialise_or_debug() {
        let leaf = Leaf {
            private_key_pem: "SECRET".into(),
            ..Leaf::default()
        };
        assert!(!serde_json::to_string(&leaf)
            .unwrap_or_default()
            .contains("SECRET"));
        assert!(!format!("{leaf:?}").contains("SECRET"));
    }
}
