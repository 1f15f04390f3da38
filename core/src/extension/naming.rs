//! SNI names and SPIFFE IDs as Consul forms them (`agent/connect/sni.go` and the
//! `SpiffeID*` types of Consul's `connect` package), and the dial target of each
//! upstream (`docs/contract.md` §12.2). Vectors: `tests/vectors/extension-naming.json`.
//!
//! - A service in the default partition: `service.namespace.datacenter.internal.<trust domain>`;
//!   in another partition: `service.namespace.partition.datacenter.internal-v1.<trust domain>`.
//! - A service exported by a cluster peer: `service.namespace.partition.<peer>.external.<trust domain>`,
//!   where partition and trust domain are the exporting cluster's, and `<peer>` is the
//!   name the exporting cluster gave its peering with ours (it writes these names into the
//!   `PeerMeta.SNI` of the services it exports).
//! - SPIFFE IDs: `spiffe://<trust domain>[/ap/<partition>]/ns/<namespace>/dc/<datacenter>/svc/<service>`
//!   (the partition only when it is not `default`); a mesh gateway:
//!   `spiffe://<trust domain>[/ap/<partition>]/gateway/mesh/dc/<datacenter>`.

use super::data::{ExtensionDataValue, PeerData};
use super::upstreams::Upstream;
use crate::error::{Code, Diagnostic};
use serde::{Deserialize, Serialize};

/// The datacenter upstream's extension assumed for every upstream without one.
pub const UPSTREAM_DEFAULT_DATACENTER: &str = "dc1";

const DEFAULT: &str = "default";

fn or_default(value: Option<&str>) -> &str {
    value.filter(|v| !v.is_empty()).unwrap_or(DEFAULT)
}

/// `connect.ServiceSNI`: the SNI name of a service (or a subset of it) in a
/// datacenter of the local cluster.
pub fn service_sni(
    service: &str,
    subset: Option<&str>,
    namespace: Option<&str>,
    partition: Option<&str>,
    datacenter: &str,
    trust_domain: &str,
) -> String {
    let namespace = or_default(namespace);
    let partition = or_default(partition);
    let mut parts: Vec<&str> = Vec::with_capacity(7);
    parts.extend(subset.filter(|s| !s.is_empty()));
    parts.extend([service, namespace]);
    if partition == DEFAULT {
        parts.extend([datacenter, "internal"]);
    } else {
        parts.extend([partition, datacenter, "internal-v1"]);
    }
    parts.push(trust_domain);
    parts.join(".")
}

/// `connect.PeeredServiceSNI`: the SNI name of a service exported by a cluster peer.
/// `partition` and `trust_domain` are the exporting cluster's; `peer` is the name
/// the exporting cluster gave its peering with ours.
pub fn peered_service_sni(
    service: &str,
    namespace: Option<&str>,
    partition: Option<&str>,
    peer: &str,
    trust_domain: &str,
) -> String {
    [
        service,
        or_default(namespace),
        or_default(partition),
        peer,
        "external",
        trust_domain,
    ]
    .join(".")
}

/// `connect.SpiffeIDService`: a service's identity in its leaf certificate.
pub fn service_spiffe_id(
    trust_domain: &str,
    partition: Option<&str>,
    namespace: Option<&str>,
    datacenter: &str,
    service: &str,
) -> String {
    let ap = match or_default(partition) {
        DEFAULT => String::new(),
        p => format!("/ap/{p}"),
    };
    format!(
        "spiffe://{trust_domain}{ap}/ns/{}/dc/{datacenter}/svc/{service}",
        or_default(namespace)
    )
}

/// `connect.SpiffeIDMeshGateway`: a mesh gateway's identity.
pub fn mesh_gateway_spiffe_id(
    trust_domain: &str,
    partition: Option<&str>,
    datacenter: &str,
) -> String {
    let ap = match or_default(partition) {
        DEFAULT => String::new(),
        p => format!("/ap/{p}"),
    };
    format!("spiffe://{trust_domain}{ap}/gateway/mesh/dc/{datacenter}")
}

