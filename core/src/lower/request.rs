//! Every request the engine makes, typed, and the one place where they are spelt
//! on the wire: methods, paths (percent-encoded here and nowhere else), query
//! parameters and bodies (docs/engine.md "Request"). A request holds no body:
//! the body is written from the typed fields when the request is serialised for
//! the host, so it exists only while its batch is in flight.

use crate::consul::{ServiceKey, MANAGED_TAG};
use crate::mesh::MeshEntryKind;
use crate::plan::LambdaArgs;
use serde::ser::{SerializeMap, SerializeSeq, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// A Consul credential read from Parameter Store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum SecretKind {
    /// The ACL token (`CONSUL_HTTP_TOKEN_PATH`).
    ConsulToken,
    /// The CA certificate (`CONSUL_CACERT_PATH`).
    ConsulCaCert,
}

/// JSON text as it will be sent or as it came (compared by its text).
#[derive(Debug, Clone)]
pub struct RawJson(pub Box<RawValue>);

impl RawJson {
    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RawJson {
    fn eq(&self, other: &Self) -> bool {
        self.0.get() == other.0.get()
    }
}

impl Serialize for RawJson {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for RawJson {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Box::<RawValue>::deserialize(d).map(RawJson)
    }
}

/// One request to Consul or AWS.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// Consul's HTTP API.
    Consul(ConsulRequest),
    /// An AWS API call.
    Aws(AwsRequest),
}

/// The `dc`, `ns` and `partition` query parameters of a read over one scope.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScopeQuery {
    /// The datacenter.
    pub dc: Option<String>,
    /// Whether to read every namespace (`ns=*`, Enterprise).
    pub all_namespaces: bool,
    /// The partition (Enterprise).
    pub partition: Option<String>,
}

/// A request to Consul's HTTP API.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsulRequest {
    /// `GET /v1/agent/self`.
    AgentSelf,
    /// `GET /v1/catalog/datacenters`.
    Datacenters,
    /// `GET /v1/status/leader`.
    StatusLeader {
        /// The datacenter.
        dc: Option<String>,
    },
    /// `GET /v1/catalog/node-services/:node`.
    NodeServices {
        /// The node.
        node: String,
        /// Where.
        scope: ScopeQuery,
    },
    /// `GET /v1/catalog/services?filter=Node != "<node>"`: the service names
    /// Consul has on other nodes (one scope).
    ServicesElsewhere {
        /// The registrator's node.
        node: String,
        /// The datacenter.
        dc: String,
        /// The namespace (Enterprise).
        namespace: Option<String>,
        /// The partition (Enterprise).
        partition: Option<String>,
    },
    /// `GET /v1/catalog/service/:name?filter=Node != "<node>"`: a name's
    /// instances on other nodes.
    InstancesElsewhere {
        /// The registrator's node.
        node: String,
        /// The service, in the datacenter where it was found.
        key: ServiceKey,
    },
    /// `GET /v1/config/service-defaults`.
    ServiceDefaultsList {
        /// Where.
        scope: ScopeQuery,
    },
    /// `GET /v1/config/service-defaults/:name`.
    ServiceDefaults {
        /// The entry.
        key: ServiceKey,
    },
    /// `GET /v1/agent/connect/ca/roots`.
    CaRoots,
    /// `GET /v1/peerings`: the cluster peers (for the extension data).
    Peerings,
    /// `GET /v1/catalog/services?peer=:peer`: the services a peer exports to us.
    ImportedServices {
        /// The peering.
        peer: String,
    },
    /// `GET /v1/health/service/:service?peer=:peer`: an imported service's
    /// instances, whose `PeerMeta.SNI` names the peer's label for us.
    PeerService {
        /// The peering.
        peer: String,
        /// The imported service.
        service: String,
    },
    /// `GET /v1/agent/connect/ca/leaf/:service` (`ns` and `partition` in Enterprise).
    Leaf {
        /// The service.
        key: ServiceKey,
        /// Whether to pass the key's namespace and partition.
        enterprise: bool,
    },
    /// `GET /v1/config/:kind/:name` of a mesh entry.
    ConfigEntry {
        /// The entry's kind.
        kind: MeshEntryKind,
        /// Its name.
        name: String,
        /// Its partition (Enterprise).
        partition: Option<String>,
    },
    /// `POST /v1/internal/acl/authorize`: what the token may do (reads nothing back).
    Authorize {
        /// The datacenter.
        dc: Option<String>,
        /// The questions.
        items: Vec<AuthorizeItem>,
    },
    /// `PUT /v1/txn`: catalog operations of one scope, applied all or none.
    Txn {
        /// The datacenter.
        dc: String,
        /// The partition (Enterprise).
        partition: Option<String>,
        /// The operations.
        ops: Vec<TxnOp>,
    },
    /// `PUT /v1/catalog/register` (agents without `/v1/txn`).
    Register {
        /// The service.
        key: ServiceKey,
        /// The registrator's node.
        node: String,
    },
    /// `PUT /v1/catalog/deregister` (agents without `/v1/txn`).
    Deregister {
        /// The service.
        key: ServiceKey,
        /// The registrator's node.
        node: String,
        /// The instance.
        service_id: String,
    },
    /// `PUT /v1/config`: the service-defaults entry invoking a function.
    PutServiceDefaults {
        /// The entry.
        key: ServiceKey,
        /// The Lambda extension's arguments.
        args: LambdaArgs,
        /// Check-and-set at this index (`0`: create only).
        cas: Option<u64>,
    },
    /// `DELETE /v1/config/service-defaults/:name`.
    DeleteServiceDefaults {
        /// The entry.
        key: ServiceKey,
        /// Check-and-set at this index.
        cas: Option<u64>,
    },
    /// `PUT /v1/config?cas=N` of a merged mesh entry.
    PutConfigEntry {
        /// The partition (Enterprise).
        partition: Option<String>,
        /// Check-and-set at this index (`0`: create only).
        cas: u64,
        /// The merged entry.
        entry: RawJson,
    },
}

