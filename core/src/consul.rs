//! Consul and Parameter Store objects (docs/contract.md §4): the responses hosts
//! pass through unchanged, and the exact requests the plan asks hosts to send.

use crate::config::Tier;
use crate::error::{Code, Diagnostic, Failure};
use crate::json::JsonOut;
use crate::tags::InvocationMode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The tag on every service the registrator registers.
pub const MANAGED_TAG: &str = "managed-by-lambda-registrator";
/// The Envoy extension that invokes Lambda functions.
pub const LAMBDA_EXTENSION: &str = "builtin/aws/lambda";
/// Parameter values above this many bytes need the configured (non-Standard) tier.
pub const STANDARD_TIER_LIMIT: usize = 4096;

// ---------------------------------------------------------------------------
// Responses, as Consul and AWS send them (PascalCase; unknown fields ignored).
// ---------------------------------------------------------------------------

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
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
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

/// The extension data value stored in Parameter Store (upstream's field names).
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExtensionData {
    /// The leaf's private key.
    #[serde(rename = "privateKeyPEM", default)]
    pub private_key_pem: String,
    /// The leaf certificate.
    #[serde(rename = "certPEM", default)]
    pub cert_pem: String,
    /// The active CA root.
    #[serde(rename = "rootCertPEM", default)]
    pub root_cert_pem: String,
    /// The trust domain.
    #[serde(rename = "trustDomain", default)]
    pub trust_domain: String,
}

impl std::fmt::Debug for ExtensionData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionData")
            .field("trust_domain", &self.trust_domain)
            .field("private_key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

// ---------------------------------------------------------------------------
// Requests.
// ---------------------------------------------------------------------------

/// A request a host sends: to Consul's HTTP API or to Parameter Store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "target", rename_all = "camelCase")]
pub enum Request {
    /// An HTTP request to Consul.
    Consul(HttpRequest),
    /// A Parameter Store call.
    Ssm(SsmRequest),
}

/// An HTTP request to Consul's API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct HttpRequest {
    /// `GET`, `PUT` or `DELETE`.
    pub method: String,
    /// The path, e.g. `/v1/catalog/register`.
    pub path: String,
    /// Query parameters (`dc`, `ns`, `partition`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub query: BTreeMap<String, String>,
    /// The JSON body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<Value>,
}

/// A Parameter Store call. For `PutParameter` the value is built at execution time
/// by [`extension_data_parameter`]; it never appears in a plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct SsmRequest {
    /// `PutParameter` or `DeleteParameter`.
    pub action: String,
    /// The parameter name.
    pub name: String,
    /// The tier to use when the value exceeds 4096 bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// For `PutParameter`: the customer KMS key (`CONSUL_EXTENSION_DATA_KMS_KEY_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// Where a service lives in Consul.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServiceKey {
    /// Datacenter (`None`: the agent's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// Partition (Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Namespace (Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Service name.
    pub name: String,
}

impl ServiceKey {
    /// The `dc`, `ns` and `partition` query parameters.
    pub fn query(&self) -> BTreeMap<String, String> {
        let mut q = BTreeMap::new();
        if let Some(dc) = &self.datacenter {
            q.insert("dc".to_owned(), dc.clone());
        }
        if let Some(ns) = &self.namespace {
            q.insert("ns".to_owned(), ns.clone());
        }
        if let Some(p) = &self.partition {
            q.insert("partition".to_owned(), p.clone());
        }
        q
    }

    /// The extension data parameter name under `prefix`.
    pub fn parameter_name(&self, prefix: &str) -> String {
        format!(
            "{prefix}/{}/{}/{}",
            self.partition.as_deref().unwrap_or("default"),
            self.namespace.as_deref().unwrap_or("default"),
            self.name
        )
    }
}

// The request bodies, typed. Their fields are in byte order of their names, the
// order a `serde_json::Value` object (a sorted map) writes them in: the plan JSON
// is the same whether a body is written from these structs or from the `Value`
// that [`HttpRequest::body`] holds.

/// Body of `PUT /v1/catalog/register`.
#[derive(Serialize)]
pub(crate) struct RegisterBody<'a> {
    #[serde(rename = "Node")]
    node: &'a str,
    #[serde(rename = "NodeMeta")]
    node_meta: NodeMetaBody,
    #[serde(rename = "Service")]
    service: ServiceBody<'a>,
    #[serde(rename = "SkipNodeUpdate")]
    skip_node_update: bool,
}

