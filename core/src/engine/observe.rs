//! Observation: the account and Consul credentials, Consul's topology and state,
//! the Lambda inventory, extension data; then planning, with confirmations and
//! leaf reads each followed by a re-plan.

use super::outcome::{InventoryReport, Verdict};
use super::wire::{encode_segment, Answer, AwsCall, SecretKind};
use super::{Call, Engine, Pending, Purpose};
use crate::aws::{
    function_from_get_function, functions_from_get_resources, GetFunctionOutput, GetResourcesPage,
};
use crate::config::LogLevel;
use crate::consul::{CaRoots, Leaf, NodeServices, ServiceDefaults, ServiceKey, SsmParameter};
use crate::error::{Code, Diagnostic};
use crate::event::Trigger;
use crate::mesh::MeshEntryKind;
use crate::plan::{
    plan, ConsulScope, ConsulState, ExtensionDataState, FailedFunction, Inventory,
    ObservedMeshEntry, PlanInput,
};
use crate::tags::LambdaFunction;
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

/// A listing longer than this many pages is taken as a pagination loop.
const MAX_PAGES: u32 = 10_000;

/// What has been observed so far.
#[derive(Debug, Default)]
pub(crate) struct Observation {
    pub(crate) local_dc: Option<String>,
    datacenters: Vec<String>,
    pub(crate) scopes: Vec<ConsulScope>,
    functions: Vec<LambdaFunction>,
    incomplete: Option<String>,
    failed: Vec<FailedFunction>,
    confirmed_absent: Vec<String>,
    pages: u32,
    tokens: BTreeSet<String>,
    pub(crate) roots: Option<CaRoots>,
    parameters: Vec<SsmParameter>,
    parameter_tokens: BTreeSet<String>,
    extension_failed: bool,
    pub(crate) leaves: Vec<Leaf>,
    confirmed: bool,
    leaves_read: bool,
    /// The mesh config entries (docs/mesh.md), when mesh wiring is on.
    pub(crate) mesh: Vec<ObservedMeshEntry>,
}

impl Observation {
    pub(crate) fn functions(&self) -> &[LambdaFunction] {
        &self.functions
    }

    pub(crate) fn report(&self) -> InventoryReport {
        InventoryReport {
            complete: self.incomplete.is_none(),
            functions: self.functions.len(),
            pages: self.pages,
            error: self.incomplete.clone(),
            failed: self.failed.iter().map(|f| f.arn.clone()).collect(),
        }
    }
}

fn parse_body<T: DeserializeOwned>(answer: &Answer) -> Result<T, String> {
    let body = answer.body.as_deref().unwrap_or("null");
    serde_json::from_str(body).map_err(|e| format!("cannot read the answer: {e}"))
}

fn parse_ok<T: DeserializeOwned>(answer: &Answer) -> Result<T, String> {
    serde_json::from_value(answer.ok.clone().unwrap_or(Value::Null))
        .map_err(|e| format!("cannot read the answer: {e}"))
}

fn scope_query(dc: &str, partition: Option<&str>, enterprise: bool) -> BTreeMap<String, String> {
    let mut q = BTreeMap::new();
    q.insert("dc".to_owned(), dc.to_owned());
    if enterprise {
        q.insert("ns".to_owned(), "*".to_owned());
        if let Some(p) = partition {
            q.insert("partition".to_owned(), p.to_owned());
        }
    }
    q
}

/// Whether Consul filtered the answer because the token may not read all of it.
fn filtered(answer: &Answer) -> bool {
    answer
        .header("x-consul-results-filtered-by-acls")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
}

impl Engine {
    fn extension_enabled(&self) -> bool {
        self.config.consul_extension_data_prefix.is_some() && !self.obs.extension_failed
    }