/// One question of `POST /v1/internal/acl/authorize`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizeItem {
    /// `node`, `service`, `mesh`, …
    pub resource: &'static str,
    /// The resource's name (`""`: none).
    pub segment: String,
    /// `read` or `write`.
    pub access: &'static str,
}

/// One operation of a catalog transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnOp {
    /// Create the registrator's node (check-and-set at 0).
    CreateNode {
        /// The node.
        node: String,
    },
    /// Register a service: check-and-set at `index` (`0`: create only); `None`: set.
    Register {
        /// The node.
        node: String,
        /// The service.
        key: ServiceKey,
        /// The observed index.
        index: Option<u64>,
    },
    /// Deregister an instance: check-and-set at `index`; `None`: delete.
    Deregister {
        /// The node.
        node: String,
        /// The service.
        key: ServiceKey,
        /// The instance.
        service_id: String,
        /// The observed index.
        index: Option<u64>,
    },
}

/// An AWS API call.
#[derive(Debug, Clone, PartialEq)]
pub enum AwsRequest {
    /// `sts GetCallerIdentity`.
    GetCallerIdentity,
    /// `ssm GetParameter`, decrypted.
    GetParameter {
        /// The parameter.
        name: String,
        /// The value is a Consul credential the host keeps.
        secret: Option<SecretKind>,
    },
    /// `tagging GetResources` of Lambda functions, 100 a page.
    GetResources {
        /// The page token.
        token: Option<String>,
    },
    /// `lambda ListTags`: a function's tags, or that it does not exist.
    ListTags {
        /// The function's ARN.
        arn: String,
    },
    /// `lambda ListAliases`: a function's aliases, 50 a page.
    ListAliases {
        /// The function's name (in the registrator's account and region) or ARN.
        function: String,
        /// The page marker.
        marker: Option<String>,
    },
    /// `ssm GetParametersByPath`, recursive and decrypted.
    GetParametersByPath {
        /// The path.
        path: String,
        /// Parameters a page.
        max_results: u8,
        /// The page token.
        token: Option<String>,
    },
    /// `ssm PutParameter` of extension data: carries a private key.
    PutParameter(Box<crate::consul::PutParameter>),
    /// `ssm DeleteParameter`.
    DeleteParameter {
        /// The parameter.
        name: String,
    },
}