#[derive(Serialize)]
struct NodeMetaBody {
    #[serde(rename = "external-node")]
    external_node: &'static str,
    #[serde(rename = "external-probe")]
    external_probe: &'static str,
}

#[derive(Serialize)]
struct ServiceBody<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    #[serde(rename = "Service")]
    service: &'a str,
    #[serde(rename = "Tags")]
    tags: [&'static str; 1],
}

impl<'a> RegisterBody<'a> {
    pub(crate) fn new(name: &'a str, node: &'a str) -> Self {
        RegisterBody {
            node,
            node_meta: NodeMetaBody {
                external_node: "true",
                external_probe: "true",
            },
            service: ServiceBody {
                id: name,
                service: name,
                tags: [MANAGED_TAG],
            },
            skip_node_update: true,
        }
    }
}

/// Body of `PUT /v1/catalog/deregister`.
#[derive(Serialize)]
pub(crate) struct DeregisterBody<'a> {
    #[serde(rename = "Node")]
    pub(crate) node: &'a str,
    #[serde(rename = "ServiceID")]
    pub(crate) service_id: &'a str,
}

/// Body of `PUT /v1/config`: the service-defaults entry invoking a function.
#[derive(Serialize)]
pub(crate) struct EntryBody<'a> {
    #[serde(rename = "EnvoyExtensions")]
    envoy_extensions: [ExtensionBody<'a>; 1],
    #[serde(rename = "Kind")]
    kind: &'static str,
    #[serde(rename = "Name")]
    name: &'a str,
    #[serde(rename = "Protocol")]
    protocol: &'static str,
}

#[derive(Serialize)]
struct ExtensionBody<'a> {
    #[serde(rename = "Arguments")]
    arguments: ArgumentsBody<'a>,
    #[serde(rename = "Name")]
    name: &'static str,
    #[serde(rename = "Required")]
    required: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ArgumentsBody<'a> {
    arn: &'a str,
    invocation_mode: &'static str,
    payload_passthrough: bool,
}

impl<'a> EntryBody<'a> {
    pub(crate) fn new(
        name: &'a str,
        arn: &'a str,
        mode: InvocationMode,
        payload_passthrough: bool,
    ) -> Self {
        EntryBody {
            envoy_extensions: [ExtensionBody {
                arguments: ArgumentsBody {
                    arn,
                    invocation_mode: mode.extension_value(),
                    payload_passthrough,
                },
                name: LAMBDA_EXTENSION,
                required: false,
            }],
            kind: "service-defaults",
            name,
            protocol: "http",
        }
    }
}

// The same bodies written by hand, for the plan JSON (see `crate::json`); a
// test checks that they match the typed bodies above.

/// Writes the body of `PUT /v1/catalog/register`.
pub(crate) fn write_register_body(out: &mut JsonOut, name: &str, node: &str) {
    out.raw("{\"Node\":");
    out.string(node);
    out.raw(",\"NodeMeta\":{\"external-node\":\"true\",\"external-probe\":\"true\"},\"Service\":{\"ID\":");
    out.string(name);
    out.raw(",\"Service\":");
    out.string(name);
    out.raw(",\"Tags\":[");
    out.string(MANAGED_TAG);
    out.raw("]},\"SkipNodeUpdate\":true}");
}

/// Writes the body of `PUT /v1/catalog/deregister`.
pub(crate) fn write_deregister_body(out: &mut JsonOut, node: &str, service_id: &str) {
    out.raw("{\"Node\":");
    out.string(node);
    out.raw(",\"ServiceID\":");
    out.string(service_id);
    out.raw("}");
}

/// Writes the body of `PUT /v1/config`.
pub(crate) fn write_entry_body(
    out: &mut JsonOut,
    name: &str,
    arn: &str,
    mode: InvocationMode,
    payload_passthrough: bool,
) {
    out.raw("{\"EnvoyExtensions\":[{\"Arguments\":{\"arn\":");
    out.string(arn);
    out.raw(",\"invocationMode\":");
    out.string(mode.extension_value());
    out.raw(if payload_passthrough {
        ",\"payloadPassthrough\":true},\"Name\":"
    } else {
        ",\"payloadPassthrough\":false},\"Name\":"
    });
    out.string(LAMBDA_EXTENSION);
    out.raw(",\"Required\":false}],\"Kind\":\"service-defaults\",\"Name\":");
    out.string(name);
    out.raw(",\"Protocol\":\"http\"}");
}

