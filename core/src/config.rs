//! Configuration (docs/contract.md §2): upstream's environment variables, or a typed object.
//!
//! Both forms go through [`ConfigInput`] and one validation that reports every
//! problem at once. Secrets (the ACL token) are never stored in a [`Config`]: the
//! host reads them itself, and the configuration only records whether one is set.

use crate::arn::validate_function_name;
use crate::error::{Code, Diagnostic, Failure};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Default Consul node that Lambda services are registered on.
pub const DEFAULT_NODE_NAME: &str = "lambdas";
/// Default Consul HTTP address.
pub const DEFAULT_CONSUL_HTTP_ADDR: &str = "http://127.0.0.1:8500";
/// Default `ListFunctions` page size (upstream's).
pub const DEFAULT_PAGE_SIZE: u32 = 50;
/// Default full-sync interval in minutes.
pub const DEFAULT_SYNC_FREQUENCY: u32 = 10;
/// Default registrator timeout in seconds.
pub const DEFAULT_TIMEOUT: u32 = 30;
/// Default bound on requests in flight (`MAX_CONCURRENCY`).
pub const DEFAULT_MAX_CONCURRENCY: u32 = 8;
/// Default timeout of one request in milliseconds (`CONSUL_TIMEOUT_MS`).
pub const DEFAULT_CONSUL_TIMEOUT_MS: u32 = 10_000;

/// Parameter Store tier for extension data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Tier {
    /// Up to 4 KB values; free.
    Standard,
    /// Up to 8 KB values.
    Advanced,
    /// Standard when it fits, Advanced otherwise.
    #[serde(rename = "Intelligent-Tiering")]
    IntelligentTiering,
}

impl Tier {
    /// The spelling Parameter Store uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Standard => "Standard",
            Tier::Advanced => "Advanced",
            Tier::IntelligentTiering => "Intelligent-Tiering",
        }
    }

    fn parse(value: &str) -> Option<Tier> {
        [Tier::Standard, Tier::Advanced, Tier::IntelligentTiering]
            .into_iter()
            .find(|t| t.as_str().eq_ignore_ascii_case(value))
    }
}

/// Log verbosity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything.
    Trace,
    /// Debugging detail.
    Debug,
    /// Normal operation.
    #[default]
    Info,
    /// Problems that did not stop the sync.
    Warn,
    /// Failures only.
    Error,
}

/// The raw configuration, every field optional: the typed-object form (camelCase).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ConfigInput {
    /// `NODE_NAME`.
    pub node_name: Option<String>,
    /// `DATACENTER`.
    pub datacenter: Option<String>,
    /// `ENTERPRISE`.
    pub enterprise: Option<bool>,
    /// `PARTITIONS`.
    pub partitions: Option<Vec<String>>,
    /// `CONSUL_HTTP_ADDR`.
    pub consul_http_addr: Option<String>,
    /// `CONSUL_CACERT_PATH`: Parameter Store name of the CA certificate.
    pub consul_cacert_path: Option<String>,
    /// `CONSUL_HTTP_TOKEN_PATH`: Parameter Store name of the ACL token.
    pub consul_http_token_path: Option<String>,
    /// `CONSUL_EXTENSION_DATA_PREFIX`.
    pub consul_extension_data_prefix: Option<String>,
    /// `CONSUL_EXTENSION_DATA_TIER`.
    pub consul_extension_data_tier: Option<String>,
    /// `CONSUL_EXTENSION_DATA_KMS_KEY_ID`: the customer KMS key that encrypts extension data.
    pub consul_extension_data_kms_key_id: Option<String>,
    /// `PAGE_SIZE`.
    pub page_size: Option<i64>,
    /// `LOG_LEVEL`.
    pub log_level: Option<String>,
    /// `CONSUL_HTTP_SSL`.
    pub consul_http_ssl: Option<bool>,
    /// `CONSUL_HTTP_SSL_VERIFY`.
    pub consul_http_ssl_verify: Option<bool>,
    /// `CONSUL_CACERT`: a CA certificate file.
    pub consul_cacert: Option<String>,
    /// `CONSUL_CLIENT_CERT`: a client certificate file.
    pub consul_client_cert: Option<String>,
    /// `CONSUL_CLIENT_KEY`: a client key file.
    pub consul_client_key: Option<String>,
    /// `CONSUL_TLS_SERVER_NAME`.
    pub consul_tls_server_name: Option<String>,
    /// Whether `CONSUL_HTTP_TOKEN` is set (its value never enters the core).
    pub consul_http_token_set: Option<bool>,
    /// Deployment: the registrator's function name (`AWS_LAMBDA_FUNCTION_NAME`, which Lambda
    /// sets); the value of the metrics' `FunctionName` dimension.
    pub name: Option<String>,
    /// Deployment: minutes between full syncs.
    pub sync_frequency_in_minutes: Option<i64>,
    /// Deployment: the registrator's timeout in seconds.
    pub timeout: Option<i64>,
    /// `ALLOW_MASS_DEREGISTRATION`: lets a full sync deregister more than half of the services.
    pub allow_mass_deregistration: Option<bool>,
    /// `TERMINATING_GATEWAY_NAME`: the terminating gateway whose config entry lists the
    /// managed services (docs/mesh.md); unset: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminating_gateway_name: Option<String>,
    /// `TERMINATING_GATEWAY_CREATE`: create that entry when it does not exist.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminating_gateway_create: Option<bool>,
    /// `EXPORTED_SERVICES_PEERS`: cluster peers to export the managed services to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_services_peers: Option<Vec<String>>,
    /// `EXPORTED_SERVICES_PARTITIONS`: admin partitions to export the managed services to
    /// (Enterprise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exported_services_partitions: Option<Vec<String>>,
    /// `DRY_RUN`: plan and report, change nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    /// `MAX_CONCURRENCY`: requests in flight (1 to 256, default 8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<i64>,
    /// `CONSUL_TIMEOUT_MS`: the timeout of one request (100 to 300000 ms, default 10000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul_timeout_ms: Option<i64>,
    /// `AWS_ENDPOINT_URL`: where every AWS call goes instead of AWS's own endpoint.
    #[cfg(feature = "sigv4")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_endpoint_url: Option<String>,
    /// `AWS_ENDPOINT_URL_<SERVICE>` by service (`tagging`, `lambda`, `ssm`, `sts`).
    #[cfg(feature = "sigv4")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_endpoint_urls: Option<BTreeMap<String, String>>,
    /// Ignored: accepted so that a [`Config`] (which lists its warnings) can be passed
    /// back as input; the warnings are worked out again.
    #[serde(default, skip_serializing)]
    pub warnings: Option<Vec<Diagnostic>>,
}