    pub(super) fn start_setup(&mut self) {
        let (function, event_name) = match &self.trigger {
            Trigger::Function {
                arn, event_name, ..
            } => (Value::from(arn.clone()), event_name.clone()),
            _ => (Value::Null, None),
        };
        self.log(
            LogLevel::Info,
            "sync started",
            &[
                ("trigger", Value::from(trigger_kind(&self.trigger))),
                ("function", function),
                ("eventName", event_name.map_or(Value::Null, Value::from)),
                ("dryRun", Value::from(self.dry_run)),
                ("region", Value::from(self.region.clone())),
            ],
        );
        // Configuration warnings (e.g. TLS verification off) are repeated in every
        // plan's warnings, and logged with them.
        if self.account.is_none() {
            self.aws("sts", "GetCallerIdentity", json!({}), Purpose::Account);
        }
        for (kind, path) in [
            (
                SecretKind::ConsulToken,
                self.config.consul_http_token_path.clone(),
            ),
            (
                SecretKind::ConsulCaCert,
                self.config.consul_cacert_path.clone(),
            ),
        ] {
            if let Some(name) = path {
                self.push(
                    Call::Aws {
                        call: AwsCall {
                            service: "ssm".into(),
                            operation: "GetParameter".into(),
                            input: json!({"Name": name, "WithDecryption": true}),
                        },
                        secret: Some(kind),
                        sensitive: false,
                    },
                    Purpose::Secret(kind),
                );
            }
        }
    }

    pub(super) fn start_topology(&mut self) {
        // With DATACENTER set nothing needs agent:read (upstream's documented policy).
        if let Some(dc) = self.config.datacenter.clone() {
            self.obs.datacenters = vec![dc];
            return;
        }
        self.consul_get("/v1/agent/self".into(), BTreeMap::new(), Purpose::AgentSelf);
        self.consul_get(
            "/v1/catalog/datacenters".into(),
            BTreeMap::new(),
            Purpose::Datacenters,
        );
    }

    pub(super) fn start_scopes(&mut self) {
        // Without DATACENTER the agent names it. Not known (agent/self answered
        // 404, or a body without Config.Datacenter): stop, or the wanted services
        // would be planned for an unnamed datacenter while the registered ones
        // are observed in the named one, and deregistered (found by fuzzing).
        if self.config.datacenter.is_none() && self.obs.local_dc.is_none() {
            let d = Diagnostic::new(
                Code::InvalidResponse,
                "GET /v1/agent/self did not name the agent's datacenter; nothing is changed",
                "check that CONSUL_HTTP_ADDR points at a Consul agent, or set DATACENTER",
            )
            .key("GET /v1/agent/self".to_owned());
            self.stop_with(Verdict::Failed, d.message.clone(), Some(d.into()));
            return;
        }
        if self.obs.datacenters.is_empty() {
            if let Some(dc) = self.obs.local_dc.clone() {
                self.obs.datacenters.push(dc);
            }
        }
        let enterprise = self.config.enterprise;
        let partitions: Vec<Option<String>> = if enterprise {
            self.config.partitions.iter().cloned().map(Some).collect()
        } else {
            vec![None]
        };
        let Some(node) = encode_segment(&self.config.node_name) else {
            self.stop_with(
                Verdict::InvalidConfig,
                "NODE_NAME cannot be empty".into(),
                None,
            );
            return;
        };
        for dc in self.obs.datacenters.clone() {
            for partition in &partitions {
                let i = self.obs.scopes.len();
                self.obs.scopes.push(ConsulScope {
                    datacenter: Some(dc.clone()),
                    partition: partition.clone(),
                    node_services: None,
                    service_defaults: None,
                });
                let q = scope_query(&dc, partition.as_deref(), enterprise);
                self.consul_get(
                    format!("/v1/catalog/node-services/{node}"),
                    q.clone(),
                    Purpose::NodeServices(i),
                );
                self.consul_get(
                    "/v1/config/service-defaults".into(),
                    q,
                    Purpose::ServiceDefaults(i),
                );
            }
        }
        match self.trigger.clone() {
            // Pruning takes every function as gone: no inventory.
            _ if self.prune => {}
            Trigger::Function { arn, .. } => self.get_function(arn, false),
            _ => self.tagging_page(None),
        }
        self.start_mesh(&partitions);
        if let Some(prefix) = self.config.consul_extension_data_prefix.clone() {
            self.consul_get(
                "/v1/agent/connect/ca/roots".into(),
                BTreeMap::new(),
                Purpose::Roots,
            );
            self.parameters_page(&prefix, None);
        }
    }

