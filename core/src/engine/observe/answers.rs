//! The observing phase reads its answers: each reply into the observation, each
//! failure into a stop, a warning or an incomplete inventory.

use super::{Observing, Read};
use crate::aws::{
    function_from_list_tags, functions_from_get_resources, GetResourcesPage, ListTagsOutput,
};
use crate::config::LogLevel;
use crate::consul::{CaRoots, Leaf, NodeServices, ServiceDefaults, ServiceKey, SsmParameter};
use crate::engine::io::{parse_aws, parse_body, Io};
use crate::engine::outcome::Verdict;
use crate::engine::retry::{aws_error_text, status_text, CallError, Reply};
use crate::engine::wire::HttpReply;
use crate::engine::{Run, Stop};
use crate::error::{Code, Diagnostic};
use crate::lower::SecretKind;
use crate::plan::FailedFunction;
use serde_json::Value;

/// A listing longer than this many pages is taken as a pagination loop.
const MAX_PAGES: u32 = 10_000;

/// The stop for a request (to Consul when `consul`) that got no usable answer.
pub(super) fn failed_stop(what: &str, consul: bool, error: &CallError) -> Stop {
    let (verdict, code, hint) = match error {
        CallError::Unreachable(_) if consul => (
            Verdict::Unreachable,
            Code::ConsulUnreachable,
            "check CONSUL_HTTP_ADDR, that the agent is running and reachable from the registrator (VPC, security groups), and its TLS settings",
        ),
        CallError::Unreachable(_) => (
            Verdict::Unreachable,
            Code::AwsUnreachable,
            "check the registrator's network path to AWS (a VPC needs NAT or VPC endpoints for the APIs it calls)",
        ),
        CallError::Setup(_) => (
            Verdict::Setup,
            Code::SetupFailed,
            "give the registrator AWS credentials and a region (AWS_REGION)",
        ),
        CallError::Http { .. } => (
            Verdict::Failed,
            Code::ConsulError,
            "Consul answered with an error: check the agent's health (consul members, consul operator raft list-peers); the next sync tries again",
        ),
        CallError::TooLarge(_) => (
            Verdict::Failed,
            Code::AnswerTooLarge,
            "the answer is larger than the registrator reads for it (docs/engine.md \"Bounds\"); check what Consul holds there (consul catalog services -node NODE_NAME)",
        ),
        CallError::Aws(_) | CallError::Malformed(_) => (
            Verdict::Failed,
            Code::AwsError,
            "the call failed after its retries; the next sync tries again",
        ),
    };
    Stop::new(
        verdict,
        Diagnostic::new(code, format!("{what}: {error}"), hint).key(what.to_owned()),
    )
}

/// The rule a denied read needs, and its hint.
pub(super) fn denied(what: &str, reply: &HttpReply, rule: &str, hint: String) -> Stop {
    Stop::new(
        Verdict::Failed,
        Diagnostic::new(
            Code::AclDenied,
            format!(
                "{what} was denied: {}",
                status_text(reply.status, &reply.body)
            ),
            hint,
        )
        .key(rule.to_owned()),
    )
}

impl Observing {
    /// A reply: read it into the observation. `Err`: the reply cannot be read.
    pub(super) fn on_reply(
        &mut self,
        io: &mut Io,
        run: &mut Run,
        purpose: Read,
        reply: &Reply,
    ) -> Result<(), String> {
        match (purpose, reply) {
            (Read::Account, r) => self.on_account(io, run, r),
            (Read::Secret(kind), r) => {
                self.on_secret(io, kind, r);
                Ok(())
            }
            (Read::TaggingPage, r) => self.on_tagging_page(io, r),
            (Read::Function { arn, confirm }, r) => self.on_function(io, arn, confirm, r),
            (Read::ParametersPage, r) => self.on_parameters(io, run, r),
            (Read::Aliases(function), r) => self.on_aliases(io, run, function, r),
            (purpose, Reply::Http(h)) => self.on_consul(io, run, purpose, h),
            (_, _) => Err("an answer of the wrong kind".into()),
        }
    }

