//! The engine in doctor mode (`Start.doctor`): the probes of [`crate::doctor`],
//! sent through the engine's own request machinery (retries, secrets), in three
//! rounds — credentials and the inventory; Consul reachability, the agent and a
//! sample function; the token's permissions — then the report as the result.

use super::outcome::{metrics_document, InventoryReport, OpCounts, SyncResult, Verdict};
use super::wire::{encode_segment, status_message, Answer, AwsCall, SecretKind};
use super::Phase;
use super::{Call, ConsulCall, Engine, Purpose};
use crate::aws::{functions_from_get_resources, GetResourcesPage};
use crate::config::LogLevel;
use crate::doctor::{
    authorizations, authorize_body, authorize_checks, aws_check, aws_need, consul_rule, error,
    missing_rule, ok, parameter_arn, skipped, unverifiable_writes, Authorization, Check,
    CheckStatus, DoctorReport, CHECK_CODES,
};
use crate::plan::Summary;
use crate::tags::{evaluate_function, FunctionStatus};
use serde_json::{json, Value};
use std::collections::BTreeMap;

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
}

/// The doctor's progress.
#[derive(Debug, Default)]
pub(crate) struct DoctorRun {
    round: u8,
    checks: Vec<Check>,
    services: Vec<String>,
    sample: Option<String>,
    datacenter: Option<String>,
    authorizations: Vec<Authorization>,
}