    /// Reads the mesh entries kept in step: per partition, the terminating gateway's
    /// and the exported services' (named after the partition).
    fn start_mesh(&mut self, partitions: &[Option<String>]) {
        let exports = !self.config.exported_services_peers.is_empty()
            || !self.config.exported_services_partitions.is_empty();
        for partition in partitions {
            let mut kinds = Vec::new();
            if let Some(name) = self.config.terminating_gateway_name.clone() {
                kinds.push((MeshEntryKind::TerminatingGateway, name));
            }
            if exports {
                let name = partition.clone().unwrap_or_else(|| "default".into());
                kinds.push((MeshEntryKind::ExportedServices, name));
            }
            for (kind, name) in kinds {
                let i = self.obs.mesh.len();
                self.obs.mesh.push(ObservedMeshEntry {
                    kind,
                    partition: partition.clone(),
                    entry: None,
                });
                let (path, query) = self.mesh_entry_path(kind, &name, partition.as_deref());
                self.consul_get(path, query, Purpose::MeshEntry(i));
            }
        }
    }

    /// `GET /v1/config/:kind/:name` (with the partition, Enterprise).
    pub(super) fn mesh_entry_path(
        &self,
        kind: MeshEntryKind,
        name: &str,
        partition: Option<&str>,
    ) -> (String, BTreeMap<String, String>) {
        let mut q = BTreeMap::new();
        if let (true, Some(p)) = (self.config.enterprise, partition) {
            q.insert("partition".to_owned(), p.to_owned());
        }
        let name = encode_segment(name).unwrap_or_default();
        (format!("/v1/config/{}/{name}", kind.consul_kind()), q)
    }

    fn on_mesh_entry(&mut self, i: usize, answer: &Answer) -> Result<(), String> {
        let what = self
            .obs
            .mesh
            .get(i)
            .map(|m| m.kind.consul_kind())
            .unwrap_or_default();
        if answer.status == Some(403) {
            let d = Diagnostic::new(
                Code::AclDenied,
                format!(
                    "GET /v1/config/{what} was denied: {}",
                    super::wire::status_message(answer)
                ),
                "mesh wiring reads and writes mesh config entries: add mesh = \"write\" (and service_prefix \"\" { policy = \"read\" }) to the token's policy, or turn mesh wiring off",
            )
            .key("mesh:read");
            self.stop_with(Verdict::Failed, d.message.clone(), Some(d.into()));
            return Ok(());
        }
        let found = self.consul_status(answer, &format!("/v1/config/{what}"))?;
        let entry: Option<Value> = if found { parse_body(answer)? } else { None };
        if let Some(m) = self.obs.mesh.get_mut(i) {
            m.entry = entry;
        }
        Ok(())
    }

    fn tagging_page(&mut self, token: Option<String>) {
        let mut input =
            json!({"ResourceTypeFilters": ["lambda:function"], "ResourcesPerPage": 100});
        if let (Some(t), Some(obj)) = (token, input.as_object_mut()) {
            obj.insert("PaginationToken".into(), Value::from(t));
        }
        self.aws("tagging", "GetResources", input, Purpose::TaggingPage);
    }

    fn parameters_page(&mut self, prefix: &str, token: Option<String>) {
        let path = prefix.trim_end_matches('/');
        let mut input = json!({
            "Path": if path.is_empty() { "/" } else { path },
            "Recursive": true, "WithDecryption": true, "MaxResults": 10
        });
        if let (Some(t), Some(obj)) = (token, input.as_object_mut()) {
            obj.insert("NextToken".into(), Value::from(t));
        }
        self.aws("ssm", "GetParametersByPath", input, Purpose::ParametersPage);
    }

