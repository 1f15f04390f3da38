//! The name and alias checks (docs/contract.md §5.3): before anything is written
//! for a service name, the engine knows whether Consul has that name on a node
//! other than the registrator's, in every datacenter (the service-defaults entry
//! is replicated to all of them) and, in Enterprise, in the name's namespace and
//! partition; and an alias service is created only for an alias the function has.
//!
//! Per datacenter and scope one `GET /v1/catalog/services` filtered on `Node`
//! lists the names on other nodes; only a wanted name found there costs one more
//! read (its instances, to name the node). Only a function with an alias service
//! the plan would create costs a `ListAliases` (one a page of 50 aliases): a
//! steady full sync asks none.

use super::{Observing, Read};
use crate::arn::function_reference;
use crate::config::LogLevel;
use crate::consul::ServiceKey;
use crate::engine::io::{parse_aws, parse_body, Io};
use crate::engine::observation::{AliasListing, NameScope};
use crate::engine::retry::{CallError, Reply};
use crate::engine::wire::HttpReply;
use crate::engine::Run;
use crate::lower::{AwsRequest, ConsulRequest, Request};
use crate::plan::{Change, NameElsewhere, Plan};
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use std::collections::BTreeSet;

/// At most this many nodes are named per name.
const NODES_NAMED: usize = 3;

/// A function's alias listing longer than this many pages (50 aliases each) is
/// taken as a pagination loop.
const MAX_ALIAS_PAGES: u32 = 1_000;

impl Observing {
    /// Asks for the name lists of every datacenter (OSS: known before any plan).
    pub(super) fn start_names(&mut self, run: &Run) {
        if run.config.enterprise {
            return;
        }
        for dc in self.name_datacenters() {
            self.names_list((dc, None, None), run);
        }
    }

    /// The datacenters names are checked in: every one Consul lists.
    fn name_datacenters(&self) -> Vec<String> {
        if self.obs.all_datacenters.is_empty() {
            self.obs.datacenters.clone()
        } else {
            self.obs.all_datacenters.clone()
        }
    }

    fn names_list(&mut self, scope: NameScope, run: &Run) {
        if self.obs.names.lists.contains_key(&scope) {
            return;
        }
        let (dc, namespace, partition) = scope.clone();
        let request = ConsulRequest::ServicesElsewhere {
            node: run.config.node_name.clone(),
            dc,
            namespace,
            partition,
        };
        self.obs.names.lists.insert(scope.clone(), None);
        self.calls
            .push(Request::Consul(request), Read::NamesList(scope));
    }

    /// Asks what the plan's wanted names and created aliases need checked;
    /// `true` when anything was asked (then the plan is made again).
    pub(super) fn check_names(&mut self, run: &Run, plan: &Plan) -> bool {
        let wanted: Vec<&ServiceKey> = plan
            .services
            .iter()
            .filter(|s| s.change != Change::Delete)
            .map(|s| &s.service)
            .collect();
        if wanted.is_empty() {
            return false;
        }
        let before = self.calls.queued();
        let scoped = |k: &ServiceKey| match run.config.enterprise {
            true => (k.namespace.clone(), k.partition.clone()),
            false => (None, None),
        };
        let scopes: BTreeSet<(Option<String>, Option<String>)> =
            wanted.iter().map(|k| scoped(k)).collect();
        for dc in self.name_datacenters() {
            for (ns, partition) in &scopes {
                self.names_list((dc.clone(), ns.clone(), partition.clone()), run);
            }
        }
        if self.calls.queued() > before {
            return true;
        }
        let mut instances = Vec::new();
        for key in &wanted {
            let (ns, partition) = scoped(key);
            for (scope, list) in &self.obs.names.lists {
                let listed = list.as_ref().is_some_and(|l| l.contains(&key.name));
                if listed && scope.1 == ns && scope.2 == partition {
                    let asked = (scope.clone(), key.name.clone());
                    if !self.obs.names.detailed.contains(&asked) {
                        instances.push(asked);
                    }
                }
            }
        }
        for (scope, name) in instances {
            self.obs
                .names
                .detailed
                .insert((scope.clone(), name.clone()));
            let key = ServiceKey {
                datacenter: Some(scope.0.clone()),
                namespace: scope.1.clone(),
                partition: scope.2.clone(),
                name: name.clone(),
            };
            let request = ConsulRequest::InstancesElsewhere {
                node: run.config.node_name.clone(),
                key,
            };
            self.calls
                .push(Request::Consul(request), Read::Instances(scope, name));
        }
        let grew = self.check_aliases(run, plan);
        grew || self.calls.queued() > before
    }

