//! The mesh side of a connection: the TLS client configuration of each upstream,
//! built from the extension data. The server's certificate must chain to the
//! Consul CA's roots (the active one and the inactive ones still in the data, or
//! the peer's roots for a peered upstream) and carry the upstream's SPIFFE ID;
//! the SNI name only routes at the mesh gateway, so the DNS name is not checked
//! (Consul's leaf certificates carry a SPIFFE ID, not the SNI name).

use crate::der;
use consul_lambda_sync::extension::data::parse_extension_data;
use consul_lambda_sync::extension::{
    dial_target, naming, upstreams::ExtensionSettings, DialTarget,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme,
};
use std::collections::HashMap;
use std::sync::Arc;

/// Called when a server's certificate chains to no root we know: the CA may
/// have rotated, so the data should be read again.
pub type OnUnknownCa = Arc<dyn Fn() + Send + Sync>;

/// Everything built from one extension data value.
pub struct Material {
    /// Per local port: the target, or why it cannot be dialled.
    pub targets: HashMap<u16, Result<Target, String>>,
    /// When the function's certificate expires.
    pub not_after_ms: Option<u64>,
    /// The datacenter of the function's certificate.
    pub leaf_datacenter: Option<String>,
}

/// One upstream, ready to dial.
pub struct Target {
    /// Names and identities.
    pub dial: DialTarget,
    /// TLS configuration (client certificate, roots, SPIFFE check).
    pub config: Arc<ClientConfig>,
    /// The SNI name.
    pub server_name: ServerName<'static>,
}

/// rustls on ring: small, and it cross-builds with zig (aws-lc-rs needs cmake and
/// more). ring has no post-quantum key exchange, which Consul's peers do not need.
///
/// X25519 comes first: the ClientHello carries a key share for the first group
/// only, and the sidecars (Go's `consul connect proxy`, Envoy) choose X25519. The
/// ring provider lists P-384 first, which cost every connection a P-384 key
/// (about a millisecond here) and a HelloRetryRequest round trip, since no TLS
/// session remembers the server's choice (resumption is off).
#[allow(deprecated)]
pub fn provider() -> Arc<CryptoProvider> {
    use rustls::crypto::ring::kx_group;
    let mut provider = rustls::crypto::ring::default_provider();
    provider.kx_groups = vec![kx_group::X25519, kx_group::SECP256R1, kx_group::SECP384R1];
    Arc::new(provider)
}

struct SpiffeVerifier {
    roots: Arc<RootCertStore>,
    spiffe_ids: Vec<String>,
    provider: Arc<CryptoProvider>,
    on_unknown_ca: OnUnknownCa,
}

impl std::fmt::Debug for SpiffeVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpiffeVerifier")
            .field("spiffe_ids", &self.spiffe_ids)
            .finish_non_exhaustive()
    }
}

impl ServerCertVerifier for SpiffeVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
        let chained = rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        );
        if let Err(e) = chained {
            if matches!(
                e,
                rustls::Error::InvalidCertificate(
                    CertificateError::UnknownIssuer | CertificateError::BadSignature
                )
            ) {
                (self.on_unknown_ca)();
            }
            return Err(e);
        }
        if self.spiffe_ids.is_empty() {
            return Ok(ServerCertVerified::assertion());
        }
        let uris = der::cert_info(end_entity)
            .map(|i| i.uris)
            .unwrap_or_default();
        if uris
            .iter()
            .any(|u| self.spiffe_ids.iter().any(|id| id == u))
        {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                rustls::OtherError(Arc::new(WrongIdentity(uris))),
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The server's certificate names another identity than the upstream's.
#[derive(Debug)]
struct WrongIdentity(Vec<String>);

impl std::fmt::Display for WrongIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the server's certificate names {:?}, not the upstream's SPIFFE ID",
            self.0
        )
    }
}

impl std::error::Error for WrongIdentity {}

