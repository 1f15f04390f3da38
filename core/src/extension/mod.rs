//! The pure parts of the Lambda extension (`extension/`, the binary shipped as a
//! Lambda layer): what a function calling mesh services needs decided without
//! I/O. The binary does the Extensions API, Parameter Store, TCP and TLS.
//!
//! - [`upstreams`]: the extension's settings from its environment — upstream's
//!   variables with upstream's meaning (`CONSUL_SERVICE_UPSTREAMS`,
//!   `CONSUL_MESH_GATEWAY_URI`, …) — validated, every problem reported at once.
//! - [`naming`]: SNI names and SPIFFE IDs as Consul forms them (partitions,
//!   namespaces, datacenters, peers), and the dial target of each upstream.
//! - [`data`]: the extension data value in Parameter Store, as upstream's
//!   registrator and ours write it, with our optional fields (`datacenter`, the
//!   CA's inactive roots, peers), and how the registrator builds it.
//! - [`refresh`]: when to read the extension data again (the refresh frequency,
//!   before the certificate expires, backoff after a failed read).
//!
//! Contract: `docs/contract.md` §12; users' guide: `docs/lambda-to-mesh.md`.

pub mod data;
pub mod naming;
pub mod refresh;
pub mod upstreams;

pub use data::{ExtensionDataValue, PeerData};
pub use naming::{dial_target, DialTarget};
pub use upstreams::{extension_settings_from_env, parse_upstream, ExtensionSettings, Upstream};

/// The JSON API's functions of this module (dispatched in `crate::ffi`).
pub const FFI_FUNCTIONS: &[&str] = &[
    "extensionSettings",
    "extensionUpstream",
    "extensionTarget",
    "extensionDataRead",
    "extensionPeer",
    "extensionDataBuild",
];