/// A validated configuration with every default applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct Config {
    /// Consul node the Lambda services are registered on.
    pub node_name: String,
    /// The datacenter this registrator manages; `None` manages every datacenter.
    pub datacenter: Option<String>,
    /// Whether Consul is Enterprise (namespaces and partitions).
    pub enterprise: bool,
    /// The admin partitions managed (Enterprise only).
    pub partitions: Vec<String>,
    /// Consul HTTP address, with scheme.
    pub consul_http_addr: String,
    /// Parameter Store name of the Consul CA certificate.
    pub consul_cacert_path: Option<String>,
    /// Parameter Store name of the ACL token.
    pub consul_http_token_path: Option<String>,
    /// Parameter Store prefix for extension data; `None` disables extension data.
    pub consul_extension_data_prefix: Option<String>,
    /// Parameter Store tier for extension data larger than 4096 bytes (`None`: the account default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul_extension_data_tier: Option<Tier>,
    /// KMS key (ID, ARN, alias name or alias ARN) that encrypts extension data
    /// (`None`: the account's `alias/aws/ssm`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consul_extension_data_kms_key_id: Option<String>,
    /// Page size for Lambda listings.
    pub page_size: u32,
    /// Log verbosity.
    pub log_level: LogLevel,
    /// Whether to use HTTPS when the address has no scheme of its own.
    pub consul_http_ssl: bool,
    /// Whether to verify Consul's TLS certificate.
    pub consul_http_ssl_verify: bool,
    /// CA certificate file for Consul's TLS.
    pub consul_cacert: Option<String>,
    /// Client certificate file for Consul's TLS.
    pub consul_client_cert: Option<String>,
    /// Client key file for Consul's TLS (a path, never the key).
    pub consul_client_key: Option<String>,
    /// Server name to verify in Consul's certificate.
    pub consul_tls_server_name: Option<String>,
    /// Whether an ACL token is given in `CONSUL_HTTP_TOKEN` (the value is not kept).
    pub consul_http_token_set: bool,
    /// The registrator's function name.
    pub name: String,
    /// Minutes between full syncs.
    pub sync_frequency_in_minutes: u32,
    /// The registrator's timeout in seconds.
    pub timeout: u32,
    /// Whether a full sync may deregister more than half of the managed services.
    pub allow_mass_deregistration: bool,
    /// The terminating gateway whose `terminating-gateway` config entry lists the
    /// managed services; `None`: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terminating_gateway_name: Option<String>,
    /// Whether to create that entry when it does not exist.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub terminating_gateway_create: bool,
    /// Cluster peers the managed services are exported to (`exported-services`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exported_services_peers: Vec<String>,
    /// Admin partitions the managed services are exported to (Enterprise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exported_services_partitions: Vec<String>,
    /// Whether to plan and report only (`DRY_RUN`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dry_run: bool,
    /// Requests in flight (`MAX_CONCURRENCY`).
    pub max_concurrency: u32,
    /// The timeout of one request, in milliseconds (`CONSUL_TIMEOUT_MS`).
    pub consul_timeout_ms: u32,
    /// Where every AWS call goes instead of AWS's own endpoint (`AWS_ENDPOINT_URL`,
    /// an http or https URL).
    #[cfg(feature = "sigv4")]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_endpoint_url: Option<String>,
    /// Where one service's AWS calls go (`AWS_ENDPOINT_URL_<SERVICE>`), by service
    /// (`tagging`, `lambda`, `ssm`, `sts`).
    #[cfg(feature = "sigv4")]
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aws_endpoint_urls: BTreeMap<String, String>,
    /// Settings that work but weaken security (e.g. `CONSUL_HTTP_SSL_VERIFY=false`):
    /// hosts log them on every invocation; the planner repeats them in the plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Diagnostic>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            node_name: DEFAULT_NODE_NAME.to_owned(),
            datacenter: None,
            enterprise: false,
            partitions: Vec::new(),
            consul_http_addr: DEFAULT_CONSUL_HTTP_ADDR.to_owned(),
            consul_cacert_path: None,
            consul_http_token_path: None,
            consul_extension_data_prefix: None,
            consul_extension_data_tier: None,
            consul_extension_data_kms_key_id: None,
            page_size: DEFAULT_PAGE_SIZE,
            log_level: LogLevel::Info,
            consul_http_ssl: false,
            consul_http_ssl_verify: true,
            consul_cacert: None,
            consul_client_cert: None,
            consul_client_key: None,
            consul_tls_server_name: None,
            consul_http_token_set: false,
            name: "consul-lambda-registrator".to_owned(),
            sync_frequency_in_minutes: DEFAULT_SYNC_FREQUENCY,
            timeout: DEFAULT_TIMEOUT,
            allow_mass_deregistration: false,
            terminating_gateway_name: None,
            terminating_gateway_create: false,
            exported_services_peers: Vec::new(),
            exported_services_partitions: Vec::new(),
            dry_run: false,
            max_concurrency: DEFAULT_MAX_CONCURRENCY,
            consul_timeout_ms: DEFAULT_CONSUL_TIMEOUT_MS,
            #[cfg(feature = "sigv4")]
            aws_endpoint_url: None,
            #[cfg(feature = "sigv4")]
            aws_endpoint_urls: BTreeMap::new(),
            warnings: Vec::new(),
        }
    }
}

