//! Consul and Parameter Store objects (docs/contract.md §4): the answers hosts pass
//! through unchanged ([`model`]), the extension data format ([`extension_data`]),
//! and where a service lives ([`ServiceKey`]). The requests are in [`crate::lower`].

mod extension_data;
mod model;

pub use extension_data::{
    extension_data_parameter, ExtensionData, ExtensionDataInput, PeerData, PutParameter,
};
pub use model::*;
use serde::{Deserialize, Serialize};

/// The tag on every service the registrator registers.
pub const MANAGED_TAG: &str = "managed-by-lambda-registrator";
/// The Envoy extension that invokes Lambda functions.
pub const LAMBDA_EXTENSION: &str = "builtin/aws/lambda";
/// Parameter values above this many bytes need the configured (non-Standard) tier.
pub const STANDARD_TIER_LIMIT: usize = 4096;

/// Where a service lives in Consul (read strictly: a key holds nothing else).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
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

/// Longest service name the registrator writes: a function name (64) and an alias (128).
pub const MAX_SERVICE_NAME: usize = 64 + 1 + 128;

/// Whether `name` is a service name the registrator could have written: a Lambda
/// function name, or one with `-ALIAS`, so 1 to 193 of `[A-Za-z0-9_-]`. Names read
/// from Consul that are not are never planned for (they cannot be ours, and they
/// could carry `/`, `..`, `?` or `#` into a request path).
pub fn is_registrator_service_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_SERVICE_NAME && crate::arn::lambda_name_chars(name)
}
