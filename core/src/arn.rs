//! Lambda ARNs and function names.

use crate::error::{Code, Diagnostic};
use serde::{Deserialize, Serialize};
use std::fmt;

/// A parsed Lambda function ARN: `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME[:QUALIFIER]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct FunctionArn {
    /// `aws`, `aws-cn` or `aws-us-gov`.
    pub partition: String,
    /// The AWS region, e.g. `us-east-1`.
    pub region: String,
    /// The 12-digit account ID.
    pub account: String,
    /// The function name.
    pub name: String,
    /// A version or alias, when the ARN is qualified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
}

impl FunctionArn {
    /// The ARN without its qualifier.
    pub fn unqualified(&self) -> FunctionArn {
        FunctionArn {
            qualifier: None,
            ..self.clone()
        }
    }

    /// This function's ARN qualified by `qualifier`.
    pub fn with_qualifier(&self, qualifier: &str) -> FunctionArn {
        FunctionArn {
            qualifier: Some(qualifier.to_owned()),
            ..self.clone()
        }
    }

    /// Whether the ARN names a function of this account and region.
    pub fn is_in(&self, account: &str, region: &str) -> bool {
        self.account == account && self.region == region
    }
}

impl fmt::Display for FunctionArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:lambda:{}:{}:function:{}",
            self.partition, self.region, self.account, self.name
        )?;
        if let Some(q) = &self.qualifier {
            write!(f, ":{q}")?;
        }
        Ok(())
    }
}

const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

/// The AWS partition a region belongs to.
pub fn partition_of_region(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

fn bad_arn(value: &str, why: &str) -> Diagnostic {
    Diagnostic::new(
        Code::InvalidArn,
        format!("not a Lambda function ARN: {why}"),
        "expected arn:aws:lambda:REGION:ACCOUNT:function:NAME, e.g. arn:aws:lambda:us-east-1:123456789012:function:my-function",
    )
    .key("arn")
    .value(value)
}

/// The parts of a function ARN, borrowed from it (what [`parse_function_arn`]
/// checks, without allocating: the planner reads one per service-defaults entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ArnParts<'a> {
    pub(crate) partition: &'a str,
    pub(crate) region: &'a str,
    pub(crate) account: &'a str,
    pub(crate) name: &'a str,
    pub(crate) qualifier: Option<&'a str>,
}

impl ArnParts<'_> {
    /// Whether the ARN names a function of this account and region.
    pub(crate) fn is_in(&self, account: &str, region: &str) -> bool {
        self.account == account && self.region == region
    }

    /// The ARN without its qualifier, as text (what [`FunctionArn::unqualified`] prints).
    pub(crate) fn unqualified_string(&self) -> String {
        let parts = [
            "arn:",
            self.partition,
            ":lambda:",
            self.region,
            ":",
            self.account,
            ":function:",
            self.name,
        ];
        let mut out = String::with_capacity(parts.iter().map(|p| p.len()).sum());
        for p in parts {
            out.push_str(p);
        }
        out
    }

    /// The owned form.
    pub(crate) fn to_arn(self) -> FunctionArn {
        FunctionArn {
            partition: self.partition.to_owned(),
            region: self.region.to_owned(),
            account: self.account.to_owned(),
            name: self.name.to_owned(),
            qualifier: self.qualifier.map(str::to_owned),
        }
    }
}

