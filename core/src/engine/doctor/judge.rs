//! The doctor's judgement of an answer: Consul's authorizations, an AWS probe's
//! outcome, into [`Check`]s.

use super::needs::{clip_list, consul_rule, Authorization, AwsNeed, CONSUL_NEEDS};
use super::report::{error, missing_rule, ok, skipped, Check, CheckStatus};
use crate::config::Config;
use crate::engine::retry::{aws_error_text, CallError, Reply};
use crate::engine::wire::HttpReply;
use crate::text::clip;
use serde::Deserialize;

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
    answer: &HttpReply,
) -> Option<Vec<Check>> {
    if answer.status == 401 && answer.body.contains("ACL support disabled") {
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
    if answer.status != 200 {
        return None;
    }
    let allowed: Vec<Authorized> = serde_json::from_str(&answer.body).ok()?;
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

/// The check of an AWS probe's outcome. `resource`: what the action must cover.
pub fn aws_check(need: &AwsNeed, resource: &str, outcome: &Result<Reply, CallError>) -> Check {
    let err = match outcome {
        Ok(Reply::AwsError(e)) | Err(CallError::Aws(e)) => e,
        Err(CallError::Unreachable(m)) => {
            return error(
                need.code,
                format!("no answer from AWS {}: {}", need.service, clip(m)),
            )
        }
        Err(CallError::Setup(m)) => {
            return error(need.code, format!("AWS credentials or region: {}", clip(m)))
        }
        Err(e) => {
            return error(
                need.code,
                format!("{} {}: {e}", need.service, need.operation),
            )
        }
        Ok(_) => {
            return ok(
                need.code,
                format!(
                    "{} {}: allowed, for {}",
                    need.service, need.operation, need.why
                ),
            )
        }
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
        // The probe lists a function's aliases: not found (the function went
        // since it was listed) comes after the permission check, so it is allowed.
        "ResourceNotFoundException" if need.code == "aws.list_aliases" => ok(
            need.code,
            format!(
                "{} {}: allowed, for {}",
                need.service, need.operation, need.why
            ),
        ),
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
        _ => error(
            need.code,
            format!("{} {}: {text}", need.service, need.operation),
        ),
    }
}