impl Request {
    /// Whether the request changes state (the doctor's authorize only asks).
    pub fn is_write(&self) -> bool {
        match self {
            Request::Consul(c) => matches!(
                c,
                ConsulRequest::Txn { .. }
                    | ConsulRequest::Register { .. }
                    | ConsulRequest::Deregister { .. }
                    | ConsulRequest::PutServiceDefaults { .. }
                    | ConsulRequest::DeleteServiceDefaults { .. }
                    | ConsulRequest::PutConfigEntry { .. }
            ),
            Request::Aws(a) => matches!(
                a,
                AwsRequest::PutParameter(_) | AwsRequest::DeleteParameter { .. }
            ),
        }
    }

    /// `GET /v1/agent/self`, `ssm GetParameter`: what it is, safe to print.
    pub fn describe(&self) -> String {
        match self {
            Request::Consul(c) => {
                let w = c.wire();
                format!("{} {}", w.method, w.path)
            }
            Request::Aws(a) => format!("{} {}", a.service(), a.operation()),
        }
    }

    /// Which service answers it: `consul`, or the AWS service.
    pub fn target(&self) -> &'static str {
        match self {
            Request::Consul(_) => "consul",
            Request::Aws(a) => a.service(),
        }
    }
}

/// Percent-encodes one path segment: every byte outside RFC 3986's unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) is encoded, and the dots of a segment that is
/// `.` or `..` too, so no name can add a segment, a query or a fragment, or climb
/// out of the path. (The lowering refuses names that are empty or all dots, which
/// some URL parsers would still read as `.` or `..` once decoded.)
pub fn path_segment(segment: &str) -> Cow<'_, str> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
    let dots = segment == "." || segment == "..";
    if !dots && segment.bytes().all(unreserved) {
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

/// The filter expression `Node != "<node>"`, the name quoted as a string
/// literal of Consul's filter language (backslash and quote escaped).
fn not_on(node: &str) -> String {
    let mut out = String::with_capacity(node.len() + 12);
    out.push_str("Node != \"");
    for c in node.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Query parameters, written in key order.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Query(Vec<(&'static str, String)>);

impl Query {
    fn with(mut self, key: &'static str, value: Option<impl Into<String>>) -> Self {
        if let Some(v) = value {
            self.0.push((key, v.into()));
            self.0.sort_by_key(|(k, _)| *k);
        }
        self
    }

    /// The parameters, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (*k, v.as_str()))
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn of_key(key: &ServiceKey) -> Self {
        Query::default()
            .with("dc", key.datacenter.clone())
            .with("ns", key.namespace.clone())
            .with("partition", key.partition.clone())
    }

    fn of_scope(scope: &ScopeQuery) -> Self {
        Query::default()
            .with("dc", scope.dc.clone())
            .with("ns", scope.all_namespaces.then_some("*"))
            .with("partition", scope.partition.clone())
    }
}

impl Serialize for Query {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

/// A Consul request as the host sends it.
#[derive(Debug)]
pub struct ConsulWire<'a> {
    /// `GET`, `PUT`, `POST` or `DELETE`.
    pub method: &'static str,
    /// The path, percent-encoded: send it as is.
    pub path: Cow<'a, str>,
    /// The query parameters (not yet URL-encoded).
    pub query: Query,
    /// The JSON body.
    pub body: Option<Body<'a>>,
    /// Whether the body is written as JSON text in a string (what a host sends
    /// as is) rather than as JSON.
    pub body_as_text: bool,
    /// The largest answer the host reads (`maxBytes`, the host's form only).
    pub max_bytes: Option<u64>,
}

/// A request body, written from the typed request.
#[derive(Debug)]
pub enum Body<'a> {
    /// `PUT /v1/txn`.
    Txn(&'a [TxnOp]),
    /// `PUT /v1/catalog/register`.
    Register(&'a ServiceKey, &'a str),
    /// `PUT /v1/catalog/deregister`.
    Deregister(&'a str, &'a str),
    /// `PUT /v1/config` of a service-defaults entry.
    Entry(&'a str, &'a LambdaArgs),
    /// A merged mesh entry.
    Raw(&'a RawJson),
    /// `POST /v1/internal/acl/authorize`.
    Authorize(&'a [AuthorizeItem]),
}

impl ConsulRequest {
    /// The request as the host sends it.
    pub fn wire(&self) -> ConsulWire<'_> {
        ConsulWire {
            method: self.method(),
            path: self.path(),
            query: self.query(),
            body: self.body(),
            body_as_text: false,
            max_bytes: None,
        }
    }

    /// The largest answer a host reads for this request, above what Consul
    /// answers for it (docs/engine.md "Bounds"): a list of 100,000 services is
    /// about 80 MiB; an answer over the cap is an error (`answer_too_large`)
    /// naming the request, and an observation that gets one writes nothing.
    pub fn max_answer_bytes(&self) -> u64 {
        use ConsulRequest as C;
        const MIB: u64 = 1 << 20;
        match self {
            C::NodeServices { .. }
            | C::ServiceDefaultsList { .. }
            | C::ServicesElsewhere { .. } => 128 * MIB,
            C::InstancesElsewhere { .. } | C::ConfigEntry { .. } | C::Txn { .. } => 16 * MIB,
            _ => 4 * MIB,
        }
    }

    fn method(&self) -> &'static str {
        use ConsulRequest as C;
        match self {
            C::Authorize { .. } => "POST",
            C::DeleteServiceDefaults { .. } => "DELETE",
            C::Txn { .. }
            | C::Register { .. }
            | C::Deregister { .. }
            | C::PutServiceDefaults { .. }
            | C::PutConfigEntry { .. } => "PUT",
            _ => "GET",
        }
    }

    fn path(&self) -> Cow<'_, str> {
        use ConsulRequest as C;
        match self {
            C::AgentSelf => "/v1/agent/self".into(),
            C::Datacenters => "/v1/catalog/datacenters".into(),
            C::StatusLeader { .. } => "/v1/status/leader".into(),
            C::NodeServices { node, .. } => {
                format!("/v1/catalog/node-services/{}", path_segment(node)).into()
            }
            C::ServiceDefaultsList { .. } => "/v1/config/service-defaults".into(),
            C::ServicesElsewhere { .. } => "/v1/catalog/services".into(),
            C::InstancesElsewhere { key, .. } => {
                format!("/v1/catalog/service/{}", path_segment(&key.name)).into()
            }
            C::ServiceDefaults { key } | C::DeleteServiceDefaults { key, .. } => {
                format!("/v1/config/service-defaults/{}", path_segment(&key.name)).into()
            }
            C::CaRoots => "/v1/agent/connect/ca/roots".into(),
            C::Peerings => "/v1/peerings".into(),
            C::ImportedServices { .. } => "/v1/catalog/services".into(),
            C::PeerService { service, .. } => {
                format!("/v1/health/service/{}", path_segment(service)).into()
            }
            C::Leaf { key, .. } => {
                format!("/v1/agent/connect/ca/leaf/{}", path_segment(&key.name)).into()
            }
            C::ConfigEntry { kind, name, .. } => {
                format!("/v1/config/{}/{}", kind.consul_kind(), path_segment(name)).into()
            }
            C::Authorize { .. } => "/v1/internal/acl/authorize".into(),
            C::Txn { .. } => "/v1/txn".into(),
            C::Register { .. } => "/v1/catalog/register".into(),
            C::Deregister { .. } => "/v1/catalog/deregister".into(),
            C::PutServiceDefaults { .. } | C::PutConfigEntry { .. } => "/v1/config".into(),
        }
    }

    fn query(&self) -> Query {
        use ConsulRequest as C;
        let cas = |q: Query, cas: Option<u64>| q.with("cas", cas.map(|c| c.to_string()));
        match self {
            C::AgentSelf | C::Datacenters | C::CaRoots | C::Peerings => Query::default(),
            C::ImportedServices { peer } | C::PeerService { peer, .. } => {
                Query::default().with("peer", Some(peer.clone()))
            }
            C::StatusLeader { dc } | C::Authorize { dc, .. } => {
                Query::default().with("dc", dc.clone())
            }
            C::NodeServices { scope, .. } | C::ServiceDefaultsList { scope } => {
                Query::of_scope(scope)
            }
            C::ServicesElsewhere {
                node,
                dc,
                namespace,
                partition,
            } => Query::default()
                .with("dc", Some(dc.clone()))
                .with("filter", Some(not_on(node)))
                .with("ns", namespace.clone())
                .with("partition", partition.clone()),
            C::InstancesElsewhere { node, key } => {
                Query::of_key(key).with("filter", Some(not_on(node)))
            }
            C::ServiceDefaults { key } | C::Register { key, .. } | C::Deregister { key, .. } => {
                Query::of_key(key)
            }
            C::Leaf { key, enterprise } => match enterprise {
                true => Query::default()
                    .with("ns", key.namespace.clone())
                    .with("partition", key.partition.clone()),
                false => Query::default(),
            },
            C::ConfigEntry { partition, .. } => {
                Query::default().with("partition", partition.clone())
            }
            C::Txn { dc, partition, .. } => Query::default()
                .with("dc", Some(dc.clone()).filter(|d| !d.is_empty()))
                .with("partition", partition.clone()),
            C::PutServiceDefaults { key, cas: c, .. }
            | C::DeleteServiceDefaults { key, cas: c } => cas(Query::of_key(key), *c),
            C::PutConfigEntry {
                partition, cas: c, ..
            } => cas(
                Query::default().with("partition", partition.clone()),
                Some(*c),
            ),
        }
    }

    fn body(&self) -> Option<Body<'_>> {
        use ConsulRequest as C;
        Some(match self {
            C::Authorize { items, .. } => Body::Authorize(items),
            C::Txn { ops, .. } => Body::Txn(ops),
            C::Register { key, node } => Body::Register(key, node),
            C::Deregister {
                node, service_id, ..
            } => Body::Deregister(node, service_id),
            C::PutServiceDefaults { key, args, .. } => Body::Entry(&key.name, args),
            C::PutConfigEntry { entry, .. } => Body::Raw(entry),
            _ => return None,
        })
    }
}

impl Serialize for ConsulWire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let fields = 2
            + usize::from(!self.query.is_empty())
            + usize::from(self.body.is_some())
            + usize::from(self.max_bytes.is_some());
        let mut st = s.serialize_struct("ConsulCall", fields)?;
        st.serialize_field("method", self.method)?;
        st.serialize_field("path", &self.path)?;
        if !self.query.is_empty() {
            st.serialize_field("query", &self.query)?;
        }
        match (&self.body, self.body_as_text) {
            (Some(Body::Raw(raw)), true) => st.serialize_field("body", raw.get())?,
            (Some(b), true) => {
                let text = serde_json::to_string(b).map_err(serde::ser::Error::custom)?;
                st.serialize_field("body", &text)?;
            }
            (Some(b), false) => st.serialize_field("body", b)?,
            (None, _) => {}
        }
        if let Some(max) = self.max_bytes {
            st.serialize_field("maxBytes", &max)?;
        }
        st.end()
    }
}

