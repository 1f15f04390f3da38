//! What a configuration needs from Consul and AWS: one row per need, so a
//! feature that needs another permission adds a row.

use crate::config::Config;

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

pub(super) fn clip_list(items: &[&str]) -> String {
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
        code: "aws.list_tags",
        service: "lambda",
        operation: "ListTags",
        action: "lambda:ListTags",
        why: "reading one function's tags for an event or a confirmation (its code and environment are never read)",
    },
    AwsNeed {
        code: "aws.list_aliases",
        service: "lambda",
        operation: "ListAliases",
        action: "lambda:ListAliases",
        why: "checking that an alias the aliases tag names exists before its service is created",
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
    "consul.names_read",
    "consul.connect_ca",
    "aws.list_functions",
    "aws.list_tags",
    "aws.list_aliases",
    "ssm.extension_data_read",
    "ssm.extension_data_write",
    "consul.enterprise",
];

/// The ARN of an SSM parameter (for the IAM statement).
pub fn parameter_arn(region: &str, account: &str, name: &str) -> String {
    format!(
        "arn:aws:ssm:{region}:{account}:parameter/{}",
        name.trim_start_matches('/')
    )
}
