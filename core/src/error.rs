//! Errors as values: every problem the core reports is a [`Diagnostic`] with a
//! stable snake_case [`Code`], the offending key and value, and a hint.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

/// Longest value (in characters) copied into a diagnostic; longer values are cut.
const MAX_VALUE_CHARS: usize = 200;

macro_rules! codes {
    ($( $(#[doc = $doc:literal])* $variant:ident => $text:literal, )+) => {
        /// A stable, machine-readable problem code. The snake_case text of a code
        /// never changes once released; new codes may be added.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "schema", derive(schemars::JsonSchema), schemars(rename = "ErrorCode"))]
        pub enum Code {
            $( $(#[doc = $doc])* #[serde(rename = $text)] $variant, )+
        }

        impl Code {
            /// Every code, in documentation order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)+];

            /// The stable snake_case text of this code.
            pub fn as_str(self) -> &'static str {
                match self { $(Code::$variant => $text,)+ }
            }

            /// One line describing when the code is used.
            pub fn description(self) -> &'static str {
                match self { $(Code::$variant => concat!($($doc),+).trim_ascii(),)+ }
            }
        }
    };
}

codes! {
    /// A tag or variable that must be `true` or `false` has another value.
    InvalidBoolean => "invalid_boolean",
    /// The invocation-mode tag is not SYNCHRONOUS or ASYNCHRONOUS.
    InvalidInvocationMode => "invalid_invocation_mode",
    /// The aliases tag holds an empty alias (`a++b`, a leading or trailing `+`).
    EmptyAlias => "empty_alias",
    /// An alias name breaks Lambda's alias naming rule.
    InvalidAliasName => "invalid_alias_name",
    /// The same alias is listed twice.
    DuplicateAlias => "duplicate_alias",
    /// A namespace or partition tag on a function while Consul Enterprise is not enabled.
    EnterpriseOnlyTag => "enterprise_only_tag",
    /// A datacenter, namespace or partition name is empty or has characters Consul rejects.
    InvalidConsulName => "invalid_consul_name",
    /// A tag under the Consul prefix that the registrator does not know (a warning).
    UnknownTag => "unknown_tag",
    /// Two functions or aliases would register the same Consul service.
    ServiceNameConflict => "service_name_conflict",
    /// A Lambda ARN is malformed or does not name a function.
    InvalidArn => "invalid_arn",
    /// A Lambda function name breaks Lambda's naming rule.
    InvalidFunctionName => "invalid_function_name",
    /// A configuration value that must be a URL is not one.
    InvalidUrl => "invalid_url",
    /// A Parameter Store path or prefix is malformed.
    InvalidParameterPath => "invalid_parameter_path",
    /// The extension data tier is not Standard, Advanced or Intelligent-Tiering.
    InvalidTier => "invalid_tier",
    /// ENTERPRISE is enabled but no PARTITIONS are listed.
    EnterpriseRequiresPartitions => "enterprise_requires_partitions",
    /// PARTITIONS is set while ENTERPRISE is not enabled.
    PartitionsRequireEnterprise => "partitions_require_enterprise",
    /// The node name is not a DNS label.
    InvalidNodeName => "invalid_node_name",
    /// A number that is not a whole number.
    InvalidInteger => "invalid_integer",
    /// A number outside its allowed range.
    OutOfRange => "out_of_range",
    /// LOG_LEVEL is not one of trace, debug, info, warn, error.
    InvalidLogLevel => "invalid_log_level",
    /// A comma-separated list with an empty or repeated entry.
    InvalidList => "invalid_list",
    /// Two settings that must be given together, or must not be, disagree.
    InconsistentSettings => "inconsistent_settings",
    /// The configuration has one or more problems; `errors` lists them all.
    InvalidConfig => "invalid_config",
    /// An event that is neither a schedule nor a Lambda CloudTrail API call.
    UnsupportedEvent => "unsupported_event",
    /// An event of a supported kind that lacks a field it needs.
    InvalidEvent => "invalid_event",
    /// Input of the wrong shape: an unknown field, a wrong type, a missing field, bad JSON.
    InvalidInput => "invalid_input",
    /// A Consul or AWS response that the core cannot read.
    InvalidResponse => "invalid_response",
    /// A service on the registrator's node that is not managed by it holds the wanted name.
    UnmanagedServiceConflict => "unmanaged_service_conflict",
    /// A service-defaults entry without the Lambda extension holds the wanted name.
    ForeignConfigEntry => "foreign_config_entry",
    /// A service-defaults entry names a function of another account or region.
    OwnedByOtherRegistrator => "owned_by_other_registrator",
    /// A full sync would deregister more than half of the managed services.
    MassDeregistrationBlocked => "mass_deregistration_blocked",
    /// A managed service no function wants, that cannot be proven ours, is left alone (a warning).
    OrphanNotOwned => "orphan_not_owned",
    /// The Lambda inventory is incomplete, so deregistrations were withheld (a warning).
    InventoryIncomplete => "inventory_incomplete",
    /// The host could not load a function; its Consul state is left as it is.
    FunctionLoadFailed => "function_load_failed",
    /// Extension data is wanted for a service but no leaf certificate was observed (a warning).
    LeafMissing => "leaf_missing",
    /// Consul refused a read the sync needs (HTTP 403): the token lacks a rule.
    AclDenied => "acl_denied",
    /// Consul filtered an answer (`X-Consul-Results-Filtered-By-ACLs`): the token may not read all of it, so nothing is changed.
    AclFiltered => "acl_filtered",
    /// A managed service or Lambda service-defaults entry in Consul has a name, namespace or partition the registrator never writes; it is left alone (a warning).
    UnsafeConsulName => "unsafe_consul_name",
    /// A trigger, confirmed-absent or failed entry names a function of another account or region; it is ignored (a warning).
    ForeignFunction => "foreign_function",
    /// CONSUL_HTTP_SSL_VERIFY=false: Consul's TLS certificate is not verified (a warning, repeated on every invocation).
    TlsVerificationDisabled => "tls_verification_disabled",
    /// CONSUL_EXTENSION_DATA_KMS_KEY_ID is not a KMS key ID, key ARN, alias name or alias ARN.
    InvalidKmsKeyId => "invalid_kms_key_id",
    /// EXPORTED_SERVICES_PARTITIONS is set while ENTERPRISE is not enabled (admin partitions are Consul Enterprise only).
    ExportedPartitionsRequireEnterprise => "exported_partitions_require_enterprise",
    /// The terminating gateway's config entry does not exist and TERMINATING_GATEWAY_CREATE is not true, or a mesh config entry cannot be merged safely; it is left alone (a warning).
    MeshEntryUnchanged => "mesh_entry_unchanged",
    /// A reviewed plan no longer matches Consul or Lambda: an object or function it touches changed.
    PlanStale => "plan_stale",
    /// A reviewed plan holds an operation a fresh plan does not decide (another kind, object or content, a foreign parameter or key, a missing basis, an operation whose earlier step it leaves out), or cannot be read; nothing is applied.
    PlanRejected => "plan_rejected",
    /// Consul gave no answer (connection refused, reset, timed out, TLS) to a request the sync needs; nothing more is written.
    ConsulUnreachable => "consul_unreachable",
    /// AWS gave no answer to a request the sync needs; nothing more is written.
    AwsUnreachable => "aws_unreachable",
    /// Consul answered a read the sync needs with an error; nothing is written.
    ConsulError => "consul_error",
    /// An AWS call the sync needs failed (access denied, throttled past its retries…); nothing is written.
    AwsError => "aws_error",
    /// The host could not make AWS calls at all: no credentials or no region.
    SetupFailed => "setup_failed",
    /// CONSUL_EXTENSION_DATA_PREFIX holds the token or CA parameter: the registrator, which writes and deletes under the prefix, would read the secret back and could overwrite it.
    ExtensionDataPrefixOverlap => "extension_data_prefix_overlap",
    /// Consul has the wanted service name on a node other than the registrator's (in any datacenter): the function is refused and nothing is written for it.
    NameOnOtherNode => "name_on_other_node",
    /// A function's aliases tag names an alias the function does not have (ListAliases): its alias service is not created.
    AliasNotFound => "alias_not_found",
    /// A Consul answer was larger than the host reads for that request: nothing is written.
    AnswerTooLarge => "answer_too_large",
    /// The Lambda extension's upstream list (CONSUL_SERVICE_UPSTREAMS) has an entry that is not `name[.ns[.ap]]:port[:dc]` or the labelled form, or two entries on one port.
    InvalidUpstream => "invalid_upstream",
    /// A duration that is not Go's duration syntax (`300ms`, `30s`, `5m`, `1h30m`) or is not positive.
    InvalidDuration => "invalid_duration",
    /// A setting the Lambda extension needs is not set.
    MissingSetting => "missing_setting",
    /// The extension data read from Parameter Store is not the JSON the registrator writes, or lacks a certificate, key, root or trust domain.
    InvalidExtensionData => "invalid_extension_data",
    /// A peered upstream names a peer that the extension data does not describe (or describes without the fields its SNI name needs).
    UnknownPeer => "unknown_peer",
    /// A terminating-gateway or exported-services item for a service the registrator manages was not added by it (its record in the entry's Meta does not name it) and is not exactly what it writes: it is left exactly as it is, neither changed nor removed (a warning).
    MeshItemNotOurs => "mesh_item_not_ours",
    /// The registrator's record in a mesh entry's Meta (64 pairs of 512 bytes, less the entry's other pairs) has no room for more items: the services that do not fit are not listed in the entry (a warning).
    MeshRecordFull => "mesh_record_full",
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem: what went wrong, where, and how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Diagnostic {
    /// The stable problem code.
    pub code: Code,
    /// A sentence that says what is wrong.
    pub message: String,
    /// The tag key, configuration key or input path at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The offending value (cut to 200 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// How to fix it.
    pub hint: String,
    /// The Lambda function concerned, when there is one (its ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with a code, a message and a hint.
    pub fn new(code: Code, message: impl Into<String>, hint: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            key: None,
            value: None,
            hint: hint.into(),
            function: None,
        }
    }

    /// Names the key at fault.
    #[must_use]
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Names the offending value (cut to a readable length).
    #[must_use]
    pub fn value(mut self, value: &str) -> Self {
        self.value = Some(clip(&redact_url_credentials(value)));
        self
    }

    /// Names the function concerned.
    #[must_use]
    pub fn function(mut self, arn: impl Into<String>) -> Self {
        self.function = Some(arn.into());
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)?;
        if !self.hint.is_empty() {
            write!(f, " ({})", self.hint)?;
        }
        Ok(())
    }
}

/// Hides the credentials of a URL (`scheme://user:pass@host` → `scheme://***@host`):
/// every value a diagnostic echoes goes through this. Without a scheme nothing is
/// changed (see [`redact_address`] for configuration values that must be URLs).
pub(crate) fn redact_url_credentials(value: &str) -> Cow<'_, str> {
    match value.find("://") {
        Some(at) => redact_after(value, at + 3),
        None => Cow::Borrowed(value),
    }
}