/// `"external-node"` and `"external-probe"`: the node is not probed by an agent.
#[derive(Serialize)]
struct NodeMeta {
    #[serde(rename = "external-node")]
    external_node: &'static str,
    #[serde(rename = "external-probe")]
    external_probe: &'static str,
}

const NODE_META: NodeMeta = NodeMeta {
    external_node: "true",
    external_probe: "true",
};

impl Serialize for Body<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Body::Txn(ops) => {
                let mut seq = s.serialize_seq(Some(ops.len()))?;
                for op in *ops {
                    seq.serialize_element(&TxnItem(op))?;
                }
                seq.end()
            }
            Body::Register(key, node) => {
                #[derive(Serialize)]
                struct B<'a> {
                    #[serde(rename = "Node")]
                    node: &'a str,
                    #[serde(rename = "NodeMeta")]
                    meta: NodeMeta,
                    #[serde(rename = "Service")]
                    service: ServiceBody<'a>,
                    #[serde(rename = "SkipNodeUpdate")]
                    skip: bool,
                }
                B {
                    node,
                    meta: NODE_META,
                    service: ServiceBody::new(&key.name),
                    skip: true,
                }
                .serialize(s)
            }
            Body::Deregister(node, id) => {
                let mut st = s.serialize_struct("Deregister", 2)?;
                st.serialize_field("Node", node)?;
                st.serialize_field("ServiceID", id)?;
                st.end()
            }
            Body::Entry(name, args) => EntryBody::new(name, args).serialize(s),
            Body::Raw(raw) => raw.serialize(s),
            Body::Authorize(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for a in *items {
                    seq.serialize_element(&AuthorizeBody(a))?;
                }
                seq.end()
            }
        }
    }
}