    fn get_function(&mut self, arn: String, confirm: bool) {
        self.aws(
            "lambda",
            "GetFunction",
            json!({"FunctionName": arn}),
            Purpose::Function { arn, confirm },
        );
    }

    /// Takes the answer to an observation.
    pub(super) fn observe_answer(
        &mut self,
        purpose: Purpose,
        p: &Pending,
        outcome: Result<(), (String, bool)>,
        answer: Answer,
    ) {
        let what = super::describe(&p.call);
        if let Err((message, unreachable)) = &outcome {
            if self.observation_failed(&purpose, &what, message, *unreachable) {
                return;
            }
        }
        if outcome.is_err() {
            return;
        }
        let result = match purpose {
            Purpose::Account => self.on_account(&answer),
            Purpose::Secret(kind) => self.on_secret(kind, &answer),
            Purpose::AgentSelf => self.on_agent_self(&answer),
            Purpose::Datacenters => self.on_datacenters(&answer),
            Purpose::NodeServices(i) => self.on_node_services(i, &answer),
            Purpose::ServiceDefaults(i) => self.on_service_defaults(i, &answer),
            Purpose::TaggingPage => self.on_tagging_page(&answer),
            Purpose::Function { arn, confirm } => self.on_function(arn, confirm, &answer),
            Purpose::Roots => self.on_roots(&answer),
            Purpose::ParametersPage => self.on_parameters(&answer),
            Purpose::Leaf(key) => self.on_leaf(key, &answer),
            Purpose::MeshEntry(i) => self.on_mesh_entry(i, &answer),
            Purpose::Exec(_) | Purpose::Probe(_) => Ok(()),
        };
        if let Err(message) = result {
            let d = Diagnostic::new(
                Code::InvalidResponse,
                format!("{what}: {message}"),
                "check that the address points at a Consul agent and the endpoint at AWS",
            )
            .key(what.clone());
            self.stop_with(Verdict::Failed, d.message.clone(), Some(d.into()));
        }
    }

    /// A request that got no usable answer. Returns true when handled.
    fn observation_failed(
        &mut self,
        purpose: &Purpose,
        what: &str,
        message: &str,
        unreachable: bool,
    ) -> bool {
        match purpose {
            Purpose::TaggingPage => {
                self.obs.incomplete =
                    Some(format!("{what} (page {}): {message}", self.obs.pages + 1));
                self.log(
                    LogLevel::Error,
                    "the Lambda inventory is incomplete; no deregistration that could concern an unlisted function will run",
                    &[("error", Value::from(message)), ("pages", Value::from(self.obs.pages))],
                );
                if unreachable && self.obs.pages == 0 {
                    self.stop_with(
                        Verdict::Unreachable,
                        format!("AWS is unreachable: {message}"),
                        None,
                    );
                }
            }
            Purpose::Function { arn, .. } => {
                self.log(
                    LogLevel::Warn,
                    "could not load a function; its services are kept as they are",
                    &[
                        ("function", Value::from(arn.clone())),
                        ("error", Value::from(message)),
                    ],
                );
                self.obs.failed.push(FailedFunction {
                    arn: arn.clone(),
                    error: message.to_owned(),
                });
            }
            Purpose::Roots | Purpose::ParametersPage => {
                self.log(
                    LogLevel::Warn,
                    "extension data could not be observed; none is written this time",
                    &[
                        ("request", Value::from(what)),
                        ("error", Value::from(message)),
                    ],
                );
                self.obs.extension_failed = true;
            }
            Purpose::Leaf(key) => {
                self.log(
                    LogLevel::Warn,
                    "leaf certificate unavailable",
                    &[
                        ("service", Value::from(key.name.clone())),
                        ("error", Value::from(message)),
                    ],
                );
            }
            Purpose::Secret(kind) => {
                let variable = match kind {
                    SecretKind::ConsulToken => "CONSUL_HTTP_TOKEN_PATH",
                    SecretKind::ConsulCaCert => "CONSUL_CACERT_PATH",
                };
                let verdict = if unreachable {
                    Verdict::Unreachable
                } else {
                    Verdict::Failed
                };
                self.stop_with(
                    verdict,
                    format!("cannot read {variable} from Parameter Store: {message}"),
                    None,
                );
            }
            Purpose::AgentSelf if message.starts_with("HTTP 403") => {
                let d = Diagnostic::new(
                    Code::AclDenied,
                    format!("GET /v1/agent/self was denied: {message}"),
                    "set DATACENTER (then no agent endpoint is read), or add agent_prefix \"\" { policy = \"read\" } to the token's policy",
                )
                .key("agent:read");
                self.stop_with(Verdict::Failed, d.message.clone(), Some(d.into()));
            }
            _ => {
                let verdict = if unreachable {
                    Verdict::Unreachable
                } else {
                    Verdict::Failed
                };
                let message = if message.starts_with("HTTP 403") {
                    format!("{what} was denied: {message} (the token lacks a read rule)")
                } else {
                    format!("{what}: {message}")
                };
                self.stop_with(verdict, message, None);
            }
        }
        true
    }

