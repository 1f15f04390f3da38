//! The doctor (`consul-lambda-sync doctor`, `Start.doctor`): what this
//! configuration needs from Consul and AWS ([`needs`]), and whether the
//! credentials at hand have it — probed and judged here, in one place.
//!
//! Three rounds of read-only probes, sent through the engine's own request
//! machinery (retries, secrets): credentials and the inventory; Consul
//! reachability, the agent and a sample function; the token's permissions
//! (`POST /v1/internal/acl/authorize`, falling back to read-only probes and the
//! `X-Consul-Results-Filtered-By-ACLs` header). Nothing is written; an AWS
//! `AccessDenied` names the IAM action to add, a Consul denial the rule.

mod judge;
pub mod needs;
pub mod report;

use super::finish::Ending;
use super::io::{parse_aws, parse_body, Calls, Io, Settled};
use super::outcome::Verdict;
use super::retry::{status_text, CallError, Reply};
use super::wire::HttpReply;
use super::{Advance, Machine, Run, Stop};
use crate::aws::{functions_from_get_resources, GetResourcesPage};
use crate::config::LogLevel;
use crate::lower::{AuthorizeItem, AwsRequest, ConsulRequest, Request, ScopeQuery, SecretKind};
use crate::tags::{evaluate_function, FunctionStatus};
use judge::{authorize_checks, aws_check, unverifiable_writes};
use needs::{authorizations, aws_need, consul_rule, parameter_arn, Authorization, CHECK_CODES};
use report::{error, missing_rule, ok, skipped};
pub use report::{Check, CheckStatus, DoctorReport};
use serde_json::Value;

/// What a doctor request probes.
#[derive(Debug, Clone)]
pub(crate) enum Probe {
    Identity,
    Secret(SecretKind),
    Inventory,
    Leader,
    AgentSelf,
    Function,
    ExtensionRead,
    ConnectCa,
    Authorize,
    NodeRead,
    ServiceRead,
    NamesRead,
    Aliases,
}

/// The doctor phase.
#[derive(Debug, Default)]
pub(crate) struct Doctoring {
    calls: Calls<Probe>,
    round: u8,
    /// An invalid configuration (or another stop before the probes).
    stop: Option<Stop>,
    checks: Vec<Check>,
    services: Vec<String>,
    sample: Option<String>,
    datacenter: Option<String>,
    authorizations: Vec<Authorization>,
    /// Whether a probe got no answer at all.
    unreachable: bool,
}

impl Doctoring {
    pub(crate) fn new(stop: Option<Stop>) -> Self {
        Doctoring {
            stop,
            ..Doctoring::default()
        }
    }

    fn check(&mut self, c: Check) {
        self.checks.retain(|old| old.code != c.code);
        self.checks.push(c);
    }

    fn status_of(&self, code: &str) -> Option<CheckStatus> {
        self.checks
            .iter()
            .find(|c| c.code == code)
            .map(|c| c.status)
    }

    fn token_unread(&self) -> bool {
        self.status_of("ssm.token")
            .is_some_and(|s| s != CheckStatus::Ok && s != CheckStatus::Skipped)
    }

    fn consul(&mut self, request: ConsulRequest, probe: Probe) {
        self.calls.push(Request::Consul(request), probe);
    }

    fn aws(&mut self, request: AwsRequest, probe: Probe) {
        self.calls.push(Request::Aws(request), probe);
    }

    fn scope(&self) -> ScopeQuery {
        ScopeQuery {
            dc: self.datacenter.clone(),
            ..ScopeQuery::default()
        }
    }