/// The service of a registration: named after its key, with the managed tag.
#[derive(Serialize)]
struct ServiceBody<'a> {
    #[serde(rename = "ID")]
    id: &'a str,
    #[serde(rename = "Service")]
    service: &'a str,
    #[serde(rename = "Tags")]
    tags: [&'static str; 1],
}

impl<'a> ServiceBody<'a> {
    fn new(name: &'a str) -> Self {
        ServiceBody {
            id: name,
            service: name,
            tags: [MANAGED_TAG],
        }
    }
}

/// The service-defaults entry invoking a function (docs/contract.md §4.3).
#[derive(Serialize)]
struct EntryBody<'a> {
    #[serde(rename = "EnvoyExtensions")]
    extensions: [ExtensionBody<'a>; 1],
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
    arguments: &'a LambdaArgs,
    #[serde(rename = "Name")]
    name: &'static str,
    #[serde(rename = "Required")]
    required: bool,
}

impl<'a> EntryBody<'a> {
    fn new(name: &'a str, args: &'a LambdaArgs) -> Self {
        EntryBody {
            extensions: [ExtensionBody {
                arguments: args,
                name: crate::consul::LAMBDA_EXTENSION,
                required: false,
            }],
            kind: "service-defaults",
            name,
            protocol: "http",
        }
    }
}

