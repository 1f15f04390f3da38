//! The cluster peers the extension data names (docs/contract.md §12.3), read only
//! when extension data is on and the token may (`POST /v1/internal/acl/authorize`
//! for `peering:read`: Consul refuses `GET /v1/peerings` to a token without it
//! only after its own retries of the denial, 7 s on 1.15 and 12 s on 1.22, more
//! than the request timeout): `GET /v1/peerings`, then per active peering the
//! services it exports to us and one of their instances, whose `PeerMeta.SNI`
//! holds the peer's name for us (the label of the SNI names the extension dials).
//! Peers are optional data: a denied or failed read leaves them out with a
//! warning, and the sync goes on.

use super::{Observing, Read};
use crate::config::LogLevel;
use crate::engine::io::{parse_body, Io};
use crate::engine::wire::HttpReply;
use crate::extension::data::{peer_data, PeerInput, Peering};
use crate::lower::{AuthorizeItem, ConsulRequest, Request};
use serde::Deserialize;
use std::collections::BTreeMap;

impl Observing {
    /// Asks whether the token may read the peerings (then for them).
    pub(super) fn start_peers(&mut self) {
        let items = vec![AuthorizeItem {
            resource: "peering",
            segment: String::new(),
            access: "read",
        }];
        let request = ConsulRequest::Authorize { dc: None, items };
        self.calls
            .push(Request::Consul(request), Read::PeeringAllowed);
    }

    /// Consul's answer on `peering:read`: a denial leaves the peers out at once
    /// (as a 403 to the read would, without its wait); an allowance, ACLs off
    /// (401 "ACL support disabled") or no such endpoint (an older Consul, a
    /// proxy: any other answer) go on to `GET /v1/peerings`.
    pub(super) fn on_peering_allowed(&mut self, io: &mut Io, h: &HttpReply) -> Result<(), String> {
        #[derive(Deserialize)]
        struct Allowed {
            #[serde(rename = "Allow", default)]
            allow: bool,
        }
        if h.status == 200 {
            if let Ok([Allowed { allow: false }]) = serde_json::from_str::<[Allowed; 1]>(&h.body) {
                self.peers_left_out(io, "GET /v1/peerings", 403);
                return Ok(());
            }
        }
        self.calls
            .push(Request::Consul(ConsulRequest::Peerings), Read::Peerings);
        Ok(())
    }

    /// A token without `peering:read` (the documented policy: peering is opt-in)
    /// is said at info level; any other failure is a warning.
    fn peers_left_out(&mut self, io: &mut Io, what: &str, status: u16) {
        let (level, hint) = if status == 403 {
            (
                LogLevel::Info,
                "for peered upstreams, add peering = \"read\" to the token's policy",
            )
        } else {
            (
                LogLevel::Warn,
                "the extension data is written without peers",
            )
        };
        io.log(
            level,
            "cluster peers not read; the extension data names none",
            [
                ("request", Some(what.into())),
                ("status", Some(u64::from(status).into())),
                ("hint", Some(hint.into())),
            ],
        );
    }

    pub(super) fn on_peerings(&mut self, io: &mut Io, h: &HttpReply) -> Result<(), String> {
        // 404: a Consul without peering.
        if h.status == 404 {
            return Ok(());
        }
        if h.status != 200 {
            self.peers_left_out(io, "GET /v1/peerings", h.status);
            return Ok(());
        }
        let peerings: Option<Vec<Peering>> = parse_body(&h.body)?;
        for p in peerings.unwrap_or_default() {
            if p.state != "ACTIVE" {
                continue;
            }
            let input = PeerInput {
                peering: p.clone(),
                imported_sni: None,
            };
            let Ok(data) = peer_data(&input) else {
                continue;
            };
            let i = self.obs.peers.len();
            self.obs.peers.push(data);
            self.obs.peerings.push(p.clone());
            let request = ConsulRequest::ImportedServices { peer: p.name };
            self.calls.push(Request::Consul(request), Read::Imported(i));
        }
        Ok(())
    }

    pub(super) fn on_imported(
        &mut self,
        io: &mut Io,
        i: usize,
        h: &HttpReply,
    ) -> Result<(), String> {
        if h.status != 200 {
            self.peers_left_out(io, "GET /v1/catalog/services?peer", h.status);
            return Ok(());
        }
        let services: Option<BTreeMap<String, serde::de::IgnoredAny>> = parse_body(&h.body)?;
        let first = services.unwrap_or_default().into_keys().next();
        let (Some(service), Some(p)) = (first, self.obs.peerings.get(i)) else {
            return Ok(());
        };
        let request = ConsulRequest::PeerService {
            peer: p.name.clone(),
            service,
        };
        self.calls.push(Request::Consul(request), Read::PeerSni(i));
        Ok(())
    }

    pub(super) fn on_peer_sni(
        &mut self,
        io: &mut Io,
        i: usize,
        h: &HttpReply,
    ) -> Result<(), String> {
        #[derive(Deserialize)]
        struct Entry {
            #[serde(rename = "Service", default)]
            service: Option<Service>,
        }
        #[derive(Deserialize)]
        struct Service {
            #[serde(rename = "Connect", default)]
            connect: Option<Connect>,
        }
        #[derive(Deserialize)]
        struct Connect {
            #[serde(rename = "PeerMeta", default)]
            peer_meta: Option<PeerMeta>,
        }
        #[derive(Deserialize)]
        struct PeerMeta {
            #[serde(rename = "SNI", default)]
            sni: Option<Vec<String>>,
        }
        if h.status != 200 {
            self.peers_left_out(io, "GET /v1/health/service?peer", h.status);
            return Ok(());
        }
        let entries: Option<Vec<Entry>> = parse_body(&h.body)?;
        let sni = entries
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| e.service?.connect?.peer_meta?.sni?.into_iter().next())
            .next();
        let (Some(sni), Some(p)) = (sni, self.obs.peerings.get(i)) else {
            return Ok(());
        };
        let input = PeerInput {
            peering: p.clone(),
            imported_sni: Some(sni),
        };
        match peer_data(&input) {
            Ok(data) => {
                if let Some(slot) = self.obs.peers.get_mut(i) {
                    *slot = data;
                }
            }
            Err(f) => io.log(
                LogLevel::Warn,
                "an imported service's SNI name was not understood; the peer is written without its name for us",
                [("error", Some(f.message.into()))],
            ),
        }
        Ok(())
    }
}