#[cfg(feature = "sigv4")]
/// The engine's AWS services, as `AWS_ENDPOINT_URL_<SERVICE>` names them (what
/// both AWS SDKs read).
pub const SERVICE_ENDPOINT_VARS: [(&str, &str); 4] = [
    ("tagging", "AWS_ENDPOINT_URL_RESOURCE_GROUPS_TAGGING_API"),
    ("lambda", "AWS_ENDPOINT_URL_LAMBDA"),
    ("ssm", "AWS_ENDPOINT_URL_SSM"),
    ("sts", "AWS_ENDPOINT_URL_STS"),
];

#[cfg(feature = "sigv4")]
/// An endpoint URL (`AWS_ENDPOINT_URL`): scheme, authority and a path prefix.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Endpoint {
    /// `http` or `https`.
    pub scheme: String,
    /// `host[:port]`: the `Host` header.
    pub authority: String,
    /// A path every request's path follows (`""`: none).
    pub prefix: String,
}

#[cfg(feature = "sigv4")]
impl Endpoint {
    /// Parses `http(s)://host[:port][/prefix]`; `None`: not such a URL.
    pub fn parse(url: &str) -> Option<Endpoint> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let bad = |c: char| c.is_whitespace() || matches!(c, '?' | '#' | '@' | '/');
        if authority.is_empty() || authority.contains(bad) || path.contains(['?', '#', ' ']) {
            return None;
        }
        Some(Endpoint {
            scheme,
            authority: authority.to_ascii_lowercase(),
            prefix: path.trim_end_matches('/').to_owned(),
        })
    }

    /// AWS's own endpoint of `service` in `region`.
    pub(crate) fn of_region(service: &str, region: &str) -> Endpoint {
        let suffix = if region.starts_with("cn-") {
            "amazonaws.com.cn"
        } else {
            "amazonaws.com"
        };
        Endpoint {
            scheme: "https".into(),
            authority: format!("{service}.{region}.{suffix}"),
            prefix: String::new(),
        }
    }
}

#[cfg(feature = "sigv4")]
/// Endpoint overrides: `AWS_ENDPOINT_URL` for every service, and
/// `AWS_ENDPOINT_URL_<SERVICE>` for one (what both AWS SDKs read).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub struct AwsEndpoints {
    /// `AWS_ENDPOINT_URL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<Endpoint>,
    /// By engine service name (`tagging`, `lambda`, `ssm`, `sts`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub by_service: BTreeMap<String, Endpoint>,
}

#[cfg(feature = "sigv4")]
impl AwsEndpoints {
    pub(crate) fn of(&self, service: &str, region: &str) -> Endpoint {
        self.by_service
            .get(service)
            .or(self.all.as_ref())
            .cloned()
            .unwrap_or_else(|| Endpoint::of_region(service, region))
    }
}

/// Environment variable names and the typed field each fills.
pub const ENV_KEYS: &[(&str, &str)] = &[
    ("NODE_NAME", "nodeName"),
    ("DATACENTER", "datacenter"),
    ("ENTERPRISE", "enterprise"),
    ("PARTITIONS", "partitions"),
    ("CONSUL_HTTP_ADDR", "consulHttpAddr"),
    ("CONSUL_CACERT_PATH", "consulCacertPath"),
    ("CONSUL_HTTP_TOKEN_PATH", "consulHttpTokenPath"),
    ("CONSUL_EXTENSION_DATA_PREFIX", "consulExtensionDataPrefix"),
    ("CONSUL_EXTENSION_DATA_TIER", "consulExtensionDataTier"),
    (
        "CONSUL_EXTENSION_DATA_KMS_KEY_ID",
        "consulExtensionDataKmsKeyId",
    ),
    ("PAGE_SIZE", "pageSize"),
    ("LOG_LEVEL", "logLevel"),
    ("CONSUL_HTTP_SSL", "consulHttpSsl"),
    ("CONSUL_HTTP_SSL_VERIFY", "consulHttpSslVerify"),
    ("CONSUL_CACERT", "consulCacert"),
    ("CONSUL_CLIENT_CERT", "consulClientCert"),
    ("CONSUL_CLIENT_KEY", "consulClientKey"),
    ("CONSUL_TLS_SERVER_NAME", "consulTlsServerName"),
    ("CONSUL_HTTP_TOKEN", "consulHttpTokenSet"),
    ("ALLOW_MASS_DEREGISTRATION", "allowMassDeregistration"),
    ("TERMINATING_GATEWAY_NAME", "terminatingGatewayName"),
    ("TERMINATING_GATEWAY_CREATE", "terminatingGatewayCreate"),
    ("EXPORTED_SERVICES_PEERS", "exportedServicesPeers"),
    ("EXPORTED_SERVICES_PARTITIONS", "exportedServicesPartitions"),
    // Set by Lambda: the registrator's own function name (the metrics' `FunctionName`).
    ("AWS_LAMBDA_FUNCTION_NAME", "name"),
];