struct AuthorizeBody<'a>(&'a AuthorizeItem);

impl Serialize for AuthorizeBody<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let a = self.0;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("Access", a.access)?;
        m.serialize_entry("Resource", a.resource)?;
        if !a.segment.is_empty() {
            m.serialize_entry("Segment", &a.segment)?;
        }
        m.end()
    }
}

/// One transaction item: `{"Node": {...}}` or `{"Service": {...}}`.
struct TxnItem<'a>(&'a TxnOp);

impl Serialize for TxnItem<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Verb<'a, T> {
            #[serde(rename = "Node")]
            node: &'a str,
            #[serde(rename = "Service")]
            service: T,
            #[serde(rename = "Verb")]
            verb: &'static str,
        }
        #[derive(Serialize)]
        struct NodeOp<'a> {
            #[serde(rename = "Node")]
            node: NodeBody<'a>,
            #[serde(rename = "Verb")]
            verb: &'static str,
        }
        #[derive(Serialize)]
        struct NodeBody<'a> {
            #[serde(rename = "Meta")]
            meta: NodeMeta,
            #[serde(rename = "ModifyIndex")]
            modify_index: u64,
            #[serde(rename = "Node")]
            node: &'a str,
        }
        let mut m = s.serialize_map(Some(1))?;
        match self.0 {
            TxnOp::CreateNode { node } => m.serialize_entry(
                "Node",
                &NodeOp {
                    node: NodeBody {
                        meta: NODE_META,
                        modify_index: 0,
                        node,
                    },
                    verb: "cas",
                },
            )?,
            TxnOp::Register { node, key, index } => m.serialize_entry(
                "Service",
                &Verb {
                    node,
                    service: TxnService {
                        key,
                        id: &key.name,
                        tags: true,
                        index: *index,
                    },
                    verb: if index.is_some() { "cas" } else { "set" },
                },
            )?,
            TxnOp::Deregister {
                node,
                key,
                service_id,
                index,
            } => m.serialize_entry(
                "Service",
                &Verb {
                    node,
                    service: TxnService {
                        key,
                        id: service_id,
                        tags: false,
                        index: *index,
                    },
                    verb: if index.is_some() {
                        "delete-cas"
                    } else {
                        "delete"
                    },
                },
            )?,
        }
        m.end()
    }
}

/// The service of a transaction item (Consul's txn wants the name with an ID).
struct TxnService<'a> {
    key: &'a ServiceKey,
    id: &'a str,
    tags: bool,
    index: Option<u64>,
}

impl Serialize for TxnService<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("ID", self.id)?;
        if let Some(i) = self.index {
            m.serialize_entry("ModifyIndex", &i)?;
        }
        if let Some(ns) = &self.key.namespace {
            m.serialize_entry("Namespace", ns)?;
        }
        if let Some(p) = &self.key.partition {
            m.serialize_entry("Partition", p)?;
        }
        m.serialize_entry("Service", &self.key.name)?;
        if self.tags {
            m.serialize_entry("Tags", &[MANAGED_TAG])?;
        }
        m.end()
    }
}

