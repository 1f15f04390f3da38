//! The planning context: the validated configuration and where the registrator runs.

use crate::arn::{resolve_function_name, split_function_arn};
use crate::config::Config;
use crate::error::{Code, Diagnostic};

/// The validated configuration, and the registrator's account, region and
/// agent datacenter.
pub(super) struct Ctx<'a> {
    pub(super) config: &'a Config,
    pub(super) account: &'a str,
    pub(super) region: &'a str,
    pub(super) local_dc: Option<&'a str>,
}

impl Ctx<'_> {
    /// The datacenter of a wanted service: its tag, else `DATACENTER`, else the agent's.
    pub(super) fn datacenter<'s>(&'s self, explicit: Option<&'s str>) -> Option<&'s str> {
        explicit
            .or(self.config.datacenter.as_deref())
            .or(self.local_dc)
    }

    /// The datacenter a Consul scope was read from: a scope without one is the agent's
    /// own, which is `DATACENTER` only when the agent's datacenter is unknown.
    pub(super) fn scope_datacenter<'s>(&'s self, explicit: Option<&'s str>) -> Option<&'s str> {
        explicit
            .or(self.local_dc)
            .or(self.config.datacenter.as_deref())
    }

    /// A warning when `value` (an ARN, a partial ARN or a name, at `key` of the
    /// input) names a function of another account or region: such a function is
    /// ignored, never a reason to change or delete anything of ours.
    pub(super) fn foreign(&self, value: &str, key: &str) -> Option<Diagnostic> {
        let (account, region) = match split_function_arn(value) {
            Ok(a) => (a.account.to_owned(), a.region.to_owned()),
            Err(_) => {
                let a = resolve_function_name(value, self.account, self.region).ok()?;
                (a.account, a.region)
            }
        };
        if account == self.account && region == self.region {
            return None;
        }
        Some(
            Diagnostic::new(
                Code::ForeignFunction,
                format!(
                    "function {} is in account {account} region {region}, not the registrator's {} {}; it is ignored",
                    crate::error::clip(value),
                    self.account,
                    self.region
                ),
                "each registrator manages the functions of its own account and region; route only those events to it",
            )
            .key(key)
            .value(value)
            .function(value.to_owned()),
        )
    }

    /// The ARN of function `name` of the registrator's account and region.
    pub(super) fn function_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:lambda:{}:{}:function:{name}",
            crate::arn::partition_of_region(self.region),
            self.region,
            self.account
        )
    }
}