    /// `ListAliases` for each function with an alias service the plan would
    /// create, once a sync; `true` when a list already read lacks a newly wanted
    /// alias (then the plan is made again).
    fn check_aliases(&mut self, run: &Run, plan: &Plan) -> bool {
        let created = plan
            .services
            .iter()
            .filter(|s| s.change == Change::Create)
            .filter_map(|s| s.function.as_deref())
            .filter_map(split_alias);
        let mut asks = Vec::new();
        let mut missing = Vec::new();
        for (function, alias) in created {
            let lists = &mut self.obs.names.alias_lists;
            if !lists.contains_key(function) {
                asks.push(function.to_owned());
            }
            let list = lists.entry(function.to_owned()).or_default();
            if list.wanted.insert(alias.to_owned()) && list.lacks(alias) {
                missing.push(format!("{function}:{alias}"));
            }
        }
        for arn in asks {
            self.list_aliases(run, arn, None);
        }
        let grew = !missing.is_empty();
        self.obs.names.missing_aliases.extend(missing);
        grew
    }

    fn list_aliases(&mut self, run: &Run, arn: String, marker: Option<String>) {
        let function = function_reference(&arn, run.account.as_deref(), &run.region);
        let request = AwsRequest::ListAliases { function, marker };
        self.calls.push(Request::Aws(request), Read::Aliases(arn));
    }

    /// The names on other nodes of one scope. An answer Consul filtered stops the
    /// sync: a name the token may not see could be taken over.
    pub(super) fn on_names_list(
        &mut self,
        io: &mut Io,
        scope: NameScope,
        h: &HttpReply,
    ) -> Result<(), String> {
        let what = "GET /v1/catalog/services";
        let rule = "node_prefix \"\" { policy = \"read\" } and service_prefix \"\" { policy = \"read\" } (every datacenter's names are checked before one is taken; docs/acl-policy.hcl)".to_owned();
        if h.status == 403 {
            let hint = format!("add {rule} to the token's policy (docs/acl-policy.hcl)");
            self.stop(io, super::answers::denied(what, h, "service:read", hint));
            return Ok(());
        }
        if self.filtered(io, what, h, rule) {
            return Ok(());
        }
        // A list that did not come (even a 404) leaves the names unknown: stop.
        if h.status != 200 {
            let error = CallError::Http {
                status: h.status,
                body: h.body.clone(),
            };
            self.stop(io, super::answers::failed_stop(what, true, &error));
            return Ok(());
        }
        let names = parse_names(&h.body)?;
        self.obs.names.lists.insert(scope, Some(names));
        Ok(())
    }

    /// A wanted name's instances on other nodes: the nodes are named in the refusal.
    pub(super) fn on_instances(
        &mut self,
        io: &mut Io,
        (scope, name): (NameScope, String),
        h: &HttpReply,
    ) -> Result<(), String> {
        #[derive(serde::Deserialize)]
        struct Instance {
            #[serde(rename = "Node", default)]
            node: String,
        }
        let what = "GET /v1/catalog/service";
        let Some(body) = self.found(io, what, h) else {
            return Ok(());
        };
        let instances: Option<Vec<Instance>> = parse_body(body)?;
        let mut nodes: Vec<String> = instances
            .unwrap_or_default()
            .into_iter()
            .map(|i| i.node)
            .collect();
        nodes.sort();
        nodes.dedup();
        // Gone since the list was read, and none hidden: the name is free.
        if nodes.is_empty() && !h.filtered {
            return Ok(());
        }
        nodes.truncate(NODES_NAMED);
        io.log(
            LogLevel::Debug,
            "wanted name found on another node",
            [
                ("service", Some(name.as_str().into())),
                ("datacenter", Some(scope.0.as_str().into())),
            ],
        );
        let (datacenter, namespace, partition) = scope;
        self.obs.names.found.push(NameElsewhere {
            name,
            namespace,
            partition,
            datacenter,
            nodes,
        });
        Ok(())
    }