    fn on_account(&mut self, answer: &Answer) -> Result<(), String> {
        let out: Value = parse_ok(answer)?;
        if let Some(err) = &answer.error {
            self.stop_with(
                Verdict::Setup,
                format!(
                    "sts GetCallerIdentity: {}",
                    super::wire::aws_error_text(err)
                ),
                None,
            );
            return Ok(());
        }
        match out.get("Account").and_then(Value::as_str) {
            Some(a) => self.account = Some(a.to_owned()),
            None => return Err("no Account in GetCallerIdentity".into()),
        }
        if let Some(function) = self.unresolved_function.take() {
            match self.function_trigger(&function) {
                Ok(trigger) => self.trigger = trigger,
                Err(f) => self.stop_with(Verdict::Failed, f.message.clone(), Some(f)),
            }
        }
        Ok(())
    }

    fn on_secret(&mut self, kind: SecretKind, answer: &Answer) -> Result<(), String> {
        if let Some(err) = &answer.error {
            let variable = match kind {
                SecretKind::ConsulToken => "CONSUL_HTTP_TOKEN_PATH",
                SecretKind::ConsulCaCert => "CONSUL_CACERT_PATH",
            };
            self.stop_with(
                Verdict::Failed,
                format!(
                    "cannot read {variable} from Parameter Store: {}",
                    super::wire::aws_error_text(err)
                ),
                None,
            );
        }
        Ok(())
    }

    fn consul_status(&mut self, answer: &Answer, what: &str) -> Result<bool, String> {
        match answer.status {
            Some(200) => Ok(true),
            Some(404) => Ok(false),
            _ => {
                let message = super::wire::status_message(answer);
                if answer.status == Some(403) && what == "agent" {
                    return Err(message);
                }
                self.stop_with(Verdict::Failed, format!("GET {what}: {message}"), None);
                Ok(false)
            }
        }
    }

    fn acl_filtered(&mut self, answer: &Answer, what: &str, rule: String) -> bool {
        if !filtered(answer) {
            return false;
        }
        let d = Diagnostic::new(
            Code::AclFiltered,
            format!("{what}: Consul filtered the answer because the token may not read all of it; nothing is changed"),
            format!("add {rule} to the registrator token's policy"),
        )
        .key(what.to_owned());
        self.stop_with(Verdict::Failed, d.message.clone(), Some(d.into()));
        true
    }

