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
    /// Reconcile one function: the host reads it with `ListTags` (absent means deleted).
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

/// The CloudTrail call of an event, checked: `Err` for an event of another kind.
fn cloudtrail(event: &Value) -> Result<Option<&Value>, Diagnostic> {
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
        "aws.events" => return Ok(None),
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
    match event.get("detail").filter(|d| d.is_object()) {
        Some(detail) => Ok(Some(detail)),
        None => Err(invalid(
            "the CloudTrail event has no detail object",
            "detail",
            event.get("detail"),
        )),
    }
}

/// Classifies an EventBridge event.
pub fn classify_event(event: &Value) -> Result<Trigger, Diagnostic> {
    let Some(detail) = cloudtrail(event)? else {
        return Ok(Trigger::FullSync);
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
    let call = CloudTrailCall {
        event,
        detail,
        event_name,
        call,
    };
    match call.call {
        Call::CreateFunction => call.created(),
        Call::TagResource | Call::UntagResource => call.tagged(),
        Call::DeleteFunction | Call::CreateAlias | Call::UpdateAlias | Call::DeleteAlias => {
            call.named()
        }
    }
}

/// A Lambda CloudTrail call the registrator handles.
struct CloudTrailCall<'e> {
    event: &'e Value,
    detail: &'e Value,
    event_name: &'e str,
    call: Call,
}

impl CloudTrailCall<'_> {
    fn function(&self, arn: crate::arn::FunctionArn) -> Trigger {
        let arn = arn.unqualified();
        Trigger::Function {
            name: arn.name.clone(),
            arn: arn.to_string(),
            event_name: Some(self.event_name.to_owned()),
        }
    }

    fn ignore(&self, reason: String) -> Trigger {
        Trigger::Ignore {
            reason,
            event_name: Some(self.event_name.to_owned()),
        }
    }

    /// `CreateFunction`: the function in the response.
    fn created(&self) -> Result<Trigger, Diagnostic> {
        let key = "detail.responseElements.functionArn";
        let arn = text(self.detail, &["responseElements", "functionArn"]).ok_or_else(|| {
            invalid(
                "CreateFunction event without responseElements.functionArn",
                key,
                None,
            )
        })?;
        Ok(self.function(parse_function_arn(arn).map_err(|d| d.key(key))?))
    }

    /// `TagResource`, `UntagResource`: the resource, when it is a function.
    fn tagged(&self) -> Result<Trigger, Diagnostic> {
        let key = "detail.requestParameters.resource";
        let resource = text(self.detail, &["requestParameters", "resource"]).ok_or_else(|| {
            invalid(
                format!(
                    "{} event without requestParameters.resource",
                    self.event_name
                ),
                key,
                None,
            )
        })?;
        if is_non_function_lambda_arn(resource) {
            return Ok(self.ignore(format!("{resource} is not a function")));
        }
        Ok(self.function(parse_function_arn(resource).map_err(|d| d.key(key))?))
    }

    /// `DeleteFunction` and the alias calls: the function named in the request,
    /// completed with the event's account and region.
    fn named(&self) -> Result<Trigger, Diagnostic> {
        let (event, detail, event_name) = (self.event, self.detail, self.event_name);
        let account = text(event, &["account"])
            .or_else(|| text(detail, &["recipientAccountId"]))
            .unwrap_or_default();
        let region = text(event, &["region"])
            .or_else(|| text(detail, &["awsRegion"]))
            .unwrap_or_default();
        let key = "detail.requestParameters.functionName";
        let name = text(detail, &["requestParameters", "functionName"]).ok_or_else(|| {
            invalid(
                format!("{event_name} event without requestParameters.functionName"),
                key,
                None,
            )
        })?;
        let partial = name.contains(":function:");
        if !name.starts_with("arn:") && (region.is_empty() || (account.is_empty() && !partial)) {
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
        if let (Call::DeleteFunction, Some(q)) = (self.call, qualifier) {
            return Ok(self.ignore(format!(
                "only version {q} of {} was deleted; the function remains",
                arn.name
            )));
        }
        Ok(self.function(arn))
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