    fn credentials(&mut self, run: &Run) {
        if let Some(stop) = &self.stop {
            // An invalid configuration: nothing else can be checked.
            let f = &stop.failure;
            let detail = f
                .errors
                .iter()
                .map(|e| match (&e.key, &e.value) {
                    (Some(k), Some(v)) => format!("{k}={v}: {} ({})", e.message, e.hint),
                    (Some(k), None) => format!("{k}: {} ({})", e.message, e.hint),
                    _ => format!("{} ({})", e.message, e.hint),
                })
                .collect::<Vec<_>>()
                .join("; ");
            let detail = if detail.is_empty() {
                f.message.clone()
            } else {
                detail
            };
            self.check(error("config", detail));
            self.round = 3;
            return;
        }
        self.check(ok("config", "the configuration is valid"));
        self.aws(AwsRequest::GetCallerIdentity, Probe::Identity);
        let config = &run.config;
        for (kind, path, code, variable) in [
            (
                SecretKind::ConsulToken,
                &config.consul_http_token_path,
                "ssm.token",
                "CONSUL_HTTP_TOKEN_PATH",
            ),
            (
                SecretKind::ConsulCaCert,
                &config.consul_cacert_path,
                "ssm.ca_cert",
                "CONSUL_CACERT_PATH",
            ),
        ] {
            match path {
                Some(name) => self.aws(
                    AwsRequest::GetParameter {
                        name: name.clone(),
                        secret: Some(kind),
                    },
                    Probe::Secret(kind),
                ),
                None => {
                    let source = match kind {
                        SecretKind::ConsulToken if config.consul_http_token_set => {
                            "the token comes from CONSUL_HTTP_TOKEN"
                        }
                        SecretKind::ConsulToken => "no token: Consul's anonymous token is used",
                        SecretKind::ConsulCaCert => "the system's CAs (or CONSUL_CACERT) are used",
                    };
                    self.check(skipped(code, format!("{variable} is not set ({source})")))
                }
            }
        }
        self.aws(AwsRequest::GetResources { token: None }, Probe::Inventory);
    }

    fn reach(&mut self, run: &Run) {
        let config = &run.config;
        self.datacenter = config.datacenter.clone();
        let dc = self.datacenter.clone();
        self.consul(ConsulRequest::StatusLeader { dc }, Probe::Leader);
        if self.token_unread() {
            self.check(skipped(
                "consul.agent_read",
                "not checked: the token could not be read from Parameter Store",
            ));
        } else if config.datacenter.is_none() {
            self.consul(ConsulRequest::AgentSelf, Probe::AgentSelf);
        } else {
            self.check(skipped(
                "consul.agent_read",
                "DATACENTER is set: the sync reads no agent endpoint",
            ));
        }
        match self.sample.clone() {
            Some(arn) => {
                self.aws(AwsRequest::ListTags { arn: arn.clone() }, Probe::Function);
                let account = run.account.as_deref();
                let function = crate::arn::function_reference(&arn, account, &run.region);
                let marker = None;
                self.aws(AwsRequest::ListAliases { function, marker }, Probe::Aliases);
            }
            None => {
                for (code, action) in [
                    ("aws.list_tags", "lambda:ListTags"),
                    ("aws.list_aliases", "lambda:ListAliases"),
                ] {
                    let why = format!("no function listed to probe {action} with");
                    self.check(skipped(code, why));
                }
            }
        }
        self.extension(run);
        if config.enterprise {
            self.check(skipped(
                "consul.enterprise",
                "partitions and namespaces are not checked: grant the rules inside each managed partition and namespace (docs/acl-policy.hcl)",
            ));
        }
    }

    fn extension(&mut self, run: &Run) {
        let Some(prefix) = run.config.consul_extension_data_prefix.clone() else {
            for code in [
                "ssm.extension_data_read",
                "ssm.extension_data_write",
                "consul.connect_ca",
            ] {
                self.check(skipped(code, "CONSUL_EXTENSION_DATA_PREFIX is not set"));
            }
            return;
        };
        let path = prefix.trim_end_matches('/');
        let path = if path.is_empty() { "/" } else { path };
        let request = AwsRequest::GetParametersByPath {
            path: path.to_owned(),
            max_results: 1,
            token: None,
        };
        self.aws(request, Probe::ExtensionRead);
        self.consul(ConsulRequest::CaRoots, Probe::ConnectCa);
        let account = run.account.clone().unwrap_or_else(|| "*".into());
        let mut actions = "ssm:PutParameter, ssm:DeleteParameter".to_owned();
        if run.config.consul_extension_data_kms_key_id.is_some() {
            actions.push_str(", kms:Encrypt, kms:GenerateDataKey");
        }
        let mut c = skipped(
            "ssm.extension_data_write",
            format!("not checked without writing: the sync needs {actions} under {path}/*"),
        );
        c.action = Some(actions);
        c.resource = Some(format!("{}/*", parameter_arn(&run.region, &account, path)));
        self.check(c);
    }