/// Splits and checks a function ARN, qualified or not (see [`parse_function_arn`]).
pub(crate) fn split_function_arn(value: &str) -> Result<ArnParts<'_>, Diagnostic> {
    let mut parts = value.split(':');
    let mut next = || parts.next();
    let (
        Some(arn),
        Some(partition),
        Some(service),
        Some(region),
        Some(account),
        Some(kind),
        Some(name),
    ) = (next(), next(), next(), next(), next(), next(), next())
    else {
        return Err(bad_arn(value, "too few `:`-separated parts"));
    };
    let qualifier = next();
    let extra = next().is_some();
    if arn != "arn" {
        return Err(bad_arn(value, "it does not start with `arn:`"));
    }
    if !PARTITIONS.contains(&partition) {
        return Err(bad_arn(
            value,
            "the partition is not aws, aws-cn or aws-us-gov",
        ));
    }
    if service != "lambda" {
        return Err(bad_arn(value, "it is not a Lambda ARN"));
    }
    if !valid_region(region) {
        return Err(bad_arn(value, "the region is malformed"));
    }
    if !valid_account(account) {
        return Err(bad_arn(value, "the account is not 12 digits"));
    }
    if kind != "function" {
        return Err(bad_arn(
            value,
            "it names a Lambda resource that is not a function",
        ));
    }
    if extra {
        return Err(bad_arn(value, "too many `:`-separated parts"));
    }
    validate_function_name(name).map_err(|d| d.value(value).key("arn"))?;
    if let Some(q) = qualifier {
        if !valid_qualifier(q) {
            return Err(bad_arn(
                value,
                "the qualifier is not $LATEST, a version or an alias",
            ));
        }
    }
    Ok(ArnParts {
        partition,
        region,
        account,
        name,
        qualifier,
    })
}

/// How a Lambda call names a function: by its name when the ARN is of the
/// registrator's own account and region (where the name is unique; Lambda takes
/// a name or an ARN, and a name needs no escaping in a request path, which moto's
/// `ListAliases` does not undo), else by the ARN.
pub(crate) fn function_reference(arn: &str, account: Option<&str>, region: &str) -> String {
    match split_function_arn(arn) {
        Ok(p) if p.qualifier.is_none() && Some(p.account) == account && p.region == region => {
            p.name.to_owned()
        }
        _ => arn.to_owned(),
    }
}

/// Parses a function ARN, qualified or not.
pub fn parse_function_arn(value: &str) -> Result<FunctionArn, Diagnostic> {
    split_function_arn(value).map(ArnParts::to_arn)
}

/// Whether `value` looks like a Lambda resource ARN that is not a function (a layer,
/// an event source mapping, a code signing configuration...).
pub fn is_non_function_lambda_arn(value: &str) -> bool {
    let mut parts = value.split(':');
    parts.next() == Some("arn")
        && parts.next().is_some()
        && parts.next() == Some("lambda")
        && parts.nth(2).is_some_and(|kind| kind != "function")
}

/// Resolves a `FunctionName` request parameter — a name, a partial ARN
/// (`ACCOUNT:function:NAME`) or a full ARN, optionally qualified — to a function ARN,
/// using the account and region of the event for the parts it lacks.
pub fn resolve_function_name(
    value: &str,
    account: &str,
    region: &str,
) -> Result<FunctionArn, Diagnostic> {
    if value.starts_with("arn:") {
        return parse_function_arn(value);
    }
    let parts: Vec<&str> = value.split(':').collect();
    let (acct, name, qualifier) = match parts.as_slice() {
        [name] => (account, *name, None),
        [name, q] => (account, *name, Some(*q)),
        [acct, "function", name] => (*acct, *name, None),
        [acct, "function", name, q] => (*acct, *name, Some(*q)),
        _ => {
            return Err(Diagnostic::new(
                Code::InvalidFunctionName,
                "not a function name, partial ARN or ARN",
                "use my-function, 123456789012:function:my-function or a full ARN",
            )
            .key("functionName")
            .value(value))
        }
    };
    let full = match qualifier {
        None => format!(
            "arn:{}:lambda:{region}:{acct}:function:{name}",
            partition_of_region(region)
        ),
        Some(q) => format!(
            "arn:{}:lambda:{region}:{acct}:function:{name}:{q}",
            partition_of_region(region)
        ),
    };
    parse_function_arn(&full).map_err(|d| d.key("functionName").value(value))
}