/// Parses a boolean the way upstream's Go code does (`strconv.ParseBool`).
pub(crate) fn parse_bool(value: &str) -> Option<bool> {
    match value {
        "1" | "t" | "T" => Some(true),
        "0" | "f" | "F" => Some(false),
        v if v.eq_ignore_ascii_case("true") => Some(true),
        v if v.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

impl ConfigInput {
    /// Reads upstream's environment variables from a map. Unknown variables are
    /// ignored (an environment holds many); empty values count as unset.
    pub fn from_env(env: &BTreeMap<String, String>) -> (ConfigInput, Vec<Diagnostic>) {
        let mut input = ConfigInput::default();
        let mut errors = Vec::new();
        let get = |k: &str| env.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let text = |k: &str| get(k).map(str::to_owned);
        let boolean = |k: &str, errors: &mut Vec<Diagnostic>| {
            let v = get(k)?;
            let parsed = parse_bool(v);
            if parsed.is_none() {
                errors.push(
                    Diagnostic::new(
                        Code::InvalidBoolean,
                        format!("{k} must be true or false"),
                        format!("set {k}=true or {k}=false"),
                    )
                    .key(k)
                    .value(v),
                );
            }
            parsed
        };
        let number = |k: &str, errors: &mut Vec<Diagnostic>| {
            let v = get(k)?;
            match v.trim().parse::<i64>() {
                Ok(n) => Some(n),
                Err(_) => {
                    errors.push(
                        Diagnostic::new(
                            Code::InvalidInteger,
                            format!("{k} must be a whole number"),
                            format!("set {k} to a number such as 50"),
                        )
                        .key(k)
                        .value(v),
                    );
                    None
                }
            }
        };
        input.node_name = text("NODE_NAME");
        input.datacenter = text("DATACENTER");
        input.enterprise = boolean("ENTERPRISE", &mut errors);
        input.partitions =
            get("PARTITIONS").map(|v| v.split(',').map(|p| p.trim().to_owned()).collect());
        input.consul_http_addr = text("CONSUL_HTTP_ADDR");
        input.consul_cacert_path = text("CONSUL_CACERT_PATH");
        input.consul_http_token_path = text("CONSUL_HTTP_TOKEN_PATH");
        input.consul_extension_data_prefix = text("CONSUL_EXTENSION_DATA_PREFIX");
        input.consul_extension_data_tier = text("CONSUL_EXTENSION_DATA_TIER");
        input.consul_extension_data_kms_key_id = text("CONSUL_EXTENSION_DATA_KMS_KEY_ID");
        input.page_size = number("PAGE_SIZE", &mut errors);
        input.log_level = text("LOG_LEVEL");
        input.consul_http_ssl = boolean("CONSUL_HTTP_SSL", &mut errors);
        input.consul_http_ssl_verify = boolean("CONSUL_HTTP_SSL_VERIFY", &mut errors);
        input.consul_cacert = text("CONSUL_CACERT");
        input.consul_client_cert = text("CONSUL_CLIENT_CERT");
        input.consul_client_key = text("CONSUL_CLIENT_KEY");
        input.consul_tls_server_name = text("CONSUL_TLS_SERVER_NAME");
        input.consul_http_token_set = Some(get("CONSUL_HTTP_TOKEN").is_some());
        input.allow_mass_deregistration = boolean("ALLOW_MASS_DEREGISTRATION", &mut errors);
        input.terminating_gateway_name = text("TERMINATING_GATEWAY_NAME");
        input.terminating_gateway_create = boolean("TERMINATING_GATEWAY_CREATE", &mut errors);
        let list = |k: &str| get(k).map(|v| v.split(',').map(|p| p.trim().to_owned()).collect());
        input.exported_services_peers = list("EXPORTED_SERVICES_PEERS");
        input.exported_services_partitions = list("EXPORTED_SERVICES_PARTITIONS");
        input.dry_run = boolean("DRY_RUN", &mut errors);
        input.max_concurrency = number("MAX_CONCURRENCY", &mut errors);
        input.consul_timeout_ms = number("CONSUL_TIMEOUT_MS", &mut errors);
        input.name = text("AWS_LAMBDA_FUNCTION_NAME");
        #[cfg(feature = "sigv4")]
        {
            input.aws_endpoint_url = text("AWS_ENDPOINT_URL");
            let by_service: BTreeMap<String, String> = SERVICE_ENDPOINT_VARS
                .iter()
                .filter_map(|(service, var)| Some(((*service).to_owned(), text(var)?)))
                .collect();
            input.aws_endpoint_urls = (!by_service.is_empty()).then_some(by_service);
        }
        (input, errors)
    }

    /// Validates and applies defaults, reporting every problem at once.
    pub fn validate(&self) -> Result<Config, Vec<Diagnostic>> {
        let mut errors = Vec::new();
        let scope = self.validate_scope(&mut errors);
        let mesh = self.validate_mesh(scope.enterprise, &mut errors);
        let consul_http_addr = self.validate_access(&mut errors);
        let tier = self.validate_extension_data(&mut errors);
        let page_size = range(
            "PAGE_SIZE",
            self.page_size,
            DEFAULT_PAGE_SIZE,
            1,
            100,
            &mut errors,
        );
        let log_level = self.validate_log_level(&mut errors);
        self.validate_client_cert(&mut errors);
        let (name, sync_frequency_in_minutes, timeout) = self.validate_deployment(&mut errors);
        let (max_concurrency, consul_timeout_ms) = self.validate_run(&mut errors);
        #[cfg(feature = "sigv4")]
        let aws_endpoints = validate_endpoints(
            self.aws_endpoint_url.as_deref(),
            self.aws_endpoint_urls.iter().flatten(),
            &mut errors,
        );
        if !errors.is_empty() {
            return Err(errors);
        }
        let (consul_http_addr, consul_http_ssl, consul_http_ssl_verify, warnings) =
            self.effective_tls(consul_http_addr);
        Ok(Config {
            node_name: scope.node_name,
            datacenter: self.datacenter.clone(),
            enterprise: scope.enterprise,
            partitions: scope.partitions,
            consul_http_addr,
            consul_cacert_path: self.consul_cacert_path.clone(),
            consul_http_token_path: self.consul_http_token_path.clone(),
            consul_extension_data_prefix: self.consul_extension_data_prefix.clone(),
            consul_extension_data_tier: tier,
            consul_extension_data_kms_key_id: self.consul_extension_data_kms_key_id.clone(),
            page_size,
            log_level,
            consul_http_ssl,
            consul_http_ssl_verify,
            consul_cacert: self.consul_cacert.clone(),
            consul_client_cert: self.consul_client_cert.clone(),
            consul_client_key: self.consul_client_key.clone(),
            consul_tls_server_name: self.consul_tls_server_name.clone(),
            consul_http_token_set: self.consul_http_token_set.unwrap_or(false),
            name,
            sync_frequency_in_minutes,
            timeout,
            allow_mass_deregistration: self.allow_mass_deregistration.unwrap_or(false),
            terminating_gateway_name: mesh.0,
            terminating_gateway_create: mesh.1,
            exported_services_peers: mesh.2,
            exported_services_partitions: mesh.3,
            dry_run: self.dry_run.unwrap_or(false),
            max_concurrency,
            consul_timeout_ms,
            #[cfg(feature = "sigv4")]
            aws_endpoint_url: aws_endpoints.all.and(self.aws_endpoint_url.clone()),
            #[cfg(feature = "sigv4")]
            aws_endpoint_urls: self
                .aws_endpoint_urls
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|(s, _)| aws_endpoints.by_service.contains_key(s))
                .collect(),
            warnings,
        })
    }

    /// The client certificate and key: both or neither.
    fn validate_client_cert(&self, errors: &mut Vec<Diagnostic>) {
        if self.consul_client_cert.is_some() != self.consul_client_key.is_some() {
            errors.push(
                Diagnostic::new(
                    Code::InconsistentSettings,
                    "CONSUL_CLIENT_CERT and CONSUL_CLIENT_KEY must be set together",
                    "set both for mutual TLS, or neither",
                )
                .key(if self.consul_client_cert.is_some() {
                    "CONSUL_CLIENT_KEY"
                } else {
                    "CONSUL_CLIENT_CERT"
                }),
            );
        }
    }

    /// The deployment settings (typed form): the name, the schedule, the timeout.
    fn validate_deployment(&self, errors: &mut Vec<Diagnostic>) -> (String, u32, u32) {
        let name = self.name.clone().unwrap_or_else(|| Config::default().name);
        if let Err(e) = validate_function_name(&name) {
            errors.push(Diagnostic {
                key: Some("name".into()),
                hint: "the registrator's name becomes its Lambda function name: 1 to 64 letters, digits, `-` or `_`".into(),
                ..e
            });
        }
        let frequency = self.sync_frequency_in_minutes;
        let sync_frequency_in_minutes = range(
            "sync_frequency_in_minutes",
            frequency,
            DEFAULT_SYNC_FREQUENCY,
            1,
            10_080,
            errors,
        );
        let timeout = range("timeout", self.timeout, DEFAULT_TIMEOUT, 1, 900, errors);
        (name, sync_frequency_in_minutes, timeout)
    }

    /// The run settings: requests in flight, the timeout of one request.
    fn validate_run(&self, errors: &mut Vec<Diagnostic>) -> (u32, u32) {
        let max_concurrency = range(
            "MAX_CONCURRENCY",
            self.max_concurrency,
            DEFAULT_MAX_CONCURRENCY,
            1,
            256,
            errors,
        );
        let consul_timeout_ms = range(
            "CONSUL_TIMEOUT_MS",
            self.consul_timeout_ms,
            DEFAULT_CONSUL_TIMEOUT_MS,
            100,
            300_000,
            errors,
        );
        (max_concurrency, consul_timeout_ms)
    }

    /// The node, the datacenter, Enterprise and its partitions.
    fn validate_scope(&self, errors: &mut Vec<Diagnostic>) -> Scope {
        let node_name = self
            .node_name
            .clone()
            .unwrap_or_else(|| DEFAULT_NODE_NAME.to_owned());
        if !is_dns_label(&node_name) {
            errors.push(bad(
                Code::InvalidNodeName,
                "NODE_NAME",
                &node_name,
                "the node name must be a DNS label: 1 to 63 letters, digits or `-`, not starting or ending with `-`".into(),
                "use a name such as lambdas",
            ));
        }
        if let Some(dc) = &self.datacenter {
            if let Err(e) = validate_consul_name("DATACENTER", dc) {
                errors.push(e);
            }
        }
        let enterprise = self.enterprise.unwrap_or(false);
        let partitions = self.partitions.clone().unwrap_or_default();
        check_list("PARTITIONS", &partitions, errors);
        if enterprise && partitions.is_empty() {
            errors.push(
                Diagnostic::new(
                    Code::EnterpriseRequiresPartitions,
                    "ENTERPRISE is enabled but PARTITIONS lists no partition to manage",
                    "set PARTITIONS, e.g. PARTITIONS=default",
                )
                .key("PARTITIONS"),
            );
        }
        if !enterprise && !partitions.is_empty() {
            errors.push(
                Diagnostic::new(
                    Code::PartitionsRequireEnterprise,
                    "PARTITIONS is set but ENTERPRISE is not enabled; partitions exist only in Consul Enterprise",
                    "set ENTERPRISE=true, or remove PARTITIONS",
                )
                .key("PARTITIONS")
                .value(&partitions.join(",")),
            );
        }
        Scope {
            node_name,
            enterprise,
            partitions,
        }
    }

    /// The address and the credential parameters.
    fn validate_access(&self, errors: &mut Vec<Diagnostic>) -> String {
        let consul_http_addr = self
            .consul_http_addr
            .clone()
            .unwrap_or_else(|| DEFAULT_CONSUL_HTTP_ADDR.to_owned());
        if let Err(why) = validate_url(&consul_http_addr) {
            errors.push(bad(
                Code::InvalidUrl,
                "CONSUL_HTTP_ADDR",
                // `user:pass@` in the address is a secret: never echoed.
                &crate::error::redact_address(&consul_http_addr),
                format!("CONSUL_HTTP_ADDR is not a URL: {why}"),
                "write the address with its scheme, e.g. https://consul.example.com:8501",
            ));
        }
        for (key, value) in [
            ("CONSUL_CACERT_PATH", &self.consul_cacert_path),
            ("CONSUL_HTTP_TOKEN_PATH", &self.consul_http_token_path),
        ] {
            if let Some(v) = value {
                if let Err(e) = validate_parameter_name(key, v) {
                    errors.push(e);
                }
            }
        }
        consul_http_addr
    }

    /// The extension data prefix, tier and KMS key.
    fn validate_extension_data(&self, errors: &mut Vec<Diagnostic>) -> Option<Tier> {
        if let Some(prefix) = &self.consul_extension_data_prefix {
            let bad = !prefix.starts_with('/')
                || prefix.len() < 2
                || prefix.ends_with('/')
                || prefix.contains("//")
                || !prefix.bytes().all(parameter_char);
            if bad {
                errors.push(
                    Diagnostic::new(
                        Code::InvalidParameterPath,
                        "CONSUL_EXTENSION_DATA_PREFIX must be a Parameter Store path: it starts with `/`, does not end with `/`, and uses letters, digits and . - _ /",
                        "use a prefix such as /lambda_extension_data",
                    )
                    .key("CONSUL_EXTENSION_DATA_PREFIX")
                    .value(prefix),
                );
            }
        }
        if let Some(prefix) = &self.consul_extension_data_prefix {
            for (key, path) in [
                ("CONSUL_HTTP_TOKEN_PATH", &self.consul_http_token_path),
                ("CONSUL_CACERT_PATH", &self.consul_cacert_path),
            ] {
                let Some(path) = path else { continue };
                let under = path
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
                if under {
                    errors.push(
                        Diagnostic::new(
                            Code::ExtensionDataPrefixOverlap,
                            format!("CONSUL_EXTENSION_DATA_PREFIX {prefix} holds {key} ({path}): the registrator writes and deletes parameters under the prefix and reads them all back, the secret included"),
                            format!("move the extension data to a prefix of its own (e.g. /lambda_extension_data), or {key} out from under {prefix}"),
                        )
                        .key("CONSUL_EXTENSION_DATA_PREFIX")
                        .value(prefix),
                    );
                }
            }
        }
        if let Some(key) = &self.consul_extension_data_kms_key_id {
            if let Err(e) = validate_kms_key_id("CONSUL_EXTENSION_DATA_KMS_KEY_ID", key) {
                errors.push(e);
            }
        }
        let t = self.consul_extension_data_tier.as_ref()?;
        Tier::parse(t).or_else(|| {
            errors.push(bad(
                Code::InvalidTier,
                "CONSUL_EXTENSION_DATA_TIER",
                t,
                "the extension data tier must be Standard, Advanced or Intelligent-Tiering".into(),
                "set CONSUL_EXTENSION_DATA_TIER to Advanced or Intelligent-Tiering, or leave it unset",
            ));
            None
        })
    }

    fn validate_log_level(&self, errors: &mut Vec<Diagnostic>) -> LogLevel {
        let Some(l) = self.log_level.as_deref() else {
            return LogLevel::Info;
        };
        match l.to_ascii_lowercase().as_str() {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" | "warning" => LogLevel::Warn,
            "error" => LogLevel::Error,
            _ => {
                errors.push(
                    Diagnostic::new(
                        Code::InvalidLogLevel,
                        "LOG_LEVEL must be trace, debug, info, warn or error",
                        "set LOG_LEVEL=info",
                    )
                    .key("LOG_LEVEL")
                    .value(l),
                );
                LogLevel::Info
            }
        }
    }

    /// The effective address, as Consul's Go client resolves it (TLS asked for with
    /// CONSUL_HTTP_SSL is never reverted to http by an http:// address), whether
    /// TLS is on and verified, and the warnings of settings that weaken it.
    fn effective_tls(&self, addr: String) -> (String, bool, bool, Vec<Diagnostic>) {
        let ssl = self.consul_http_ssl.unwrap_or(false) || consul_http_addr_is_https(Some(&addr));
        let addr = match addr.strip_prefix("http://") {
            Some(rest) if ssl => format!("https://{rest}"),
            _ => addr,
        };
        let verify = self.consul_http_ssl_verify.unwrap_or(true);
        let mut warnings = Vec::new();
        if !verify {
            warnings.push(
                Diagnostic::new(
                    Code::TlsVerificationDisabled,
                    "CONSUL_HTTP_SSL_VERIFY=false: Consul's TLS certificate is not verified, so anyone on the path can read the ACL token and change the catalog",
                    "give Consul's CA with CONSUL_CACERT_PATH or CONSUL_CACERT and remove CONSUL_HTTP_SSL_VERIFY",
                )
                .key("CONSUL_HTTP_SSL_VERIFY")
                .value("false"),
            );
        }
        (addr, ssl, verify, warnings)
    }
}

/// Where the registrator works.
struct Scope {
    node_name: String,
    enterprise: bool,
    partitions: Vec<String>,
}

#[cfg(feature = "sigv4")]
/// `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`: `http(s)://host[:port][/path]`.
fn validate_endpoints<'a>(
    all: Option<&str>,
    by_service: impl Iterator<Item = (&'a String, &'a String)>,
    errors: &mut Vec<Diagnostic>,
) -> AwsEndpoints {
    let parse = |key: &str, url: &str, errors: &mut Vec<Diagnostic>| {
        let endpoint = Endpoint::parse(url);
        if endpoint.is_none() {
            errors.push(bad(
                Code::InvalidUrl,
                key,
                url,
                format!("{key} must be an http or https URL"),
                "set it to a URL such as https://lambda.us-east-1.amazonaws.com, or unset it",
            ));
        }
        endpoint
    };
    let all = all.and_then(|u| parse("AWS_ENDPOINT_URL", u, errors));
    let mut by_service_out = BTreeMap::new();
    for (service, url) in by_service {
        let Some((_, var)) = SERVICE_ENDPOINT_VARS.iter().find(|(s, _)| s == service) else {
            errors.push(bad(
                Code::InvalidConfig,
                "awsEndpointUrls",
                service,
                format!("no AWS service `{service}` is called"),
                "name one of tagging, lambda, ssm and sts",
            ));
            continue;
        };
        if let Some(e) = parse(var, url, errors) {
            by_service_out.insert(service.clone(), e);
        }
    }
    AwsEndpoints {
        all,
        by_service: by_service_out,
    }
}

