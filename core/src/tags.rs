//! Function tags (docs/contract.md §1): parsing, validation, the inverse (options →
//! tags), and the evaluation of one function against a configuration.

use crate::arn::{split_function_arn, valid_alias_name};
use crate::config::{validate_consul_name, Config};
use crate::error::{Code, Diagnostic, Failure};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The prefix of every tag the registrator reads.
pub const TAG_PREFIX: &str = "serverless.consul.hashicorp.com/v1alpha1/lambda/";
/// The family of prefixes, any version; a key here with another version is a typo.
const PREFIX_FAMILY: &str = "serverless.consul.hashicorp.com/";

/// `enabled` tag name.
pub const TAG_ENABLED: &str = "enabled";
/// `payload-passthrough` tag name.
pub const TAG_PAYLOAD_PASSTHROUGH: &str = "payload-passthrough";
/// `invocation-mode` tag name.
pub const TAG_INVOCATION_MODE: &str = "invocation-mode";
/// `datacenter` tag name.
pub const TAG_DATACENTER: &str = "datacenter";
/// `namespace` tag name.
pub const TAG_NAMESPACE: &str = "namespace";
/// `partition` tag name.
pub const TAG_PARTITION: &str = "partition";
/// `aliases` tag name.
pub const TAG_ALIASES: &str = "aliases";

/// Every tag name the registrator knows (without the prefix).
pub const KNOWN_TAGS: [&str; 7] = [
    TAG_ENABLED,
    TAG_PAYLOAD_PASSTHROUGH,
    TAG_INVOCATION_MODE,
    TAG_DATACENTER,
    TAG_NAMESPACE,
    TAG_PARTITION,
    TAG_ALIASES,
];

/// How Envoy invokes the function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvocationMode {
    /// Request/response (`RequestResponse`).
    #[default]
    Synchronous,
    /// Fire and forget (`Event`).
    Asynchronous,
}

impl InvocationMode {
    /// The tag spelling: `SYNCHRONOUS` or `ASYNCHRONOUS`.
    pub fn tag_value(self) -> &'static str {
        match self {
            InvocationMode::Synchronous => "SYNCHRONOUS",
            InvocationMode::Asynchronous => "ASYNCHRONOUS",
        }
    }

    /// The value written to the Envoy extension: lower case, because Consul's
    /// extension compares it with `"asynchronous"`.
    pub fn extension_value(self) -> &'static str {
        match self {
            InvocationMode::Synchronous => "synchronous",
            InvocationMode::Asynchronous => "asynchronous",
        }
    }
}

/// A Lambda function as the host observed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LambdaFunction {
    /// The function's ARN (unqualified).
    pub arn: String,
    /// The function's name; derived from the ARN when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The function's tags.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// The registration settings that tags express: the typed form of a tag map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TagSettings {
    /// Whether the function is registered.
    pub enabled: bool,
    /// Whether Envoy passes the request body through unchanged.
    pub payload_passthrough: bool,
    /// How Envoy invokes the function.
    pub invocation_mode: InvocationMode,
    /// The datacenter tag, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// The namespace tag, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The partition tag, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
    /// Alias names, in tag order.
    #[serde(default)]
    pub aliases: Vec<String>,
}

/// Settings from which to build a tag map; what is absent is left out of the tags
/// (so the registrator's default applies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TagOptions {
    /// Whether the function is registered (default `true`).
    #[serde(default)]
    pub enabled: Option<bool>,
    /// Whether Envoy passes the request body through unchanged.
    #[serde(default)]
    pub payload_passthrough: Option<bool>,
    /// How Envoy invokes the function.
    #[serde(default)]
    pub invocation_mode: Option<InvocationMode>,
    /// Consul datacenter.
    #[serde(default)]
    pub datacenter: Option<String>,
    /// Consul namespace (Enterprise).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Consul partition (Enterprise).
    #[serde(default)]
    pub partition: Option<String>,
    /// Alias names to register as services `NAME-ALIAS`.
    #[serde(default)]
    pub aliases: Option<Vec<String>>,
}