    fn permissions(&mut self, run: &Run) {
        let codes = [
            "consul.node_write",
            "consul.service_write",
            "consul.node_read",
            "consul.service_read",
            "consul.names_read",
        ];
        let why = if self.status_of("consul.reachable") != Some(CheckStatus::Ok) {
            Some("Consul did not answer GET /v1/status/leader")
        } else if self.token_unread() {
            Some("the token could not be read from Parameter Store")
        } else {
            None
        };
        if let Some(why) = why {
            for code in codes {
                self.check(skipped(code, format!("not checked: {why}")));
            }
            return;
        }
        let items = authorizations(&run.config, &self.services);
        let asked = items
            .iter()
            .map(|a| AuthorizeItem {
                resource: a.need.resource,
                segment: a.segment.clone(),
                access: a.need.access,
            })
            .collect();
        self.authorizations = items;
        let dc = self.datacenter.clone();
        self.consul(
            ConsulRequest::Authorize { dc, items: asked },
            Probe::Authorize,
        );
        let node = run.config.node_name.clone();
        let scope = self.scope();
        self.consul(ConsulRequest::NodeServices { node, scope }, Probe::NodeRead);
        let scope = self.scope();
        self.consul(
            ConsulRequest::ServiceDefaultsList { scope },
            Probe::ServiceRead,
        );
        match self.datacenter.clone() {
            Some(dc) => {
                let request = ConsulRequest::ServicesElsewhere {
                    node: run.config.node_name.clone(),
                    dc,
                    namespace: None,
                    partition: None,
                };
                self.consul(request, Probe::NamesRead);
            }
            None => self.check(skipped(
                "consul.names_read",
                "not checked: the datacenter is not known (set DATACENTER, or let the token read the agent)",
            )),
        }
    }

    /// The AWS need an AWS probe checks, and the resource it must cover.
    fn aws_probe(&self, run: &Run, probe: &Probe) -> Option<(&'static needs::AwsNeed, String)> {
        let account = run.account.clone().unwrap_or_else(|| "*".into());
        let parameter =
            |name: Option<&str>| parameter_arn(&run.region, &account, name.unwrap_or(""));
        let config = &run.config;
        let (code, resource) = match probe {
            Probe::Identity => ("aws.identity", "*".to_owned()),
            Probe::Inventory => ("aws.list_functions", "*".to_owned()),
            Probe::Function => ("aws.list_tags", self.sample.clone().unwrap_or_default()),
            Probe::Aliases => ("aws.list_aliases", self.sample.clone().unwrap_or_default()),
            Probe::Secret(SecretKind::ConsulToken) => (
                "ssm.token",
                parameter(config.consul_http_token_path.as_deref()),
            ),
            Probe::Secret(SecretKind::ConsulCaCert) => (
                "ssm.ca_cert",
                parameter(config.consul_cacert_path.as_deref()),
            ),
            Probe::ExtensionRead => (
                "ssm.extension_data_read",
                parameter(
                    config
                        .consul_extension_data_prefix
                        .as_deref()
                        .map(|p| p.trim_end_matches('/')),
                ),
            ),
            _ => return None,
        };
        Some((aws_need(code)?, resource))
    }

    fn on_aws_ok(&mut self, run: &mut Run, probe: &Probe, reply: &Reply) {
        match probe {
            Probe::Identity => {
                #[derive(serde::Deserialize)]
                struct Identity {
                    #[serde(rename = "Account")]
                    account: Option<String>,
                }
                if run.account.is_none() {
                    run.account = parse_aws::<Identity>(reply).ok().and_then(|i| i.account);
                }
            }
            Probe::Inventory => {
                let Ok(page) = parse_aws::<GetResourcesPage>(reply) else {
                    return;
                };
                let functions = functions_from_get_resources(&page).functions;
                let mut services = Vec::new();
                let mut sample = None;
                for f in &functions {
                    let report = evaluate_function(f, &run.config);
                    if report.status == FunctionStatus::Managed {
                        sample.get_or_insert_with(|| f.arn.clone());
                        services.extend(report.services.into_iter().map(|s| s.name));
                    }
                }
                self.sample = sample.or_else(|| functions.first().map(|f| f.arn.clone()));
                self.services = services;
            }
            _ => {}
        }
    }