#[cfg(feature = "sigv4")]
impl Config {
    /// Where AWS calls go ([`Config::aws_endpoint_url`] and
    /// [`Config::aws_endpoint_urls`], validated already).
    pub fn aws_endpoints(&self) -> AwsEndpoints {
        validate_endpoints(
            self.aws_endpoint_url.as_deref(),
            self.aws_endpoint_urls.iter(),
            &mut Vec::new(),
        )
    }
}

fn bad(code: Code, key: &str, value: &str, message: String, hint: &str) -> Diagnostic {
    Diagnostic::new(code, message, hint).key(key).value(value)
}

fn consul_http_addr_is_https(addr: Option<&str>) -> bool {
    addr.is_some_and(|a| a.starts_with("https://"))
}

/// Reads and validates a configuration from environment variables.
pub fn config_from_env(env: &BTreeMap<String, String>) -> Result<Config, Failure> {
    let (input, mut errors) = ConfigInput::from_env(env);
    match input.validate() {
        Ok(config) if errors.is_empty() => Ok(config),
        Ok(_) => Err(Failure::many(
            Code::InvalidConfig,
            "invalid configuration",
            errors,
        )),
        Err(more) => {
            errors.extend(more);
            Err(Failure::many(
                Code::InvalidConfig,
                "invalid configuration",
                errors,
            ))
        }
    }
}