/// The result of reading a tag map: the settings, plus every error and warning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct TagReport {
    /// The settings, with defaults where a tag was absent or wrong.
    pub settings: TagSettings,
    /// Problems that stop the function from being registered.
    pub errors: Vec<Diagnostic>,
    /// Problems that do not.
    pub warnings: Vec<Diagnostic>,
}

fn full_key(name: &str) -> String {
    format!("{TAG_PREFIX}{name}")
}

fn parse_tag_bool(name: &str, value: &str) -> Result<bool, Diagnostic> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(Diagnostic::new(
            Code::InvalidBoolean,
            format!("the {name} tag must be true or false"),
            format!("set {} to true or false", full_key(name)),
        )
        .key(full_key(name))
        .value(value))
    }
}

/// [`TagSettings`] borrowed from the tag map: the planner's working form.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Settings<'a> {
    pub(crate) enabled: bool,
    pub(crate) payload_passthrough: bool,
    pub(crate) invocation_mode: InvocationMode,
    pub(crate) datacenter: Option<&'a str>,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) partition: Option<&'a str>,
    /// The `aliases` tag value, when it is valid.
    aliases: Option<&'a str>,
}

impl<'a> Settings<'a> {
    /// The aliases, in tag order.
    pub(crate) fn aliases(&self) -> impl Iterator<Item = &'a str> {
        self.aliases.into_iter().flat_map(|a| a.split('+'))
    }

    fn owned(&self) -> TagSettings {
        TagSettings {
            enabled: self.enabled,
            payload_passthrough: self.payload_passthrough,
            invocation_mode: self.invocation_mode,
            datacenter: self.datacenter.map(str::to_owned),
            namespace: self.namespace.map(str::to_owned),
            partition: self.partition.map(str::to_owned),
            aliases: self.aliases().map(str::to_owned).collect(),
        }
    }
}

/// Reads a tag map. `enterprise` says whether namespace and partition tags are allowed.
pub fn parse_tags(tags: &BTreeMap<String, String>, enterprise: bool) -> TagReport {
    let (settings, errors, warnings) = read_tags(tags, enterprise);
    TagReport {
        settings: settings.owned(),
        errors,
        warnings,
    }
}

