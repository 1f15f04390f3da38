//! The JSON API of the Lambda extension's pure parts (`crate::extension`,
//! docs/contract.md §12): the functions of [`crate::extension::FFI_FUNCTIONS`].

use super::{emit, parse};
use crate::error::Failure;
use crate::extension::{
    data, dial_target, extension_settings_from_env, parse_upstream, Upstream, FFI_FUNCTIONS,
};
use serde::Deserialize;
use std::collections::BTreeMap;

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
pub(crate) fn call(function: &str, input: &str) -> Result<String, Failure> {
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
    fn every_name_is_listed_once() {
        let all = super::super::FUNCTIONS;
        for f in all {
            assert_eq!(all.iter().filter(|g| *g == f).count(), 1, "{f}");
        }
        assert!(all.ends_with(crate::extension::FFI_FUNCTIONS));
    }
}