fn unfiltered(answer: &Answer) -> bool {
    !answer
        .header("x-consul-results-filtered-by-acls")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

impl Engine {
    fn check(&mut self, c: Check) {
        if let Some(run) = self.doctor.as_mut() {
            run.checks.retain(|old| old.code != c.code);
            run.checks.push(c);
        }
    }

    fn status_of(&self, code: &str) -> Option<CheckStatus> {
        let run = self.doctor.as_ref()?;
        run.checks.iter().find(|c| c.code == code).map(|c| c.status)
    }

    fn probe_consul(&mut self, method: &str, path: String, body: Option<Value>, probe: Probe) {
        let mut query = BTreeMap::new();
        if let Some(dc) = self.doctor.as_ref().and_then(|d| d.datacenter.clone()) {
            query.insert("dc".to_owned(), dc);
        }
        self.push(
            Call::Consul(ConsulCall {
                method: method.into(),
                path,
                query,
                body,
            }),
            Purpose::Probe(probe),
        );
    }

    fn probe_aws(&mut self, service: &str, operation: &str, input: Value, probe: Probe) {
        let secret = match probe {
            Probe::Secret(kind) => Some(kind),
            _ => None,
        };
        self.push(
            Call::Aws {
                call: AwsCall {
                    service: service.into(),
                    operation: operation.into(),
                    input,
                },
                secret,
                sensitive: false,
            },
            Purpose::Probe(probe),
        );
    }

    /// One round of probes; the report once every round is answered.
    pub(super) fn doctor_advance(&mut self) {
        let round = self.doctor.as_ref().map_or(0, |d| d.round);
        if let Some(d) = self.doctor.as_mut() {
            d.round += 1;
        }
        match round {
            0 => self.doctor_credentials(),
            1 => self.doctor_reach(),
            2 => self.doctor_permissions(),
            _ => self.doctor_finish(),
        }
    }

    fn doctor_credentials(&mut self) {
        if let Some(stop) = self.stop.clone() {
            // An invalid configuration: nothing else can be checked.
            let detail = stop
                .failure
                .as_ref()
                .map(|f| {
                    f.errors
                        .iter()
                        .map(|e| match (&e.key, &e.value) {
                            (Some(k), Some(v)) => format!("{k}={v}: {} ({})", e.message, e.hint),
                            (Some(k), None) => format!("{k}: {} ({})", e.message, e.hint),
                            _ => format!("{} ({})", e.message, e.hint),
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .filter(|s| !s.is_empty())
                .unwrap_or(stop.message);
            self.check(error("config", detail));
            if let Some(d) = self.doctor.as_mut() {
                d.round = 3;
            }
            return;
        }
        self.check(ok("config", "the configuration is valid"));
        self.probe_aws("sts", "GetCallerIdentity", json!({}), Probe::Identity);
        for (kind, path, code, variable) in [
            (
                SecretKind::ConsulToken,
                self.config.consul_http_token_path.clone(),
                "ssm.token",
                "CONSUL_HTTP_TOKEN_PATH",
            ),
            (
                SecretKind::ConsulCaCert,
                self.config.consul_cacert_path.clone(),
                "ssm.ca_cert",
                "CONSUL_CACERT_PATH",
            ),
        ] {
            match path {
                Some(name) => self.probe_aws(
                    "ssm",
                    "GetParameter",
                    json!({"Name": name, "WithDecryption": true}),
                    Probe::Secret(kind),
                ),
                None => {
                    let source = match kind {
                        SecretKind::ConsulToken if self.config.consul_http_token_set => {
                            "the token comes from CONSUL_HTTP_TOKEN"
                        }
                        SecretKind::ConsulToken => "no token: Consul's anonymous token is used",
                        SecretKind::ConsulCaCert => "the system's CAs (or CONSUL_CACERT) are used",
                    };
                    self.check(skipped(code, format!("{variable} is not set ({source})")))
                }
            }
        }
        self.probe_aws(
            "tagging",
            "GetResources",
            json!({"ResourceTypeFilters": ["lambda:function"], "ResourcesPerPage": 100}),
            Probe::Inventory,
        );
    }

    fn doctor_reach(&mut self) {
        if let Some(d) = self.doctor.as_mut() {
            d.datacenter = self.config.datacenter.clone();
        }
        self.probe_consul("GET", "/v1/status/leader".into(), None, Probe::Leader);
        let token_unread = self
            .status_of("ssm.token")
            .is_some_and(|s| s != CheckStatus::Ok && s != CheckStatus::Skipped);
        if token_unread {
            self.check(skipped(
                "consul.agent_read",
                "not checked: the token could not be read from Parameter Store",
            ));
        } else if self.config.datacenter.is_none() {
            self.probe_consul("GET", "/v1/agent/self".into(), None, Probe::AgentSelf);
        } else {
            self.check(skipped(
                "consul.agent_read",
                "DATACENTER is set: the sync reads no agent endpoint",
            ));
        }
        match self.doctor.as_ref().and_then(|d| d.sample.clone()) {
            Some(arn) => self.probe_aws(
                "lambda",
                "GetFunction",
                json!({"FunctionName": arn}),
                Probe::Function,
            ),
            None => self.check(skipped(
                "aws.get_function",
                "no function listed to probe lambda:GetFunction with",
            )),
        }
        match self.config.consul_extension_data_prefix.clone() {
            Some(prefix) => {
                let path = prefix.trim_end_matches('/');
                let path = if path.is_empty() { "/" } else { path };
                self.probe_aws(
                    "ssm",
                    "GetParametersByPath",
                    json!({"Path": path, "Recursive": true, "WithDecryption": true, "MaxResults": 1}),
                    Probe::ExtensionRead,
                );
                self.probe_consul(
                    "GET",
                    "/v1/agent/connect/ca/roots".into(),
                    None,
                    Probe::ConnectCa,
                );
                let account = self.account.clone().unwrap_or_else(|| "*".into());
                let mut actions = "ssm:PutParameter, ssm:DeleteParameter".to_owned();
                if self.config.consul_extension_data_kms_key_id.is_some() {
                    actions.push_str(", kms:Encrypt, kms:GenerateDataKey");
                }
                let mut c = skipped(
                    "ssm.extension_data_write",
                    format!("not checked without writing: the sync needs {actions} under {path}/*"),
                );
                c.action = Some(actions);
                c.resource = Some(format!("{}/*", parameter_arn(&self.region, &account, path)));
                self.check(c);
            }
            None => {
                for code in [
                    "ssm.extension_data_read",
                    "ssm.extension_data_write",
                    "consul.connect_ca",
                ] {
                    self.check(skipped(code, "CONSUL_EXTENSION_DATA_PREFIX is not set"));
                }
            }
        }
        if self.config.enterprise {
            self.check(skipped(
                "consul.enterprise",
                "partitions and namespaces are not checked: grant the rules inside each managed partition and namespace (docs/acl-policy.hcl)",
            ));
        }
    }

    fn doctor_permissions(&mut self) {
        let codes = [
            "consul.node_write",
            "consul.service_write",
            "consul.node_read",
            "consul.service_read",
        ];
        let why = if self.status_of("consul.reachable") != Some(CheckStatus::Ok) {
            Some("Consul did not answer GET /v1/status/leader")
        } else if self
            .status_of("ssm.token")
            .is_some_and(|s| s != CheckStatus::Ok && s != CheckStatus::Skipped)
        {
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
        let services = self
            .doctor
            .as_ref()
            .map(|d| d.services.clone())
            .unwrap_or_default();
        let items = authorizations(&self.config, &services);
        let body = authorize_body(&items);
        if let Some(d) = self.doctor.as_mut() {
            d.authorizations = items;
        }
        self.probe_consul(
            "POST",
            "/v1/internal/acl/authorize".into(),
            Some(body),
            Probe::Authorize,
        );
        match encode_segment(&self.config.node_name) {
            Some(node) => self.probe_consul(
                "GET",
                format!("/v1/catalog/node-services/{node}"),
                None,
                Probe::NodeRead,
            ),
            None => self.check(error("consul.node_read", "NODE_NAME is empty")),
        }
        self.probe_consul(
            "GET",
            "/v1/config/service-defaults".into(),
            None,
            Probe::ServiceRead,
        );
    }

    /// Takes the answer to a probe.
    pub(super) fn doctor_answer(
        &mut self,
        probe: Probe,
        outcome: Result<(), (String, bool)>,
        answer: Answer,
    ) {
        let account = self.account.clone().unwrap_or_else(|| "*".into());
        // AWS probes: the answer (ok or a definite error) decides.
        let aws_probe = match &probe {
            Probe::Identity => Some(("aws.identity", "*".to_owned())),
            Probe::Inventory => Some(("aws.list_functions", "*".to_owned())),
            Probe::Function => Some((
                "aws.get_function",
                self.doctor
                    .as_ref()
                    .and_then(|d| d.sample.clone())
                    .unwrap_or_default(),
            )),
            Probe::Secret(SecretKind::ConsulToken) => Some((
                "ssm.token",
                parameter_arn(
                    &self.region,
                    &account,
                    self.config.consul_http_token_path.as_deref().unwrap_or(""),
                ),
            )),
            Probe::Secret(SecretKind::ConsulCaCert) => Some((
                "ssm.ca_cert",
                parameter_arn(
                    &self.region,
                    &account,
                    self.config.consul_cacert_path.as_deref().unwrap_or(""),
                ),
            )),
            Probe::ExtensionRead => Some((
                "ssm.extension_data_read",
                parameter_arn(
                    &self.region,
                    &account,
                    self.config
                        .consul_extension_data_prefix
                        .as_deref()
                        .unwrap_or("")
                        .trim_end_matches('/'),
                ),
            )),
            _ => None,
        };
        if let Some((need, resource)) = aws_probe.and_then(|(code, r)| Some((aws_need(code)?, r))) {
            let mut answer = answer;
            if let (Err((message, unreachable)), None) = (&outcome, &answer.error) {
                answer.error = Some(super::wire::AnswerError {
                    code: if *unreachable {
                        "transport".into()
                    } else {
                        String::new()
                    },
                    message: message.clone(),
                    status: None,
                });
            }
            let c = aws_check(need, &resource, &answer);
            if c.status == CheckStatus::Ok {
                self.on_probe_ok(&probe, &answer);
            }
            self.check(c);
            return;
        }
        let code = match probe {
            Probe::Leader => "consul.reachable",
            Probe::AgentSelf => "consul.agent_read",
            Probe::ConnectCa => "consul.connect_ca",
            Probe::NodeRead => "consul.node_read",
            Probe::ServiceRead => "consul.service_read",
            _ => "consul.service_write",
        };
        if let Err((message, unreachable)) = outcome {
            let message = if unreachable {
                format!(
                    "no answer from Consul at {}: {message}",
                    self.config.consul_http_addr
                )
            } else {
                message
            };
            if let Probe::Authorize = probe {
                for c in ["consul.node_write", "consul.service_write"] {
                    self.check(error(c, message.clone()));
                }
            } else {
                self.check(error(code, message));
            }
            return;
        }
        let status = answer.status.unwrap_or(0);
        if status == 403
            && answer
                .body
                .as_deref()
                .is_some_and(|b| b.contains("ACL not found"))
        {
            // Not a missing rule: Consul does not know the token at all.
            let message = "Consul does not know the token (HTTP 403: ACL not found): check the token at CONSUL_HTTP_TOKEN_PATH (or CONSUL_HTTP_TOKEN)";
            if let Probe::Authorize = probe {
                for c in ["consul.node_write", "consul.service_write"] {
                    self.check(error(c, message));
                }
            } else {
                self.check(error(code, message));
            }
            return;
        }
        let node = self.config.node_name.clone();
        let c = match probe {
            Probe::Leader if status == 200 => ok(code, format!("Consul answers at {}", self.config.consul_http_addr)),
            Probe::AgentSelf if status == 200 => {
                let dc: Value = serde_json::from_str(answer.body.as_deref().unwrap_or("null")).unwrap_or(Value::Null);
                let dc = dc.pointer("/Config/Datacenter").and_then(Value::as_str).map(str::to_owned);
                if let Some(d) = self.doctor.as_mut() {
                    d.datacenter = d.datacenter.clone().or(dc);
                }
                ok(code, "the token has agent read (GET /v1/agent/self, for the datacenter)")
            }
            Probe::AgentSelf if status == 403 => missing_rule(
                code,
                "GET /v1/agent/self was denied: the sync stops with acl_denied; set DATACENTER (then no agent endpoint is read) or add the rule",
                consul_rule("agent", "", "read"),
            ),
            Probe::ConnectCa if status == 200 => {
                let v: Value = serde_json::from_str(answer.body.as_deref().unwrap_or("null")).unwrap_or(Value::Null);
                if v.get("Roots").and_then(Value::as_array).is_some_and(|r| !r.is_empty()) {
                    ok(code, "Consul's Connect CA has roots (extension data)")
                } else {
                    error(code, "Consul's Connect CA has no roots: enable Connect for extension data")
                }
            }
            Probe::NodeRead if status == 200 && unfiltered(&answer) => {
                let absent = answer.body.as_deref().is_some_and(|b| {
                    serde_json::from_str::<Value>(b).is_ok_and(|v| v.get("Node").map_or(true, Value::is_null))
                });
                ok(
                    code,
                    if absent {
                        format!("GET /v1/catalog/node-services/{node} is not filtered (the node is not registered yet: the first sync creates it)")
                    } else {
                        format!("GET /v1/catalog/node-services/{node} is not filtered")
                    },
                )
            }
            Probe::NodeRead if status == 200 => missing_rule(
                code,
                format!("Consul filtered GET /v1/catalog/node-services/{node} (no node read): the sync stops with acl_filtered"),
                consul_rule("node", &node, "read"),
            ),
            Probe::ServiceRead if status == 200 && unfiltered(&answer) => ok(code, "GET /v1/config/service-defaults is not filtered"),
            Probe::ServiceRead if status == 200 => missing_rule(
                code,
                "Consul filtered GET /v1/config/service-defaults (no service read): the sync stops with acl_filtered",
                consul_rule("service", "", "read"),
            ),
            Probe::NodeRead | Probe::ServiceRead if status == 403 => missing_rule(
                code,
                format!("the read was denied ({}): the sync stops with acl_denied", status_message(&answer)),
                if matches!(probe, Probe::NodeRead) { consul_rule("node", &node, "read") } else { consul_rule("service", "", "read") },
            ),
            Probe::Authorize => {
                let items = self.doctor.as_ref().map(|d| d.authorizations.clone()).unwrap_or_default();
                let checks = authorize_checks(&self.config, &items, &answer).unwrap_or_else(|| {
                    unverifiable_writes(
                        &self.config,
                        &format!("POST /v1/internal/acl/authorize answered {}", status_message(&answer)),
                    )
                });
                for c in checks {
                    self.check(c);
                }
                return;
            }
            _ => error(code, status_message(&answer)),
        };
        self.check(c);
    }

    fn on_probe_ok(&mut self, probe: &Probe, answer: &Answer) {
        match probe {
            Probe::Identity => {
                let account = answer
                    .ok
                    .as_ref()
                    .and_then(|v| v.get("Account"))
                    .and_then(Value::as_str);
                if self.account.is_none() {
                    self.account = account.map(str::to_owned);
                }
            }
            Probe::Inventory => {
                let Ok(page) = serde_json::from_value::<GetResourcesPage>(
                    answer.ok.clone().unwrap_or(Value::Null),
                ) else {
                    return;
                };
                let functions = functions_from_get_resources(&page).functions;
                let mut services = Vec::new();
                let mut sample = None;
                for f in &functions {
                    let report = evaluate_function(f, &self.config);
                    if report.status == FunctionStatus::Managed {
                        sample.get_or_insert_with(|| f.arn.clone());
                        services.extend(report.services.into_iter().map(|s| s.name));
                    }
                }
                if let Some(d) = self.doctor.as_mut() {
                    d.sample = sample.or_else(|| functions.first().map(|f| f.arn.clone()));
                    d.services = services;
                }
            }
            _ => {}
        }
    }

    fn doctor_finish(&mut self) {
        let mut checks = self
            .doctor
            .as_mut()
            .map(|d| std::mem::take(&mut d.checks))
            .unwrap_or_default();
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
        let unreachable = report
            .checks
            .iter()
            .any(|c| c.status == CheckStatus::Error && c.message.starts_with("no answer"));
        let verdict = if report.ok {
            Verdict::Ok
        } else if has("config", CheckStatus::Error) {
            Verdict::InvalidConfig
        } else if unreachable && !has("", CheckStatus::Missing) {
            Verdict::Unreachable
        } else {
            Verdict::Failed
        };
        let message = format!("doctor: {}", report.counts());
        let duration_ms = self.now.saturating_sub(self.started.unwrap_or(self.now));
        self.log(
            if report.ok {
                LogLevel::Info
            } else {
                LogLevel::Warn
            },
            "doctor finished",
            &[
                ("verdict", Value::from(verdict.as_str())),
                ("message", Value::from(message.clone())),
            ],
        );
        let mut result = SyncResult {
            ok: report.ok,
            verdict,
            exit_code: verdict.exit_code(),
            message,
            dry_run: true,
            trigger: self.trigger.clone(),
            summary: Summary::default(),
            plan: None,
            outcomes: Vec::new(),
            errors: Vec::new(),
            failures: Vec::new(),
            operations: OpCounts::default(),
            inventory: InventoryReport::default(),
            requests: self.counts.clone(),
            partial: false,
            duration_ms,
            failure: None,
            basis: None,
            metrics: Value::Null,
            doctor: Some(report),
        };
        result.metrics = metrics_document(&result, &self.config.name);
        self.result = Some(result);
        self.phase = Phase::Done;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::wire::WireRequest;
    use crate::engine::Start;

    /// Answers like a Consul whose token has upstream's documented policy, and moto.
    fn answer(r: &WireRequest) -> Answer {
        let mut a = Answer {
            id: r.id,
            ..Answer::default()
        };
        if let Some(c) = &r.consul {
            let (status, body) = match c.path.as_str() {
                "/v1/status/leader" => (200, "\"127.0.0.1:8300\"".to_owned()),
                "/v1/agent/self" => (403, "Permission denied".to_owned()),
                "/v1/internal/acl/authorize" => {
                    let items = c
                        .body
                        .as_ref()
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let allowed: Vec<Value> = items
                        .iter()
                        .map(|i| json!({"Allow": i["Resource"] == "service"}))
                        .collect();
                    (200, Value::Array(allowed).to_string())
                }
                _ => (200, "[]".to_owned()),
            };
            a.status = Some(status);
            a.body = Some(body);
            if c.method == "PUT" || c.method == "DELETE" {
                panic!("the doctor wrote: {c:?}");
            }
        } else if let Some(call) = &r.aws {
            a.ok = Some(match call.operation.as_str() {
                "GetCallerIdentity" => json!({"Account": "123456789012"}),
                "GetResources" => json!({"ResourceTagMappingList": [{
                    "ResourceARN": "arn:aws:lambda:us-east-1:123456789012:function:orders",
                    "Tags": [{"Key": "serverless.consul.hashicorp.com/v1alpha1/lambda/enabled", "Value": "true"}]
                }]}),
                _ => json!({"Parameter": {"Value": ""}}),
            });
        }
        a
    }

    #[test]
    fn upstream_policy_lacks_agent_read_and_node_write() {
        let start: Start = serde_json::from_value(json!({
            "region": "us-east-1",
            "doctor": true,
            "env": {"CONSUL_HTTP_TOKEN_PATH": "/consul/token"}
        }))
        .unwrap();
        let mut e = Engine::new(start);
        let mut now = 0;
        let done = loop {
            now += 1;
            let step = e.next(now, None);
            if let Some(done) = step.done {
                break done;
            }
            let answers = step.send.unwrap_or_default().iter().map(answer).collect();
            e.feed(answers).unwrap();
        };
        let report = done.doctor.unwrap();
        let status = |code: &str| {
            report
                .checks
                .iter()
                .find(|c| c.code == code)
                .map(|c| c.status)
        };
        assert_eq!(status("consul.agent_read"), Some(CheckStatus::Missing));
        assert_eq!(status("consul.node_write"), Some(CheckStatus::Missing));
        assert_eq!(status("consul.service_write"), Some(CheckStatus::Ok));
        assert_eq!(status("ssm.token"), Some(CheckStatus::Ok));
        assert_eq!(status("aws.get_function"), Some(CheckStatus::Ok));
        assert_eq!(
            report.consul_rules,
            vec![
                "agent_prefix \"\" { policy = \"read\" }",
                "node \"lambdas\" { policy = \"write\" }"
            ]
        );
        assert_eq!(done.verdict, Verdict::Failed);
        assert_eq!(done.exit_code, 1);
        assert_eq!(done.requests.consul.writes, 0);
    }
}