/// [`parse_tags`], borrowing the values: settings, errors, warnings.
fn read_tags(
    tags: &BTreeMap<String, String>,
    enterprise: bool,
) -> (Settings<'_>, Vec<Diagnostic>, Vec<Diagnostic>) {
    let mut settings = Settings::default();
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    for (key, value) in tags {
        let Some(name) = key.strip_prefix(TAG_PREFIX) else {
            if key.starts_with(PREFIX_FAMILY) {
                warnings.push(unknown_prefix(key, value));
            }
            continue;
        };
        // An empty datacenter, namespace, partition or aliases tag means the tag is
        // absent, as upstream reads it (AWS allows empty tag values, and
        // `join("+", [])` in Terraform writes one).
        if value.is_empty()
            && matches!(
                name,
                TAG_DATACENTER | TAG_NAMESPACE | TAG_PARTITION | TAG_ALIASES
            )
        {
            continue;
        }
        match name {
            TAG_ENABLED => match parse_tag_bool(name, value) {
                Ok(b) => settings.enabled = b,
                Err(e) => errors.push(e),
            },
            TAG_PAYLOAD_PASSTHROUGH => match parse_tag_bool(name, value) {
                Ok(b) => settings.payload_passthrough = b,
                Err(e) => errors.push(e),
            },
            TAG_INVOCATION_MODE => {
                if value.eq_ignore_ascii_case("synchronous") {
                    settings.invocation_mode = InvocationMode::Synchronous;
                } else if value.eq_ignore_ascii_case("asynchronous") {
                    settings.invocation_mode = InvocationMode::Asynchronous;
                } else {
                    errors.push(
                        Diagnostic::new(
                            Code::InvalidInvocationMode,
                            "the invocation-mode tag must be SYNCHRONOUS or ASYNCHRONOUS",
                            format!(
                                "set {} to SYNCHRONOUS (request/response) or ASYNCHRONOUS (event)",
                                full_key(name)
                            ),
                        )
                        .key(key)
                        .value(value),
                    );
                }
            }
            TAG_DATACENTER => match validate_consul_name(key, value) {
                Ok(()) => settings.datacenter = Some(value),
                Err(e) => errors.push(e),
            },
            TAG_NAMESPACE | TAG_PARTITION => {
                if !enterprise {
                    errors.push(
                        Diagnostic::new(
                            Code::EnterpriseOnlyTag,
                            format!("the {name} tag needs Consul Enterprise, and this registrator is configured for Consul Community Edition (ENTERPRISE is not true)"),
                            format!("remove {key}, or set ENTERPRISE=true and PARTITIONS on the registrator"),
                        )
                        .key(key)
                        .value(value),
                    );
                } else if let Err(e) = validate_consul_name(key, value) {
                    errors.push(e);
                } else if name == TAG_NAMESPACE {
                    settings.namespace = Some(value);
                } else {
                    settings.partition = Some(value);
                }
            }
            TAG_ALIASES => match check_aliases(value) {
                Ok(()) => settings.aliases = Some(value),
                Err(e) => errors.extend(e),
            },
            other => warnings.push(unknown_tag(key, other, value)),
        }
    }
    (settings, errors, warnings)
}

