//! The doctor's report: one [`Check`] per need, and the rules and actions to add.

use serde::{Deserialize, Serialize};

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    /// The permission or resource is there.
    Ok,
    /// It is not: `rule` or `action` says what to add.
    Missing,
    /// No usable answer (unreachable, bad credentials, an unexpected answer).
    Error,
    /// Not checked: not needed by this configuration, or not checkable without writing.
    Skipped,
}

/// One check of the report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Check {
    /// The stable name of the check, e.g. `consul.node_write` (see [`CHECK_CODES`]).
    pub code: String,
    /// How it came out.
    pub status: CheckStatus,
    /// What was found, in one line.
    pub message: String,
    /// The Consul ACL rule (HCL) to add to the token's policy, when missing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The IAM action(s) to allow, when missing (or when not checkable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// The resource the IAM action must cover.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

/// The doctor's report.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct DoctorReport {
    /// No check is `missing` or `error`.
    pub ok: bool,
    /// Every check, in a fixed order.
    pub checks: Vec<Check>,
    /// The Consul rules to add (one HCL block per line), deduplicated.
    pub consul_rules: Vec<String>,
    /// The IAM actions to allow, deduplicated.
    pub iam_actions: Vec<String>,
}

impl DoctorReport {
    /// Builds the report from the checks.
    pub fn new(checks: Vec<Check>) -> DoctorReport {
        let mut consul_rules: Vec<String> = Vec::new();
        let mut iam_actions: Vec<String> = Vec::new();
        for c in checks.iter().filter(|c| c.status == CheckStatus::Missing) {
            for rule in c.rule.iter().flat_map(|r| r.lines()) {
                if !consul_rules.iter().any(|r| r == rule) {
                    consul_rules.push(rule.to_owned());
                }
            }
            for action in c.action.iter().flat_map(|a| a.split(", ")) {
                if !iam_actions.iter().any(|a| a == action) {
                    iam_actions.push(action.to_owned());
                }
            }
        }
        // A write rule grants read: drop a read rule whose write form is listed.
        let writes: Vec<String> = consul_rules.clone();
        consul_rules.retain(|r| {
            !(r.contains("\"read\"") && writes.contains(&r.replace("\"read\"", "\"write\"")))
        });
        DoctorReport {
            ok: !checks
                .iter()
                .any(|c| matches!(c.status, CheckStatus::Missing | CheckStatus::Error)),
            checks,
            consul_rules,
            iam_actions,
        }
    }

    /// `3 ok, 1 missing, 0 error, 2 skipped`.
    pub fn counts(&self) -> String {
        let n = |s: CheckStatus| self.checks.iter().filter(|c| c.status == s).count();
        format!(
            "{} ok, {} missing, {} error, {} skipped",
            n(CheckStatus::Ok),
            n(CheckStatus::Missing),
            n(CheckStatus::Error),
            n(CheckStatus::Skipped)
        )
    }
}

/// An `ok` check.
pub fn ok(code: &str, message: impl Into<String>) -> Check {
    check(code, CheckStatus::Ok, message)
}

/// A `skipped` check.
pub fn skipped(code: &str, message: impl Into<String>) -> Check {
    check(code, CheckStatus::Skipped, message)
}

/// An `error` check.
pub fn error(code: &str, message: impl Into<String>) -> Check {
    check(code, CheckStatus::Error, message)
}

/// A `missing` check with the Consul rule to add.
pub fn missing_rule(code: &str, message: impl Into<String>, rule: String) -> Check {
    Check {
        rule: Some(rule),
        ..check(code, CheckStatus::Missing, message)
    }
}

fn check(code: &str, status: CheckStatus, message: impl Into<String>) -> Check {
    Check {
        code: code.into(),
        status,
        message: message.into(),
        rule: None,
        action: None,
        resource: None,
    }
}