    fn on_consul(
        &mut self,
        io: &mut Io,
        run: &mut Run,
        purpose: Read,
        h: &HttpReply,
    ) -> Result<(), String> {
        match purpose {
            Read::AgentSelf => self.on_agent_self(io, h),
            Read::Datacenters => {
                if let Some(body) = self.found(io, "GET /v1/catalog/datacenters", h) {
                    let dcs: Option<Vec<String>> = parse_body(body)?;
                    self.obs.all_datacenters = dcs.unwrap_or_default();
                    if run.config.datacenter.is_none() {
                        self.obs.datacenters = self.obs.all_datacenters.clone();
                    }
                }
                Ok(())
            }
            Read::NodeServices(i) => self.on_node_services(io, run, i, h),
            Read::ServiceDefaults(i) => self.on_service_defaults(io, i, h),
            Read::Roots => self.on_roots(io, h),
            Read::Leaf(key) => self.on_leaf(io, run, key, h),
            Read::MeshEntry(i) => self.on_mesh_entry(io, i, h),
            Read::NamesList(scope) => self.on_names_list(io, scope, h),
            Read::Instances(scope, name) => self.on_instances(io, (scope, name), h),
            Read::PeeringAllowed => self.on_peering_allowed(io, h),
            Read::Peerings => self.on_peerings(io, h),
            Read::Imported(i) => self.on_imported(io, i, h),
            Read::PeerSni(i) => self.on_peer_sni(io, i, h),
            _ => Err("an HTTP answer for an AWS call".into()),
        }
    }

