//! The sync engine's answer-feeding path. A world where every function's
//! services are registered (so a correct sync deletes none of them) answers the
//! engine's requests truthfully — Consul with its check-and-set semantics (the
//! node-services and service-defaults indexes, transactions applied all or none,
//! `PUT`/`DELETE /v1/config` with `cas`), the names other nodes use, the CA,
//! leaves and peerings, and AWS (GetResources, ListTags, ListAliases, Parameter
//! Store) — except where the fuzz input corrupts an answer: another status, a
//! truncated or arbitrary body, an ACL-filtered or Retry-After header, a lost
//! answer, an error of the host (`transport`, `config`, `answer_too_large`), an
//! answer of the wrong kind, an AWS error (never "not found"), a wrong-shaped AWS
//! result, a page missing an entry, a pagination loop; or the step's answers are
//! fed as arbitrary JSON text, with an unknown or repeated id, one short, or in
//! another order.
//!
//! Two engines run in lockstep: one is fed typed answers ([`Engine::feed`]), the
//! other the same answers as the host's JSON ([`Engine::feed_json`]). Checked: no
//! panic; both engines take every step alike; an unknown id is refused, every
//! other batch accepted; the engine ends; every Consul request carries
//! `maxBytes` and a body of JSON text; and no request ever deletes a service,
//! config entry or parameter of a live, enabled function (a check dropped only
//! once the input has fed answers the world cannot vouch for: a datacenter the
//! agent does not have, or answers spelt by arbitrary text).
#![no_main]

use consul_lambda_sync::aws::ListTagsOutput;
use consul_lambda_sync::engine::wire::{AnswerError, HttpReply};
use consul_lambda_sync::engine::{Answer, Engine, Incoming, Start, Step};
use consul_lambda_sync::lower::{path_segment, AwsRequest, ConsulRequest, RawJson, Request, TxnOp};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const PREFIX: &str = "serverless.consul.hashicorp.com/v1alpha1/lambda/";
const MANAGED: &str = "managed-by-lambda-registrator";
const NODE: &str = "lambdas";
const DC: &str = "dc1";
const DATA_PREFIX: &str = "/lambda";
const TRUST_DOMAIN: &str = "11111111-2222-3333-4444-555555555555.consul";
const PEER_TRUST_DOMAIN: &str = "66666666-7777-8888-9999-000000000000.consul";
const ALIASES: [&str; 3] = ["prod", "canary", "dev"];
const STATUSES: [u16; 10] = [200, 204, 400, 403, 404, 409, 413, 429, 500, 503];
const CODES: [&str; 7] = [
    "ThrottlingException",
    "AccessDeniedException",
    "InternalServerError",
    "ValidationException",
    "UnrecognizedClientException",
    "transport",
    "",
];
/// Errors a host reports for any request.
const HOST_ERRORS: [&str; 4] = [
    "transport",
    "config",
    "answer_too_large",
    "ThrottlingException",
];
const SHAPES: [&str; 14] = [
    "null",
    "[]",
    "{}",
    "7",
    "\"x\"",
    "{\"ResourceTagMappingList\":7}",
    "{\"ResourceTagMappingList\":[{\"ResourceARN\":7}]}",
    "{\"Tags\":null}",
    "{\"Tags\":[]}",
    "{\"Tags\":{\"k\":7}}",
    "{\"AliasArn\":7}",
    "{\"Parameter\":[]}",
    "{\"Parameters\":{}}",
    "{\"Parameters\":[{\"Name\":7}]}",
];

/// Reads the fuzz input as a stream of choices (zeros once it runs out).
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[usize::from(self.byte()) % items.len()]
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }
}

/// One request of a step, as the host reads it (the step's JSON).
#[derive(Debug)]
struct Wire {
    id: u64,
    consul: Option<ConsulCall>,
    aws: Option<AwsCall>,
}

#[derive(Debug)]
struct ConsulCall {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    /// The body's JSON text, read as JSON.
    body: Option<Value>,
}

#[derive(Debug)]
struct AwsCall {
    operation: String,
    input: Value,
}

