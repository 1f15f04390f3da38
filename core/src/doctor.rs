//! The preflight check (`consul-lambda-sync doctor`): what this configuration
//! needs from Consul and AWS, and whether the credentials at hand have it.
//!
//! Sans-IO like the engine, and driven by it (`Start.doctor`): the engine sends
//! the probes this module describes, and the answers come back here to become
//! [`Check`]s. Nothing is written: Consul permissions are asked of
//! `POST /v1/internal/acl/authorize` (falling back to read-only probes and the
//! `X-Consul-Results-Filtered-By-ACLs` header where it is unavailable), AWS
//! permissions are probed with the read-only calls a sync makes, an
//! `AccessDenied` naming the IAM action to add.
//!
//! The needs are tables ([`CONSUL_NEEDS`], [`AWS_NEEDS`]): a feature that needs
//! another permission adds one row.

use crate::config::Config;
use crate::engine::wire::{aws_error_text, Answer};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

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

/// A Consul permission a configuration needs, asked of `/v1/internal/acl/authorize`.
#[derive(Debug)]
pub struct ConsulNeed {
    /// The check's code.
    pub code: &'static str,
    /// Whether this configuration needs it.
    pub applies: fn(&Config) -> bool,
    /// The ACL resource (`node`, `service`, `mesh`, …).
    pub resource: &'static str,
    /// `read` or `write`.
    pub access: &'static str,
    /// What the permission is for.
    pub why: &'static str,
}

/// What the registrator's Consul token needs, one row per feature. The segments
/// come from the configuration: `node` is `NODE_NAME`, `service` every managed
/// service name the inventory shows (or `""`: the prefix rule), `mesh` none.
pub const CONSUL_NEEDS: &[ConsulNeed] = &[
    ConsulNeed {
        code: "consul.node_write",
        applies: |_| true,
        resource: "node",
        access: "write",
        why: "registering the registrator's node (NODE_NAME) the first time, and reading its services",
    },
    ConsulNeed {
        code: "consul.service_write",
        applies: |_| true,
        resource: "service",
        access: "write",
        why: "catalog registration, service-defaults config entries, leaf certificates (extension data)",
    },
    ConsulNeed {
        code: "consul.mesh_write",
        applies: |c| {
            c.terminating_gateway_name.is_some()
                || !c.exported_services_peers.is_empty()
                || !c.exported_services_partitions.is_empty()
        },
        resource: "mesh",
        access: "write",
        why: "the terminating gateway's and exported-services config entries (docs/mesh.md)",
    },
];

/// The HCL rule that grants `access` on `resource` `segment`.
pub fn consul_rule(resource: &str, segment: &str, access: &str) -> String {
    match resource {
        "acl" | "keyring" | "mesh" | "operator" | "peering" => format!("{resource} = \"{access}\""),
        _ if segment.is_empty() => format!("{resource}_prefix \"\" {{ policy = \"{access}\" }}"),
        _ => format!(
            "{resource} \"{}\" {{ policy = \"{access}\" }}",
            segment.replace('\\', "\\\\").replace('"', "\\\"")
        ),
    }
}

/// At most this many authorizations per request (Consul refuses more than 64).
pub const MAX_AUTHORIZATIONS: usize = 64;

/// One authorization to ask: the row and the segment.
#[derive(Debug, Clone)]
pub struct Authorization {
    /// The row of [`CONSUL_NEEDS`].
    pub need: &'static ConsulNeed,
    /// The resource's name (`""` for none).
    pub segment: String,
}

/// The authorizations this configuration needs, at most [`MAX_AUTHORIZATIONS`].
/// `services`: the managed service names the inventory shows.
pub fn authorizations(config: &Config, services: &[String]) -> Vec<Authorization> {
    let mut out = Vec::new();
    for need in CONSUL_NEEDS {
        if !(need.applies)(config) {
            continue;
        }
        let segments: Vec<String> = match need.resource {
            "node" => vec![config.node_name.clone()],
            "service" if services.is_empty() => vec![String::new()],
            "service" => services.to_vec(),
            _ => vec![String::new()],
        };
        for segment in segments {
            out.push(Authorization { need, segment });
        }
    }
    // The node and the other single rows first; services fill the rest.
    out.sort_by_key(|a| a.need.resource == "service");
    out.truncate(MAX_AUTHORIZATIONS);
    out
}