impl AwsRequest {
    /// `tagging`, `lambda`, `ssm` or `sts`.
    pub fn service(&self) -> &'static str {
        match self {
            AwsRequest::GetCallerIdentity => "sts",
            AwsRequest::GetResources { .. } => "tagging",
            AwsRequest::ListTags { .. } | AwsRequest::ListAliases { .. } => "lambda",
            AwsRequest::GetParameter { .. }
            | AwsRequest::GetParametersByPath { .. }
            | AwsRequest::PutParameter(_)
            | AwsRequest::DeleteParameter { .. } => "ssm",
        }
    }

    /// The API name.
    pub fn operation(&self) -> &'static str {
        match self {
            AwsRequest::GetCallerIdentity => "GetCallerIdentity",
            AwsRequest::GetParameter { .. } => "GetParameter",
            AwsRequest::GetResources { .. } => "GetResources",
            AwsRequest::ListTags { .. } => "ListTags",
            AwsRequest::ListAliases { .. } => "ListAliases",
            AwsRequest::GetParametersByPath { .. } => "GetParametersByPath",
            AwsRequest::PutParameter(_) => "PutParameter",
            AwsRequest::DeleteParameter { .. } => "DeleteParameter",
        }
    }

    /// The credential its answer carries, if any.
    pub fn secret(&self) -> Option<SecretKind> {
        match self {
            AwsRequest::GetParameter { secret, .. } => *secret,
            _ => None,
        }
    }

    /// Whether it carries a private key (never log it).
    pub fn sensitive(&self) -> bool {
        matches!(self, AwsRequest::PutParameter(_))
    }

    /// The input as JSON text (the body of a JSON-protocol call).
    #[cfg(feature = "sigv4")]
    pub(crate) fn input_json(&self) -> String {
        serde_json::to_string(&AwsInput(self)).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// The `input` of an AWS call (PascalCase, as both SDKs take it).
struct AwsInput<'a>(&'a AwsRequest);

impl Serialize for AwsInput<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        match self.0 {
            AwsRequest::GetCallerIdentity => {}
            AwsRequest::GetParameter { name, .. } => {
                m.serialize_entry("Name", name)?;
                m.serialize_entry("WithDecryption", &true)?;
            }
            AwsRequest::GetResources { token } => {
                if let Some(t) = token {
                    m.serialize_entry("PaginationToken", t)?;
                }
                m.serialize_entry("ResourceTypeFilters", &["lambda:function"])?;
                m.serialize_entry("ResourcesPerPage", &100)?;
            }
            AwsRequest::ListTags { arn } => m.serialize_entry("Resource", arn)?,
            AwsRequest::ListAliases { function, marker } => {
                m.serialize_entry("FunctionName", function)?;
                if let Some(marker) = marker {
                    m.serialize_entry("Marker", marker)?;
                }
            }
            AwsRequest::GetParametersByPath {
                path,
                max_results,
                token,
            } => {
                m.serialize_entry("MaxResults", max_results)?;
                if let Some(t) = token {
                    m.serialize_entry("NextToken", t)?;
                }
                m.serialize_entry("Path", path)?;
                m.serialize_entry("Recursive", &true)?;
                m.serialize_entry("WithDecryption", &true)?;
            }
            AwsRequest::PutParameter(p) => {
                m.serialize_entry("Name", &p.name)?;
                m.serialize_entry("Value", &p.value)?;
                m.serialize_entry("Type", &p.kind)?;
                m.serialize_entry("Overwrite", &p.overwrite)?;
                if let Some(t) = p.tier {
                    m.serialize_entry("Tier", t.as_str())?;
                }
                if let Some(k) = &p.key_id {
                    m.serialize_entry("KeyId", k)?;
                }
            }
            AwsRequest::DeleteParameter { name } => m.serialize_entry("Name", name)?,
        }
        m.end()
    }
}

/// An AWS call as the host sends it: `{service, operation, input}`.
struct AwsWire<'a>(&'a AwsRequest);