/// Validates a typed configuration object.
pub fn config_from_input(input: &ConfigInput) -> Result<Config, Failure> {
    input
        .validate()
        .map_err(|errors| Failure::many(Code::InvalidConfig, "invalid configuration", errors))
}

fn range(
    key: &str,
    value: Option<i64>,
    default: u32,
    min: i64,
    max: i64,
    errors: &mut Vec<Diagnostic>,
) -> u32 {
    let Some(v) = value else { return default };
    if v < min || v > max {
        errors.push(
            Diagnostic::new(
                Code::OutOfRange,
                format!("{key} must be between {min} and {max}"),
                format!("set {key} to a value from {min} to {max}; the default is {default}"),
            )
            .key(key)
            .value(&v.to_string()),
        );
        return default;
    }
    u32::try_from(v).unwrap_or(default)
}

/// The mesh settings (docs/mesh.md): gateway name, create, peers, partitions.
type MeshSettings = (Option<String>, bool, Vec<String>, Vec<String>);

impl ConfigInput {
    fn validate_mesh(&self, enterprise: bool, errors: &mut Vec<Diagnostic>) -> MeshSettings {
        let name = self.terminating_gateway_name.clone();
        if let Some(n) = &name {
            if let Err(e) = validate_consul_name("TERMINATING_GATEWAY_NAME", n) {
                errors.push(e);
            }
        }
        let create = self.terminating_gateway_create.unwrap_or(false);
        if create && name.is_none() {
            errors.push(
                Diagnostic::new(
                    Code::InconsistentSettings,
                    "TERMINATING_GATEWAY_CREATE is true but TERMINATING_GATEWAY_NAME names no gateway",
                    "set TERMINATING_GATEWAY_NAME to the terminating gateway's service name, or remove TERMINATING_GATEWAY_CREATE",
                )
                .key("TERMINATING_GATEWAY_CREATE")
                .value("true"),
            );
        }
        let peers = self.exported_services_peers.clone().unwrap_or_default();
        check_list("EXPORTED_SERVICES_PEERS", &peers, errors);
        let partitions = self
            .exported_services_partitions
            .clone()
            .unwrap_or_default();
        check_list("EXPORTED_SERVICES_PARTITIONS", &partitions, errors);
        if !enterprise && !partitions.is_empty() {
            errors.push(
                Diagnostic::new(
                    Code::ExportedPartitionsRequireEnterprise,
                    "EXPORTED_SERVICES_PARTITIONS is set but ENTERPRISE is not enabled; exporting to admin partitions needs Consul Enterprise",
                    "on open-source Consul export to cluster peers with EXPORTED_SERVICES_PEERS; or set ENTERPRISE=true and PARTITIONS",
                )
                .key("EXPORTED_SERVICES_PARTITIONS")
                .value(&partitions.join(",")),
            );
        }
        (name, create, peers, partitions)
    }
}

