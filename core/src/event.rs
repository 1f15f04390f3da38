//! EventBridge events (docs/contract.md §3): what an invocation of the registrator
//! asks for.

use crate::arn::{is_non_function_lambda_arn, parse_function_arn, resolve_function_name};
use crate::error::{Code, Diagnostic};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the registrator must do for one event.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum Trigger {
    /// Reconcile every function (a scheduled event).
    #[default]
    FullSync,
    /// Reconcile one function: the host reads it with `GetFunction` (absent means deleted).
    #[serde(rename_all = "camelCase")]
    Function {
        /// The function's unqualified ARN.
        arn: String,
        /// The function's name.
        name: String,
        /// The API call that caused it, e.g. `TagResource20170331v2`, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_name: Option<String>,
    },
    /// Nothing to do.
    #[serde(rename_all = "camelCase")]
    Ignore {
        /// Why the event is ignored.
        reason: String,
        /// The API call, when the event is one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        event_name: Option<String>,
    },
}

/// The Lambda API calls that matter, without their version suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    CreateFunction,
    TagResource,
    UntagResource,
    DeleteFunction,
    CreateAlias,
    UpdateAlias,
    DeleteAlias,
}

/// Strips CloudTrail's API-version suffix: `TagResource20170331v2` → `TagResource`.
pub fn base_event_name(name: &str) -> &str {
    let dated = match name.rfind('v') {
        Some(at) if at + 1 < name.len() && name[at + 1..].bytes().all(|b| b.is_ascii_digit()) => {
            &name[..at]
        }
        _ => name,
    };
    let digits = dated.bytes().rev().take_while(u8::is_ascii_digit).count();
    if digits == 8 && dated.len() > 8 {
        &dated[..dated.len() - 8]
    } else {
        name
    }
}

fn call_of(name: &str) -> Option<Call> {
    Some(match base_event_name(name) {
        "CreateFunction" => Call::CreateFunction,
        "TagResource" => Call::TagResource,
        "UntagResource" => Call::UntagResource,
        "DeleteFunction" => Call::DeleteFunction,
        "CreateAlias" => Call::CreateAlias,
        "UpdateAlias" => Call::UpdateAlias,
        "DeleteAlias" => Call::DeleteAlias,
        _ => return None,
    })
}

fn invalid(message: impl Into<String>, key: &str, value: Option<&Value>) -> Diagnostic {
    let d = Diagnostic::new(
        Code::InvalidEvent,
        message,
        "pass the EventBridge event exactly as Lambda receives it",
    )
    .key(key);
    match value {
        Some(v) => d.value(&v.to_string()),
        None => d,
    }
}

fn text<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(value, |v, k| v.get(k))?.as_str()
}

