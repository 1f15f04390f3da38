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

use crate::error::Failure;
use crate::ffi::{emit, parse};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The JSON API's functions of this module (also listed in [`crate::ffi::FUNCTIONS`]).
pub const FFI_FUNCTIONS: &[&str] = &[
    "extensionSettings",
    "extensionUpstream",
    "extensionTarget",
    "extensionDataRead",
    "extensionPeer",
    "extensionDataBuild",
];

/// Input of `extensionTarget`.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct TargetInput {
    /// An upstream entry as written in `CONSUL_SERVICE_UPSTREAMS`, or parsed.
    upstream: UpstreamArg,
    /// The extension data value (the JSON text, as stored).
    data: String,
    /// The datacenter of the function's own certificate.
    #[serde(default)]
    leaf_datacenter: Option<String>,
}

/// An upstream as text or as its parsed shape.
#[derive(Debug, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(untagged)]
pub(crate) enum UpstreamArg {
    /// `name[.ns[.ap]]:port[:dc]` or the labelled form.
    Text(String),
    /// A parsed upstream.
    Parsed(Upstream),
}

/// Calls one of [`FFI_FUNCTIONS`].
pub(crate) fn ffi_call(function: &str, input: &str) -> Result<String, Failure> {
    match function {
        "extensionSettings" => {
            let env: BTreeMap<String, String> = parse("environment", input)?;
            emit(&extension_settings_from_env(&env)?)
        }
        "extensionUpstream" => {
            let text: String = parse("upstream entry", input)?;
            emit(&parse_upstream(&text)?)
        }
        "extensionTarget" => {
            let i: TargetInput = parse("extensionTarget input", input)?;
            let upstream = match i.upstream {
                UpstreamArg::Text(t) => parse_upstream(&t)?,
                UpstreamArg::Parsed(u) => u,
            };
            let data = data::parse_extension_data(&i.data)?;
            emit(&dial_target(
                &upstream,
                &data,
                i.leaf_datacenter.as_deref(),
            )?)
        }
        "extensionDataRead" => {
            let text: String = parse("extension data text", input)?;
            emit(&data::read_extension_data(&text)?)
        }
        "extensionPeer" => emit(&data::peer_data(&parse("extensionPeer input", input)?)?),
        "extensionDataBuild" => emit(&data::extension_data_put(&parse(
            "extensionDataBuild input",
            input,
        )?)?),
        other => Err(crate::error::Diagnostic::new(
            crate::error::Code::InvalidInput,
            format!("unknown function `{}`", crate::error::clip(other)),
            format!("call one of: {}", FFI_FUNCTIONS.join(", ")),
        )
        .key("function")
        .into()),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn listed_in_the_json_api() {
        for f in super::FFI_FUNCTIONS {
            assert!(crate::ffi::FUNCTIONS.contains(f), "{f}");
        }
    }
}