fn check_list(key: &str, items: &[String], errors: &mut Vec<Diagnostic>) {
    let mut seen = std::collections::BTreeSet::new();
    for item in items {
        if item.is_empty() {
            errors.push(
                Diagnostic::new(
                    Code::InvalidList,
                    format!("{key} has an empty entry"),
                    "separate names with single commas, e.g. default,team-a",
                )
                .key(key)
                .value(&items.join(",")),
            );
        } else if !seen.insert(item) {
            errors.push(
                Diagnostic::new(
                    Code::InvalidList,
                    format!("{key} lists `{item}` twice"),
                    "list each name once",
                )
                .key(key)
                .value(item),
            );
        } else if let Err(e) = validate_consul_name(key, item) {
            errors.push(e);
        }
    }
}

/// Whether `s` is a DNS label (1–63 of `[a-zA-Z0-9-]`, no leading or trailing `-`).
pub(crate) fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// Checks a datacenter, namespace or partition name: 1–64 letters, digits, `-`, `_`
/// or `.`, starting with a letter or digit.
pub(crate) fn validate_consul_name(key: &str, value: &str) -> Result<(), Diagnostic> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && value
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Diagnostic::new(
            Code::InvalidConsulName,
            format!("`{}` is not a valid Consul name: it needs 1 to 64 letters, digits, `-`, `_` or `.`, starting with a letter or digit", crate::error::clip(value)),
            "use the name exactly as Consul shows it, e.g. dc1",
        )
        .key(key)
        .value(value))
    }
}