/// Checks the `aliases` tag value: `+`-separated alias names, each once.
fn check_aliases(value: &str) -> Result<(), Vec<Diagnostic>> {
    let key = || full_key(TAG_ALIASES);
    let mut errors = Vec::new();
    // The aliases accepted so far: the first few on the stack (most functions
    // have few), the rest in a vector.
    let mut first: [&str; 8] = [""; 8];
    let mut count = 0;
    let mut more: Vec<&str> = Vec::new();
    for alias in value.split('+') {
        if alias.is_empty() {
            errors.push(
                Diagnostic::new(
                    Code::EmptyAlias,
                    "the aliases tag has an empty alias: aliases are separated by single `+` signs",
                    "write the aliases as dev+staging+prod, without `++` or a leading or trailing `+`",
                )
                .key(key())
                .value(value),
            );
            break;
        }
        if !valid_alias_name(alias) {
            errors.push(
                Diagnostic::new(
                    Code::InvalidAliasName,
                    format!("`{}` is not a Lambda alias name: 1 to 128 letters, digits, `-` or `_`, not only digits", crate::error::clip(alias)),
                    "use the alias name exactly as Lambda shows it",
                )
                .key(key())
                .value(value),
            );
        } else if first.iter().take(count).any(|a| *a == alias) || more.contains(&alias) {
            errors.push(
                Diagnostic::new(
                    Code::DuplicateAlias,
                    format!("the alias `{alias}` is listed twice"),
                    "list each alias once",
                )
                .key(key())
                .value(value),
            );
        } else {
            match first.get_mut(count) {
                Some(slot) => *slot = alias,
                None => more.push(alias),
            }
            count += 1;
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn unknown_tag(key: &str, name: &str, value: &str) -> Diagnostic {
    let hint = match did_you_mean(name) {
        Some(known) => format!("did you mean {}?", full_key(known)),
        None => format!("the known tags are {}", KNOWN_TAGS.join(", ")),
    };
    Diagnostic::new(
        Code::UnknownTag,
        format!(
            "`{}` is not a tag the registrator knows; it is ignored",
            crate::error::clip(name)
        ),
        hint,
    )
    .key(key)
    .value(value)
}

fn unknown_prefix(key: &str, value: &str) -> Diagnostic {
    let name = key.rsplit('/').next().unwrap_or_default();
    let suggestion = did_you_mean(name).map_or_else(|| TAG_PREFIX.to_owned(), full_key);
    Diagnostic::new(
        Code::UnknownTag,
        "the tag is under serverless.consul.hashicorp.com/ but not under the registrator's prefix; it is ignored",
        format!("did you mean {suggestion}?"),
    )
    .key(key)
    .value(value)
}

/// The known tag closest to `name`, if any is close enough to be a typo.
fn did_you_mean(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if lower.is_empty() {
        return None;
    }
    KNOWN_TAGS
        .iter()
        .map(|known| {
            let d = if known.starts_with(&lower) || lower.starts_with(known) {
                0
            } else {
                edit_distance(&lower, known)
            };
            (d, *known)
        })
        .filter(|(d, known)| *d <= 1 + known.len() / 4)
        .min()
        .map(|(_, known)| known)
}

fn edit_distance(a: &str, b: &str) -> usize {
    if a.len() > 256 {
        return usize::MAX;
    }
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row.first().copied().unwrap_or(0);
        if let Some(first) = row.first_mut() {
            *first = i + 1;
        }
        for j in 0..b.len() {
            let cost = usize::from(b.get(j) != Some(&ca));
            let above = row.get(j + 1).copied().unwrap_or(usize::MAX);
            let left = row.get(j).copied().unwrap_or(usize::MAX);
            let next = (prev + cost)
                .min(above.saturating_add(1))
                .min(left.saturating_add(1));
            prev = above;
            if let Some(cell) = row.get_mut(j + 1) {
                *cell = next;
            }
        }
    }
    row.last().copied().unwrap_or(usize::MAX)
}

/// Builds the tag map for `options`, checking every value the way [`parse_tags`]
/// would. `enterprise` allows the namespace and partition tags.
pub fn tags_from_options(
    options: &TagOptions,
    enterprise: bool,
) -> Result<BTreeMap<String, String>, Failure> {
    let mut tags = BTreeMap::new();
    let mut put = |name: &str, value: String| {
        tags.insert(full_key(name), value);
    };
    put(TAG_ENABLED, options.enabled.unwrap_or(true).to_string());
    if let Some(p) = options.payload_passthrough {
        put(TAG_PAYLOAD_PASSTHROUGH, p.to_string());
    }
    if let Some(m) = options.invocation_mode {
        put(TAG_INVOCATION_MODE, m.tag_value().to_owned());
    }
    if let Some(dc) = &options.datacenter {
        put(TAG_DATACENTER, dc.clone());
    }
    if let Some(ns) = &options.namespace {
        put(TAG_NAMESPACE, ns.clone());
    }
    if let Some(p) = &options.partition {
        put(TAG_PARTITION, p.clone());
    }
    let mut errors = Vec::new();
    // An empty tag would read as an absent one: say so instead of writing it.
    for (name, value) in [
        (TAG_DATACENTER, &options.datacenter),
        (TAG_NAMESPACE, &options.namespace),
        (TAG_PARTITION, &options.partition),
    ] {
        if let Some(Err(e)) = value
            .as_deref()
            .filter(|v| v.is_empty())
            .map(|v| validate_consul_name(name, v))
        {
            errors.push(e);
        }
    }
    let mut alias_errors = Vec::new();
    if let Some(aliases) = &options.aliases {
        // Each alias is checked alone: `a+b` would otherwise pass as two aliases.
        for alias in aliases.iter().filter(|a| !valid_alias_name(a)) {
            alias_errors.push(
                Diagnostic::new(
                    Code::InvalidAliasName,
                    format!("`{}` is not a Lambda alias name: 1 to 128 letters, digits, `-` or `_`, not only digits", crate::error::clip(alias)),
                    "use the alias name exactly as Lambda shows it",
                )
                .key("aliases")
                .value(alias),
            );
        }
        // No aliases: leave the tag out rather than write an empty one.
        if !aliases.is_empty() {
            put(TAG_ALIASES, aliases.join("+"));
        }
    }
    let report = parse_tags(&tags, enterprise);
    let aliases_key = full_key(TAG_ALIASES);
    let per_alias = !alias_errors.is_empty();
    // Bad alias names are reported one by one, not as the joined tag's problems.
    let tag_errors = report
        .errors
        .into_iter()
        .filter(|e| !per_alias || e.key.as_deref() != Some(aliases_key.as_str()));
    errors.extend(alias_errors);
    errors.extend(tag_errors);
    if errors.is_empty() {
        Ok(tags)
    } else {
        Err(Failure::many(
            Code::InvalidInput,
            "invalid tag options",
            errors,
        ))
    }
}

/// What the registrator does with a function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum FunctionStatus {
    /// Registered: its services are desired.
    Managed,
    /// Not enabled: its services are not desired.
    Disabled,
    /// Outside this registrator's datacenter or partitions: left alone.
    Skipped,
    /// Its tags or ARN are wrong: its Consul state is left exactly as it is.
    Invalid,
}

/// One Consul service a function wants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct ServiceTarget {
    /// The service name: the function name, or `NAME-ALIAS`.
    pub name: String,
    /// The ARN Envoy invokes: the function's, qualified by the alias for an alias.
    pub arn: String,
    /// The alias, for an alias service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The datacenter, when the tag or the configuration names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub datacenter: Option<String>,
    /// The namespace (Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The partition (Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partition: Option<String>,
}