    /// The check of a Consul probe's answer.
    fn consul_check(
        &mut self,
        run: &Run,
        probe: &Probe,
        code: &'static str,
        h: &HttpReply,
    ) -> Option<Check> {
        let node = &run.config.node_name;
        let status = h.status;
        let c = match probe {
            Probe::Leader if status == 200 => {
                ok(code, format!("Consul answers at {}", run.config.consul_http_addr))
            }
            Probe::AgentSelf if status == 200 => {
                let v: Value = parse_body(&h.body).unwrap_or(Value::Null);
                let dc = v.pointer("/Config/Datacenter").and_then(Value::as_str);
                self.datacenter = self.datacenter.clone().or(dc.map(str::to_owned));
                ok(code, "the token has agent read (GET /v1/agent/self, for the datacenter)")
            }
            Probe::AgentSelf if status == 403 => missing_rule(
                code,
                "GET /v1/agent/self was denied: the sync stops with acl_denied; set DATACENTER (then no agent endpoint is read) or add the rule",
                consul_rule("agent", "", "read"),
            ),
            Probe::ConnectCa if status == 200 => {
                let v: Value = parse_body(&h.body).unwrap_or(Value::Null);
                if v.get("Roots").and_then(Value::as_array).is_some_and(|r| !r.is_empty()) {
                    ok(code, "Consul's Connect CA has roots (extension data)")
                } else {
                    error(code, "Consul's Connect CA has no roots: enable Connect for extension data")
                }
            }
            Probe::NodeRead if status == 200 && !h.filtered => {
                let v: Value = parse_body(&h.body).unwrap_or(Value::Null);
                let absent = v.get("Node").map_or(true, Value::is_null);
                let first = if absent { " (the node is not registered yet: the first sync creates it)" } else { "" };
                ok(code, format!("GET /v1/catalog/node-services/{node} is not filtered{first}"))
            }
            Probe::NodeRead if status == 200 => missing_rule(
                code,
                format!("Consul filtered GET /v1/catalog/node-services/{node} (no node read): the sync stops with acl_filtered"),
                consul_rule("node", node, "read"),
            ),
            Probe::ServiceRead if status == 200 && !h.filtered => {
                ok(code, "GET /v1/config/service-defaults is not filtered")
            }
            Probe::ServiceRead if status == 200 => missing_rule(
                code,
                "Consul filtered GET /v1/config/service-defaults (no service read): the sync stops with acl_filtered",
                consul_rule("service", "", "read"),
            ),
            Probe::NamesRead if status == 200 && !h.filtered => {
                ok(code, "GET /v1/catalog/services (the names on other nodes) is not filtered")
            }
            Probe::NamesRead if status == 200 || status == 403 => missing_rule(
                code,
                "Consul filtered or denied GET /v1/catalog/services (the names on other nodes, checked before a name is taken): the sync stops with acl_filtered",
                consul_rule("node", "", "read"),
            ),
            Probe::NodeRead | Probe::ServiceRead if status == 403 => missing_rule(
                code,
                format!("the read was denied ({}): the sync stops with acl_denied", status_text(status, &h.body)),
                if matches!(probe, Probe::NodeRead) { consul_rule("node", node, "read") } else { consul_rule("service", "", "read") },
            ),
            Probe::Authorize => {
                let checks = authorize_checks(&run.config, &self.authorizations, h).unwrap_or_else(|| {
                    let why = format!("POST /v1/internal/acl/authorize answered {}", status_text(status, &h.body));
                    unverifiable_writes(&run.config, &why)
                });
                for c in checks {
                    self.check(c);
                }
                return None;
            }
            _ => error(code, status_text(status, &h.body)),
        };
        Some(c)
    }