/// Checks a KMS key as `PutParameter`'s `KeyId` takes it: a key ID (a UUID, or
/// `mrk-` and 32 hex digits for a multi-Region key), an alias name (`alias/NAME`),
/// or the ARN of a key or an alias (`arn:PARTITION:kms:REGION:ACCOUNT:key/ID`,
/// `…:alias/NAME`).
pub(crate) fn validate_kms_key_id(key: &str, value: &str) -> Result<(), Diagnostic> {
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let key_id = |s: &str| {
        let groups: Vec<&str> = s.split('-').collect();
        matches!(groups.as_slice(), [a, b, c, d, e]
            if hex(a, 8) && hex(b, 4) && hex(c, 4) && hex(d, 4) && hex(e, 12))
            || s.strip_prefix("mrk-").is_some_and(|h| hex(h, 32))
    };
    let alias = |s: &str| {
        s.strip_prefix("alias/").is_some_and(|n| {
            !n.is_empty()
                && n.len() <= 250
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
        })
    };
    let ok = match value.strip_prefix("arn:") {
        Some(rest) => match rest.splitn(5, ':').collect::<Vec<_>>().as_slice() {
            [partition, "kms", region, account, resource] => {
                matches!(*partition, "aws" | "aws-cn" | "aws-us-gov")
                    && !region.is_empty()
                    && region
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                    && account.len() == 12
                    && account.bytes().all(|b| b.is_ascii_digit())
                    && (resource.strip_prefix("key/").is_some_and(key_id) || alias(resource))
            }
            _ => false,
        },
        None => key_id(value) || alias(value),
    };
    if ok {
        Ok(())
    } else {
        Err(Diagnostic::new(
            Code::InvalidKmsKeyId,
            format!("{key} is not a KMS key ID, key ARN, alias name or alias ARN"),
            "use e.g. 1234abcd-12ab-34cd-56ef-1234567890ab, alias/consul-extension-data or arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
        )
        .key(key)
        .value(value))
    }
}

fn parameter_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'/')
}

fn validate_parameter_name(key: &str, value: &str) -> Result<(), Diagnostic> {
    let ok = !value.is_empty()
        && value.len() <= 2048
        && value.bytes().all(parameter_char)
        && (!value.contains('/') || value.starts_with('/'))
        && !value.ends_with('/');
    if ok {
        Ok(())
    } else {
        Err(Diagnostic::new(
            Code::InvalidParameterPath,
            format!("{key} must be a Parameter Store name: letters, digits and . - _ /, and a path starts with `/`"),
            "use a name such as /lambda-registrator/acl-token",
        )
        .key(key)
        .value(value))
    }
}

/// Checks an http(s) URL with a host and an optional port and path.
fn validate_url(url: &str) -> Result<(), &'static str> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .ok_or("it has no http:// or https:// scheme")?;
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err("it has no host");
    }
    if url
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err("it contains white space");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or("an IPv6 host lacks its `]`")?;
        (h, after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() || host.contains('@') {
        return Err("it has no host");
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |n| n == 0) {
            return Err("the port is not a number from 1 to 65535");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn defaults() {
        let c = config_from_env(&env(&[])).unwrap_or_default();
        assert_eq!(c, Config::default());
    }

    #[test]
    fn every_problem_at_once() {
        let e = config_from_env(&env(&[
            ("PAGE_SIZE", "0"),
            ("ENTERPRISE", "yes"),
            ("CONSUL_EXTENSION_DATA_PREFIX", "data"),
            ("CONSUL_EXTENSION_DATA_TIER", "Gold"),
            ("NODE_NAME", "-bad"),
            ("CONSUL_HTTP_ADDR", "consul:8500"),
        ]));
        let codes: Vec<Code> = e
            .err()
            .map(|f| f.errors.iter().map(|d| d.code).collect())
            .unwrap_or_default();
        for c in [
            Code::OutOfRange,
            Code::InvalidBoolean,
            Code::InvalidParameterPath,
            Code::InvalidTier,
            Code::InvalidNodeName,
            Code::InvalidUrl,
        ] {
            assert!(codes.contains(&c), "{c} missing from {codes:?}");
        }
    }

    #[test]
    fn urls() {
        for ok in [
            "http://127.0.0.1:8500",
            "https://consul.example.com",
            "https://[::1]:8501/",
            "http://a",
        ] {
            assert!(validate_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "127.0.0.1:8500",
            "http://",
            "ftp://x",
            "http://x:0",
            "http://x:99999",
            "http://a b",
        ] {
            assert!(validate_url(bad).is_err(), "{bad}");
        }
    }
}