/// Reads the datacenter out of a service SPIFFE ID (`…/dc/<dc>/svc/<service>`):
/// the extension's fallback for the registrator's datacenter when the extension
/// data has no `datacenter` (data written by upstream's registrator).
pub fn datacenter_of_spiffe_id(id: &str) -> Option<&str> {
    let path = id.strip_prefix("spiffe://")?.split_once('/')?.1;
    let labels: Vec<&str> = path.split('/').collect();
    labels
        .windows(2)
        .find(|w| matches!(w, ["dc", _]))
        .and_then(|w| w.get(1).copied())
        .filter(|dc| !dc.is_empty())
}

/// Where a connection to one upstream goes, and whom it must reach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct DialTarget {
    /// The local port.
    pub port: u16,
    /// The SNI name sent to the mesh gateway, which routes on it.
    pub sni: String,
    /// The SPIFFE IDs the server's certificate may carry (the service's; for a
    /// peer, also the exporting cluster's mesh gateway, which terminates TLS for
    /// L7 protocols).
    pub spiffe_ids: Vec<String>,
    /// The trust domain whose roots verify the server.
    pub trust_domain: String,
    /// The datacenter the SNI name names (the exporting cluster's for a peer, when known).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// The peer, for a peered upstream.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peer: Option<String>,
    /// Where the datacenter came from: `upstream` (the entry), `data` (the
    /// registrator's `datacenter`), `certificate` (the function's own leaf) or
    /// `fallback` (`dc1`, as upstream's extension always did), or `peering`.
    pub datacenter_source: String,
}

/// The dial target of `upstream` with the extension data `data`. `leaf_datacenter`
/// is the datacenter of the function's own certificate (its SPIFFE ID), which the
/// binary reads; it is the default when the data has no `datacenter`.
///
/// **Fix** Upstream's extension sent every upstream without a datacenter to `dc1`,
/// whatever the registrator's datacenter was.
pub fn dial_target(
    upstream: &Upstream,
    data: &ExtensionDataValue,
    leaf_datacenter: Option<&str>,
) -> Result<DialTarget, Diagnostic> {
    match &upstream.peer {
        Some(peer_name) => peered_dial_target(upstream, peer_name, data),
        None => Ok(local_dial_target(upstream, data, leaf_datacenter)),
    }
}

/// The dial target of an upstream exported by the cluster peer `peer_name`: the
/// peer's entry in the extension data names its SNI and identities.
fn peered_dial_target(
    upstream: &Upstream,
    peer_name: &str,
    data: &ExtensionDataValue,
) -> Result<DialTarget, Diagnostic> {
    let peer = find_peer(data, peer_name)?;
    let remote_name = peer
        .remote_peer_name
        .as_deref()
        .ok_or_else(|| incomplete_peer(peer_name, "remotePeerName"))?;
    if peer.trust_domain.is_empty() {
        return Err(incomplete_peer(peer_name, "trustDomain"));
    }
    let namespace = upstream.namespace.as_deref();
    let partition = peer.partition.as_deref();
    Ok(DialTarget {
        port: upstream.port,
        sni: peered_service_sni(
            &upstream.service,
            namespace,
            partition,
            remote_name,
            &peer.trust_domain,
        ),
        spiffe_ids: peer_spiffe_ids(upstream, peer),
        trust_domain: peer.trust_domain.clone(),
        datacenter: peer.datacenter.clone(),
        peer: Some(peer_name.to_owned()),
        datacenter_source: "peering".to_owned(),
    })
}

/// The extension data's entry for the peer `peer_name`.
fn find_peer<'a>(
    data: &'a ExtensionDataValue,
    peer_name: &str,
) -> Result<&'a PeerData, Diagnostic> {
    data.peers.iter().find(|p| p.name == peer_name).ok_or_else(|| {
        Diagnostic::new(
            Code::UnknownPeer,
            format!("the extension data describes no peer `{}`", crate::error::clip(peer_name)),
            "the registrator writes the peers it reads with GET /v1/peering/:name; check the peer's name and that the registrator's version writes peers",
        )
        .key("CONSUL_SERVICE_UPSTREAMS")
        .value(peer_name)
    })
}

