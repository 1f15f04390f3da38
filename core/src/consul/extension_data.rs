//! The extension data stored in Parameter Store for each service (docs/contract.md
//! §4.5): upstream's format, and the `PutParameter` call that writes it.

use super::model::{CaRoots, Leaf};
use super::STANDARD_TIER_LIMIT;
use crate::config::Tier;
use crate::error::{Code, Diagnostic, Failure};
use serde::{Deserialize, Serialize};

/// The extension data value stored in Parameter Store (docs/contract.md §4.5,
/// §12.3): upstream's four fields first, with their meaning; ours are optional,
/// so upstream's extension (whose JSON decoding skips unknown fields) reads what
/// we write, and ours reads what upstream's registrator wrote. Holds the
/// function's private key: never print it.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ExtensionData {
    /// The leaf's private key (upstream's field).
    #[serde(rename = "privateKeyPEM", default)]
    pub private_key_pem: String,
    /// The leaf certificate (upstream's field).
    #[serde(rename = "certPEM", default)]
    pub cert_pem: String,
    /// The active CA root (upstream's field).
    #[serde(rename = "rootCertPEM", default)]
    pub root_cert_pem: String,
    /// The trust domain (upstream's field).
    #[serde(rename = "trustDomain", default)]
    pub trust_domain: String,
    /// Ours: the registrator's datacenter (`DATACENTER`, else the agent's), the default of upstreams without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// Ours: the CA's other (inactive) roots, still trusted during a CA rotation.
    #[serde(
        rename = "inactiveRootCertPEMs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub inactive_root_cert_pems: Vec<String>,
    /// Upstream declared `peers` (`name`, `trustDomain`) and never filled it; we do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peers: Vec<PeerData>,
}

impl std::fmt::Debug for ExtensionData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExtensionData")
            .field("trust_domain", &self.trust_domain)
            .field("datacenter", &self.datacenter)
            .field("peers", &self.peers)
            .field("private_key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// What the extension needs to reach the services a cluster peer exports to us.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct PeerData {
    /// Our name for the peering (upstream's field; `name.svc….PEER.peer` upstreams name it).
    pub name: String,
    /// The peer's trust domain (upstream's field).
    #[serde(default)]
    pub trust_domain: String,
    /// The peer's datacenter (`Remote.Datacenter`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// The peer's exporting partition (`Remote.Partition`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// The peer's CA roots (`PeerCAPems`), which verify its services.
    #[serde(
        rename = "rootCertPEMs",
        default,
        skip_serializing_if = "Vec::is_empty"
    )]
    pub root_cert_pems: Vec<String>,
    /// The name the peer gave its peering with us: the peer label of the SNI names
    /// of the services it exports to us (read from an imported service's `PeerMeta.SNI`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote_peer_name: Option<String>,
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
    /// The registrator's datacenter (`DATACENTER`, else the agent's).
    #[serde(default)]
    pub datacenter: Option<String>,
    /// The cluster peers (`GET /v1/peerings`), any order.
    #[serde(default)]
    pub peers: Vec<PeerData>,
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
    if let Some(dc) = &input.datacenter {
        crate::config::validate_consul_name("datacenter", dc)?;
    }
    let mut peers = input.peers.clone();
    peers.sort_by(|a, b| a.name.cmp(&b.name));
    let data = ExtensionData {
        private_key_pem: input.leaf.private_key_pem.clone(),
        cert_pem: input.leaf.cert_pem.clone(),
        root_cert_pem: root.to_owned(),
        trust_domain: input.roots.trust_domain.clone(),
        datacenter: input.datacenter.clone(),
        inactive_root_cert_pems: input.roots.inactive_pems(root),
        peers,
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