/// Hides whatever precedes the last `@` of an address that should be a URL, with or
/// without a scheme (`user:pass@consul:8500` → `***@consul:8500`). Deliberately
/// broad: a `/` or `#` in a password must not end the part that is hidden.
pub(crate) fn redact_address(value: &str) -> Cow<'_, str> {
    redact_after(value, value.find("://").map_or(0, |at| at + 3))
}

fn redact_after(value: &str, start: usize) -> Cow<'_, str> {
    match (value.get(..start), value.get(start..)) {
        (Some(scheme), Some(rest)) => match rest.rfind('@') {
            Some(at) => Cow::Owned(format!("{scheme}***{}", rest.get(at..).unwrap_or("@"))),
            None => Cow::Borrowed(value),
        },
        _ => Cow::Borrowed(value),
    }
}

/// Replaces the input values that serde quotes in its messages (`invalid type:
/// string "…"`, `integer `…``, `unknown variant `…``) by their length: input can hold secrets (a
/// leaf's private key, a stored parameter value) and error messages are logged.
/// Field names (`unknown field `…``, `missing field `…``) are kept.
fn scrub_serde_message(text: &str) -> String {
    /// What serde quotes from the input (its `Unexpected` values and unknown
    /// variants), and the character that ends each.
    const SERDE_QUOTES: [(&str, char); 5] = [
        ("string \"", '"'),
        ("variant `", '`'),
        ("integer `", '`'),
        ("floating point `", '`'),
        ("character `", '`'),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    loop {
        let next = SERDE_QUOTES
            .iter()
            .filter_map(|&(opener, closer)| rest.find(opener).map(|at| (at, opener, closer)))
            .min_by_key(|&(at, _, _)| at);
        let Some((at, opener, closer)) = next else {
            out.push_str(rest);
            return out;
        };
        out.push_str(rest.get(..at).unwrap_or_default());
        let body = rest.get(at + opener.len()..).unwrap_or_default();
        // The quoted text ends at the first closer that is not escaped (serde writes
        // strings with Rust's escapes, variants as they are).
        let mut escaped = false;
        let mut end = body.len();
        let mut chars = 0usize;
        for (i, c) in body.char_indices() {
            if escaped {
                escaped = false;
            } else if c == '\\' && closer == '"' {
                escaped = true;
                continue;
            } else if c == closer {
                end = i;
                break;
            }
            chars += 1;
        }
        out.push_str(opener.trim_end_matches(['"', '`']));
        out.push_str(&format!("({chars} characters hidden)"));
        rest = body.get(end + closer.len_utf8()..).unwrap_or_default();
    }
}

/// Cuts a value to a length that is safe to print.
pub(crate) fn clip(value: &str) -> String {
    crate::text::clip_to(value, MAX_VALUE_CHARS).into_owned()
}

/// A call that could not produce its result. `errors` holds every problem found;
/// `code`, `message` and `hint` summarise them (they are the first problem's when
/// there is only one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
#[error("[{code}] {message}")]
pub struct Failure {
    /// The stable code of the failure.
    pub code: Code,
    /// What went wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
    /// The key at fault, when one key is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The value at fault, when one value is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Every problem found.
    pub errors: Vec<Diagnostic>,
}

impl From<Diagnostic> for Failure {
    fn from(d: Diagnostic) -> Self {
        Failure {
            code: d.code,
            message: d.message.clone(),
            hint: d.hint.clone(),
            key: d.key.clone(),
            value: d.value.clone(),
            errors: vec![d],
        }
    }
}

impl Failure {
    /// A failure that gathers several problems under one summary code.
    pub fn many(code: Code, what: &str, errors: Vec<Diagnostic>) -> Self {
        if let [only] = errors.as_slice() {
            let mut f = Failure::from(only.clone());
            f.code = code;
            f.message = format!("{what}: {}", only.message);
            return f;
        }
        let summary: Vec<String> = errors.iter().map(ToString::to_string).collect();
        Failure {
            code,
            message: format!("{what}: {} problems: {}", errors.len(), summary.join("; ")),
            hint: "fix each problem listed in `errors`".to_owned(),
            key: None,
            value: None,
            errors,
        }
    }

    /// A failure for input of the wrong shape, from a serde_json error.
    pub fn input(what: &str, err: &serde_json::Error) -> Self {
        Failure::from(input_diagnostic(what, err))
    }
}

/// A diagnostic for input of the wrong shape, with the field named when serde names it.
pub(crate) fn input_diagnostic(what: &str, err: &serde_json::Error) -> Diagnostic {
    let text = scrub_serde_message(&err.to_string());
    let field = text
        .split('`')
        .nth(1)
        .filter(|_| text.contains("field `"))
        .map(str::to_owned);
    let hint = if text.contains("unknown field") {
        "remove the field or correct its spelling; the accepted fields are listed in the message"
    } else if text.contains("recursion limit") {
        "the input is nested too deeply"
    } else if text.contains("missing field") {
        "add the missing field"
    } else {
        "pass a value of the documented JSON shape (camelCase fields)"
    };
    let mut d = Diagnostic::new(Code::InvalidInput, format!("{what}: {}", clip(&text)), hint);
    d.key = field;
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_described() {
        let mut seen = std::collections::BTreeSet::new();
        for code in Code::ALL {
            let text = code.as_str();
            assert!(seen.insert(text), "duplicate code {text}");
            assert!(text.chars().all(|c| c.is_ascii_lowercase() || c == '_'));
            assert!(!code.description().is_empty());
            let json = serde_json::to_string(code).unwrap_or_default();
            assert_eq!(json, format!("\"{text}\""));
        }
    }

    #[test]
    fn serde_messages_hide_input_strings() {
        assert_eq!(
            scrub_serde_message(
                r#"invalid type: string "a\"b\\", expected struct Leaf at line 1 column 9"#
            ),
            "invalid type: string (4 characters hidden), expected struct Leaf at line 1 column 9"
        );
        assert_eq!(
            scrub_serde_message("unknown variant `k3y`, expected one of `Standard`, `Advanced`"),
            "unknown variant (3 characters hidden), expected one of `Standard`, `Advanced`"
        );
        let kept = "unknown field `nodeNam`, expected `nodeName` at line 1 column 2";
        assert_eq!(scrub_serde_message(kept), kept);
        assert_eq!(
            scrub_serde_message(r#"string "unterminated"#),
            "string (12 characters hidden)"
        );
        assert_eq!(
            scrub_serde_message("invalid type: integer `123456`, expected a string"),
            "invalid type: integer (6 characters hidden), expected a string"
        );
    }

    #[test]
    fn url_credentials_are_redacted() {
        assert_eq!(
            redact_url_credentials("https://u:p@h:1/x"),
            "https://***@h:1/x"
        );
        assert_eq!(redact_url_credentials("https://h:1/x"), "https://h:1/x");
        assert_eq!(redact_url_credentials("u:p@h"), "u:p@h");
        assert_eq!(redact_address("u:p@h"), "***@h");
        assert_eq!(redact_address("http://u:p/a@b#c@h"), "http://***@h");
        let d = Diagnostic::new(Code::InvalidUrl, "m", "h").value("http://u:pw@h");
        assert_eq!(d.value.as_deref(), Some("http://***@h"));
    }

    #[test]
    fn long_values_are_clipped() {
        let long = "x".repeat(10_000);
        let d = Diagnostic::new(Code::InvalidBoolean, "m", "h").value(&long);
        let v = d.value.unwrap_or_default();
        assert!(v.len() < 300, "{}", v.len());
        assert!(v.ends_with("(10000 bytes)"));
    }
}