impl Serialize for AwsWire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("AwsCall", 3)?;
        st.serialize_field("service", self.0.service())?;
        st.serialize_field("operation", self.0.operation())?;
        st.serialize_field("input", &AwsInput(self.0))?;
        st.end()
    }
}

/// One request of a step, with its id, as the host reads it: `{"id", "consul":
/// {method, path, query?, body?}}` (`body`: the JSON text to send, as is) or
/// `{"id", "aws": {service, operation, input}, "secret"?, "sensitive"?}`.
/// A preview (no id) shows the body as JSON.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// Identifies the answer (`None`: a preview, without one).
    pub id: Option<u64>,
    /// The request.
    pub request: &'a Request,
}

impl Serialize for Outgoing<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(id) = self.id {
            m.serialize_entry("id", &id)?;
        }
        match self.request {
            Request::Consul(c) => {
                let wire = ConsulWire {
                    body_as_text: self.id.is_some(),
                    max_bytes: self.id.map(|_| c.max_answer_bytes()),
                    ..c.wire()
                };
                m.serialize_entry("consul", &wire)?
            }
            Request::Aws(a) => {
                m.serialize_entry("aws", &AwsWire(a))?;
                if let Some(secret) = a.secret() {
                    m.serialize_entry("secret", &secret)?;
                }
                if a.sensitive() {
                    m.serialize_entry("sensitive", &true)?;
                }
            }
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tags::InvocationMode;
    use serde_json::json;

    fn key(name: &str) -> ServiceKey {
        ServiceKey {
            datacenter: Some("dc1".into()),
            partition: None,
            namespace: None,
            name: name.into(),
        }
    }

    fn wire(r: ConsulRequest) -> serde_json::Value {
        serde_json::to_value(r.wire()).unwrap()
    }

    #[test]
    fn bodies_are_upstreams_objects() {
        let args = LambdaArgs {
            arn: "arn:aws:lambda:us-east-1:123456789012:function:f".into(),
            invocation_mode: InvocationMode::Asynchronous,
            payload_passthrough: false,
        };
        assert_eq!(
            wire(ConsulRequest::PutServiceDefaults {
                key: key("f"),
                args,
                cas: Some(0)
            }),
            json!({"method": "PUT", "path": "/v1/config", "query": {"cas": "0", "dc": "dc1"},
                "body": {"Kind": "service-defaults", "Name": "f", "Protocol": "http",
                    "EnvoyExtensions": [{"Name": "builtin/aws/lambda", "Required": false,
                        "Arguments": {"arn": "arn:aws:lambda:us-east-1:123456789012:function:f",
                            "invocationMode": "asynchronous", "payloadPassthrough": false}}]}})
        );
        assert_eq!(
            wire(ConsulRequest::Txn {
                dc: "dc1".into(),
                partition: None,
                ops: vec![
                    TxnOp::CreateNode {
                        node: "lambdas".into()
                    },
                    TxnOp::Register {
                        node: "lambdas".into(),
                        key: key("f"),
                        index: Some(0)
                    },
                    TxnOp::Deregister {
                        node: "lambdas".into(),
                        key: key("g"),
                        service_id: "g".into(),
                        index: None
                    },
                ]
            })["body"],
            json!([
                {"Node": {"Verb": "cas", "Node": {"Node": "lambdas",
                    "Meta": {"external-node": "true", "external-probe": "true"}, "ModifyIndex": 0}}},
                {"Service": {"Verb": "cas", "Node": "lambdas", "Service": {"ID": "f", "Service": "f",
                    "Tags": ["managed-by-lambda-registrator"], "ModifyIndex": 0}}},
                {"Service": {"Verb": "delete", "Node": "lambdas", "Service": {"ID": "g", "Service": "g"}}}
            ])
        );
    }

    #[test]
    fn names_cannot_leave_their_segment() {
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
            ("é", "%C3%A9"),
        ] {
            assert_eq!(path_segment(raw), encoded, "{raw}");
        }
        let r = ConsulRequest::DeleteServiceDefaults {
            key: key("orders/../../../agent/service/deregister/web"),
            cas: None,
        };
        assert_eq!(
            r.wire().path,
            "/v1/config/service-defaults/orders%2F..%2F..%2F..%2Fagent%2Fservice%2Fderegister%2Fweb"
        );
    }
}