/// The body of `POST /v1/internal/acl/authorize`.
pub fn authorize_body(items: &[Authorization]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|a| {
                let need = a.need;
                let mut v = json!({"Resource": need.resource, "Access": need.access});
                if let (Some(obj), false) = (v.as_object_mut(), a.segment.is_empty()) {
                    obj.insert("Segment".into(), Value::from(a.segment.clone()));
                }
                v
            })
            .collect(),
    )
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Authorized {
    #[serde(default)]
    allow: bool,
}

/// The checks from Consul's answer to the authorizations, or `None` when the
/// endpoint is unavailable (an older Consul, a proxy: any answer but 200).
pub fn authorize_checks(
    config: &Config,
    items: &[Authorization],
    answer: &Answer,
) -> Option<Vec<Check>> {
    if answer.status == Some(401)
        && answer
            .body
            .as_deref()
            .is_some_and(|b| b.contains("ACL support disabled"))
    {
        // ACLs off: Consul allows every request.
        return Some(
            CONSUL_NEEDS
                .iter()
                .map(|need| {
                    if (need.applies)(config) {
                        ok(
                            need.code,
                            "Consul's ACLs are disabled: every request is allowed",
                        )
                    } else {
                        skipped(need.code, "not needed by this configuration")
                    }
                })
                .collect(),
        );
    }
    if answer.status != Some(200) {
        return None;
    }
    let allowed: Vec<Authorized> =
        serde_json::from_str(answer.body.as_deref().unwrap_or("")).ok()?;
    if allowed.len() != items.len() {
        return None;
    }
    let mut checks = Vec::new();
    for need in CONSUL_NEEDS {
        if !(need.applies)(config) {
            checks.push(skipped(need.code, "not needed by this configuration"));
            continue;
        }
        let denied: Vec<&str> = items
            .iter()
            .zip(&allowed)
            .filter(|(a, ok)| a.need.code == need.code && !ok.allow)
            .map(|(a, _)| a.segment.as_str())
            .collect();
        let asked = items.iter().filter(|a| a.need.code == need.code).count();
        let what = format!("{} {}", need.resource, need.access);
        if denied.is_empty() {
            checks.push(ok(
                need.code,
                format!(
                    "the token has {what} on the {asked} name(s) checked, for {}",
                    need.why
                ),
            ));
            continue;
        }
        // Every name denied: the prefix rule; some: one rule per name.
        let rule = if denied.len() == asked && need.resource == "service" {
            consul_rule(need.resource, "", need.access)
        } else {
            denied
                .iter()
                .map(|s| consul_rule(need.resource, s, need.access))
                .collect::<Vec<_>>()
                .join("\n")
        };
        let names = if denied.iter().all(|s| s.is_empty()) {
            String::new()
        } else {
            format!(" on {}", clip_list(&denied))
        };
        checks.push(missing_rule(
            need.code,
            format!("the token lacks {what}{names}, needed for {}", need.why),
            rule,
        ));
    }
    Some(checks)
}

/// When `/v1/internal/acl/authorize` is unavailable: the writes cannot be checked.
pub fn unverifiable_writes(config: &Config, why: &str) -> Vec<Check> {
    CONSUL_NEEDS
        .iter()
        .map(|need| {
            if !(need.applies)(config) {
                return skipped(need.code, "not needed by this configuration");
            }
            let segment = if need.resource == "node" {
                config.node_name.as_str()
            } else {
                ""
            };
            let mut c = skipped(
                need.code,
                format!(
                    "not checked ({why}): the sync needs {}, for {}",
                    consul_rule(need.resource, segment, need.access),
                    need.why
                ),
            );
            c.rule = Some(consul_rule(need.resource, segment, need.access));
            c
        })
        .collect()
}

fn clip_list(items: &[&str]) -> String {
    let mut out: Vec<String> = items.iter().take(5).map(|s| format!("`{s}`")).collect();
    if items.len() > 5 {
        out.push(format!("and {} more", items.len() - 5));
    }
    out.join(", ")
}

/// An AWS call a sync makes, probed read-only.
#[derive(Debug)]
pub struct AwsNeed {
    /// The check's code.
    pub code: &'static str,
    /// The engine's service name (`sts`, `tagging`, `lambda`, `ssm`).
    pub service: &'static str,
    /// The API operation probed.
    pub operation: &'static str,
    /// The IAM action(s) the sync needs, comma-separated.
    pub action: &'static str,
    /// What it is for.
    pub why: &'static str,
}