/// Classifies an EventBridge event.
pub fn classify_event(event: &Value) -> Result<Trigger, Diagnostic> {
    if !event.is_object() {
        return Err(Diagnostic::new(
            Code::UnsupportedEvent,
            "the event is not a JSON object",
            "the registrator handles EventBridge scheduled events and Lambda CloudTrail API calls",
        )
        .value(&crate::error::clip(&event.to_string())));
    }
    let source = text(event, &["source"]).unwrap_or_default();
    let detail_type = text(event, &["detail-type"]).unwrap_or_default();
    match source {
        "aws.events" => return Ok(Trigger::FullSync),
        "aws.lambda" if detail_type == "AWS API Call via CloudTrail" => {}
        _ => {
            return Err(Diagnostic::new(
                Code::UnsupportedEvent,
                format!("unsupported event: source `{}`, detail-type `{}`", crate::error::clip(source), crate::error::clip(detail_type)),
                "route only scheduled events (source aws.events) and Lambda CloudTrail API calls (source aws.lambda, detail-type \"AWS API Call via CloudTrail\") to the registrator",
            )
            .key("source")
            .value(source))
        }
    }
    let Some(detail) = event.get("detail").filter(|d| d.is_object()) else {
        return Err(invalid(
            "the CloudTrail event has no detail object",
            "detail",
            event.get("detail"),
        ));
    };
    let Some(event_name) = text(detail, &["eventName"]) else {
        return Err(invalid(
            "the CloudTrail event has no detail.eventName",
            "detail.eventName",
            detail.get("eventName"),
        ));
    };
    let named = Some(event_name.to_owned());
    // Upstream ignores an event whose errorCode is non-empty; null and "" mean success.
    if let Some(code) = detail
        .get("errorCode")
        .filter(|c| !c.is_null() && c.as_str() != Some(""))
    {
        return Ok(Trigger::Ignore {
            reason: format!(
                "the API call failed ({}), so nothing changed",
                code.as_str().unwrap_or("error")
            ),
            event_name: named,
        });
    }
    let Some(call) = call_of(event_name) else {
        return Ok(Trigger::Ignore {
            reason: format!("{event_name} does not change tags, functions or aliases"),
            event_name: named,
        });
    };
    let account = text(event, &["account"])
        .or_else(|| text(detail, &["recipientAccountId"]))
        .unwrap_or_default();
    let region = text(event, &["region"])
        .or_else(|| text(detail, &["awsRegion"]))
        .unwrap_or_default();
    let function = |arn: crate::arn::FunctionArn| {
        let arn = arn.unqualified();
        Trigger::Function {
            name: arn.name.clone(),
            arn: arn.to_string(),
            event_name: named.clone(),
        }
    };
    match call {
        Call::CreateFunction => {
            let key = "detail.responseElements.functionArn";
            let arn = text(detail, &["responseElements", "functionArn"]).ok_or_else(|| {
                invalid(
                    "CreateFunction event without responseElements.functionArn",
                    key,
                    None,
                )
            })?;
            Ok(function(parse_function_arn(arn).map_err(|d| d.key(key))?))
        }
        Call::TagResource | Call::UntagResource => {
            let key = "detail.requestParameters.resource";
            let resource = text(detail, &["requestParameters", "resource"]).ok_or_else(|| {
                invalid(
                    format!("{event_name} event without requestParameters.resource"),
                    key,
                    None,
                )
            })?;
            if is_non_function_lambda_arn(resource) {
                return Ok(Trigger::Ignore {
                    reason: format!("{resource} is not a function"),
                    event_name: named,
                });
            }
            Ok(function(
                parse_function_arn(resource).map_err(|d| d.key(key))?,
            ))
        }
        Call::DeleteFunction | Call::CreateAlias | Call::UpdateAlias | Call::DeleteAlias => {
            let key = "detail.requestParameters.functionName";
            let name = text(detail, &["requestParameters", "functionName"]).ok_or_else(|| {
                invalid(
                    format!("{event_name} event without requestParameters.functionName"),
                    key,
                    None,
                )
            })?;
            let partial = name.contains(":function:");
            if !name.starts_with("arn:") && (region.is_empty() || (account.is_empty() && !partial))
            {
                return Err(invalid(
                    format!("{event_name} names function `{}` without an ARN, and the event has no account or region to complete it", crate::error::clip(name)),
                    if region.is_empty() { "region" } else { "account" },
                    None,
                ));
            }
            let arn = resolve_function_name(name, account, region).map_err(|d| d.key(key))?;
            let qualifier = text(detail, &["requestParameters", "qualifier"])
                .map(str::to_owned)
                .or_else(|| arn.qualifier.clone());
            if call == Call::DeleteFunction {
                if let Some(q) = qualifier {
                    return Ok(Trigger::Ignore {
                        reason: format!(
                            "only version {q} of {} was deleted; the function remains",
                            arn.name
                        ),
                        event_name: named,
                    });
                }
            }
            Ok(function(arn))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_suffixes() {
        assert_eq!(base_event_name("TagResource20170331v2"), "TagResource");
        assert_eq!(base_event_name("UntagResource20170331"), "UntagResource");
        assert_eq!(base_event_name("CreateFunction20150331"), "CreateFunction");
        assert_eq!(base_event_name("CreateAlias20150331"), "CreateAlias");
        assert_eq!(base_event_name("Invoke"), "Invoke");
        assert_eq!(base_event_name("Foo2v"), "Foo2v");
        assert_eq!(base_event_name("v2"), "v2");
    }
}