    fn on_consul(&mut self, run: &Run, probe: &Probe, outcome: Result<Reply, CallError>) {
        let code = match probe {
            Probe::Leader => "consul.reachable",
            Probe::AgentSelf => "consul.agent_read",
            Probe::ConnectCa => "consul.connect_ca",
            Probe::NodeRead => "consul.node_read",
            Probe::ServiceRead => "consul.service_read",
            Probe::NamesRead => "consul.names_read",
            _ => "consul.service_write",
        };
        let codes: Vec<&'static str> = match probe {
            Probe::Authorize => vec!["consul.node_write", "consul.service_write"],
            _ => vec![code],
        };
        let failed = |message: String, this: &mut Doctoring| {
            for c in &codes {
                this.check(error(c, message.clone()));
            }
        };
        let h = match outcome {
            Ok(Reply::Http(h)) => h,
            Err(e) => {
                self.unreachable |= e.unreachable();
                let message = match e {
                    CallError::Unreachable(m) => {
                        format!(
                            "no answer from Consul at {}: {}",
                            run.config.consul_http_addr,
                            crate::text::clip(&m)
                        )
                    }
                    e => e.to_string(),
                };
                return failed(message, self);
            }
            Ok(_) => return failed("an answer of the wrong kind".into(), self),
        };
        if h.status == 403 && h.body.contains("ACL not found") {
            // Not a missing rule: Consul does not know the token at all.
            return failed("Consul does not know the token (HTTP 403: ACL not found): check the token at CONSUL_HTTP_TOKEN_PATH (or CONSUL_HTTP_TOKEN)".into(), self);
        }
        if let Some(c) = self.consul_check(run, probe, code, &h) {
            self.check(c);
        }
    }

    /// The report, and the ending that carries it.
    fn report(&mut self, io: &mut Io) -> Ending {
        let mut checks = std::mem::take(&mut self.checks);
        checks.sort_by_key(|c| {
            CHECK_CODES
                .iter()
                .position(|k| *k == c.code)
                .unwrap_or(usize::MAX)
        });
        let report = DoctorReport::new(checks);
        let has = |code: &str, status: CheckStatus| {
            report
                .checks
                .iter()
                .any(|c| (code.is_empty() || c.code == code) && c.status == status)
        };
        let verdict = if report.ok {
            Verdict::Ok
        } else if has("config", CheckStatus::Error) {
            Verdict::InvalidConfig
        } else if self.unreachable && !has("", CheckStatus::Missing) {
            Verdict::Unreachable
        } else {
            Verdict::Failed
        };
        let message = format!("doctor: {}", report.counts());
        io.log(
            if report.ok {
                LogLevel::Info
            } else {
                LogLevel::Warn
            },
            "doctor finished",
            [
                ("verdict", Some(verdict.as_str().into())),
                ("message", Some(message.clone().into())),
            ],
        );
        Ending {
            doctor: Some((report, verdict, message)),
            ..Ending::default()
        }
    }
}

impl Machine for Doctoring {
    type Purpose = Probe;

    fn calls(&mut self) -> &mut Calls<Probe> {
        &mut self.calls
    }

    fn calls_ref(&self) -> &Calls<Probe> {
        &self.calls
    }

    fn settle(&mut self, _: &mut Io, run: &mut Run, (call, outcome): Settled<Probe>) {
        let probe = call.purpose;
        if let Some((need, resource)) = self.aws_probe(run, &probe) {
            self.unreachable |= matches!(&outcome, Err(e) if e.unreachable());
            let c = aws_check(need, &resource, &outcome);
            if let (CheckStatus::Ok, Ok(reply)) = (c.status, &outcome) {
                self.on_aws_ok(run, &probe, reply);
            }
            self.check(c);
            return;
        }
        self.on_consul(run, &probe, outcome);
    }

    fn advance(&mut self, io: &mut Io, run: &mut Run) -> Advance {
        let round = self.round;
        self.round += 1;
        match round {
            0 => self.credentials(run),
            1 => self.reach(run),
            2 => self.permissions(run),
            _ => return Advance::Finish(Box::new(self.report(io))),
        }
        Advance::Continue
    }
}