/// What the registrator's IAM role needs, one row per call a sync makes.
pub const AWS_NEEDS: &[AwsNeed] = &[
    AwsNeed {
        code: "aws.identity",
        service: "sts",
        operation: "GetCallerIdentity",
        action: "sts:GetCallerIdentity",
        why:
            "the account; needs no IAM permission: this checks the credentials and the STS endpoint",
    },
    AwsNeed {
        code: "aws.list_functions",
        service: "tagging",
        operation: "GetResources",
        action: "tag:GetResources",
        why: "listing the tagged functions in a full sync",
    },
    AwsNeed {
        code: "aws.get_function",
        service: "lambda",
        operation: "GetFunction",
        action: "lambda:GetFunction",
        why: "loading one function for an event or a confirmation",
    },
    AwsNeed {
        code: "ssm.token",
        service: "ssm",
        operation: "GetParameter",
        action: "ssm:GetParameter",
        why: "reading the Consul ACL token at CONSUL_HTTP_TOKEN_PATH",
    },
    AwsNeed {
        code: "ssm.ca_cert",
        service: "ssm",
        operation: "GetParameter",
        action: "ssm:GetParameter",
        why: "reading the Consul CA certificate at CONSUL_CACERT_PATH",
    },
    AwsNeed {
        code: "ssm.extension_data_read",
        service: "ssm",
        operation: "GetParametersByPath",
        action: "ssm:GetParametersByPath",
        why: "listing the extension data parameters under CONSUL_EXTENSION_DATA_PREFIX",
    },
];

/// The row of [`AWS_NEEDS`] with this code.
pub fn aws_need(code: &str) -> Option<&'static AwsNeed> {
    AWS_NEEDS.iter().find(|n| n.code == code)
}

/// Every check code, in report order (README "Doctor").
pub const CHECK_CODES: &[&str] = &[
    "config",
    "aws.identity",
    "ssm.token",
    "ssm.ca_cert",
    "consul.reachable",
    "consul.agent_read",
    "consul.node_write",
    "consul.mesh_write",
    "consul.service_write",
    "consul.node_read",
    "consul.service_read",
    "consul.connect_ca",
    "aws.list_functions",
    "aws.get_function",
    "ssm.extension_data_read",
    "ssm.extension_data_write",
    "consul.enterprise",
];

/// Whether an AWS error means the caller lacks a permission.
fn access_denied(code: &str, message: &str) -> bool {
    matches!(
        code,
        "AccessDenied"
            | "AccessDeniedException"
            | "UnauthorizedOperation"
            | "UnauthorizedException"
            | "AuthorizationError"
    ) || message.contains("not authorized to perform")
}

/// The check of an AWS probe's answer. `resource`: what the action must cover.
pub fn aws_check(need: &AwsNeed, resource: &str, answer: &Answer) -> Check {
    let Some(err) = &answer.error else {
        return ok(
            need.code,
            format!(
                "{} {}: allowed, for {}",
                need.service, need.operation, need.why
            ),
        );
    };
    let text = aws_error_text(err);
    if access_denied(&err.code, &err.message) {
        // A SecureString under a customer managed key also needs kms:Decrypt.
        let kms = err.message.contains("KMS") || err.message.contains("kms:");
        let action = if kms { "kms:Decrypt" } else { need.action };
        return Check {
            code: need.code.into(),
            status: CheckStatus::Missing,
            message: format!(
                "{} {} was denied ({text}): allow {action}, needed for {}",
                need.service, need.operation, need.why
            ),
            rule: None,
            action: Some(action.into()),
            resource: Some(resource.into()),
        };
    }
    match err.code.as_str() {
        "ParameterNotFound" => Check {
            code: need.code.into(),
            status: CheckStatus::Missing,
            message: format!(
                "the parameter {resource} does not exist, needed for {}",
                need.why
            ),
            rule: None,
            action: None,
            resource: Some(resource.into()),
        },
        "transport" => error(
            need.code,
            format!("no answer from AWS {}: {text}", need.service),
        ),
        "config" => error(need.code, format!("AWS credentials or region: {text}")),
        _ => error(
            need.code,
            format!("{} {}: {text}", need.service, need.operation),
        ),
    }
}