/// What the registrator makes of one function under a configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct FunctionReport {
    /// The function's unqualified ARN, as given.
    pub arn: String,
    /// The function's name.
    pub name: String,
    /// What the registrator does with it.
    pub status: FunctionStatus,
    /// Why it is disabled or skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The settings its tags express.
    pub settings: TagSettings,
    /// The services it wants (only when managed).
    pub services: Vec<ServiceTarget>,
    /// Problems that stop it from being registered.
    pub errors: Vec<Diagnostic>,
    /// Problems that do not.
    pub warnings: Vec<Diagnostic>,
}

/// Evaluates one function under a configuration.
pub fn evaluate_function(function: &LambdaFunction, config: &Config) -> FunctionReport {
    let e = evaluate(function, config);
    let services = if e.status == FunctionStatus::Managed {
        e.services()
            .map(|t| ServiceTarget {
                name: t.name.into_owned(),
                arn: t.arn.into_owned(),
                alias: t.alias.map(str::to_owned),
                datacenter: e.datacenter.map(str::to_owned),
                namespace: e.namespace.map(str::to_owned),
                partition: e.partition.map(str::to_owned),
            })
            .collect()
    } else {
        Vec::new()
    };
    FunctionReport {
        arn: e.arn.into_owned(),
        name: e.name.into_owned(),
        status: e.status,
        reason: e.reason,
        settings: e.settings.owned(),
        services,
        errors: e.errors,
        warnings: e.warnings,
    }
}

/// [`FunctionReport`] borrowed from the function and the configuration: the
/// planner's working form (its services are made on demand by [`Evaluation::services`]).
#[derive(Debug)]
pub(crate) struct Evaluation<'a> {
    /// The unqualified ARN.
    pub(crate) arn: Cow<'a, str>,
    pub(crate) name: Cow<'a, str>,
    pub(crate) status: FunctionStatus,
    pub(crate) reason: Option<String>,
    pub(crate) settings: Settings<'a>,
    pub(crate) errors: Vec<Diagnostic>,
    pub(crate) warnings: Vec<Diagnostic>,
    /// Where a managed function's services go.
    pub(crate) datacenter: Option<&'a str>,
    pub(crate) namespace: Option<&'a str>,
    pub(crate) partition: Option<&'a str>,
}