/// The JSON value of a typed body (`None` cannot happen: the bodies are plain data).
fn body_value(body: &impl Serialize) -> Option<Value> {
    serde_json::to_value(body).ok()
}

/// `PUT /v1/catalog/register` for a Lambda service.
pub fn register_request(key: &ServiceKey, node: &str) -> HttpRequest {
    HttpRequest {
        method: "PUT".into(),
        path: "/v1/catalog/register".into(),
        query: key.query(),
        body: body_value(&RegisterBody::new(&key.name, node)),
    }
}

/// `PUT /v1/catalog/deregister` for a service.
pub fn deregister_request(key: &ServiceKey, node: &str, service_id: &str) -> HttpRequest {
    HttpRequest {
        method: "PUT".into(),
        path: "/v1/catalog/deregister".into(),
        query: key.query(),
        body: body_value(&DeregisterBody { node, service_id }),
    }
}

/// `PUT /v1/config` with the service-defaults entry invoking `arn`.
pub fn config_entry_request(
    key: &ServiceKey,
    arn: &str,
    mode: InvocationMode,
    payload_passthrough: bool,
) -> HttpRequest {
    HttpRequest {
        method: "PUT".into(),
        path: "/v1/config".into(),
        query: key.query(),
        body: body_value(&EntryBody::new(&key.name, arn, mode, payload_passthrough)),
    }
}

/// Longest service name the registrator writes: a function name (64) and an alias (128).
pub const MAX_SERVICE_NAME: usize = 64 + 1 + 128;

/// Whether `name` is a service name the registrator could have written: a Lambda
/// function name, or one with `-ALIAS`, so 1 to 193 of `[A-Za-z0-9_-]`. Names read
/// from Consul that are not are never planned for (they cannot be ours, and they
/// could carry `/`, `..`, `?` or `#` into a request path).
pub fn is_registrator_service_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_SERVICE_NAME && crate::arn::lambda_name_chars(name)
}

/// One path segment, percent-encoded: every byte outside RFC 3986's unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) is encoded, and a segment that is `.` or `..`
/// has its dots encoded too, so no data can add a segment, a query or a fragment,
/// or climb out of the path. (The planner never builds a path from a name that is
/// not a registrator name; this is the second line.)
pub fn path_segment(segment: &str) -> Cow<'_, str> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    let dots = segment == "." || segment == "..";
    if !dots && segment.bytes().all(unreserved) && !segment.is_empty() {
        return Cow::Borrowed(segment);
    }
    let mut out = String::with_capacity(segment.len() * 3);
    for b in segment.bytes() {
        if unreserved(b) && !(dots && b == b'.') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    Cow::Owned(out)
}

/// `DELETE /v1/config/service-defaults/:name` (the name percent-encoded).
pub fn config_delete_request(key: &ServiceKey) -> HttpRequest {
    HttpRequest {
        method: "DELETE".into(),
        path: format!("/v1/config/service-defaults/{}", path_segment(&key.name)),
        query: key.query(),
        body: None,
    }
}

/// Input of [`extension_data_parameter`]: what a host fetched for one service.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExtensionDataInput {
    /// The parameter name (from the plan's operation).
    pub name: String,
    /// The tier for values over 4096 bytes (from the plan's operation).
    #[serde(default)]
    pub tier: Option<Tier>,
    /// The customer KMS key (from the plan's operation), when one is configured.
    #[serde(default)]
    pub key_id: Option<String>,
    /// The raw leaf response.
    pub leaf: Leaf,
    /// The raw roots response.
    pub roots: CaRoots,
}

/// The `PutParameter` call that stores extension data. Holds the private key:
/// send it, never print it.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PutParameter {
    /// Parameter name.
    #[serde(rename = "Name")]
    pub name: String,
    /// The JSON value.
    #[serde(rename = "Value")]
    pub value: String,
    /// Always `SecureString`.
    #[serde(rename = "Type")]
    pub kind: String,
    /// Always true.
    #[serde(rename = "Overwrite")]
    pub overwrite: bool,
    /// Present only when the value exceeds 4096 bytes.
    #[serde(rename = "Tier", default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<Tier>,
    /// The customer KMS key; absent: the account's `alias/aws/ssm`.
    #[serde(rename = "KeyId", default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

impl std::fmt::Debug for PutParameter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PutParameter")
            .field("name", &self.name)
            .field("value", &"<redacted>")
            .field("tier", &self.tier)
            .field("key_id", &self.key_id)
            .finish()
    }
}