    /// A page of `ListAliases`: the next page is asked, or the wanted aliases
    /// it lacks are missing. A function that is gone (`ResourceNotFoundException`)
    /// has none; any other error leaves the function as it is.
    pub(super) fn on_aliases(
        &mut self,
        io: &mut Io,
        run: &Run,
        function: String,
        reply: &Reply,
    ) -> Result<(), String> {
        #[derive(serde::Deserialize)]
        struct Alias {
            #[serde(rename = "Name")]
            name: String,
        }
        #[derive(serde::Deserialize)]
        struct Page {
            #[serde(rename = "Aliases", default)]
            aliases: Vec<Alias>,
            #[serde(rename = "NextMarker", default)]
            next: Option<String>,
        }
        let page = match reply {
            Reply::AwsError(e) if e.code == "ResourceNotFoundException" => None,
            Reply::AwsError(e) => {
                let message = crate::engine::retry::aws_error_text(e);
                self.aliases_failed(io, function, &message);
                return Ok(());
            }
            _ => Some(parse_aws::<Page>(reply)?),
        };
        let Some(list) = self.obs.names.alias_lists.get_mut(&function) else {
            return Err("an alias listing nobody asked for".into());
        };
        if let Some(page) = page {
            list.names.extend(page.aliases.into_iter().map(|a| a.name));
            list.pages += 1;
            match page.next.filter(|m| !m.is_empty()) {
                Some(_) if list.pages >= MAX_ALIAS_PAGES => {
                    let message = format!("ListAliases: more than {MAX_ALIAS_PAGES} pages");
                    self.aliases_failed(io, function, &message);
                    return Ok(());
                }
                Some(marker) => {
                    self.list_aliases(run, function, Some(marker));
                    return Ok(());
                }
                None => {}
            }
        }
        list.state = AliasListing::Known;
        let missing: Vec<String> = list.missing(&function).collect();
        self.obs.names.missing_aliases.extend(missing);
        Ok(())
    }

    /// A function whose aliases could not be listed: left as it is, like one
    /// that failed to load.
    pub(super) fn aliases_failed(&mut self, io: &mut Io, function: String, message: &str) {
        if let Some(list) = self.obs.names.alias_lists.get_mut(&function) {
            list.state = AliasListing::Failed;
        }
        self.function_failed(io, function, message);
    }
}

/// `ARN:ALIAS` of an alias service as its function ARN and alias; `None` for an
/// unqualified ARN.
fn split_alias(arn: &str) -> Option<(&str, &str)> {
    (arn.split(':').count() == 8)
        .then(|| arn.rsplit_once(':'))
        .flatten()
}

/// The names of a `GET /v1/catalog/services` answer (a map of name to tags),
/// without keeping the tags.
fn parse_names(body: &str) -> Result<BTreeSet<String>, String> {
    struct Names;
    impl<'de> Visitor<'de> for Names {
        type Value = BTreeSet<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of service names")
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(BTreeSet::new())
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut names = BTreeSet::new();
            while let Some(name) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                names.insert(name);
            }
            Ok(names)
        }
    }
    let mut de = serde_json::Deserializer::from_str(body);
    let names = (&mut de)
        .deserialize_any(Names)
        .and_then(|n| de.end().map(|()| n))
        .map_err(|e| format!("cannot read the answer: {e}"))?;
    Ok(names)
}