/// The ARN of an SSM parameter (for the IAM statement).
pub fn parameter_arn(region: &str, account: &str, name: &str) -> String {
    format!(
        "arn:aws:ssm:{region}:{account}:parameter/{}",
        name.trim_start_matches('/')
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::wire::AnswerError;

    fn config() -> Config {
        Config {
            node_name: "lambdas".into(),
            ..Config::default()
        }
    }

    #[test]
    fn rules_are_hcl() {
        assert_eq!(
            consul_rule("node", "lambdas", "write"),
            "node \"lambdas\" { policy = \"write\" }"
        );
        assert_eq!(
            consul_rule("service", "", "write"),
            "service_prefix \"\" { policy = \"write\" }"
        );
        assert_eq!(consul_rule("mesh", "", "write"), "mesh = \"write\"");
    }

    #[test]
    fn authorizations_put_the_node_first_and_cap_at_64() {
        let names: Vec<String> = (0..100).map(|i| format!("f{i}")).collect();
        let items = authorizations(&config(), &names);
        assert_eq!(items.len(), MAX_AUTHORIZATIONS);
        assert_eq!(items[0].segment, "lambdas");
        let body = authorize_body(&items[..2]);
        assert_eq!(
            body,
            json!([
                {"Resource": "node", "Segment": "lambdas", "Access": "write"},
                {"Resource": "service", "Segment": "f0", "Access": "write"}
            ])
        );
        // No managed function: the prefix.
        let items = authorizations(&config(), &[]);
        assert_eq!(
            authorize_body(&items)[1],
            json!({"Resource": "service", "Access": "write"})
        );
    }

    #[test]
    fn a_denied_authorization_names_its_rule() {
        let items = authorizations(&config(), &["orders".into(), "pay".into()]);
        let answer = Answer {
            status: Some(200),
            body: Some(r#"[{"Allow": false}, {"Allow": true}, {"Allow": false}]"#.into()),
            ..Answer::default()
        };
        let checks = authorize_checks(&config(), &items, &answer).unwrap();
        assert_eq!(checks[0].status, CheckStatus::Missing);
        assert_eq!(
            checks[0].rule.as_deref(),
            Some("node \"lambdas\" { policy = \"write\" }")
        );
        assert_eq!(checks[1].status, CheckStatus::Missing);
        assert_eq!(
            checks[1].rule.as_deref(),
            Some("service \"pay\" { policy = \"write\" }")
        );
        let report = DoctorReport::new(checks);
        assert!(!report.ok);
        assert_eq!(report.consul_rules.len(), 2);
        let unavailable = Answer {
            status: Some(404),
            ..Answer::default()
        };
        assert!(authorize_checks(&config(), &items, &unavailable).is_none());
    }

    #[test]
    fn acls_disabled_allow_everything_and_no_endpoint_checks_nothing() {
        let items = authorizations(&config(), &["orders".into()]);
        let disabled = Answer {
            status: Some(401),
            body: Some("ACL support disabled".into()),
            ..Answer::default()
        };
        let checks = authorize_checks(&config(), &items, &disabled).unwrap();
        // Every permission this configuration needs is there; mesh write is not needed.
        for c in &checks {
            let expected = if c.code == "consul.mesh_write" {
                CheckStatus::Skipped
            } else {
                CheckStatus::Ok
            };
            assert_eq!(c.status, expected, "{c:?}");
        }
        let unverified = unverifiable_writes(&config(), "HTTP 404");
        assert!(unverified.iter().all(|c| c.status == CheckStatus::Skipped));
        assert_eq!(
            unverified[0].rule.as_deref(),
            Some("node \"lambdas\" { policy = \"write\" }")
        );
        // Skipped checks add no rule to the report, and do not make it fail.
        let report = DoctorReport::new(unverified);
        assert!(report.ok);
        assert!(report.consul_rules.is_empty());
    }

    #[test]
    fn access_denied_names_the_action() {
        let need = aws_need("aws.list_functions").unwrap();
        let denied = Answer {
            error: Some(AnswerError {
                code: "AccessDeniedException".into(),
                message: "User: x is not authorized to perform: tag:GetResources".into(),
                status: Some(400),
            }),
            ..Answer::default()
        };
        let c = aws_check(need, "*", &denied);
        assert_eq!(c.status, CheckStatus::Missing);
        assert_eq!(c.action.as_deref(), Some("tag:GetResources"));
        let report = DoctorReport::new(vec![c]);
        assert_eq!(report.iam_actions, vec!["tag:GetResources"]);
        let fine = Answer {
            ok: Some(json!({})),
            ..Answer::default()
        };
        assert_eq!(aws_check(need, "*", &fine).status, CheckStatus::Ok);
    }
}
