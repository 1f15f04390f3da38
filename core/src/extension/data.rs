//! The extension data value (`docs/contract.md` §4.5, §12.3): the JSON the
//! registrator stores at `<prefix>/<partition>/<namespace>/<service>` and the
//! extension reads. Upstream's four fields come first and keep their meaning; our
//! fields are optional, so upstream's extension (whose JSON decoding skips unknown
//! fields) reads what we write, and ours reads what upstream's registrator wrote.
//!
//! ```json
//! {"privateKeyPEM": "…", "certPEM": "…", "rootCertPEM": "…", "trustDomain": "….consul",
//!  "datacenter": "dc2",
//!  "inactiveRootCertPEMs": ["…"],
//!  "peers": [{"name": "east", "trustDomain": "….consul", "datacenter": "dc1", "partition": "default",
//!             "rootCertPEMs": ["…"], "remotePeerName": "west"}]}
//! ```

pub use crate::consul::PeerData;
use crate::consul::{extension_data_parameter, ExtensionData, ExtensionDataInput, PutParameter};
use crate::error::{clip, Code, Diagnostic, Failure};
use serde::{Deserialize, Serialize};

/// The stored value (one type with the registrator's: [`crate::consul::ExtensionData`]).
pub type ExtensionDataValue = ExtensionData;

/// What [`read_extension_data`] tells about a value, without its private key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ExtensionDataSummary {
    /// The trust domain.
    pub trust_domain: String,
    /// The registrator's datacenter, when written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// How many roots the extension trusts (the active one and the inactive ones).
    pub roots: usize,
    /// The peers.
    pub peers: Vec<PeerData>,
    /// Which optional fields of ours the value has (`datacenter`, `inactiveRootCertPEMs`, `peers`).
    pub extensions: Vec<String>,
}

fn bad_data(message: impl Into<String>) -> Diagnostic {
    Diagnostic::new(
        Code::InvalidExtensionData,
        message,
        "the registrator writes this value when CONSUL_EXTENSION_DATA_PREFIX is set; run a sync, and check that the extension's prefix, partition and namespace match",
    )
    .key("extensionData")
}