fn valid_region(region: &str) -> bool {
    !region.is_empty()
        && region.len() <= 32
        && region
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && region.contains('-')
        && region.bytes().last().is_some_and(|b| b.is_ascii_digit())
}

fn valid_account(account: &str) -> bool {
    account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
}

/// Lambda's character rule for function and alias names: `[a-zA-Z0-9-_]`.
pub(crate) fn lambda_name_chars(name: &str) -> bool {
    name.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Checks Lambda's function name rule: 1–64 characters of `[a-zA-Z0-9-_]`.
pub fn validate_function_name(name: &str) -> Result<(), Diagnostic> {
    if name.is_empty() || name.len() > 64 || !lambda_name_chars(name) {
        return Err(Diagnostic::new(
            Code::InvalidFunctionName,
            "a Lambda function name has 1 to 64 letters, digits, `-` or `_`",
            "use the function's name as Lambda shows it",
        )
        .key("name")
        .value(name));
    }
    Ok(())
}

/// Whether `name` obeys Lambda's alias rule `(?!^[0-9]+$)[a-zA-Z0-9-_]{1,128}`.
pub fn valid_alias_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && lambda_name_chars(name)
        && !name.bytes().all(|b| b.is_ascii_digit())
}

fn valid_qualifier(q: &str) -> bool {
    q == "$LATEST" || (!q.is_empty() && q.len() <= 128 && lambda_name_chars(q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_function_of_our_account_and_region_is_named_by_its_name() {
        let arn = "arn:aws:lambda:eu-west-1:111122223333:function:billing";
        let ours = |account, region| function_reference(arn, account, region);
        assert_eq!(ours(Some("111122223333"), "eu-west-1"), "billing");
        assert_eq!(ours(Some("111122223333"), "us-east-1"), arn);
        assert_eq!(ours(Some("999999999999"), "eu-west-1"), arn);
        assert_eq!(ours(None, "eu-west-1"), arn);
        let qualified = format!("{arn}:live");
        assert_eq!(
            function_reference(&qualified, Some("111122223333"), "eu-west-1"),
            qualified
        );
        assert_eq!(function_reference("not-an-arn", None, "x"), "not-an-arn");
    }

    #[test]
    fn round_trips() {
        for s in [
            "arn:aws:lambda:us-east-1:123456789012:function:f",
            "arn:aws-cn:lambda:cn-north-1:123456789012:function:f:prod",
            "arn:aws-us-gov:lambda:us-gov-west-1:123456789012:function:my_f-2:$LATEST",
        ] {
            let arn = parse_function_arn(s).map(|a| a.to_string());
            assert_eq!(arn.as_deref(), Ok(s));
        }
    }

    #[test]
    fn rejects() {
        for s in [
            "",
            "arn:aws:lambda:us-east-1:123456789012:function",
            "arn:aws:s3:us-east-1:123456789012:function:f",
            "arn:aws:lambda:us-east-1:12345678901:function:f",
            "arn:aws:lambda:us-east-1:123456789012:layer:f:1",
            "arn:aws:lambda:us-east-1:123456789012:function:f:a:b",
            "arn:aws:lambda:US-EAST-1:123456789012:function:f",
            "arn:azure:lambda:us-east-1:123456789012:function:f",
        ] {
            assert!(parse_function_arn(s).is_err(), "{s}");
        }
    }

    #[test]
    fn resolves_names() {
        let r = |v| resolve_function_name(v, "123456789012", "eu-west-1").map(|a| a.to_string());
        assert_eq!(
            r("f").as_deref(),
            Ok("arn:aws:lambda:eu-west-1:123456789012:function:f")
        );
        assert_eq!(
            r("210987654321:function:f").as_deref(),
            Ok("arn:aws:lambda:eu-west-1:210987654321:function:f")
        );
        assert_eq!(
            r("f:3").as_deref(),
            Ok("arn:aws:lambda:eu-west-1:123456789012:function:f:3")
        );
        assert!(r("a:b:c").is_err());
    }
}