/// The `send` list of a step's JSON, checked as a host reads it.
fn wire(step: &Value) -> Vec<Wire> {
    let text = |v: &Value, key: &str| {
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let mut out = Vec::new();
    for r in step
        .get("send")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let id = r
            .get("id")
            .and_then(Value::as_u64)
            .expect("a request has an id");
        let consul = r.get("consul").map(|c| {
            assert!(
                c.get("maxBytes")
                    .and_then(Value::as_u64)
                    .is_some_and(|m| m > 0),
                "a Consul request without maxBytes: {c}"
            );
            let query = c
                .get("query")
                .and_then(Value::as_object)
                .map(|q| {
                    q.iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.as_str().expect("a query value is text").to_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let body = c.get("body").map(|b| {
                let t = b.as_str().expect("a body is JSON text");
                serde_json::from_str(t).expect("a body is valid JSON")
            });
            ConsulCall {
                method: text(c, "method"),
                path: text(c, "path"),
                query,
                body,
            }
        });
        let aws = r.get("aws").map(|a| AwsCall {
            operation: text(a, "operation"),
            input: a.get("input").cloned().unwrap_or(Value::Null),
        });
        assert!(
            consul.is_some() != aws.is_some(),
            "a request is Consul's or AWS's: {r}"
        );
        out.push(Wire { id, consul, aws });
    }
    out
}

/// What the world answers to one request.
#[derive(Debug, Clone)]
enum Reply {
    Http {
        status: u16,
        headers: BTreeMap<String, String>,
        body: String,
    },
    Ok(Value),
    Error {
        code: String,
        message: String,
        status: Option<u16>,
    },
}

impl Reply {
    fn http(status: u16, body: &Value) -> Reply {
        Reply::Http {
            status,
            headers: BTreeMap::new(),
            body: body.to_string(),
        }
    }
    fn error(code: &str, message: &str, status: Option<u16>) -> Reply {
        Reply::Error {
            code: code.into(),
            message: message.into(),
            status,
        }
    }
}

/// An answer as both feeds take it.
#[derive(Debug, Clone)]
struct Fed {
    id: u64,
    reply: Reply,
}

impl Fed {
    /// For [`Engine::feed`].
    fn typed(&self) -> Answer {
        let reply = match &self.reply {
            Reply::Http {
                status,
                headers,
                body,
            } => Incoming::Http(HttpReply::new(*status, headers, body.clone())),
            Reply::Ok(v) => Incoming::Aws(
                serde_json::from_str::<RawJson>(&v.to_string())
                    .expect("JSON text reads as RawJson"),
            ),
            Reply::Error {
                code,
                message,
                status,
            } => Incoming::Error(AnswerError {
                code: code.clone(),
                message: message.clone(),
                status: *status,
            }),
        };
        Answer { id: self.id, reply }
    }

    /// For [`Engine::feed_json`]: `{id, status, headers, body}`, `{id, ok}` or `{id, error}`.
    fn json(&self) -> Value {
        match &self.reply {
            Reply::Http {
                status,
                headers,
                body,
            } if headers.is_empty() => json!({"id": self.id, "status": status, "body": body}),
            Reply::Http {
                status,
                headers,
                body,
            } => json!({"id": self.id, "status": status, "headers": headers, "body": body}),
            Reply::Ok(v) => json!({"id": self.id, "ok": v}),
            Reply::Error {
                code,
                message,
                status,
            } => {
                json!({"id": self.id, "error": {"code": code, "message": message, "status": status}})
            }
        }
    }
}

fn arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
}

/// The function name of an unqualified function ARN of the world's account.
fn function_of(arn: &str) -> Option<&str> {
    arn.strip_prefix(&format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:"))
        .filter(|n| !n.contains(':'))
}

fn last_segment(s: &str) -> String {
    s.rsplit('/').next().unwrap_or_default().to_owned()
}

struct World {
    /// Function name -> aliases (every alias exists).
    functions: BTreeMap<String, Vec<&'static str>>,
    mode: &'static str,
    /// Extension data is on.
    extension: bool,
    /// Node `lambdas` exists.
    node: bool,
    /// Services on node `lambdas` (all managed): ID -> ModifyIndex.
    services: BTreeMap<String, u64>,
    /// service-defaults entries: name -> (ModifyIndex, body).
    entries: BTreeMap<String, (u64, Value)>,
    /// Parameter Store: name -> value.
    parameters: BTreeMap<String, String>,
    /// Names Consul has on node `other` in dc1.
    elsewhere: BTreeSet<String>,
    /// One active peering (and one pending).
    peering: bool,
    index: u64,
    /// Answers the world cannot vouch for were fed.
    unvouched: bool,
}

impl World {
    fn new(
        functions: BTreeMap<String, Vec<&'static str>>,
        mode: &'static str,
        extension: bool,
        flags: u8,
    ) -> World {
        let mut w = World {
            functions,
            mode,
            extension,
            node: false,
            services: BTreeMap::new(),
            entries: BTreeMap::new(),
            parameters: BTreeMap::new(),
            elsewhere: BTreeSet::from(["consul".to_owned(), "web".to_owned()]),
            peering: flags & 0x08 != 0,
            index: 10,
            unvouched: false,
        };
        let mut registered = w.wanted_services();
        // A function deleted since its services were registered: they go.
        if flags & 0x02 != 0 {
            registered.push(("gone".into(), "gone".into(), None));
        }
        for (service, function, qualifier) in registered {
            let i = w.bump();
            w.services.insert(service.clone(), i);
            let body = w.entry(&service, &function, qualifier);
            w.entries.insert(service.clone(), (i, body));
            if w.extension {
                w.parameters.insert(
                    format!("{DATA_PREFIX}/default/default/{service}"),
                    "{}".into(),
                );
            }
        }
        w.node = !w.services.is_empty();
        // A wanted name Consul also has on another node: refused, never deleted.
        if flags & 0x04 != 0 {
            if let Some(name) = w.wanted().into_iter().next() {
                w.elsewhere.insert(name);
            }
        }
        w
    }

    fn bump(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    fn tags(&self, name: &str) -> BTreeMap<String, String> {
        let mut t = BTreeMap::from([(format!("{PREFIX}enabled"), "true".to_owned())]);
        let aliases = &self.functions[name];
        if !aliases.is_empty() {
            t.insert(format!("{PREFIX}aliases"), aliases.join("+"));
        }
        t.insert(format!("{PREFIX}invocation-mode"), self.mode.to_owned());
        t
    }

    /// Every wanted service: (service name, function name, qualifier).
    fn wanted_services(&self) -> Vec<(String, String, Option<&'static str>)> {
        let mut out = Vec::new();
        for (name, aliases) in &self.functions {
            out.push((name.clone(), name.clone(), None));
            for a in aliases {
                out.push((format!("{name}-{a}"), name.clone(), Some(*a)));
            }
        }
        out
    }

    fn wanted(&self) -> BTreeSet<String> {
        self.wanted_services().into_iter().map(|s| s.0).collect()
    }

    /// The service-defaults entry the registrator writes.
    fn entry(&self, service: &str, function: &str, qualifier: Option<&str>) -> Value {
        let arn = match qualifier {
            Some(q) => format!("{}:{q}", arn(function)),
            None => arn(function),
        };
        json!({"Kind": "service-defaults", "Name": service, "Protocol": "http",
               "EnvoyExtensions": [{"Name": "builtin/aws/lambda", "Required": false,
                 "Arguments": {"arn": arn, "invocationMode": self.mode.to_lowercase(),
                               "payloadPassthrough": false}}]})
    }

    fn entry_at(&self, name: &str) -> Option<Value> {
        self.entries.get(name).map(|(i, body)| {
            let mut b = body.clone();
            b["ModifyIndex"] = json!(i);
            b["CreateIndex"] = json!(i);
            b
        })
    }

    /// Consul, as a status and a JSON body.
    fn consul(&mut self, c: &ConsulCall) -> (u16, Value) {
        let local = c.query.get("dc").is_none_or(|d| d == DC);
        let cas: Option<u64> = c.query.get("cas").and_then(|v| v.parse().ok());
        let path = c.path.as_str();
        let tail = |prefix: &str| path.strip_prefix(prefix).map(str::to_owned);
        match c.method.as_str() {
            "GET" => self.consul_read(c, local, path, &tail),
            "PUT" if path == "/v1/txn" => self.txn(c.body.as_ref()),
            "PUT" if path == "/v1/config" => {
                let body = c.body.clone().unwrap_or(Value::Null);
                let Some(name) = body.get("Name").and_then(Value::as_str).map(str::to_owned) else {
                    return (400, json!("Name is required"));
                };
                let current = self.entries.get(&name).map(|e| e.0);
                let applies = match cas {
                    None => true,
                    Some(0) => current.is_none(),
                    Some(n) => current == Some(n),
                };
                if applies {
                    let i = self.bump();
                    self.entries.insert(name, (i, body));
                }
                (200, json!(applies))
            }
            "DELETE" => match tail("/v1/config/service-defaults/") {
                Some(name) => {
                    let current = self.entries.get(&name).map(|e| e.0);
                    let applies = cas.is_none_or(|n| current == Some(n));
                    if applies {
                        self.entries.remove(&name);
                    }
                    (
                        200,
                        if cas.is_some() {
                            json!(applies)
                        } else {
                            json!({})
                        },
                    )
                }
                None => (405, json!("method not allowed")),
            },
            "PUT" if path == "/v1/catalog/register" => {
                let id = c
                    .body
                    .as_ref()
                    .and_then(|b| b.pointer("/Service/ID"))
                    .and_then(Value::as_str);
                if let Some(id) = id {
                    let i = self.bump();
                    self.services.insert(id.to_owned(), i);
                    self.node = true;
                }
                (200, json!(true))
            }
            "PUT" if path == "/v1/catalog/deregister" => {
                let id = c
                    .body
                    .as_ref()
                    .and_then(|b| b.get("ServiceID"))
                    .and_then(Value::as_str);
                if let Some(id) = id {
                    self.services.remove(id);
                }
                (200, json!(true))
            }
            _ => (405, json!("method not allowed")),
        }
    }

    fn consul_read(
        &self,
        c: &ConsulCall,
        local: bool,
        path: &str,
        tail: &dyn Fn(&str) -> Option<String>,
    ) -> (u16, Value) {
        if path == "/v1/agent/self" {
            return (
                200,
                json!({"Config": {"Datacenter": DC, "NodeName": "agent"}}),
            );
        }
        if path == "/v1/catalog/datacenters" {
            return (200, json!([DC]));
        }
        if let Some(node) = tail("/v1/catalog/node-services/") {
            if !(local && node == NODE && self.node) {
                return (404, Value::Null);
            }
            let services: Vec<Value> = self
                .services
                .iter()
                .map(|(s, i)| {
                    json!({"ID": s, "Service": s, "Tags": [MANAGED], "Meta": {}, "Port": 0,
                           "ModifyIndex": i, "CreateIndex": i})
                })
                .collect();
            return (
                200,
                json!({"Node": {"Node": NODE, "Address": NODE}, "Services": services}),
            );
        }
        if path == "/v1/config/service-defaults" {
            let list: Vec<Value> = match local {
                true => self
                    .entries
                    .keys()
                    .filter_map(|n| self.entry_at(n))
                    .collect(),
                false => Vec::new(),
            };
            return (200, Value::Array(list));
        }
        if let Some(name) = tail("/v1/config/service-defaults/") {
            return match self.entry_at(&name).filter(|_| local) {
                Some(e) => (200, e),
                None => (404, json!("Config entry not found")),
            };
        }
        if path == "/v1/catalog/services" {
            // Imported from a peer, or the names on other nodes.
            if let Some(peer) = c.query.get("peer") {
                return match self.peering && peer == "east" {
                    true => (200, json!({"api": ["v1"]})),
                    false => (200, json!({})),
                };
            }
            let names: serde_json::Map<String, Value> = match local {
                true => self
                    .elsewhere
                    .iter()
                    .map(|n| (n.clone(), json!([])))
                    .collect(),
                false => serde_json::Map::new(),
            };
            return (200, Value::Object(names));
        }
        if let Some(name) = tail("/v1/catalog/service/") {
            let list: Vec<Value> = match local && self.elsewhere.contains(&name) {
                true => vec![json!({"Node": "other", "ServiceName": name, "ServiceID": name})],
                false => Vec::new(),
            };
            return (200, Value::Array(list));
        }
        if let Some(name) = tail("/v1/health/service/") {
            if !(self.peering && c.query.get("peer").is_some_and(|p| p == "east")) {
                return (200, json!([]));
            }
            let sni = format!("{name}.default.default.dc1-default.external.{PEER_TRUST_DOMAIN}");
            return (
                200,
                json!([{"Service": {"Service": name, "Connect": {"PeerMeta": {"SNI": [sni]}}}}]),
            );
        }
        if path == "/v1/peerings" {
            if !self.peering {
                return (200, json!([]));
            }
            return (
                200,
                json!([{"Name": "east", "State": "ACTIVE",
                        "PeerCAPems": ["-----BEGIN CERTIFICATE-----\nPEER\n-----END CERTIFICATE-----\n"],
                        "PeerServerName": format!("server.dc2.peering.{PEER_TRUST_DOMAIN}"),
                        "Remote": {"Partition": "default", "Datacenter": "dc2"}},
                       {"Name": "west", "State": "PENDING"}]),
            );
        }
        if path == "/v1/agent/connect/ca/roots" {
            return (
                200,
                json!({"ActiveRootID": "r1", "TrustDomain": TRUST_DOMAIN,
                       "Roots": [{"ID": "r1", "RootCert": "-----BEGIN CERTIFICATE-----\nR1\n-----END CERTIFICATE-----\n", "Active": true},
                                 {"ID": "r0", "RootCert": "-----BEGIN CERTIFICATE-----\nR0\n-----END CERTIFICATE-----\n", "Active": false}]}),
            );
        }
        if let Some(name) = tail("/v1/agent/connect/ca/leaf/") {
            return (
                200,
                json!({"Service": name, "SerialNumber": "0a:0b", "ModifyIndex": 3,
                       "CertPEM": format!("-----BEGIN CERTIFICATE-----\n{name}\n-----END CERTIFICATE-----\n"),
                       "PrivateKeyPEM": "-----BEGIN EC PRIVATE KEY-----\nKEY\n-----END EC PRIVATE KEY-----\n"}),
            );
        }
        (404, Value::Null)
    }

    /// `PUT /v1/txn`: applied all or none, with check-and-set.
    fn txn(&mut self, body: Option<&Value>) -> (u16, Value) {
        let ops = body.and_then(Value::as_array).cloned().unwrap_or_default();
        if ops.len() > 128 {
            return (
                413,
                json!(format!(
                    "Transaction contains too many operations ({} > 128)",
                    ops.len()
                )),
            );
        }
        let mut errors = Vec::new();
        let mut node = self.node;
        let mut services = self.services.clone();
        let mut fresh = BTreeSet::new();
        for (i, op) in ops.iter().enumerate() {
            if op.get("Node").is_some() {
                if node {
                    errors.push(json!({"OpIndex": i, "What": "failed to set node \"lambdas\", index is stale"}));
                }
                node = true;
                continue;
            }
            let s = op.get("Service").cloned().unwrap_or(Value::Null);
            let verb = s.get("Verb").and_then(Value::as_str).unwrap_or_default();
            let id = s
                .pointer("/Service/ID")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            let want = s
                .pointer("/Service/ModifyIndex")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let current = services.get(&id).copied();
            if !node {
                errors.push(json!({"OpIndex": i, "What": "node lookup failed"}));
                continue;
            }
            let stale = |what: &str| json!({"OpIndex": i, "What": format!("failed to {what} service {id:?} on node \"lambdas\", index is stale")});
            match verb {
                "cas"
                    if (want == 0 && current.is_none()) || (want != 0 && current == Some(want)) =>
                {
                    fresh.insert(id.clone());
                    services.insert(id, 0);
                }
                "cas" => errors.push(stale("set")),
                "set" => {
                    fresh.insert(id.clone());
                    services.insert(id, 0);
                }
                "delete-cas" if current == Some(want) => {
                    services.remove(&id);
                }
                "delete-cas" => errors.push(stale("delete")),
                "delete" => {
                    services.remove(&id);
                }
                v => errors.push(json!({"OpIndex": i, "What": format!("unknown verb {v:?}")})),
            }
        }
        if !errors.is_empty() {
            return (409, json!({"Results": null, "Errors": errors}));
        }
        let i = self.bump();
        for id in fresh {
            if let Some(v) = services.get_mut(&id) {
                *v = i;
            }
        }
        self.node = node;
        self.services = services;
        (200, json!({"Results": [], "Errors": null}))
    }

    /// AWS: the result, or an error code and status.
    fn aws(&mut self, operation: &str, input: &Value) -> Result<Value, (&'static str, u16)> {
        let text = |key: &str| {
            input
                .get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let not_found = ("ResourceNotFoundException", 404);
        match operation {
            "GetCallerIdentity" => Ok(
                json!({"Account": ACCOUNT, "Arn": format!("arn:aws:iam::{ACCOUNT}:role/registrator")}),
            ),
            "GetParameter" => {
                // A credential: the host keeps its value and feeds back "".
                Ok(json!({"Parameter": {"Name": text("Name"), "Value": ""}}))
            }
            "GetResources" => {
                let start: usize = text("PaginationToken").parse().unwrap_or(0);
                let names: Vec<&String> = self.functions.keys().collect();
                let list: Vec<Value> = names
                    .iter()
                    .skip(start)
                    .take(100)
                    .map(|n| {
                        let tags: Vec<Value> = self
                            .tags(n)
                            .iter()
                            .map(|(k, v)| json!({"Key": k, "Value": v}))
                            .collect();
                        json!({"ResourceARN": arn(n), "Tags": tags})
                    })
                    .collect();
                let next = if start + 100 < names.len() {
                    (start + 100).to_string()
                } else {
                    String::new()
                };
                Ok(json!({"ResourceTagMappingList": list, "PaginationToken": next}))
            }
            "ListTags" => match function_of(&text("Resource")) {
                Some(name) if self.functions.contains_key(name) => {
                    Ok(json!({"Tags": self.tags(name)}))
                }
                _ => Err(not_found),
            },
            "ListAliases" => {
                // A name (of the registrator's account and region) or an ARN.
                let given = text("FunctionName");
                let function = match given.starts_with("arn:") {
                    true => given,
                    false => format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{given}"),
                };
                match function_of(&function).and_then(|n| self.functions.get(n)) {
                    Some(aliases) => {
                        let list: Vec<Value> = aliases
                            .iter()
                            .map(|a| json!({"AliasArn": format!("{function}:{a}"), "Name": a, "FunctionVersion": "1"}))
                            .collect();
                        Ok(json!({"Aliases": list}))
                    }
                    None => Err(not_found),
                }
            }
            "GetParametersByPath" => {
                let path = text("Path");
                let under = format!("{}/", path.trim_end_matches('/'));
                let start: usize = text("NextToken").parse().unwrap_or(0);
                let max = input
                    .get("MaxResults")
                    .and_then(Value::as_u64)
                    .unwrap_or(10)
                    .clamp(1, 10) as usize;
                let all: Vec<(&String, &String)> = self
                    .parameters
                    .iter()
                    .filter(|(n, _)| n.starts_with(&under))
                    .collect();
                let page: Vec<Value> = all
                    .iter()
                    .skip(start)
                    .take(max)
                    .map(|(n, v)| json!({"Name": n, "Value": v, "Type": "SecureString", "Version": 1}))
                    .collect();
                let mut out = json!({"Parameters": page});
                if start + max < all.len() {
                    out["NextToken"] = json!((start + max).to_string());
                }
                Ok(out)
            }
            "PutParameter" => {
                self.parameters.insert(text("Name"), text("Value"));
                Ok(json!({"Version": 2, "Tier": "Standard"}))
            }
            "DeleteParameter" => match self.parameters.remove(&text("Name")) {
                Some(_) => Ok(json!({})),
                None => Err(("ParameterNotFound", 400)),
            },
            _ => Ok(json!({})),
        }
    }

    /// The truthful answer (a write is applied), then the corruption the input asks for.
    fn answer(&mut self, r: &Wire, b: &mut Bytes) -> Fed {
        let corrupt = b.byte() % 16;
        let reply = if let Some(c) = &r.consul {
            let (status, body) = self.consul(c);
            let denied = body == json!(false);
            let reply = corrupt_consul(status, body, corrupt, b);
            if c.path == "/v1/agent/self" && names_other_datacenter(&reply) {
                self.unvouched = true;
            }
            // A create-only write said done when it was refused: the engine may
            // clean up the entry it takes for its own (which is the function's).
            if c.method != "GET" && denied && claims_done(&reply) {
                self.unvouched = true;
            }
            reply
        } else if let Some(call) = &r.aws {
            let truth = self.aws(&call.operation, &call.input);
            let tags = truth.as_ref().ok().map(tags_of);
            let reply = corrupt_aws(truth, corrupt, b);
            // A function's tags other than it has: it may not want its services.
            if call.operation == "ListTags" {
                if let Reply::Ok(v) = &reply {
                    let told = tags_of(v);
                    if told.is_some() && told != tags.flatten() {
                        self.unvouched = true;
                    }
                }
            }
            reply
        } else {
            Reply::error("transport", "no request", None)
        };
        Fed { id: r.id, reply }
    }
}

/// Whether an agent/self answer names a datacenter the agent is not in (then
/// the functions want their services there, and those in dc1 may go).
fn names_other_datacenter(reply: &Reply) -> bool {
    let Reply::Http {
        status: 200, body, ..
    } = reply
    else {
        return false;
    };
    let dc = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        v.pointer("/Config/Datacenter")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    dc.is_some_and(|dc| !dc.is_empty() && dc != DC)
}

/// Whether a Consul answer says a write was applied.
fn claims_done(reply: &Reply) -> bool {
    matches!(reply, Reply::Http { status: 200, body, .. } if body.trim() == "true")
}

/// The tags a ListTags result gives, as the core reads it (`None`: unreadable).
fn tags_of(v: &Value) -> Option<BTreeMap<String, String>> {
    serde_json::from_value::<ListTagsOutput>(v.clone())
        .ok()
        .map(|o| o.tags.unwrap_or_default())
}

/// Drops one element of a list answer (or, with `names`, one name of a map of
/// names).
fn drop_one(v: &mut Value, names: bool, b: &mut Bytes) {
    let i = usize::from(b.byte());
    let list = match v {
        Value::Array(l) => Some(l),
        Value::Object(o) => {
            let key = ["Services", "ResourceTagMappingList", "Parameters"]
                .into_iter()
                .find(|k| o.get(*k).is_some_and(Value::is_array));
            match key {
                Some(k) => o.get_mut(k).and_then(Value::as_array_mut),
                None if names => {
                    if let Some(k) = o.keys().nth(i % o.len().max(1)).cloned() {
                        o.remove(&k);
                    }
                    None
                }
                None => None,
            }
        }
        _ => None,
    };
    if let Some(l) = list.filter(|l| !l.is_empty()) {
        l.remove(i % l.len());
    }
}

fn corrupt_consul(status: u16, body: Value, corrupt: u8, b: &mut Bytes) -> Reply {
    let mut status = status;
    let mut headers = BTreeMap::new();
    let mut text = body.to_string();
    match corrupt {
        7 => return Reply::Ok(json!({})),
        8 => status = b.pick(&STATUSES),
        9 => {
            let cut = usize::from(b.byte()) * text.len() / 256;
            text.truncate(cut);
        }
        10 => {
            let n = usize::from(b.byte());
            text = String::from_utf8_lossy(b.take(n)).into_owned();
        }
        11 => {
            headers.insert("x-consul-results-filtered-by-acls".into(), "true".into());
        }
        12 => return Reply::error(b.pick(&HOST_ERRORS), "reset", None),
        13 => {
            let mut v = body;
            drop_one(&mut v, true, b);
            text = v.to_string();
        }
        14 => text = b.pick(&SHAPES).to_owned(),
        15 => {
            status = b.pick(&[429, 500, 503]);
            headers.insert("retry-after".into(), b.byte().to_string());
        }
        _ => {}
    }
    Reply::Http {
        status,
        headers,
        body: text,
    }
}

fn corrupt_aws(truth: Result<Value, (&'static str, u16)>, corrupt: u8, b: &mut Bytes) -> Reply {
    let mut v = match truth {
        Err((code, status)) => return Reply::error(code, "", Some(status)),
        Ok(v) => v,
    };
    match corrupt {
        7 => return Reply::http(200, &json!({})),
        8 | 12 => {
            let code = b.pick(&CODES);
            return Reply::error(code, "Rate exceeded", Some(b.pick(&STATUSES)));
        }
        9 | 14 => {
            return Reply::Ok(serde_json::from_str(b.pick(&SHAPES)).expect("a shape is JSON"));
        }
        10 => return Reply::error(b.pick(&HOST_ERRORS), "no credentials", None),
        13 => drop_one(&mut v, false, b),
        15 => {
            if let Some(o) = v.as_object_mut() {
                let key = if o.contains_key("Parameters") {
                    "NextToken"
                } else {
                    "PaginationToken"
                };
                o.insert(key.into(), json!("again"));
            }
        }
        _ => {}
    }
    Reply::Ok(v)
}

/// What a request deletes: service names, config entry names, parameter names'
/// last segment.
fn deleted(r: &Request) -> Vec<String> {
    let mut out = Vec::new();
    match r {
        Request::Consul(ConsulRequest::DeleteServiceDefaults { key, .. }) => {
            out.push(path_segment(&key.name).into_owned());
        }
        Request::Consul(ConsulRequest::Deregister { service_id, .. }) => {
            out.push(service_id.clone())
        }
        Request::Consul(ConsulRequest::Txn { ops, .. }) => {
            for op in ops {
                if let TxnOp::Deregister { service_id, .. } = op {
                    out.push(service_id.clone());
                }
            }
        }
        Request::Aws(AwsRequest::DeleteParameter { name }) => out.push(last_segment(name)),
        _ => {}
    }
    out.sort();
    out
}

/// The same, as the host reads the request.
fn deleted_wire(r: &Wire) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = &r.consul {
        if c.method == "DELETE" {
            out.push(last_segment(&c.path));
        }
        if c.path == "/v1/catalog/deregister" {
            if let Some(id) = c.body.as_ref().and_then(|b| b.get("ServiceID")) {
                out.push(id.as_str().unwrap_or_default().to_owned());
            }
        }
        if c.path == "/v1/txn" {
            for op in c
                .body
                .as_ref()
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(s) = op.get("Service") else { continue };
                let verb = s.get("Verb").and_then(Value::as_str).unwrap_or_default();
                if verb.starts_with("delete") {
                    let id = s.pointer("/Service/ID").and_then(Value::as_str);
                    out.push(id.unwrap_or_default().to_owned());
                }
            }
        }
    }
    if let Some(call) = &r.aws {
        if call.operation.starts_with("Delete") {
            let name = call
                .input
                .get("Name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            out.push(last_segment(name));
        }
    }
    out.sort();
    out
}

/// Whether arbitrary text fed as answers may hold answers (then the world cannot
/// vouch for what the engine was told).
fn may_hold_answers(text: &str) -> bool {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(l)) => l.iter().any(Value::is_object),
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let shape = b.byte();
    let mut functions = BTreeMap::new();
    for i in 0..usize::from(shape % 5) {
        let n = usize::from(b.byte()) % 4;
        functions.insert(format!("f{i}"), ALIASES[..n].to_vec());
    }
    let flags = b.byte();
    let mode = if shape & 0x10 != 0 {
        "ASYNCHRONOUS"
    } else {
        "SYNCHRONOUS"
    };
    let extension = shape & 0x80 != 0;
    let mut world = World::new(functions, mode, extension, flags);
    let wanted = world.wanted();
    let mut env = BTreeMap::from([(
        "CONSUL_HTTP_ADDR".to_owned(),
        "http://127.0.0.1:8500".to_owned(),
    )]);
    if shape & 0x20 != 0 {
        env.insert("DATACENTER".into(), DC.into());
    }
    if shape & 0x40 != 0 {
        env.insert("CONSUL_HTTP_TOKEN_PATH".into(), "/cls/token".into());
    }
    if extension {
        env.insert("CONSUL_EXTENSION_DATA_PREFIX".into(), DATA_PREFIX.into());
    }
    let start = Start {
        env,
        region: REGION.into(),
        account_id: Some(ACCOUNT.into()),
        // One function (by name) instead of a full sync.
        function: (flags & 0x01 != 0).then(|| "f0".to_owned()),
        seed: Some(1),
        ..Start::default()
    };
    // `typed` is fed with `feed`, `json` with `feed_json`: they must agree throughout.
    let mut typed = Engine::new(start.clone());
    let mut json = Engine::new(start);
    // ENGINE_TRACE=1 cargo fuzz run engine <crash file>: print every request and answer.
    let trace = std::env::var_os("ENGINE_TRACE").is_some();
    let mut now = 0u64;
    for _ in 0..500 {
        let remaining = Some(900_000u64.saturating_sub(now));
        let step = typed.next(now, remaining);
        let text = serde_json::to_string(&step).expect("a step serialises");
        let other = serde_json::to_string(&json.next(now, remaining)).expect("a step serialises");
        assert_eq!(text, other, "feed and feed_json led to different steps");
        let requests = match &step {
            Step::Done { .. } => return,
            Step::Sleep { ms, .. } => {
                now += ms;
                continue;
            }
            Step::Send { requests, .. } => requests,
        };
        let view = wire(&serde_json::from_str(&text).expect("a step is JSON"));
        let ids: Vec<u64> = requests.iter().map(|s| s.id).collect();
        assert_eq!(ids, view.iter().map(|w| w.id).collect::<Vec<_>>());
        assert!(!view.is_empty(), "a send step without requests");
        for (sent, w) in requests.iter().zip(&view) {
            let names = deleted(&sent.request);
            assert_eq!(
                names,
                deleted_wire(w),
                "the wire deletes other names: {w:?}"
            );
            if world.unvouched {
                continue;
            }
            for name in names {
                assert!(
                    !wanted.contains(&name),
                    "deleted {name}, which a live function wants: {w:?}"
                );
            }
        }
        now += 10;
        let batch = b.byte();
        if batch == 0xA5 {
            // The answers as arbitrary JSON text: rejected, never a panic.
            let n = usize::from(b.byte());
            let text = String::from_utf8_lossy(b.take(n)).into_owned();
            world.unvouched |= may_hold_answers(&text);
            let r1 = typed.feed_json(&text, now);
            let r2 = json.feed_json(&text, now);
            assert_eq!(r1, r2, "the same text fed twice was taken differently");
            continue;
        }
        let mut answers: Vec<Fed> = view.iter().map(|r| world.answer(r, &mut b)).collect();
        let mut refused = false;
        match batch {
            // An answer no request waits for.
            0xA6 => {
                let last = ids.iter().copied().max().unwrap_or(0);
                let id = match b.byte() {
                    0 => 0,
                    k => last + u64::from(k),
                };
                let at = usize::from(b.byte()) % (answers.len() + 1);
                answers.insert(
                    at,
                    Fed {
                        id,
                        reply: Reply::http(200, &json!(true)),
                    },
                );
                refused = true;
            }
            // One answer twice: the second waits for nothing.
            0xA7 => {
                let i = usize::from(b.byte()) % answers.len();
                let again = answers[i].clone();
                answers.push(again);
                refused = true;
            }
            // One answer short: it counts as unanswered at the next step.
            0xA8 => {
                let i = usize::from(b.byte()) % answers.len();
                answers.remove(i);
            }
            // Any order.
            0xA9 => answers.reverse(),
            _ => {}
        }
        let list = Value::Array(answers.iter().map(Fed::json).collect()).to_string();
        if trace {
            for w in &view {
                eprintln!("-> {w:?}");
            }
            eprintln!("<- {list}");
        }
        let r1 = typed.feed(answers.iter().map(Fed::typed).collect(), now);
        let r2 = json.feed_json(&list, now);
        assert_eq!(r1.is_err(), refused, "{r1:?}");
        assert_eq!(
            r1, r2,
            "feed and feed_json took the same answers differently"
        );
    }
    panic!("the engine did not end within 500 steps");
});