    /// The body of a 200; `None` for a 404; any other status stops the sync.
    pub(super) fn found<'h>(
        &mut self,
        io: &mut Io,
        what: &str,
        h: &'h HttpReply,
    ) -> Option<&'h str> {
        match h.status {
            200 => Some(&h.body),
            404 => None,
            _ => {
                let error = CallError::Http {
                    status: h.status,
                    body: h.body.clone(),
                };
                self.stop(io, failed_stop(what, true, &error));
                None
            }
        }
    }

    /// Whether Consul filtered the answer: then the sync stops, naming the rule.
    pub(super) fn filtered(
        &mut self,
        io: &mut Io,
        what: &str,
        h: &HttpReply,
        rule: String,
    ) -> bool {
        if !h.filtered {
            return false;
        }
        let d = Diagnostic::new(
            Code::AclFiltered,
            format!("{what}: Consul filtered the answer because the token may not read all of it; nothing is changed"),
            format!("add {rule} to the registrator token's policy"),
        )
        .key(what.to_owned());
        self.stop(io, Stop::new(Verdict::Failed, d));
        true
    }

    fn on_agent_self(&mut self, io: &mut Io, h: &HttpReply) -> Result<(), String> {
        if h.status == 403 {
            let hint = "set DATACENTER (then no agent endpoint is read), or add agent_prefix \"\" { policy = \"read\" } to the token's policy".to_owned();
            self.stop(io, denied("GET /v1/agent/self", h, "agent:read", hint));
            return Ok(());
        }
        let Some(body) = self.found(io, "GET /v1/agent/self", h) else {
            return Ok(());
        };
        let v: Value = parse_body(body)?;
        // Without it the services the functions want would be planned for an
        // unnamed datacenter while the observed ones are in the named one: the
        // same services deregistered and registered again (found by fuzzing).
        let dc = v
            .pointer("/Config/Datacenter")
            .and_then(Value::as_str)
            .filter(|dc| !dc.is_empty())
            .ok_or("the answer names no datacenter (Config.Datacenter)")?;
        self.obs.local_dc = Some(dc.to_owned());
        Ok(())
    }

    fn on_node_services(
        &mut self,
        io: &mut Io,
        run: &Run,
        i: usize,
        h: &HttpReply,
    ) -> Result<(), String> {
        let node = &run.config.node_name;
        let what = "GET /v1/catalog/node-services";
        if h.status == 403 {
            let hint = format!("add node \"{node}\" {{ policy = \"write\" }} to the token's policy (docs/acl-policy.hcl)");
            self.stop(io, denied(what, h, "node:read", hint));
            return Ok(());
        }
        let rule = format!("node \"{node}\" {{ policy = \"read\" }} and service_prefix \"\" {{ policy = \"read\" }}");
        if self.filtered(io, what, h, rule) {
            return Ok(());
        }
        if let Some(body) = self.found(io, what, h) {
            let services: Option<NodeServices> = parse_body(body)?;
            if let Some(scope) = self.obs.scopes.get_mut(i) {
                scope.node_services = services;
            }
        }
        Ok(())
    }

    fn on_service_defaults(&mut self, io: &mut Io, i: usize, h: &HttpReply) -> Result<(), String> {
        let what = "GET /v1/config/service-defaults";
        if h.status == 403 {
            let hint = "add service_prefix \"\" { policy = \"write\" } to the token's policy (docs/acl-policy.hcl)".to_owned();
            self.stop(io, denied(what, h, "service:read", hint));
            return Ok(());
        }
        if self.filtered(
            io,
            what,
            h,
            "service_prefix \"\" { policy = \"read\" }".into(),
        ) {
            return Ok(());
        }
        let entries: Option<Vec<ServiceDefaults>> = match self.found(io, what, h) {
            Some(body) => parse_body(body)?,
            None => None,
        };
        if let Some(scope) = self.obs.scopes.get_mut(i) {
            scope.service_defaults = Some(entries.unwrap_or_default());
        }
        Ok(())
    }

    fn on_mesh_entry(&mut self, io: &mut Io, i: usize, h: &HttpReply) -> Result<(), String> {
        let kind = self
            .obs
            .mesh
            .get(i)
            .map(|m| m.kind.consul_kind())
            .unwrap_or_default();
        let what = format!("GET /v1/config/{kind}");
        if h.status == 403 {
            let hint = "mesh wiring reads and writes mesh config entries: add mesh = \"write\" (and service_prefix \"\" { policy = \"read\" }) to the token's policy, or turn mesh wiring off".to_owned();
            self.stop(io, denied(&what, h, "mesh:read", hint));
            return Ok(());
        }
        let entry: Option<Value> = match self.found(io, &what, h) {
            Some(body) => parse_body(body)?,
            None => None,
        };
        if let Some(m) = self.obs.mesh.get_mut(i) {
            m.entry = entry;
        }
        Ok(())
    }

    fn on_roots(&mut self, io: &mut Io, h: &HttpReply) -> Result<(), String> {
        if h.status != 200 {
            let error = CallError::Http {
                status: h.status,
                body: h.body.clone(),
            };
            self.extension_unobserved(io, "GET /v1/agent/connect/ca/roots", &error);
            return Ok(());
        }
        self.obs.roots = Some(parse_body::<CaRoots>(&h.body)?);
        Ok(())
    }

    fn on_leaf(
        &mut self,
        io: &mut Io,
        run: &Run,
        key: ServiceKey,
        h: &HttpReply,
    ) -> Result<(), String> {
        if h.status != 200 {
            io.log(
                LogLevel::Warn,
                "leaf certificate unavailable",
                [
                    ("service", Some(key.name.clone().into())),
                    ("error", Some(status_text(h.status, &h.body).into())),
                ],
            );
            return Ok(());
        }
        let mut leaf: Leaf = parse_body(&h.body)?;
        // The leaf belongs to the scope it was asked for.
        if run.config.enterprise {
            leaf.namespace = Some(key.namespace.clone().unwrap_or_else(|| "default".into()));
            leaf.partition = Some(key.partition.clone().unwrap_or_else(|| "default".into()));
        }
        self.obs.leaves.push(leaf);
        Ok(())
    }

    fn on_account(&mut self, io: &mut Io, run: &mut Run, reply: &Reply) -> Result<(), String> {
        if let Reply::AwsError(e) = reply {
            let error = CallError::Aws(e.clone());
            self.stop(io, failed_stop("sts GetCallerIdentity", false, &error));
            return Ok(());
        }
        #[derive(serde::Deserialize)]
        struct Identity {
            #[serde(rename = "Account")]
            account: Option<String>,
        }
        let id: Identity = parse_aws(reply)?;
        let account = id.account.ok_or("no Account in GetCallerIdentity")?;
        run.account = Some(account);
        if let Some(function) = run.unresolved_function.take() {
            match run.function_trigger(&function) {
                Ok(trigger) => run.trigger = trigger,
                Err(failure) => self.stop(
                    io,
                    Stop {
                        verdict: Verdict::Failed,
                        failure,
                    },
                ),
            }
        }
        Ok(())
    }

    fn on_secret(&mut self, io: &mut Io, kind: SecretKind, reply: &Reply) {
        if let Reply::AwsError(e) = reply {
            self.stop(io, secret_stop(kind, &CallError::Aws(e.clone())));
        }
    }

    fn on_tagging_page(&mut self, io: &mut Io, reply: &Reply) -> Result<(), String> {
        if let Reply::AwsError(e) = reply {
            self.inventory_incomplete(io, &CallError::Aws(e.clone()));
            return Ok(());
        }
        let page: GetResourcesPage = parse_aws(reply)?;
        self.obs.pages += 1;
        let parsed = functions_from_get_resources(&page);
        self.obs.functions.extend(parsed.functions);
        if let Some(token) = parsed.next_token.filter(|t| !t.is_empty()) {
            if self.obs.pages >= MAX_PAGES || !self.obs.tokens.insert(token.clone()) {
                self.obs.incomplete =
                    Some("tagging GetResources: the pagination token repeats".into());
                io.log(
                    LogLevel::Error,
                    "the Lambda inventory is incomplete: the pagination token repeats",
                    [],
                );
                return Ok(());
            }
            self.tagging_page(Some(token));
        }
        Ok(())
    }

    fn on_function(
        &mut self,
        io: &mut Io,
        arn: String,
        confirm: bool,
        reply: &Reply,
    ) -> Result<(), String> {
        if let Reply::AwsError(e) = reply {
            if e.code == "ResourceNotFoundException" {
                self.obs.confirmed_absent.push(arn);
            } else {
                self.function_failed(io, arn, &aws_error_text(e));
            }
            return Ok(());
        }
        let out: ListTagsOutput = parse_aws(reply)?;
        let function = function_from_list_tags(&arn, &out).map_err(|f| f.message)?;
        if confirm {
            io.log(
                LogLevel::Info,
                "function missing from the listing exists (listing lag or no tags)",
                [("function", Some(arn.into()))],
            );
        }
        self.obs.functions.push(function);
        Ok(())
    }

    fn on_parameters(&mut self, io: &mut Io, run: &Run, reply: &Reply) -> Result<(), String> {
        if let Reply::AwsError(e) = reply {
            self.extension_unobserved(io, "ssm GetParametersByPath", &CallError::Aws(e.clone()));
            return Ok(());
        }
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(rename = "Parameters", default)]
            parameters: Vec<SsmParameter>,
            #[serde(rename = "NextToken", default)]
            next_token: Option<String>,
        }
        let page: Page = parse_aws(reply)?;
        self.obs.parameters.extend(page.parameters);
        if let Some(token) = page.next_token.filter(|t| !t.is_empty()) {
            if self.obs.parameter_tokens.len() as u32 >= MAX_PAGES
                || !self.obs.parameter_tokens.insert(token.clone())
            {
                let error = CallError::Malformed("the pagination token repeats".into());
                self.extension_unobserved(io, "ssm GetParametersByPath", &error);
                return Ok(());
            }
            if let Some(prefix) = run.config.consul_extension_data_prefix.clone() {
                self.parameters_page(&prefix, Some(token));
            }
        }
        Ok(())
    }

    /// A request that ended without a usable answer.
    pub(super) fn on_error(
        &mut self,
        io: &mut Io,
        purpose: Read,
        (what, consul): (&str, bool),
        error: CallError,
    ) {
        if let CallError::Setup(_) = error {
            self.stop(io, failed_stop(what, consul, &error));
            return;
        }
        match purpose {
            Read::TaggingPage => self.inventory_incomplete(io, &error),
            Read::Function { arn, .. } => self.function_failed(io, arn, &error.to_string()),
            Read::Aliases(function) => self.aliases_failed(io, function, &error.to_string()),
            Read::Roots | Read::ParametersPage => self.extension_unobserved(io, what, &error),
            Read::PeeringAllowed | Read::Peerings | Read::Imported(_) | Read::PeerSni(_) => io.log(
                LogLevel::Warn,
                "cluster peers not read; the extension data names none",
                [
                    ("request", Some(what.into())),
                    ("error", Some(error.to_string().into())),
                ],
            ),
            Read::Leaf(key) => io.log(
                LogLevel::Warn,
                "leaf certificate unavailable",
                [
                    ("service", Some(key.name.into())),
                    ("error", Some(error.to_string().into())),
                ],
            ),
            Read::Secret(kind) => self.stop(io, secret_stop(kind, &error)),
            _ => self.stop(io, failed_stop(what, consul, &error)),
        }
    }

    fn inventory_incomplete(&mut self, io: &mut Io, error: &CallError) {
        let message = error.to_string();
        self.obs.incomplete = Some(format!(
            "tagging GetResources (page {}): {message}",
            self.obs.pages + 1
        ));
        io.log(
            LogLevel::Error,
            "the Lambda inventory is incomplete; no deregistration that could concern an unlisted function will run",
            [("error", Some(message.into())), ("pages", Some(self.obs.pages.into()))],
        );
        if error.unreachable() && self.obs.pages == 0 {
            self.stop(io, failed_stop("tagging GetResources", false, error));
        }
    }

    pub(super) fn function_failed(&mut self, io: &mut Io, arn: String, message: &str) {
        io.log(
            LogLevel::Warn,
            "could not load a function; its services are kept as they are",
            [
                ("function", Some(arn.as_str().into())),
                ("error", Some(message.into())),
            ],
        );
        self.obs.failed.push(FailedFunction {
            arn,
            error: message.to_owned(),
        });
    }

    fn extension_unobserved(&mut self, io: &mut Io, what: &str, error: &CallError) {
        io.log(
            LogLevel::Warn,
            "extension data could not be observed; none is written this time",
            [
                ("request", Some(what.into())),
                ("error", Some(error.to_string().into())),
            ],
        );
        self.obs.extension_failed = true;
    }
}

/// The stop for a credential parameter that could not be read.
fn secret_stop(kind: SecretKind, error: &CallError) -> Stop {
    let variable = match kind {
        SecretKind::ConsulToken => "CONSUL_HTTP_TOKEN_PATH",
        SecretKind::ConsulCaCert => "CONSUL_CACERT_PATH",
    };
    let (verdict, code) = if error.unreachable() {
        (Verdict::Unreachable, Code::AwsUnreachable)
    } else {
        (Verdict::Failed, Code::AwsError)
    };
    let hint = format!("check that the parameter named by {variable} exists and that the registrator's role may ssm:GetParameter it (and kms:Decrypt its key)");
    Stop::new(
        verdict,
        Diagnostic::new(
            code,
            format!("cannot read {variable} from Parameter Store: {error}"),
            hint,
        )
        .key(variable),
    )
}
