//! What a plan would send, before anything is sent (`planRequests`): each
//! operation lowered against the observed state in the planner's input — the
//! browser preview shows it, and the shared vectors check the lowering on every
//! runtime. An extension data write is shown without its value (a private key,
//! made from the leaf at execution time).

use super::{AwsRequest, Lowered, Lowering, Material, Outgoing, Request};
use crate::consul::PutParameter;
use crate::error::{Code, Failure};
use crate::plan::{plan_with, Action, PlanInput};
use serde::Serialize;

/// One operation's request.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Preview<'a> {
    /// The operation's position in the plan.
    operation: usize,
    /// What it sends; absent when it sends nothing (the object already is as wanted).
    #[serde(skip_serializing_if = "Option::is_none")]
    request: Option<Outgoing<'a>>,
    /// Why it cannot be sent as it stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    refused: Option<String>,
}

/// Input of `lowerOperation`.
#[derive(Debug, serde::Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LowerInput {
    /// The operation (as a plan holds it).
    pub operation: crate::plan::Operation,
    /// `NODE_NAME` (default `lambdas`).
    #[serde(default)]
    pub node_name: Option<String>,
    /// For a mesh entry operation: the entry as read (absent: it does not exist).
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<serde_json::Value>"))]
    pub entry: Option<serde_json::Value>,
}

/// What one operation sends (`lowerOperation`), as JSON.
pub fn lower_operation(input: &LowerInput) -> Result<String, Failure> {
    let node = input
        .node_name
        .as_deref()
        .unwrap_or(crate::config::DEFAULT_NODE_NAME);
    let op = &input.operation;
    let lowered = preview_one(Lowering { node }, op, input.entry.as_ref());
    serde_json::to_string(&preview(0, &lowered)).map_err(|e| Failure::input("output", &e))
}

/// One operation lowered for a preview: an extension data write without its value.
fn preview_one(
    lowering: Lowering<'_>,
    op: &crate::plan::Operation,
    entry: Option<&serde_json::Value>,
) -> Lowered {
    if let Action::PutExtensionData(w) = &op.action {
        return Lowered::Send(Request::Aws(AwsRequest::PutParameter(Box::new(
            PutParameter {
                name: w.parameter.clone(),
                value: "(extension data, made from the leaf certificate when sent)".into(),
                kind: "SecureString".into(),
                overwrite: true,
                tier: w.tier,
                key_id: w.key_id.clone(),
            },
        ))));
    }
    let material = match op.mesh() {
        Some(_) => Material::MeshEntry {
            entry,
            index: op.index.unwrap_or(0),
        },
        None => Material::None,
    };
    lowering.operation(op, material)
}

fn preview(i: usize, l: &Lowered) -> Preview<'_> {
    Preview {
        operation: i,
        request: match l {
            Lowered::Send(r) => Some(Outgoing {
                id: None,
                request: r,
            }),
            _ => None,
        },
        refused: match l {
            Lowered::Refused(why) => Some(why.clone()),
            Lowered::Absent => Some("the entry does not exist and may not be created".into()),
            _ => None,
        },
    }
}

/// Plans `input` and lowers every operation; the JSON list of what each sends.
pub fn plan_requests(input: &PlanInput) -> Result<String, Failure> {
    let config = input
        .config
        .validate()
        .map_err(|errors| Failure::many(Code::InvalidConfig, "invalid configuration", errors))?;
    let plan = plan_with(&config, input)?;
    let lowering = Lowering {
        node: &config.node_name,
    };
    // The mesh entries as each write leaves them (the addition merges into what the
    // removal wrote, as the executor's re-read would find it).
    let mut entries: Vec<(
        crate::mesh::MeshEntryKind,
        Option<String>,
        Option<serde_json::Value>,
    )> = input
        .mesh
        .iter()
        .map(|m| (m.kind, m.partition.clone(), m.entry.clone()))
        .collect();
    let lowered: Vec<Lowered> = plan
        .operations
        .iter()
        .map(|op| {
            let Some(edit) = op.mesh() else {
                return preview_one(lowering, op, None);
            };
            let slot = entries.iter_mut().find(|(kind, partition, _)| {
                *kind == edit.kind && *partition == op.service.partition
            });
            let Some((_, _, entry)) = slot else {
                return preview_one(lowering, op, None);
            };
            let lowered = preview_one(lowering, op, entry.as_ref());
            if let Lowered::Send(Request::Consul(super::ConsulRequest::PutConfigEntry {
                entry: written,
                ..
            })) = &lowered
            {
                *entry = serde_json::from_str(written.get()).ok();
            }
            lowered
        })
        .collect();
    let previews: Vec<Preview<'_>> = lowered
        .iter()
        .enumerate()
        .map(|(i, l)| preview(i, l))
        .collect();
    serde_json::to_string(&previews).map_err(|e| Failure::input("output", &e))
}

/// The JSON shape of a request preview, for the generated declarations.
#[cfg(feature = "schema")]
mod schema {
    use super::Preview;
    use std::borrow::Cow;

    /// What one operation of a plan sends.
    #[allow(dead_code)]
    #[derive(schemars::JsonSchema)]
    #[serde(rename_all = "camelCase")]
    #[schemars(rename = "RequestPreview")]
    struct RequestPreview {
        /// The operation's position in the plan.
        operation: usize,
        /// What it sends (`{"consul": {method, path, query?, body?}}` or `{"aws": {service,
        /// operation, input}}`); absent when it sends nothing.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request: Option<serde_json::Value>,
        /// Why it cannot be sent as it stands.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refused: Option<String>,
    }

    impl schemars::JsonSchema for Preview<'_> {
        fn schema_name() -> Cow<'static, str> {
            RequestPreview::schema_name()
        }

        fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
            RequestPreview::json_schema(g)
        }
    }
}

/// The preview type, for the schema registry.
#[cfg(feature = "schema")]
pub type RequestPreviewSchema = Preview<'static>;
