//! The observing phase: the account and the Consul credentials; Consul's
//! topology (the agent's datacenter, the datacenters); per datacenter and
//! partition the registrator node's services and the service-defaults entries,
//! the mesh entries, the Lambda inventory and the extension data; then the plan,
//! with confirmations (`ListTags`) and leaf reads each followed by a re-plan
//! (`plan.rs`). Answers are read in `answers.rs`.

mod answers;
mod names;
mod peers;
mod plan;

use super::io::{Calls, Io, Settled};
use super::observation::Observation;
use super::outcome::Verdict;
use super::{Advance, Machine, Run, Stop};
use crate::config::LogLevel;
use crate::consul::ServiceKey;
use crate::error::{Code, Diagnostic};
use crate::event::Trigger;
use crate::lower::{AwsRequest, ConsulRequest, Request, ScopeQuery, SecretKind};
use crate::mesh::MeshEntryKind;
use crate::plan::{ConsulScope, ObservedMeshEntry};

/// What an observation request is for.
#[derive(Debug, Clone)]
pub(crate) enum Read {
    Account,
    Secret(SecretKind),
    AgentSelf,
    Datacenters,
    NodeServices(usize),
    ServiceDefaults(usize),
    TaggingPage,
    Function {
        arn: String,
        confirm: bool,
    },
    Roots,
    ParametersPage,
    Leaf(ServiceKey),
    MeshEntry(usize),
    /// The names on other nodes of one scope.
    NamesList(crate::engine::observation::NameScope),
    /// A wanted name's instances on other nodes.
    Instances(crate::engine::observation::NameScope, String),
    /// A function's aliases (its ARN), one page.
    Aliases(String),
    /// Whether the token may read the cluster peers.
    PeeringAllowed,
    /// The cluster peers.
    Peerings,
    /// The services the i-th peer exports to us.
    Imported(usize),
    /// One of them, for its SNI name.
    PeerSni(usize),
}

/// Where the observation is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Stage {
    /// Nothing asked yet.
    #[default]
    Start,
    /// The account and credentials asked for.
    Credentials,
    /// The topology asked for.
    Topology,
    /// The state asked for: plan next.
    Planning,
}

/// The observing phase.
#[derive(Debug, Default)]
pub(crate) struct Observing {
    calls: Calls<Read>,
    stage: Stage,
    pub(crate) obs: Observation,
    stop: Option<Stop>,
    /// Whether the confirmations were asked for.
    confirmed: bool,
    /// Whether the leaves were asked for.
    leaves_read: bool,
}

impl Machine for Observing {
    type Purpose = Read;

    fn calls(&mut self) -> &mut Calls<Read> {
        &mut self.calls
    }

    fn calls_ref(&self) -> &Calls<Read> {
        &self.calls
    }

    fn settle(&mut self, io: &mut Io, run: &mut Run, (call, outcome): Settled<Read>) {
        let what = call.request.describe();
        let consul = matches!(call.request, Request::Consul(_));
        let result = match outcome {
            Ok(reply) => self.on_reply(io, run, call.purpose, &reply),
            Err(error) => {
                self.on_error(io, call.purpose, (&what, consul), error);
                Ok(())
            }
        };
        if let Err(message) = result {
            let d = Diagnostic::new(
                Code::InvalidResponse,
                format!("{what}: {message}"),
                "check that CONSUL_HTTP_ADDR points at a Consul agent and the AWS endpoint at AWS",
            )
            .key(what);
            self.stop(io, Stop::new(Verdict::Failed, d));
        }
    }

    fn advance(&mut self, io: &mut Io, run: &mut Run) -> Advance {
        if let Some(stop) = self.stop.take() {
            return Advance::Finish(Box::new(self.ending(Some(stop))));
        }
        match self.stage {
            Stage::Start => {
                if let Trigger::Ignore { reason, event_name } = &run.trigger {
                    io.log(
                        LogLevel::Info,
                        "event ignored",
                        [
                            ("reason", Some(reason.as_str().into())),
                            ("eventName", event_name.as_deref().map(Into::into)),
                        ],
                    );
                    return Advance::Finish(Box::new(self.ending(None)));
                }
                self.start_credentials(io, run);
                self.stage = Stage::Credentials;
            }
            Stage::Credentials => {
                self.start_topology(run);
                self.stage = Stage::Topology;
            }
            Stage::Topology => {
                self.start_scopes(io, run);
                self.stage = Stage::Planning;
            }
            Stage::Planning => return self.plan_step(io, run),
        }
        Advance::Continue
    }
}

impl Observing {
    /// Ends the sync early: nothing more is asked; what is in flight is drained.
    pub(crate) fn stop(&mut self, io: &mut Io, stop: Stop) {
        if self.stop.is_some() {
            return;
        }
        io.log(
            LogLevel::Error,
            "sync stopped",
            [
                ("verdict", Some(stop.verdict.as_str().into())),
                ("code", Some(stop.failure.code.as_str().into())),
                ("error", Some(stop.failure.message.clone().into())),
                ("hint", Some(stop.failure.hint.clone().into())),
            ],
        );
        self.stop = Some(stop);
    }

    fn get(&mut self, request: ConsulRequest, purpose: Read) {
        self.calls.push(Request::Consul(request), purpose);
    }

    fn aws(&mut self, request: AwsRequest, purpose: Read) {
        self.calls.push(Request::Aws(request), purpose);
    }