/// The peer `peer_name` is in the extension data but lacks the field `what`.
fn incomplete_peer(peer_name: &str, what: &str) -> Diagnostic {
    Diagnostic::new(
        Code::UnknownPeer,
        format!(
            "the extension data's peer `{}` lacks {what}",
            crate::error::clip(peer_name)
        ),
        "the registrator fills it once the peering is active and exports a service to us",
    )
    .key("peers")
    .value(peer_name)
}

/// The identities a peered upstream's server may present: the service's and the
/// exporting cluster's mesh gateway's, when the peer's datacenter is known (none
/// otherwise).
fn peer_spiffe_ids(upstream: &Upstream, peer: &PeerData) -> Vec<String> {
    let Some(dc) = peer.datacenter.as_deref() else {
        return Vec::new();
    };
    let partition = peer.partition.as_deref();
    vec![
        service_spiffe_id(
            &peer.trust_domain,
            partition,
            upstream.namespace.as_deref(),
            dc,
            &upstream.service,
        ),
        mesh_gateway_spiffe_id(&peer.trust_domain, partition, dc),
    ]
}

/// The dial target of an upstream in a datacenter of the local cluster.
fn local_dial_target(
    upstream: &Upstream,
    data: &ExtensionDataValue,
    leaf_datacenter: Option<&str>,
) -> DialTarget {
    let (datacenter, source) = upstream_datacenter(upstream, data, leaf_datacenter);
    let namespace = upstream.namespace.as_deref();
    let partition = upstream.partition.as_deref();
    let td = &data.trust_domain;
    DialTarget {
        port: upstream.port,
        sni: service_sni(
            &upstream.service,
            None,
            namespace,
            partition,
            datacenter,
            td,
        ),
        spiffe_ids: vec![service_spiffe_id(
            td,
            partition,
            namespace,
            datacenter,
            &upstream.service,
        )],
        trust_domain: td.clone(),
        datacenter: Some(datacenter.to_owned()),
        peer: None,
        datacenter_source: source.to_owned(),
    }
}

/// The datacenter of a local upstream and where it came from (see
/// [`DialTarget::datacenter_source`]): the entry's, else the data's, else the
/// function's certificate's, else `dc1`.
fn upstream_datacenter<'a>(
    upstream: &'a Upstream,
    data: &'a ExtensionDataValue,
    leaf_datacenter: Option<&'a str>,
) -> (&'a str, &'static str) {
    match (&upstream.datacenter, &data.datacenter, leaf_datacenter) {
        (Some(dc), _, _) => (dc.as_str(), "upstream"),
        (None, Some(dc), _) if !dc.is_empty() => (dc.as_str(), "data"),
        (None, _, Some(dc)) if !dc.is_empty() => (dc, "certificate"),
        _ => (UPSTREAM_DEFAULT_DATACENTER, "fallback"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consul_forms() {
        let td = "11111111-2222-3333-4444-555555555555.consul";
        assert_eq!(
            service_sni("api", None, None, None, "dc1", td),
            format!("api.default.dc1.internal.{td}")
        );
        assert_eq!(
            service_sni("api", Some("v2"), Some("ns1"), Some("ap1"), "dc2", td),
            format!("v2.api.ns1.ap1.dc2.internal-v1.{td}")
        );
        assert_eq!(
            peered_service_sni("api", None, None, "west", td),
            format!("api.default.default.west.external.{td}")
        );
        assert_eq!(
            service_spiffe_id(td, Some("ap1"), None, "dc1", "api"),
            format!("spiffe://{td}/ap/ap1/ns/default/dc/dc1/svc/api")
        );
        assert_eq!(
            mesh_gateway_spiffe_id(td, None, "dc2"),
            format!("spiffe://{td}/gateway/mesh/dc/dc2")
        );
        assert_eq!(
            datacenter_of_spiffe_id(&format!("spiffe://{td}/ap/x/ns/default/dc/east-1/svc/fn")),
            Some("east-1")
        );
        assert_eq!(datacenter_of_spiffe_id("spiffe://td/ns/default"), None);
    }
}