/// Builds the `PutParameter` call for one service's extension data.
pub fn extension_data_parameter(input: &ExtensionDataInput) -> Result<PutParameter, Failure> {
    if let Some(key) = &input.key_id {
        crate::config::validate_kms_key_id("keyId", key)?;
    }
    let root = input.roots.active_pem().ok_or_else(|| {
        Diagnostic::new(
            Code::InvalidResponse,
            "the CA roots response has no active root",
            "pass the response of GET /v1/agent/connect/ca/roots; Connect must be enabled",
        )
        .key("roots")
    })?;
    if input.leaf.cert_pem.is_empty() || input.leaf.private_key_pem.is_empty() {
        return Err(Diagnostic::new(
            Code::InvalidResponse,
            "the leaf response lacks CertPEM or PrivateKeyPEM",
            "pass the response of GET /v1/agent/connect/ca/leaf/:service",
        )
        .key("leaf")
        .into());
    }
    let data = ExtensionData {
        private_key_pem: input.leaf.private_key_pem.clone(),
        cert_pem: input.leaf.cert_pem.clone(),
        root_cert_pem: root.to_owned(),
        trust_domain: input.roots.trust_domain.clone(),
    };
    let value = serde_json::to_string(&data).map_err(|e| Failure::input("extension data", &e))?;
    // Like upstream: the tier is sent only for values too large for the default.
    let tier = input.tier.filter(|_| value.len() > STANDARD_TIER_LIMIT);
    Ok(PutParameter {
        name: input.name.clone(),
        value,
        kind: "SecureString".into(),
        overwrite: true,
        tier,
        key_id: input.key_id.clone(),
    })
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
    fn written_bodies_are_the_typed_bodies() {
        for (name, node, arn) in [
            (
                "f",
                "lambdas",
                "arn:aws:lambda:us-east-1:123456789012:function:f",
            ),
            ("q\"uo\\te\n", "n\u{1}é", "a\"rn"),
        ] {
            let text = |write: &dyn Fn(&mut JsonOut)| {
                let mut out = JsonOut::with_capacity(0);
                write(&mut out);
                out.finish()
            };
            let json = |v: Option<Value>| serde_json::to_string(&v).unwrap_or_default();
            assert_eq!(
                text(&|o| write_register_body(o, name, node)),
                json(body_value(&RegisterBody::new(name, node)))
            );
            assert_eq!(
                text(&|o| write_deregister_body(o, node, name)),
                json(body_value(&DeregisterBody {
                    node,
                    service_id: name
                }))
            );
            for mode in [InvocationMode::Synchronous, InvocationMode::Asynchronous] {
                for pass in [false, true] {
                    assert_eq!(
                        text(&|o| write_entry_body(o, name, arn, mode, pass)),
                        json(body_value(&EntryBody::new(name, arn, mode, pass)))
                    );
                }
            }
        }
    }

    #[test]
    fn path_segments_are_encoded() {
        for (raw, encoded) in [
            ("orders", "orders"),
            ("a_b-c.d~e", "a_b-c.d~e"),
            (
                "../../acl/token/0000-1111",
                "..%2F..%2Facl%2Ftoken%2F0000-1111",
            ),
            ("x#frag", "x%23frag"),
            ("x?dc=dc9", "x%3Fdc%3Ddc9"),
            ("100%", "100%25"),
            ("..", "%2E%2E"),
            (".", "%2E"),
            ("", ""),
            ("é", "%C3%A9"),
        ] {
            assert_eq!(path_segment(raw), encoded, "{raw}");
        }
        let key = ServiceKey {
            datacenter: None,
            partition: None,
            namespace: None,
            name: "orders/../../../agent/service/deregister/web".into(),
        };
        assert_eq!(
            config_delete_request(&key).path,
            "/v1/config/service-defaults/orders%2F..%2F..%2F..%2Fagent%2Fservice%2Fderegister%2Fweb"
        );
        assert!(is_registrator_service_name(&format!(
            "{}-{}",
            "f".repeat(64),
            "a".repeat(128)
        )));
        assert!(!is_registrator_service_name(&"f".repeat(194)));
        for bad in ["", "x#frag", "x?dc=dc9", "a.b", "../x", "a/b", "a b", "%41"] {
            assert!(!is_registrator_service_name(bad), "{bad}");
        }
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