    fn on_agent_self(&mut self, answer: &Answer) -> Result<(), String> {
        if answer.status == Some(403) {
            self.observation_failed(
                &Purpose::AgentSelf,
                "GET /v1/agent/self",
                &super::wire::status_message(answer),
                false,
            );
            return Ok(());
        }
        if !self.consul_status(answer, "/v1/agent/self")? {
            return Ok(());
        }
        let v: Value = parse_body(answer)?;
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

    fn on_datacenters(&mut self, answer: &Answer) -> Result<(), String> {
        if !self.consul_status(answer, "/v1/catalog/datacenters")? {
            return Ok(());
        }
        let dcs: Option<Vec<String>> = parse_body(answer)?;
        self.obs.datacenters = dcs.unwrap_or_default();
        Ok(())
    }

    fn on_node_services(&mut self, i: usize, answer: &Answer) -> Result<(), String> {
        let node = self.config.node_name.clone();
        if self.acl_filtered(answer, "GET /v1/catalog/node-services", format!("node \"{node}\" {{ policy = \"read\" }} and service_prefix \"\" {{ policy = \"read\" }}")) {
            return Ok(());
        }
        if !self.consul_status(answer, "/v1/catalog/node-services")? {
            return Ok(());
        }
        let services: Option<NodeServices> = parse_body(answer)?;
        if let Some(scope) = self.obs.scopes.get_mut(i) {
            scope.node_services = services;
        }
        Ok(())
    }

    fn on_service_defaults(&mut self, i: usize, answer: &Answer) -> Result<(), String> {
        if self.acl_filtered(
            answer,
            "GET /v1/config/service-defaults",
            "service_prefix \"\" { policy = \"read\" }".into(),
        ) {
            return Ok(());
        }
        let found = self.consul_status(answer, "/v1/config/service-defaults")?;
        let entries: Option<Vec<ServiceDefaults>> = if found { parse_body(answer)? } else { None };
        if let Some(scope) = self.obs.scopes.get_mut(i) {
            scope.service_defaults = Some(entries.unwrap_or_default());
        }
        Ok(())
    }

    fn on_tagging_page(&mut self, answer: &Answer) -> Result<(), String> {
        if let Some(err) = &answer.error {
            let message = super::wire::aws_error_text(err);
            self.observation_failed(
                &Purpose::TaggingPage,
                "tagging GetResources",
                &message,
                false,
            );
            return Ok(());
        }
        let page: GetResourcesPage = parse_ok(answer)?;
        self.obs.pages += 1;
        let parsed = functions_from_get_resources(&page);
        self.obs.functions.extend(parsed.functions);
        if let Some(token) = parsed.next_token.filter(|t| !t.is_empty()) {
            if self.obs.pages >= MAX_PAGES || !self.obs.tokens.insert(token.clone()) {
                self.obs.incomplete =
                    Some("tagging GetResources: the pagination token repeats".into());
                self.log(
                    LogLevel::Error,
                    "the Lambda inventory is incomplete: the pagination token repeats",
                    &[],
                );
                return Ok(());
            }
            self.tagging_page(Some(token));
        }
        Ok(())
    }

    fn on_function(&mut self, arn: String, confirm: bool, answer: &Answer) -> Result<(), String> {
        if let Some(err) = &answer.error {
            if err.code == "ResourceNotFoundException" {
                self.obs.confirmed_absent.push(arn);
            } else {
                let message = super::wire::aws_error_text(err);
                self.observation_failed(
                    &Purpose::Function { arn, confirm },
                    "lambda GetFunction",
                    &message,
                    false,
                );
            }
            return Ok(());
        }
        let out: GetFunctionOutput = parse_ok(answer)?;
        let function = function_from_get_function(&out).map_err(|f| f.message)?;
        if confirm {
            self.log(
                LogLevel::Info,
                "function missing from the listing exists (listing lag or no tags)",
                &[("function", Value::from(arn))],
            );
        }
        self.obs.functions.push(function);
        Ok(())
    }

    fn on_roots(&mut self, answer: &Answer) -> Result<(), String> {
        if answer.status != Some(200) {
            let message = super::wire::status_message(answer);
            self.observation_failed(
                &Purpose::Roots,
                "GET /v1/agent/connect/ca/roots",
                &message,
                false,
            );
            return Ok(());
        }
        self.obs.roots = Some(parse_body(answer)?);
        Ok(())
    }

    fn on_parameters(&mut self, answer: &Answer) -> Result<(), String> {
        if let Some(err) = &answer.error {
            let message = super::wire::aws_error_text(err);
            self.observation_failed(
                &Purpose::ParametersPage,
                "ssm GetParametersByPath",
                &message,
                false,
            );
            return Ok(());
        }
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(rename = "Parameters", default)]
            parameters: Vec<SsmParameter>,
            #[serde(rename = "NextToken", default)]
            next_token: Option<String>,
        }
        let page: Page = parse_ok(answer)?;
        self.obs.parameters.extend(page.parameters);
        if let Some(token) = page.next_token.filter(|t| !t.is_empty()) {
            if self.obs.parameter_tokens.len() as u32 >= MAX_PAGES
                || !self.obs.parameter_tokens.insert(token.clone())
            {
                self.observation_failed(
                    &Purpose::ParametersPage,
                    "ssm GetParametersByPath",
                    "the pagination token repeats",
                    false,
                );
                return Ok(());
            }
            if let Some(prefix) = self.config.consul_extension_data_prefix.clone() {
                self.parameters_page(&prefix, Some(token));
            }
        }
        Ok(())
    }

    fn on_leaf(&mut self, key: ServiceKey, answer: &Answer) -> Result<(), String> {
        if answer.status != Some(200) {
            let message = super::wire::status_message(answer);
            self.observation_failed(
                &Purpose::Leaf(key),
                "GET /v1/agent/connect/ca/leaf",
                &message,
                false,
            );
            return Ok(());
        }
        let mut leaf: Leaf = parse_body(answer)?;
        // The leaf belongs to the scope it was asked for.
        if self.config.enterprise {
            leaf.namespace = Some(key.namespace.clone().unwrap_or_else(|| "default".into()));
            leaf.partition = Some(key.partition.clone().unwrap_or_else(|| "default".into()));
        }
        self.obs.leaves.push(leaf);
        Ok(())
    }

    /// The planner's input. The observation's large parts (functions, scopes,
    /// leaves, parameters) move into it, and [`Engine::restore`] moves them back:
    /// planning 10,000 functions copies none of them.
    fn plan_input(&mut self) -> PlanInput {
        let extension_data = if self.extension_enabled() {
            Some(ExtensionDataState {
                roots: self.obs.roots.clone(),
                leaves: std::mem::take(&mut self.obs.leaves),
                parameters: std::mem::take(&mut self.obs.parameters),
            })
        } else {
            None
        };
        let mut config = self.config_input.clone();
        let mut confirmed_absent = self.obs.confirmed_absent.clone();
        if self.prune {
            config.allow_mass_deregistration = Some(true);
            confirmed_absent = self.owned_arns();
        }
        PlanInput {
            config,
            trigger: self.trigger.clone(),
            inventory: Inventory {
                account_id: self.account.clone().unwrap_or_default(),
                region: self.region.clone(),
                complete: self.obs.incomplete.is_none(),
                functions: std::mem::take(&mut self.obs.functions),
                failed: self.obs.failed.clone(),
                confirmed_absent,
            },
            consul: ConsulState {
                local_datacenter: self.obs.local_dc.clone(),
                scopes: std::mem::take(&mut self.obs.scopes),
            },
            extension_data,
            mesh: self.obs.mesh.clone(),
        }
    }

    /// Moves the observation's parts back out of a planner input.
    fn restore(&mut self, input: PlanInput) {
        self.obs.functions = input.inventory.functions;
        self.obs.scopes = input.consul.scopes;
        if let Some(ext) = input.extension_data {
            self.obs.leaves = ext.leaves;
            self.obs.parameters = ext.parameters;
        }
    }

    /// Plans; asks for confirmations and leaves first when the plan needs them.
    /// Returns true when the final plan is made (or the sync stopped).
    pub(super) fn plan_step(&mut self) -> bool {
        if self.stop.is_some() {
            return true;
        }
        let input = self.plan_input();
        let planned = plan(&input);
        self.restore(input);
        let made = match planned {
            Ok(p) => p,
            Err(f) => {
                let message = f.message.clone();
                self.stop_with(Verdict::Failed, message, Some(f));
                return true;
            }
        };
        if !self.obs.confirmed && !made.confirmations.is_empty() {
            self.obs.confirmed = true;
            for c in &made.confirmations {
                self.get_function(c.function.clone(), true);
            }
            return false;
        }
        if self.extension_enabled() && !self.obs.leaves_read {
            self.obs.leaves_read = true;
            let wanted: Vec<ServiceKey> = made
                .services
                .iter()
                .filter(|s| s.change != crate::plan::Change::Delete)
                .map(|s| s.service.clone())
                .collect();
            if !wanted.is_empty() {
                for key in wanted {
                    self.leaf(key);
                }
                return false;
            }
        }
        self.log_plan(&made);
        self.plan = Some(made);
        if let Some(reviewed) = self.reviewed.take() {
            self.adopt_reviewed(reviewed);
        }
        true
    }

    /// Replaces the plan by the reviewed one, or stops if what it touches moved.
    fn adopt_reviewed(&mut self, mut reviewed: super::review::ReviewedPlan) {
        let moved = self.moved(&reviewed);
        if !moved.is_empty() {
            let d = Diagnostic::new(
                Code::PlanStale,
                format!("the reviewed plan is stale: {}", moved.join("; ")),
                "plan again (plan --out FILE), review, and apply the new plan",
            )
            .key("plan");
            self.stop_with(Verdict::Failed, d.message.clone(), Some(d.into()));
            return;
        }
        // Deletions the fresh observation confirmed may run.
        for op in &mut reviewed.plan.operations {
            if op
                .confirm_absent
                .as_ref()
                .is_some_and(|a| self.obs.confirmed_absent.contains(a))
            {
                op.confirm_absent = None;
            }
        }
        self.log(
            LogLevel::Info,
            "applying the reviewed plan",
            &[("operations", Value::from(reviewed.plan.operations.len()))],
        );
        self.plan = Some(reviewed.plan);
    }

    fn leaf(&mut self, key: ServiceKey) {
        let Some(name) = encode_segment(&key.name) else {
            return;
        };
        let mut q = BTreeMap::new();
        if self.config.enterprise {
            if let Some(ns) = &key.namespace {
                q.insert("ns".to_owned(), ns.clone());
            }
            if let Some(p) = &key.partition {
                q.insert("partition".to_owned(), p.clone());
            }
        }
        self.consul_get(
            format!("/v1/agent/connect/ca/leaf/{name}"),
            q,
            Purpose::Leaf(key),
        );
    }

    fn log_plan(&mut self, plan: &crate::plan::Plan) {
        for (level, msg, list) in [
            (LogLevel::Error, "plan error", &plan.errors),
            (LogLevel::Warn, "plan warning", &plan.warnings),
        ] {
            for d in list {
                self.log(
                    level,
                    msg,
                    &[
                        ("code", Value::from(d.code.as_str())),
                        (
                            "function",
                            d.function.clone().map_or(Value::Null, Value::from),
                        ),
                        ("key", d.key.clone().map_or(Value::Null, Value::from)),
                        ("value", d.value.clone().map_or(Value::Null, Value::from)),
                        ("message", Value::from(d.message.clone())),
                        ("hint", Value::from(d.hint.clone())),
                    ],
                );
            }
        }
        for s in &plan.skips {
            self.log(
                LogLevel::Debug,
                "function skipped",
                &[
                    ("function", Value::from(s.function.clone())),
                    ("reason", Value::from(s.reason.clone())),
                ],
            );
        }
        let s = &plan.summary;
        self.log(
            LogLevel::Info,
            "plan",
            &[
                ("create", Value::from(s.create)),
                ("update", Value::from(s.update)),
                ("delete", Value::from(s.delete)),
                ("unchanged", Value::from(s.unchanged)),
                ("operations", Value::from(s.operations)),
                ("errors", Value::from(s.errors)),
                ("warnings", Value::from(s.warnings)),
                ("skipped", Value::from(s.skipped)),
            ],
        );
    }
}

fn trigger_kind(t: &Trigger) -> &'static str {
    match t {
        Trigger::FullSync => "fullSync",
        Trigger::Function { .. } => "function",
        Trigger::Ignore { .. } => "ignore",
    }
}