/// One service a managed function wants (see [`ServiceTarget`]).
pub(crate) struct Target<'e> {
    pub(crate) name: Cow<'e, str>,
    pub(crate) arn: Cow<'e, str>,
    pub(crate) alias: Option<&'e str>,
}

fn joined(a: &str, sep: char, b: &str) -> String {
    let mut s = String::with_capacity(a.len() + 1 + b.len());
    s.push_str(a);
    s.push(sep);
    s.push_str(b);
    s
}

impl<'a> Evaluation<'a> {
    /// The services of a managed function: its own, then one per alias
    /// (`NAME-ALIAS`, invoking `ARN:ALIAS`).
    pub(crate) fn services(&self) -> impl Iterator<Item = Target<'_>> {
        let own = Target {
            name: Cow::Borrowed(&*self.name),
            arn: Cow::Borrowed(&*self.arn),
            alias: None,
        };
        std::iter::once(own).chain(self.settings.aliases().map(|alias| Target {
            name: Cow::Owned(joined(&self.name, '-', alias)),
            arn: Cow::Owned(joined(&self.arn, ':', alias)),
            alias: Some(alias),
        }))
    }
}

/// An error when the function's given name is not its ARN's.
fn name_mismatch(function: &LambdaFunction, arn: &crate::arn::ArnParts<'_>) -> Option<Diagnostic> {
    let name = function.name.as_ref()?;
    (*name != arn.name).then(|| {
        Diagnostic::new(
            Code::InvalidFunctionName,
            format!(
                "the name `{}` does not match the ARN's function name `{}`",
                crate::error::clip(name),
                arn.name
            ),
            "pass the name the ARN holds, or leave the name out",
        )
        .key("name")
        .value(name)
    })
}

/// [`evaluate_function`], borrowing from the function and the configuration.
pub(crate) fn evaluate<'a>(function: &'a LambdaFunction, config: &'a Config) -> Evaluation<'a> {
    let parsed = split_function_arn(&function.arn);
    let fallback_name = match (&function.name, &parsed) {
        (Some(name), _) => Cow::Borrowed(name.as_str()),
        (None, Ok(a)) => Cow::Borrowed(a.name),
        (None, Err(_)) => Cow::Borrowed(""),
    };
    let (settings, errors, warnings) = read_tags(&function.tags, config.enterprise);
    let mut out = Evaluation {
        arn: Cow::Borrowed(&function.arn),
        name: fallback_name,
        status: FunctionStatus::Invalid,
        reason: None,
        settings,
        errors,
        warnings,
        datacenter: None,
        namespace: None,
        partition: None,
    };
    let arn = match parsed {
        Ok(a) => a,
        Err(e) => {
            out.errors.insert(0, e);
            return finish(out);
        }
    };
    if let Some(e) = name_mismatch(function, &arn) {
        out.errors.insert(0, e);
        return finish(out);
    }
    if arn.qualifier.is_some() {
        out.arn = Cow::Owned(arn.unqualified_string());
    }
    out.name = Cow::Borrowed(arn.name);
    // Scope first, as upstream does: a function of another datacenter or partition
    // is left alone whatever its other tags say (its own registrator reports them).
    if let (Some(ours), Some(theirs)) = (&config.datacenter, out.settings.datacenter) {
        if ours != theirs {
            out.status = FunctionStatus::Skipped;
            out.reason = Some(format!(
                "tagged for datacenter {theirs}; this registrator manages datacenter {ours}"
            ));
            return finish(out);
        }
    }
    let has_error = |out: &Evaluation<'_>, tag: &str| {
        out.errors.iter().any(|e| {
            e.key
                .as_deref()
                .and_then(|k| k.strip_prefix(TAG_PREFIX))
                .is_some_and(|k| k == tag)
        })
    };
    if config.enterprise {
        let partition = out.settings.partition.unwrap_or("default");
        if !config.partitions.iter().any(|p| p == partition) && !has_error(&out, TAG_PARTITION) {
            out.status = FunctionStatus::Skipped;
            out.reason = Some(format!(
                "in partition {partition}, which this registrator does not manage (PARTITIONS={})",
                config.partitions.join(",")
            ));
            return finish(out);
        }
        out.partition = Some(partition);
        out.namespace = Some(out.settings.namespace.unwrap_or("default"));
    }
    // A valid enabled=false wins over other bad tags: the function is not wanted.
    if !out.settings.enabled && !has_error(&out, TAG_ENABLED) {
        out.status = FunctionStatus::Disabled;
        out.reason = Some(if function.tags.contains_key(&full_key(TAG_ENABLED)) {
            "the enabled tag is false".to_owned()
        } else {
            "the function has no enabled=true tag".to_owned()
        });
        return finish(out);
    }
    if !out.errors.is_empty() {
        return finish(out);
    }
    out.status = FunctionStatus::Managed;
    out.datacenter = out.settings.datacenter.or(config.datacenter.as_deref());
    finish(out)
}