    fn start_credentials(&mut self, io: &mut Io, run: &Run) {
        let (function, event_name) = match &run.trigger {
            Trigger::Function {
                arn, event_name, ..
            } => (
                Some(arn.as_str().into()),
                event_name.as_deref().map(Into::into),
            ),
            _ => (None, None),
        };
        io.log(
            LogLevel::Info,
            "sync started",
            [
                ("trigger", Some(trigger_kind(&run.trigger).into())),
                ("function", function),
                ("eventName", event_name),
                ("dryRun", Some(run.config.dry_run.into())),
                ("region", Some(run.region.as_str().into())),
            ],
        );
        if run.account.is_none() {
            self.aws(AwsRequest::GetCallerIdentity, Read::Account);
        }
        let config = &run.config;
        for (kind, path) in [
            (SecretKind::ConsulToken, &config.consul_http_token_path),
            (SecretKind::ConsulCaCert, &config.consul_cacert_path),
        ] {
            if let Some(name) = path {
                let request = AwsRequest::GetParameter {
                    name: name.clone(),
                    secret: Some(kind),
                };
                self.aws(request, Read::Secret(kind));
            }
        }
    }

    fn start_topology(&mut self, run: &Run) {
        // Every datacenter's names are checked (no ACL needed to list them).
        self.get(ConsulRequest::Datacenters, Read::Datacenters);
        // With DATACENTER set nothing needs agent:read (upstream's documented policy).
        if let Some(dc) = run.config.datacenter.clone() {
            self.obs.datacenters = vec![dc];
            return;
        }
        self.get(ConsulRequest::AgentSelf, Read::AgentSelf);
    }

    fn start_scopes(&mut self, io: &mut Io, run: &Run) {
        // Without DATACENTER the agent names it. Not known: stop, or the wanted
        // services would be planned for an unnamed datacenter while the registered
        // ones are observed in the named one, and deregistered (found by fuzzing).
        if run.config.datacenter.is_none() && self.obs.local_dc.is_none() {
            let d = Diagnostic::new(
                Code::InvalidResponse,
                "GET /v1/agent/self did not name the agent's datacenter; nothing is changed",
                "check that CONSUL_HTTP_ADDR points at a Consul agent, or set DATACENTER",
            )
            .key("GET /v1/agent/self");
            self.stop(io, Stop::new(Verdict::Failed, d));
            return;
        }
        if self.obs.datacenters.is_empty() {
            self.obs.datacenters.extend(self.obs.local_dc.clone());
        }
        let partitions = partitions(run);
        for dc in self.obs.datacenters.clone() {
            for partition in &partitions {
                let i = self.obs.scopes.len();
                self.obs.scopes.push(ConsulScope {
                    datacenter: Some(dc.clone()),
                    partition: partition.clone(),
                    node_services: None,
                    service_defaults: None,
                });
                let scope = ScopeQuery {
                    dc: Some(dc.clone()),
                    all_namespaces: run.config.enterprise,
                    partition: partition.clone().filter(|_| run.config.enterprise),
                };
                let node = run.config.node_name.clone();
                self.get(
                    ConsulRequest::NodeServices {
                        node,
                        scope: scope.clone(),
                    },
                    Read::NodeServices(i),
                );
                self.get(
                    ConsulRequest::ServiceDefaultsList { scope },
                    Read::ServiceDefaults(i),
                );
            }
        }
        match run.trigger.clone() {
            // Pruning takes every function as gone: no inventory.
            _ if run.prune => {}
            Trigger::Function { arn, .. } => self.get_function(arn, false),
            _ => self.tagging_page(None),
        }
        self.start_mesh(run, &partitions);
        if !run.prune {
            self.start_names(run);
        }
        if let Some(prefix) = run.config.consul_extension_data_prefix.clone() {
            self.get(ConsulRequest::CaRoots, Read::Roots);
            self.parameters_page(&prefix, None);
            self.start_peers();
        }
    }

    /// Reads the mesh entries kept in step: per partition, the terminating
    /// gateway's and the exported services' (named after the partition).
    fn start_mesh(&mut self, run: &Run, partitions: &[Option<String>]) {
        let config = &run.config;
        let exports = !config.exported_services_peers.is_empty()
            || !config.exported_services_partitions.is_empty();
        for partition in partitions {
            let mut kinds = Vec::new();
            if let Some(name) = config.terminating_gateway_name.clone() {
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
                let request = ConsulRequest::ConfigEntry {
                    kind,
                    name,
                    partition: partition.clone().filter(|_| config.enterprise),
                };
                self.get(request, Read::MeshEntry(i));
            }
        }
    }

    fn tagging_page(&mut self, token: Option<String>) {
        self.aws(AwsRequest::GetResources { token }, Read::TaggingPage);
    }

    fn parameters_page(&mut self, prefix: &str, token: Option<String>) {
        let path = prefix.trim_end_matches('/');
        let request = AwsRequest::GetParametersByPath {
            path: if path.is_empty() { "/" } else { path }.to_owned(),
            max_results: 10,
            token,
        };
        self.aws(request, Read::ParametersPage);
    }

    fn get_function(&mut self, arn: String, confirm: bool) {
        let request = AwsRequest::ListTags { arn: arn.clone() };
        self.aws(request, Read::Function { arn, confirm });
    }

    fn leaf(&mut self, key: ServiceKey, enterprise: bool) {
        if !crate::lower::is_segment(&key.name) {
            return;
        }
        let request = ConsulRequest::Leaf {
            key: key.clone(),
            enterprise,
        };
        self.get(request, Read::Leaf(key));
    }
}

/// The partitions observed: each managed one in Enterprise, else none.
fn partitions(run: &Run) -> Vec<Option<String>> {
    if run.config.enterprise {
        run.config.partitions.iter().cloned().map(Some).collect()
    } else {
        vec![None]
    }
}

pub(crate) fn trigger_kind(t: &Trigger) -> &'static str {
    match t {
        Trigger::FullSync => "fullSync",
        Trigger::Function { .. } => "function",
        Trigger::Ignore { .. } => "ignore",
    }
}
