//! Parsers for the AWS responses hosts receive, so hosts pass raw JSON through.

use crate::arn::parse_function_arn;
use crate::error::{Code, Diagnostic, Failure};
use crate::tags::LambdaFunction;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One page of Resource Groups Tagging API `GetResources`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GetResourcesPage {
    /// The next page's token (empty or absent on the last page).
    #[serde(rename = "PaginationToken", default)]
    pub pagination_token: Option<String>,
    /// The tagged resources.
    #[serde(rename = "ResourceTagMappingList", default)]
    pub resource_tag_mapping_list: Vec<ResourceTagMapping>,
}

/// One tagged resource.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ResourceTagMapping {
    /// The resource's ARN.
    #[serde(rename = "ResourceARN")]
    pub resource_arn: String,
    /// Its tags.
    #[serde(rename = "Tags", default)]
    pub tags: Vec<AwsTag>,
}

/// A tag as the tagging API returns it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct AwsTag {
    /// Key.
    #[serde(rename = "Key")]
    pub key: String,
    /// Value.
    #[serde(rename = "Value", default)]
    pub value: String,
}

/// The functions of a `GetResources` page, and the next page's token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct FunctionPage {
    /// The functions (resources that are not functions are dropped).
    pub functions: Vec<LambdaFunction>,
    /// The next page's token, when there is a next page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// Reads one `GetResources` page.
pub fn functions_from_get_resources(page: &GetResourcesPage) -> FunctionPage {
    let functions = page
        .resource_tag_mapping_list
        .iter()
        .filter_map(|m| {
            let arn = parse_function_arn(&m.resource_arn).ok()?.unqualified();
            let tags: BTreeMap<String, String> = m
                .tags
                .iter()
                .map(|t| (t.key.clone(), t.value.clone()))
                .collect();
            Some(LambdaFunction {
                name: Some(arn.name.clone()),
                arn: arn.to_string(),
                tags,
            })
        })
        .collect();
    FunctionPage {
        functions,
        next_token: page.pagination_token.clone().filter(|t| !t.is_empty()),
    }
}

/// Lambda `GetFunction` (only the parts the registrator reads).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct GetFunctionOutput {
    /// The function's configuration.
    #[serde(rename = "Configuration")]
    pub configuration: FunctionConfiguration,
    /// Its tags (present only with `lambda:ListTags`).
    #[serde(rename = "Tags", default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// `GetFunction`'s `Configuration`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct FunctionConfiguration {
    /// The function's ARN.
    #[serde(rename = "FunctionArn")]
    pub function_arn: String,
}

/// Reads a `GetFunction` response.
pub fn function_from_get_function(out: &GetFunctionOutput) -> Result<LambdaFunction, Failure> {
    let arn = parse_function_arn(&out.configuration.function_arn)
        .map_err(|d| {
            Failure::from(Diagnostic {
                code: Code::InvalidResponse,
                ..d
            })
        })?
        .unqualified();
    Ok(LambdaFunction {
        name: Some(arn.name.clone()),
        arn: arn.to_string(),
        tags: out.tags.clone().unwrap_or_default(),
    })
}

/// Lambda `ListTags`: a function's tags (its `ResourceNotFoundException` says it
/// does not exist). The registrator reads nothing else of a function: not its
/// configuration, environment or code.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ListTagsOutput {
    /// The tags.
    #[serde(rename = "Tags", default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// The function `arn` with the tags of its `ListTags` response.
pub fn function_from_list_tags(arn: &str, out: &ListTagsOutput) -> Result<LambdaFunction, Failure> {
    let arn = parse_function_arn(arn)?.unqualified();
    Ok(LambdaFunction {
        name: Some(arn.name.clone()),
        arn: arn.to_string(),
        tags: out.tags.clone().unwrap_or_default(),
    })
}