fn finish(mut out: Evaluation<'_>) -> Evaluation<'_> {
    if out.status != FunctionStatus::Managed {
        out.datacenter = None;
        out.namespace = None;
        out.partition = None;
    }
    for d in out.errors.iter_mut().chain(out.warnings.iter_mut()) {
        if d.function.is_none() {
            d.function = Some(out.arn.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tags(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (full_key(k), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn suggestions() {
        assert_eq!(did_you_mean("enable"), Some("enabled"));
        assert_eq!(did_you_mean("alias"), Some("aliases"));
        assert_eq!(did_you_mean("invocation_mode"), Some("invocation-mode"));
        assert_eq!(did_you_mean("Enabled"), Some("enabled"));
        assert_eq!(did_you_mean("color"), None);
    }

    #[test]
    fn inverse_round_trips() {
        let options = TagOptions {
            enabled: Some(true),
            payload_passthrough: Some(true),
            invocation_mode: Some(InvocationMode::Asynchronous),
            datacenter: Some("dc2".into()),
            namespace: None,
            partition: None,
            aliases: Some(vec!["dev".into(), "prod".into()]),
        };
        let map = tags_from_options(&options, false).unwrap_or_default();
        let back = parse_tags(&map, false);
        assert!(back.errors.is_empty());
        assert_eq!(back.settings.aliases, vec!["dev", "prod"]);
        assert_eq!(back.settings.invocation_mode, InvocationMode::Asynchronous);
        assert!(tags_from_options(
            &TagOptions {
                aliases: Some(vec!["a+b".into()]),
                ..TagOptions::default()
            },
            false
        )
        .is_err());
    }

    #[test]
    fn many_aliases() {
        let names: Vec<String> = (1..=12).map(|i| format!("a{i}")).collect();
        let r = parse_tags(&tags(&[("aliases", &names.join("+"))]), false);
        assert!(r.errors.is_empty());
        assert_eq!(r.settings.aliases, names);
        for dup in ["a3", "a10"] {
            let r = parse_tags(
                &tags(&[("aliases", &format!("{}+{dup}", names.join("+")))]),
                false,
            );
            let codes: Vec<Code> = r.errors.iter().map(|e| e.code).collect();
            assert_eq!(codes, vec![Code::DuplicateAlias], "{dup}");
        }
    }

    #[test]
    fn bad_alias_list() {
        let r = parse_tags(&tags(&[("aliases", "a++b")]), false);
        assert_eq!(r.errors.first().map(|e| e.code), Some(Code::EmptyAlias));
        let r = parse_tags(&tags(&[("aliases", "a+123+a")]), false);
        let codes: Vec<Code> = r.errors.iter().map(|e| e.code).collect();
        assert_eq!(codes, vec![Code::InvalidAliasName, Code::DuplicateAlias]);
    }
}