/// Reads a stored value. Errors never quote the value (it holds a private key).
pub fn parse_extension_data(text: &str) -> Result<ExtensionDataValue, Diagnostic> {
    let value: ExtensionDataValue = serde_json::from_str(text).map_err(|e| {
        bad_data(format!(
            "the extension data is not the JSON the registrator writes ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })?;
    let missing: Vec<&str> = [
        ("privateKeyPEM", &value.private_key_pem),
        ("certPEM", &value.cert_pem),
        ("rootCertPEM", &value.root_cert_pem),
        ("trustDomain", &value.trust_domain),
    ]
    .into_iter()
    .filter(|(_, v)| v.trim().is_empty())
    .map(|(k, _)| k)
    .collect();
    if !missing.is_empty() {
        return Err(bad_data(format!(
            "the extension data lacks {}",
            missing.join(", ")
        )));
    }
    Ok(value)
}

/// [`parse_extension_data`], summarised without secrets (the JSON API's `extensionDataRead`).
pub fn read_extension_data(text: &str) -> Result<ExtensionDataSummary, Failure> {
    let v = parse_extension_data(text)?;
    let mut extensions = Vec::new();
    if v.datacenter.is_some() {
        extensions.push("datacenter".to_owned());
    }
    if !v.inactive_root_cert_pems.is_empty() {
        extensions.push("inactiveRootCertPEMs".to_owned());
    }
    if !v.peers.is_empty() {
        extensions.push("peers".to_owned());
    }
    Ok(ExtensionDataSummary {
        trust_domain: v.trust_domain,
        datacenter: v.datacenter,
        roots: 1 + v.inactive_root_cert_pems.len(),
        peers: v.peers,
        extensions,
    })
}

/// The parts of one peering of `GET /v1/peerings` (or `GET /v1/peering/:name`) the extension data needs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Peering {
    /// Our name for the peering.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// `ACTIVE`, `PENDING`, `ESTABLISHING`, `FAILING`, `DELETING`, `TERMINATED`.
    #[serde(rename = "State", default)]
    pub state: String,
    /// The peer's CA roots.
    #[serde(rename = "PeerCAPems", default)]
    pub peer_ca_pems: Option<Vec<String>>,
    /// `server.<dc>.peering.<trust domain>` (`connect.PeeringServerSAN`).
    #[serde(rename = "PeerServerName", default)]
    pub peer_server_name: String,
    /// The peer's partition and datacenter.
    #[serde(rename = "Remote", default)]
    pub remote: Option<PeeringRemote>,
}

/// `Remote` of a peering.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct PeeringRemote {
    /// The peer's partition.
    #[serde(rename = "Partition", default)]
    pub partition: String,
    /// The peer's datacenter.
    #[serde(rename = "Datacenter", default)]
    pub datacenter: String,
}

/// Input of [`peer_data`] (the JSON API's `extensionPeer`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PeerInput {
    /// The answer of one peering of `GET /v1/peerings`.
    pub peering: Peering,
    /// `Service.Connect.PeerMeta.SNI[0]` of any service the peer exports to us
    /// (`GET /v1/health/service/:service?peer=:name`), when one is imported.
    #[serde(default)]
    pub imported_sni: Option<String>,
}

/// What the registrator writes about one peer.
pub fn peer_data(input: &PeerInput) -> Result<PeerData, Failure> {
    let p = &input.peering;
    let bad = |message: String| {
        Diagnostic::new(
            Code::InvalidResponse,
            message,
            "pass the answer of an active peering of GET /v1/peerings",
        )
        .key("peering")
    };
    if p.name.is_empty() {
        return Err(bad("the peering has no Name".to_owned()).into());
    }
    let remote = p.remote.clone().unwrap_or_default();
    let nonempty = |s: &str| Some(s.to_owned()).filter(|s| !s.is_empty());
    // server.<dc>.peering.<trust domain>
    let mut trust_domain = p
        .peer_server_name
        .strip_prefix("server.")
        .and_then(|rest| rest.split_once(".peering."))
        .map(|(_, td)| td.to_owned())
        .unwrap_or_default();
    let mut remote_peer_name = None;
    if let Some(sni) = input.imported_sni.as_deref() {
        // service.namespace.partition.<peer>.external.<trust domain>
        let labels: Vec<&str> = sni.splitn(6, '.').collect();
        match labels.as_slice() {
            [_, _, _, peer, "external", td] if !peer.is_empty() && !td.is_empty() => {
                remote_peer_name = Some((*peer).to_owned());
                if trust_domain.is_empty() {
                    trust_domain = (*td).to_owned();
                }
            }
            _ => {
                return Err(bad(format!(
                    "`{}` is not the SNI name of a peered service (service.namespace.partition.peer.external.trust-domain)",
                    clip(sni)
                ))
                .key("importedSni")
                .into())
            }
        }
    }
    Ok(PeerData {
        name: p.name.clone(),
        trust_domain,
        datacenter: nonempty(&remote.datacenter),
        partition: nonempty(&remote.partition),
        root_cert_pems: p.peer_ca_pems.clone().unwrap_or_default(),
        remote_peer_name,
    })
}

/// Input of [`extension_data_put`] (the JSON API's `extensionDataBuild`): the
/// registrator's own input, which carries the datacenter and the peers.
pub type ExtensionDataBuildInput = ExtensionDataInput;

/// The `PutParameter` call that stores a service's extension data, as the
/// registrator writes it (`datacenter`, the inactive roots, the peers). Holds the
/// private key: send it, never print it.
pub fn extension_data_put(input: &ExtensionDataBuildInput) -> Result<PutParameter, Failure> {
    extension_data_parameter(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_never_quote_the_value() {
        let secret = "-----BEGIN EC PRIVATE KEY-----SECRET";
        for text in [
            format!("{{\"privateKeyPEM\": \"{secret}\", \"peers\": \"{secret}\"}}"),
            format!("{{\"privateKeyPEM\": \"{secret}\""),
            format!("{{\"privateKeyPEM\": \"{secret}\", \"certPEM\": \"\"}}"),
        ] {
            let e = parse_extension_data(&text)
                .err()
                .map(|d| format!("{d:?}"))
                .unwrap_or_default();
            assert!(
                e.contains("invalid_extension_data") || e.contains("InvalidExtensionData"),
                "{e}"
            );
            assert!(!e.contains("SECRET"), "{e}");
        }
        let v = ExtensionDataValue {
            private_key_pem: secret.into(),
            ..Default::default()
        };
        assert!(!format!("{v:?}").contains("SECRET"));
    }
}