fn roots_of(pems: &[&str]) -> RootCertStore {
    let mut store = RootCertStore::empty();
    for pem in pems {
        for der in CertificateDer::pem_slice_iter(pem.as_bytes()).flatten() {
            let _ = store.add(der);
        }
    }
    store
}

/// Builds the material from a stored value. Errors never quote the value.
pub fn build(
    settings: &ExtensionSettings,
    value: &str,
    on_unknown_ca: &OnUnknownCa,
) -> Result<Material, String> {
    let data = parse_extension_data(value).map_err(|d| d.message)?;
    let chain: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(data.cert_pem.as_bytes())
            .collect::<Result<_, _>>()
            .map_err(|_| "the extension data's certPEM is not PEM".to_owned())?;
    let leaf = chain
        .first()
        .ok_or("the extension data's certPEM holds no certificate")?;
    let key = PrivateKeyDer::from_pem_slice(data.private_key_pem.as_bytes())
        .map_err(|_| "the extension data's privateKeyPEM is not a PEM private key".to_owned())?;
    let info = der::cert_info(leaf).unwrap_or_default();
    let leaf_datacenter = info
        .uris
        .iter()
        .find_map(|u| naming::datacenter_of_spiffe_id(u))
        .map(str::to_owned);
    let provider = provider();
    let local_roots: Vec<&str> = std::iter::once(data.root_cert_pem.as_str())
        .chain(data.inactive_root_cert_pems.iter().map(String::as_str))
        .collect();
    let local_store = Arc::new(roots_of(&local_roots));
    let mut targets = HashMap::new();
    for up in &settings.upstreams {
        let built = dial_target(up, &data, leaf_datacenter.as_deref())
            .map_err(|d| format!("[{}] {}", d.code, d.message))
            .and_then(|dial| {
                let roots = match &dial.peer {
                    Some(peer) => {
                        let pems: Vec<&str> = data
                            .peers
                            .iter()
                            .filter(|p| &p.name == peer)
                            .flat_map(|p| p.root_cert_pems.iter().map(String::as_str))
                            .collect();
                        Arc::new(roots_of(&pems))
                    }
                    None => local_store.clone(),
                };
                if roots.is_empty() {
                    return Err("no CA root to verify this upstream with".to_owned());
                }
                let verifier = SpiffeVerifier {
                    roots,
                    spiffe_ids: dial.spiffe_ids.clone(),
                    provider: provider.clone(),
                    on_unknown_ca: on_unknown_ca.clone(),
                };
                let config = ClientConfig::builder_with_provider(provider.clone())
                    .with_safe_default_protocol_versions()
                    .map_err(|e| e.to_string())?
                    .dangerous()
                    .with_custom_certificate_verifier(Arc::new(verifier))
                    .with_client_auth_cert(chain.clone(), key.clone_key())
                    .map_err(|_| {
                        "the extension data's certificate and key do not make a client identity"
                            .to_owned()
                    })?;
                // No TLS resumption: a resumed session skips the server's client-certificate
                // checks in some sidecars (Go's VerifyPeerCertificate, which Consul's built-in
                // proxy authorizes intentions in, is not called on resumption), so an intention
                // changed to deny would not apply to resumed connections. Upstream's extension
                // made a full handshake every time too.
                let mut config = config;
                config.resumption = rustls::client::Resumption::disabled();
                let server_name = ServerName::try_from(dial.sni.clone())
                    .map_err(|_| format!("`{}` is not a valid SNI name", dial.sni))?;
                Ok(Target {
                    dial,
                    config: Arc::new(config),
                    server_name,
                })
            });
        targets.insert(up.port, built);
    }
    Ok(Material {
        targets,
        not_after_ms: info.not_after_ms,
        leaf_datacenter,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn x25519_is_the_first_key_share() {
        let groups: Vec<_> = super::provider()
            .kx_groups
            .iter()
            .map(|g| g.name())
            .collect();
        assert_eq!(
            groups,
            [
                rustls::NamedGroup::X25519,
                rustls::NamedGroup::secp256r1,
                rustls::NamedGroup::secp384r1
            ]
        );
    }
}
