//! The sync engine driven against a model of Consul and AWS: the requests it
//! makes, what it does with every kind of answer, and that it converges. The
//! model keeps Consul's semantics that the engine relies on (ModifyIndex,
//! check-and-set on config entries and in transactions, atomic transactions with
//! a size limit, 409 with `Errors`). Real servers: the hosts' end-to-end suites.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod host;

use consul_lambda_sync::engine::outcome::{OpStatus, SyncResult, Verdict};
use consul_lambda_sync::engine::{Engine, Start};
use host::{as_http, feed, view, Answer, AnswerError, WireRequest};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const PREFIX: &str = "serverless.consul.hashicorp.com/v1alpha1/lambda/";

fn arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
}

#[derive(Default)]
struct World {
    functions: BTreeMap<String, BTreeMap<String, String>>,
    node: bool,
    services: BTreeMap<String, (u64, Vec<String>)>,
    entries: BTreeMap<String, (u64, Value)>,
    index: u64,
    txn_limit: usize,
    /// Every request, as `METHOD path`.
    seen: Vec<String>,
    /// Writes that were applied but whose answer is "lost" (a transport error).
    lose_next_write: usize,
    /// Answers 503 with Retry-After to the next N reads.
    busy_reads: usize,
    /// Sets the ACL-filtered header on node-services.
    filtered: bool,
    /// Runs before each config write is applied (a concurrent writer).
    race_entry: Option<String>,
    /// GetResources answers this token forever (a pagination loop).
    loop_token: Option<String>,
    /// Mesh config entries by `kind/name`.
    mesh: BTreeMap<String, (u64, Value)>,
    /// A person's edit of a mesh entry, made just before the registrator's next write of it.
    mesh_race: Option<(String, Value)>,
    /// Answers 403 to the next N mesh entry writes.
    mesh_denied: usize,
    /// Replaces the answer of `GET /v1/agent/self`.
    agent_self: Option<(u16, Value)>,
    /// Answers every service-defaults write with this status and text.
    entry_writes_fail: Option<(u16, String)>,
    /// Services on other nodes: (datacenter, name) → node.
    elsewhere: BTreeMap<(String, String), String>,
    /// More datacenters than `dc1`.
    more_dcs: Vec<String>,
    /// Aliases (`ARN:ALIAS`) that do not exist; every other one its tag names does.
    missing_aliases: BTreeSet<String>,
    /// `ListAliases` page size (0: Lambda's 50).
    alias_page: usize,
    /// `ListAliases` of this function answers not found (deleted after the listing).
    vanish_before_aliases: Option<String>,
    /// Registers this name on node `lambdas` (without the managed tag) just
    /// before the next catalog transaction: a lost race.
    race_register: Option<String>,
    /// Someone rewrites this entry just before the registrator's delete of it.
    edit_before_delete: Option<String>,
    /// The agent dies after this many writes: every later Consul request gets no answer.
    down_after_writes: Option<usize>,
    /// Consul requests sent to the dead agent.
    sent_while_down: usize,
    /// The signed AWS calls (`Start.aws`).
    signed: Vec<host::HttpCall>,
}

/// What Consul (1.22) answers 500 to in a mesh entry: `Meta` over 64 pairs, a
/// key over 128 bytes or a value over 512; an exported service without consumers.
fn consul_rejects(body: &Value) -> Option<String> {
    let meta = body.get("Meta").and_then(Value::as_object);
    if meta.is_some_and(|m| m.len() > 64) {
        return Some("Meta exceeds maximum element count 64".into());
    }
    for (k, v) in meta.into_iter().flatten() {
        if k.len() > 128 {
            return Some(format!("Meta key {k:?} exceeds maximum length 128"));
        }
        if v.as_str().is_some_and(|v| v.len() > 512) {
            return Some(format!(
                "Meta value for key {k:?} exceeds maximum length 512"
            ));
        }
    }
    let services = body.get("Services").and_then(Value::as_array);
    let exported = body["Kind"] == "exported-services";
    services
        .into_iter()
        .flatten()
        .enumerate()
        .find_map(|(i, s)| {
            let none = s["Consumers"].as_array().map_or(true, Vec::is_empty);
            (exported && none).then(|| format!("Services[{i}]: must have at least one consumer"))
        })
}

/// Consul's check-and-set on a config entry write: applies `body` when `cas`
/// allows (none: always; 0: only if absent; n: only at ModifyIndex n).
fn cas_write(
    entries: &mut BTreeMap<String, (u64, Value)>,
    index: &mut u64,
    key: String,
    cas: Option<u64>,
    body: Value,
) -> bool {
    let current = entries.get(&key).map(|e| e.0);
    let applies = match cas {
        None => true,
        Some(0) => current.is_none(),
        Some(n) => current == Some(n),
    };
    if applies {
        *index += 1;
        entries.insert(key, (*index, body));
    }
    applies
}

impl World {
    fn new() -> Self {
        World {
            index: 10,
            txn_limit: 128,
            ..World::default()
        }
    }

    fn tag(&mut self, name: &str, tags: &[(&str, &str)]) {
        let mut t: BTreeMap<String, String> = tags
            .iter()
            .map(|(k, v)| (format!("{PREFIX}{k}"), (*v).to_owned()))
            .collect();
        t.entry(format!("{PREFIX}enabled"))
            .or_insert_with(|| "true".into());
        self.functions.insert(arn(name), t);
    }

    fn bump(&mut self) -> u64 {
        self.index += 1;
        self.index
    }

    fn writes(&self) -> usize {
        self.seen
            .iter()
            .filter(|s| !s.starts_with("GET") && !s.starts_with("aws"))
            .count()
    }

    fn answer(&mut self, r: &WireRequest) -> Answer {
        if let Some(call) = &r.http {
            let (operation, input) = call.operation();
            self.seen.push(format!("aws {operation}"));
            self.signed.push(call.clone());
            let answer = self.aws(r.id, &operation, &input);
            return as_http(call, answer);
        }
        if let Some(aws) = &r.aws {
            self.seen.push(format!("aws {}", aws.operation));
            return self.aws(r.id, &aws.operation, &aws.input);
        }
        let c = r.consul.as_ref().unwrap();
        if self.down_after_writes.is_some_and(|n| self.writes() >= n) {
            self.sent_while_down += 1;
            return Answer {
                id: r.id,
                error: Some(AnswerError {
                    code: "transport".into(),
                    message: "connection refused".into(),
                    status: None,
                }),
                ..Answer::default()
            };
        }
        self.seen.push(format!("{} {}", c.method, c.path));
        let ok = |status: u16, body: Value| Answer {
            id: r.id,
            status: Some(status),
            body: Some(body.to_string()),
            ..Answer::default()
        };
        if c.method == "GET" && self.busy_reads > 0 {
            self.busy_reads -= 1;
            let mut a = ok(503, json!("busy"));
            a.headers.insert("retry-after".into(), "1".into());
            return a;
        }
        let cas: Option<u64> = c.query.get("cas").map(|v| v.parse().unwrap());
        let mut answer = match (c.method.as_str(), c.path.as_str()) {
            ("GET", "/v1/agent/self") => match self.agent_self.clone() {
                Some((status, body)) => ok(status, body),
                None => ok(200, json!({"Config": {"Datacenter": "dc1"}})),
            },
            ("GET", "/v1/catalog/datacenters") => {
                let mut dcs = vec!["dc1".to_owned()];
                dcs.extend(self.more_dcs.iter().cloned());
                ok(200, json!(dcs))
            }
            ("GET", "/v1/catalog/services") => {
                let dc = c.query.get("dc").cloned().unwrap_or_else(|| "dc1".into());
                assert_eq!(
                    c.query.get("filter").map(String::as_str),
                    Some("Node != \"lambdas\"")
                );
                let names: serde_json::Map<String, Value> = self
                    .elsewhere
                    .keys()
                    .filter(|(d, _)| *d == dc)
                    .map(|(_, n)| (n.clone(), json!([])))
                    .collect();
                ok(200, Value::Object(names))
            }
            ("GET", p) if p.starts_with("/v1/catalog/service/") => {
                let dc = c.query.get("dc").cloned().unwrap_or_else(|| "dc1".into());
                let name = p["/v1/catalog/service/".len()..].to_owned();
                let list: Vec<Value> = self
                    .elsewhere
                    .get(&(dc, name.clone()))
                    .map(|node| json!({"Node": node, "ServiceName": name}))
                    .into_iter()
                    .collect();
                ok(200, json!(list))
            }
            ("GET", "/v1/catalog/node-services/lambdas") => {
                if !self.node {
                    ok(404, Value::Null)
                } else {
                    let services: Vec<Value> = self
                        .services
                        .iter()
                        .map(|(id, (idx, tags))| json!({"ID": id, "Service": id, "Tags": tags, "ModifyIndex": idx}))
                        .collect();
                    let mut a = ok(
                        200,
                        json!({"Node": {"Node": "lambdas"}, "Services": services}),
                    );
                    if self.filtered {
                        a.headers
                            .insert("x-consul-results-filtered-by-acls".into(), "true".into());
                    }
                    a
                }
            }
            ("GET", "/v1/config/service-defaults") => {
                let list: Vec<Value> = self
                    .entries
                    .values()
                    .map(|(idx, body)| {
                        let mut b = body.clone();
                        b["ModifyIndex"] = json!(idx);
                        b
                    })
                    .collect();
                ok(200, Value::Array(list))
            }
            ("GET", p)
                if p.starts_with("/v1/config/terminating-gateway/")
                    || p.starts_with("/v1/config/exported-services/") =>
            {
                match self.mesh.get(&p["/v1/config/".len()..]) {
                    Some((idx, body)) => {
                        let mut b = body.clone();
                        b["ModifyIndex"] = json!(idx);
                        b["CreateIndex"] = json!(1);
                        ok(200, b)
                    }
                    None => ok(404, json!("Config entry not found")),
                }
            }
            ("PUT", "/v1/config")
                if c.body.as_ref().is_some_and(|b| {
                    b["Kind"] == "terminating-gateway" || b["Kind"] == "exported-services"
                }) =>
            {
                if self.mesh_denied > 0 {
                    self.mesh_denied -= 1;
                    return ok(403, json!("Permission denied: token lacks mesh:write"));
                }
                let body = c.body.clone().unwrap();
                assert!(body.get("ModifyIndex").is_none() && body.get("CreateIndex").is_none());
                if let Some(why) = consul_rejects(&body) {
                    return ok(500, json!(why));
                }
                let key = format!(
                    "{}/{}",
                    body["Kind"].as_str().unwrap(),
                    body["Name"].as_str().unwrap()
                );
                if let Some((k, edit)) = self.mesh_race.take() {
                    assert_eq!(k, key);
                    let i = self.bump();
                    self.mesh.insert(key.clone(), (i, edit));
                }
                let applies = cas_write(&mut self.mesh, &mut self.index, key, cas, body);
                ok(200, json!(applies))
            }
            ("GET", p) if p.starts_with("/v1/config/service-defaults/") => {
                let name = &p["/v1/config/service-defaults/".len()..];
                match self.entries.get(name) {
                    Some((idx, body)) => {
                        let mut b = body.clone();
                        b["ModifyIndex"] = json!(idx);
                        ok(200, b)
                    }
                    None => ok(404, Value::Null),
                }
            }
            ("PUT", "/v1/config") if self.entry_writes_fail.is_some() => {
                let (status, text) = self.entry_writes_fail.clone().unwrap();
                Answer {
                    id: r.id,
                    status: Some(status),
                    body: Some(text),
                    ..Answer::default()
                }
            }
            ("PUT", "/v1/config") => {
                let body = c.body.clone().unwrap();
                let name = body["Name"].as_str().unwrap().to_owned();
                if self.race_entry.as_deref() == Some(name.as_str()) {
                    self.race_entry = None;
                    let i = self.bump();
                    self.entries.insert(
                        name.clone(),
                        (
                            i,
                            json!({"Kind": "service-defaults", "Name": name, "Protocol": "grpc"}),
                        ),
                    );
                }
                let applies = cas_write(&mut self.entries, &mut self.index, name, cas, body);
                ok(200, json!(applies))
            }
            ("DELETE", p) if p.starts_with("/v1/config/service-defaults/") => {
                let name = p["/v1/config/service-defaults/".len()..].to_owned();
                if self.edit_before_delete.as_deref() == Some(name.as_str()) {
                    self.edit_before_delete = None;
                    let i = self.bump();
                    if let Some(e) = self.entries.get_mut(&name) {
                        e.0 = i;
                        e.1["Meta"] = json!({"edited": "by someone"});
                    }
                }
                let current = self.entries.get(&name).map(|e| e.0);
                let applies = match cas {
                    None => true,
                    Some(n) => current == Some(n),
                };
                if applies {
                    self.entries.remove(&name);
                }
                ok(
                    200,
                    if cas.is_some() {
                        json!(applies)
                    } else {
                        json!({})
                    },
                )
            }
            ("PUT", "/v1/txn") => {
                if let Some(name) = self.race_register.take() {
                    let i = self.bump();
                    self.node = true;
                    self.services.insert(name, (i, vec!["theirs".into()]));
                }
                self.txn(r.id, c.body.as_ref().unwrap())
            }
            other => panic!("unexpected request {other:?}"),
        };
        if c.method != "GET" && self.lose_next_write > 0 && answer.status == Some(200) {
            self.lose_next_write -= 1;
            answer = Answer {
                id: r.id,
                error: Some(AnswerError {
                    code: "transport".into(),
                    message: "connection reset".into(),
                    status: None,
                }),
                ..Answer::default()
            };
        }
        answer
    }

    fn txn(&mut self, id: u64, body: &Value) -> Answer {
        let ops = body.as_array().unwrap();
        let status = |s: u16, b: Value| Answer {
            id,
            status: Some(s),
            body: Some(b.to_string()),
            ..Answer::default()
        };
        if ops.len() > self.txn_limit {
            return status(
                413,
                json!(format!(
                    "Transaction contains too many operations ({} > {})",
                    ops.len(),
                    self.txn_limit
                )),
            );
        }
        let mut errors = Vec::new();
        let mut node = self.node;
        let mut services = self.services.clone();
        for (i, op) in ops.iter().enumerate() {
            if let Some(n) = op.get("Node") {
                assert_eq!(n["Verb"], "cas");
                if node {
                    errors.push(json!({"OpIndex": i, "What": "failed to set node \"lambdas\", index is stale"}));
                }
                node = true;
                continue;
            }
            let s = &op["Service"];
            let verb = s["Verb"].as_str().unwrap();
            let svc = &s["Service"];
            let sid = svc["ID"].as_str().unwrap().to_owned();
            let want = svc["ModifyIndex"].as_u64().unwrap_or(0);
            let current = services.get(&sid).map(|e| e.0);
            if !node {
                errors.push(json!({"OpIndex": i, "What": "node lookup failed"}));
                continue;
            }
            match verb {
                "cas" => {
                    let ok = if want == 0 {
                        current.is_none()
                    } else {
                        current == Some(want)
                    };
                    if ok {
                        let tags: Vec<String> =
                            serde_json::from_value(svc["Tags"].clone()).unwrap_or_default();
                        services.insert(sid, (0, tags));
                    } else {
                        errors.push(json!({"OpIndex": i, "What": format!("failed to set service {sid:?} on node \"lambdas\", index is stale")}));
                    }
                }
                "delete-cas" => {
                    if current == Some(want) {
                        services.remove(&sid);
                    } else {
                        errors.push(json!({"OpIndex": i, "What": format!("failed to delete service {sid:?} on node \"lambdas\", index is stale")}));
                    }
                }
                "set" => {
                    services.insert(sid, (0, vec![]));
                }
                "delete" => {
                    services.remove(&sid);
                }
                v => panic!("verb {v}"),
            }
        }
        if !errors.is_empty() {
            return status(409, json!({"Results": null, "Errors": errors}));
        }
        let i = self.bump();
        for (_, v) in services.iter_mut() {
            if v.0 == 0 {
                v.0 = i;
            }
        }
        self.node = node;
        self.services = services;
        status(200, json!({"Results": [], "Errors": null}))
    }

    fn aws(&mut self, id: u64, operation: &str, input: &Value) -> Answer {
        let ok = |v: Value| Answer {
            id,
            ok: Some(v),
            ..Answer::default()
        };
        match operation {
            "GetCallerIdentity" => ok(json!({"Account": ACCOUNT})),
            "GetResources" => {
                let start: usize = input["PaginationToken"]
                    .as_str()
                    .map_or(0, |t| t.parse().unwrap_or(0));
                let all: Vec<(&String, &BTreeMap<String, String>)> =
                    self.functions.iter().collect();
                let page: Vec<Value> = all
                    .iter()
                    .skip(start)
                    .take(100)
                    .map(|(a, tags)| {
                        json!({"ResourceARN": a, "Tags": tags.iter().map(|(k, v)| json!({"Key": k, "Value": v})).collect::<Vec<_>>()})
                    })
                    .collect();
                let next = if let Some(t) = &self.loop_token {
                    t.clone()
                } else if start + 100 < all.len() {
                    (start + 100).to_string()
                } else {
                    String::new()
                };
                ok(json!({"ResourceTagMappingList": page, "PaginationToken": next}))
            }
            "ListAliases" => {
                // A name (of the registrator's account and region) or an ARN.
                let given = input["FunctionName"].as_str().unwrap();
                let function = &if given.starts_with("arn:") {
                    given.to_owned()
                } else {
                    arn(given)
                };
                let gone = self.vanish_before_aliases.as_deref() == Some(function);
                let Some(tags) = self.functions.get(function).filter(|_| !gone) else {
                    return Answer {
                        id,
                        error: Some(AnswerError {
                            code: "ResourceNotFoundException".into(),
                            message: format!("Function not found: {function}"),
                            status: Some(404),
                        }),
                        ..Answer::default()
                    };
                };
                // The aliases its tag names, less the missing ones; pages of
                // `alias_page` (Lambda's 50 by default).
                let names: Vec<&str> = tags
                    .get(&format!("{PREFIX}aliases"))
                    .map_or("", String::as_str)
                    .split('+')
                    .filter(|a| !a.is_empty())
                    .filter(|a| !self.missing_aliases.contains(&format!("{function}:{a}")))
                    .collect();
                let start: usize = input["Marker"].as_str().map_or(0, |m| m.parse().unwrap());
                let size = if self.alias_page == 0 {
                    50
                } else {
                    self.alias_page
                };
                let page: Vec<Value> = names
                    .iter()
                    .skip(start)
                    .take(size)
                    .map(|a| json!({"AliasArn": format!("{function}:{a}"), "Name": a}))
                    .collect();
                let mut out = json!({"Aliases": page});
                if start + size < names.len() {
                    out["NextMarker"] = json!((start + size).to_string());
                }
                ok(out)
            }
            "ListTags" => {
                let name = input["Resource"].as_str().unwrap();
                match self.functions.get(name) {
                    Some(tags) => ok(json!({"Tags": tags})),
                    None => Answer {
                        id,
                        error: Some(AnswerError {
                            code: "ResourceNotFoundException".into(),
                            message: "Function not found".into(),
                            status: Some(404),
                        }),
                        ..Answer::default()
                    },
                }
            }
            "GetParameter" => match input["Name"].as_str().unwrap() {
                // The host keeps the token and feeds the value back blank.
                "/cls/token" => ok(
                    json!({"Parameter": {"Name": "/cls/token", "Type": "SecureString", "Value": ""}}),
                ),
                name => Answer {
                    id,
                    error: Some(AnswerError {
                        code: "ParameterNotFound".into(),
                        message: format!("Parameter {name} not found."),
                        status: Some(400),
                    }),
                    ..Answer::default()
                },
            },
            other => panic!("unexpected AWS call {other}"),
        }
    }
}

/// Runs one invocation to its end; returns the result and the sleeps asked for.
fn run(world: &mut World, start: Start) -> (SyncResult, Vec<u64>) {
    let mut engine = Engine::new(start);
    let mut now = 0;
    let mut sleeps = Vec::new();
    for _ in 0..10_000 {
        let step = view(engine.next(now, None));
        if let Some(done) = step.done {
            return (*done, sleeps);
        }
        if let Some(ms) = step.sleep {
            sleeps.push(ms);
            now += ms;
            continue;
        }
        let answers: Vec<Answer> = step.send.unwrap().iter().map(|r| world.answer(r)).collect();
        now += 1;
        feed(&mut engine, answers, now).unwrap();
    }
    panic!("the engine did not finish");
}

fn start() -> Start {
    Start {
        env: BTreeMap::from([(
            "CONSUL_HTTP_ADDR".to_owned(),
            "http://127.0.0.1:8500".to_owned(),
        )]),
        account_id: Some(ACCOUNT.into()),
        region: REGION.into(),
        seed: Some(7),
        compact: Some(false),
        ..Start::default()
    }
}

fn world_with(n: usize) -> World {
    let mut w = World::new();
    for i in 0..n {
        w.tag(&format!("f{i:04}"), &[]);
    }
    w
}

#[test]
fn cold_sync_writes_in_transactions_then_nothing() {
    let mut w = world_with(250);
    w.tag("aliased", &[("aliases", "live+beta")]);
    let (r, _) = run(&mut w, start());
    assert!(r.ok, "{}", r.message);
    assert_eq!(r.verdict, Verdict::Ok);
    assert_eq!(w.services.len(), 253);
    assert_eq!(w.entries.len(), 253);
    let txns = w.seen.iter().filter(|s| *s == "PUT /v1/txn").count();
    assert_eq!(txns, 2, "ceil(253/128) transactions");
    assert_eq!(r.requests.consul.transactions, 2);
    assert_eq!(
        w.writes(),
        253 + 2,
        "one write per entry, and the transactions"
    );
    assert_eq!(r.requests.aws.calls.get("GetResources"), Some(&3));
    // The second sync writes nothing.
    w.seen.clear();
    let (r2, _) = run(&mut w, start());
    assert!(r2.ok);
    assert_eq!(w.writes(), 0, "{:?}", w.seen);
    assert_eq!(r2.plan.unwrap().summary.unchanged, 253);
}

#[test]
fn config_entries_use_check_and_set() {
    let mut w = world_with(3);
    run(&mut w, start());
    // Drift: the mode changes; the update carries the observed index.
    w.tag("f0001", &[("invocation-mode", "ASYNCHRONOUS")]);
    let idx = w.entries["f0001"].0;
    let mut engine = Engine::new(start());
    let mut sent = Vec::new();
    loop {
        let step = view(engine.next(0, None));
        if step.done.is_some() {
            break;
        }
        let reqs = step.send.unwrap();
        sent.extend(reqs.iter().filter_map(|r| r.consul.clone()));
        let answers = reqs.iter().map(|r| w.answer(r)).collect();
        feed(&mut engine, answers, 0).unwrap();
    }
    let put = sent.iter().find(|c| c.path == "/v1/config").unwrap();
    assert_eq!(put.query.get("cas"), Some(&idx.to_string()));
    assert_eq!(
        w.entries["f0001"].1["EnvoyExtensions"][0]["Arguments"]["invocationMode"],
        "asynchronous"
    );
}

#[test]
fn an_entry_created_between_read_and_write_is_left_alone() {
    let mut w = world_with(2);
    w.race_entry = Some("f0001".into());
    let (r, _) = run(&mut w, start());
    // Not a failed sync: the service is left as it is and reported.
    assert!(r.ok, "{}", r.message);
    assert_eq!(
        r.operations.conflicts, 2,
        "the entry write and the registration after it"
    );
    assert_eq!(
        w.entries["f0001"].1["Protocol"], "grpc",
        "the other writer's entry stands"
    );
    assert!(!w.services.contains_key("f0001"));
    assert!(w.services.contains_key("f0000"));
    let o = r
        .outcomes
        .iter()
        .find(|o| o.service.name == "f0001" && o.status == OpStatus::Conflict)
        .unwrap();
    assert!(o.error.as_deref().unwrap().contains("check-and-set"));
}

#[test]
fn a_lost_answer_to_an_applied_write_is_not_a_conflict() {
    let mut w = world_with(3);
    w.lose_next_write = 1; // the first config write
    let (r, _) = run(&mut w, start());
    assert!(r.ok, "{}", r.message);
    assert_eq!(r.operations.conflicts, 0);
    assert_eq!(w.entries.len(), 3);
    // The lost transaction answer: checked by reading the node back.
    let mut w = world_with(3);
    w.lose_next_write = 4; // three config writes and the transaction
    let (r, _) = run(&mut w, start());
    assert!(r.ok, "{}", r.message);
    assert_eq!(r.operations.conflicts, 0);
    assert_eq!(w.services.len(), 3);
    assert_eq!(
        w.seen.iter().filter(|s| *s == "PUT /v1/txn").count(),
        1,
        "{:?}",
        w.seen
    );
}

#[test]
fn too_large_transactions_are_split() {
    let mut w = world_with(40);
    w.txn_limit = 16;
    let (r, _) = run(&mut w, start());
    assert!(r.ok, "{}", r.message);
    assert_eq!(w.services.len(), 40);
}

#[test]
fn a_rejected_operation_does_not_block_the_others() {
    let mut w = world_with(5);
    run(&mut w, start());
    // f0002 is untagged; someone re-registers it meanwhile (its index moves).
    w.functions.remove(&arn("f0002"));
    w.tag("f0009", &[]);
    let mut engine = Engine::new(start());
    let mut now = 0;
    let result = loop {
        let step = view(engine.next(now, None));
        if let Some(done) = step.done {
            break done;
        }
        if let Some(ms) = step.sleep {
            now += ms;
            continue;
        }
        let reqs = step.send.unwrap();
        if reqs
            .iter()
            .any(|r| r.consul.as_ref().is_some_and(|c| c.path == "/v1/txn"))
        {
            if let Some(e) = w.services.get_mut("f0002") {
                e.0 += 100;
            }
        }
        let answers = reqs.iter().map(|r| w.answer(r)).collect();
        feed(&mut engine, answers, now).unwrap();
    };
    assert!(
        w.services.contains_key("f0009"),
        "the registration went through"
    );
    assert!(
        w.services.contains_key("f0002"),
        "the changed service was not deleted"
    );
    assert_eq!(
        result.operations.conflicts, 2,
        "its deregistration and the entry deletion after it"
    );
}

#[test]
fn retry_after_is_honoured() {
    let mut w = world_with(1);
    w.busy_reads = 1;
    let (r, sleeps) = run(&mut w, start());
    assert!(r.ok, "{}", r.message);
    assert!(sleeps.iter().any(|s| *s >= 1000), "{sleeps:?}");
}

#[test]
fn agent_self_without_a_datacenter_stops_before_any_write() {
    // Found by the engine fuzz target: a 200 without Config.Datacenter, or a 404, used to
    // leave the datacenter unnamed, so the wanted services were planned for "no
    // datacenter" while the registered ones were observed in dc1: deregistered
    // and registered again.
    for (status, body) in [
        (200, json!(null)),
        (200, json!({})),
        (200, json!({"Config": {"Datacenter": ""}})),
        (404, json!({"Config": {"Datacenter": "dc1"}})),
    ] {
        let mut w = world_with(2);
        run(&mut w, start());
        w.seen.clear();
        w.agent_self = Some((status, body.clone()));
        let (r, _) = run(&mut w, start());
        assert!(!r.ok, "{body}");
        assert_eq!(w.writes(), 0, "{body}: {:?}", w.seen);
        assert_eq!(r.failure.unwrap().code.as_str(), "invalid_response");
    }
}

#[test]
fn filtered_answers_stop_before_any_write() {
    let mut w = world_with(2);
    run(&mut w, start());
    w.filtered = true;
    w.functions.clear();
    w.seen.clear();
    let (r, _) = run(&mut w, start());
    assert!(!r.ok);
    assert_eq!(w.writes(), 0);
    assert_eq!(r.failure.unwrap().code.as_str(), "acl_filtered");
}

#[test]
fn dry_run_and_short_time_write_nothing() {
    let mut w = world_with(4);
    let mut s = start();
    s.dry_run = Some(true);
    let (r, _) = run(&mut w, s);
    assert!(r.ok && r.dry_run);
    assert_eq!(w.writes(), 0);
    assert_eq!(r.operations.planned, 8);

    let mut engine = Engine::new(start());
    let mut w = world_with(4);
    let result = loop {
        let step = view(engine.next(0, Some(1_000)));
        if let Some(done) = step.done {
            break done;
        }
        let answers = step.send.unwrap().iter().map(|r| w.answer(r)).collect();
        feed(&mut engine, answers, 0).unwrap();
    };
    assert_eq!(w.writes(), 0);
    assert!(result.partial && !result.ok);
    assert_eq!(result.verdict, Verdict::Partial);
}

#[test]
fn removal_deregisters_and_deletes_with_check_and_set() {
    let mut w = world_with(12);
    run(&mut w, start());
    w.functions.remove(&arn("f0003"));
    let (r, _) = run(&mut w, start());
    assert!(r.ok, "{}", r.message);
    assert!(!w.services.contains_key("f0003"));
    assert!(!w.entries.contains_key("f0003"));
    assert_eq!(
        r.requests.aws.calls.get("ListTags"),
        Some(&1),
        "the absence was confirmed"
    );
}

#[test]
fn bad_configuration_ends_at_the_first_step() {
    let mut s = start();
    s.env.insert("DRY_RUN".into(), "maybe".into());
    s.env.insert("PAGE_SIZE".into(), "0".into());
    let mut engine = Engine::new(s);
    let step = view(engine.next(0, None));
    let done = step.done.unwrap();
    assert_eq!(done.verdict, Verdict::InvalidConfig);
    assert_eq!(done.exit_code, 3);
    assert_eq!(done.failure.unwrap().errors.len(), 2);
}

#[test]
fn unanswered_requests_are_an_error_not_a_panic() {
    let mut engine = Engine::new(start());
    let step = view(engine.next(0, None));
    assert!(step.send.is_some());
    let bad = Answer {
        id: 999,
        status: Some(200),
        ..Answer::default()
    };
    assert!(feed(&mut engine, vec![bad], 0).is_err());
    // next() without feeding: the requests count as unanswered and are retried.
    let step = view(engine.next(1, None));
    assert!(step.sleep.is_some() || step.send.is_some());
}

#[test]
fn metrics_are_one_emf_document_without_function_names() {
    let mut w = world_with(3);
    w.tag("bad", &[("invocation-mode", "async")]);
    let (r, _) = run(&mut w, start());
    let m = &serde_json::to_value(&r.metrics).unwrap();
    let cw = &m["_aws"]["CloudWatchMetrics"][0];
    assert_eq!(cw["Namespace"], "ConsulLambdaSync");
    for metric in cw["Metrics"].as_array().unwrap() {
        let name = metric["Name"].as_str().unwrap();
        assert!(m[name].is_u64(), "{name} has a value");
    }
    for dims in cw["Dimensions"].as_array().unwrap() {
        for d in dims.as_array().unwrap() {
            assert!(
                m[d.as_str().unwrap()].is_string(),
                "dimension {d} has a value"
            );
        }
    }
    assert_eq!(
        cw["Dimensions"],
        serde_json::json!([
            ["Trigger"],
            ["Trigger", "Verdict"],
            ["FunctionName", "Trigger"]
        ])
    );
    // The registrator's own name (the default when Lambda's AWS_LAMBDA_FUNCTION_NAME is unset).
    assert_eq!(m["FunctionName"], "consul-lambda-registrator");
    assert_eq!(m["ServicesCreated"], 3);
    assert_eq!(m["FunctionsSeen"], 4);
    assert_eq!(m["FunctionsInvalid"], 1);
    assert_eq!(m["FunctionsEnabled"], 3);
    assert_eq!(m["ConsulWrites"], 4);
    let text = m.to_string();
    assert!(!text.contains("f0001") && !text.contains("bad"), "{text}");
}

#[test]
fn an_invalid_configuration_still_labels_its_metrics_with_the_registrators_name() {
    let mut w = world_with(1);
    let mut s = start();
    s.env
        .insert("AWS_LAMBDA_FUNCTION_NAME".into(), "registrator-east".into());
    s.env.insert("PAGE_SIZE".into(), "many".into());
    let (r, _) = run(&mut w, s);
    assert_eq!(r.verdict, Verdict::InvalidConfig);
    assert_eq!(
        serde_json::to_value(&r.metrics).unwrap()["FunctionName"],
        "registrator-east"
    );
    assert_eq!(serde_json::to_value(&r.metrics).unwrap()["SyncFailed"], 1);
}

#[test]
fn metrics_carry_the_registrators_own_function_name_from_lambdas_environment() {
    let mut w = world_with(1);
    let mut s = start();
    s.env
        .insert("AWS_LAMBDA_FUNCTION_NAME".into(), "registrator-east".into());
    let (r, _) = run(&mut w, s);
    assert_eq!(
        serde_json::to_value(&r.metrics).unwrap()["FunctionName"],
        "registrator-east"
    );
    assert_eq!(
        serde_json::to_value(&r.metrics).unwrap()["Trigger"],
        "fullSync"
    );
}

/// What `plan --out` writes: the plan and its basis, as JSON.
fn reviewed_from(r: &SyncResult) -> Box<serde_json::value::RawValue> {
    let text = serde_json::to_string(&json!({"plan": r.plan, "basis": r.basis})).unwrap();
    serde_json::value::RawValue::from_string(text).unwrap()
}

#[test]
fn a_reviewed_plan_is_applied_exactly_or_refused() {
    let mut w = world_with(3);
    run(&mut w, start());
    w.tag("f0001", &[("invocation-mode", "ASYNCHRONOUS")]);
    w.functions.remove(&arn("f0002"));
    let mut s = start();
    s.dry_run = Some(true);
    let (dry, _) = run(&mut w, s);
    let basis = dry.basis.clone().unwrap();
    assert!(basis
        .objects
        .iter()
        .any(|o| o.service.name == "f0001" && o.modify_index.is_some()));
    assert!(basis
        .functions
        .iter()
        .any(|f| f.arn == arn("f0002") && f.tags.is_none()));

    // Unrelated changes (another function appears) do not matter: exactly the reviewed plan runs.
    w.tag("unrelated", &[]);
    let mut s = start();
    s.reviewed = Some(reviewed_from(&dry));
    let (r, _) = run(&mut w, s);
    assert!(r.ok, "{}", r.message);
    assert!(
        !w.services.contains_key("unrelated"),
        "not in the reviewed plan"
    );
    assert!(!w.services.contains_key("f0002"));
    assert_eq!(
        w.entries["f0001"].1["EnvoyExtensions"][0]["Arguments"]["invocationMode"],
        "asynchronous"
    );

    // A touched object moved: refused, naming it, nothing written.
    let mut w2 = world_with(3);
    run(&mut w2, start());
    w2.functions.remove(&arn("f0000"));
    let mut s = start();
    s.dry_run = Some(true);
    let (dry, _) = run(&mut w2, s);
    w2.entries.get_mut("f0000").unwrap().0 += 5;
    w2.seen.clear();
    let mut s = start();
    s.reviewed = Some(reviewed_from(&dry));
    let (r, _) = run(&mut w2, s);
    assert!(!r.ok);
    assert_eq!(w2.writes(), 0);
    let f = r.failure.unwrap();
    assert_eq!(f.code.as_str(), "plan_stale");
    assert!(f.message.contains("f0000"), "{}", f.message);
}

#[test]
fn prune_removes_what_the_registrator_manages_and_nothing_else() {
    let mut w = world_with(15);
    run(&mut w, start());
    // Someone else's entry and an unmanaged service stay.
    w.entries.insert(
        "human".into(),
        (
            99,
            json!({"Kind": "service-defaults", "Name": "human", "Protocol": "http"}),
        ),
    );
    w.services.insert("web".into(), (98, vec![]));
    w.seen.clear();
    let mut s = start();
    s.prune = Some(true);
    let (r, _) = run(&mut w, s);
    assert!(r.ok, "{}", r.message);
    assert!(
        !w.seen
            .iter()
            .any(|x| x.contains("GetResources") || x.contains("ListTags")),
        "{:?}",
        w.seen
    );
    assert_eq!(w.services.keys().collect::<Vec<_>>(), vec!["web"]);
    assert_eq!(w.entries.keys().collect::<Vec<_>>(), vec!["human"]);
}

#[test]
fn a_repeating_pagination_token_makes_the_inventory_incomplete_and_deletes_nothing() {
    let mut w = world_with(150);
    run(&mut w, start());
    w.functions.remove(&arn("f0001"));
    w.loop_token = Some("7".into());
    w.seen.clear();
    let (r, _) = run(&mut w, start());
    assert!(!r.ok);
    assert!(!r.inventory.complete);
    assert!(r.inventory.error.as_deref().unwrap().contains("repeats"));
    assert!(
        w.services.contains_key("f0001"),
        "nothing deleted on an incomplete listing"
    );
    assert_eq!(
        r.requests.aws.calls.get("GetResources"),
        Some(&2),
        "stops at the first repeat"
    );
}

#[test]
fn verdict_names_in_logs_are_the_json_names() {
    for v in [
        Verdict::Ok,
        Verdict::Ignored,
        Verdict::Failed,
        Verdict::Partial,
        Verdict::Unreachable,
        Verdict::InvalidConfig,
        Verdict::Setup,
    ] {
        assert_eq!(serde_json::to_value(v).unwrap(), json!(v.as_str()));
    }
}

fn mesh_start(vars: &[(&str, &str)]) -> Start {
    let mut s = start();
    for (k, v) in vars {
        s.env.insert((*k).to_owned(), (*v).to_owned());
    }
    s
}

fn gateway_names(w: &World) -> Vec<String> {
    w.mesh["terminating-gateway/tgw"].1["Services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn the_gateway_entry_is_created_extended_and_shrunk_and_items_not_ours_are_kept() {
    let gw = [
        ("TERMINATING_GATEWAY_NAME", "tgw"),
        ("TERMINATING_GATEWAY_CREATE", "true"),
    ];
    let mut w = world_with(2);
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok, "{}", r.message);
    assert_eq!(gateway_names(&w), ["f0000", "f0001"]);
    let mesh = &r.plan.as_ref().unwrap().mesh;
    assert_eq!(mesh.len(), 1);
    assert_eq!(mesh[0].change, consul_lambda_sync::plan::Change::Create);
    // A person lists their own service, with TLS settings, and adds a field.
    let (_, body) = w.mesh.get_mut("terminating-gateway/tgw").unwrap();
    body["Services"]
        .as_array_mut()
        .unwrap()
        .insert(0, json!({"Name": "human", "CAFile": "/ca.pem"}));
    body["Meta"] = json!({"owner": "net"});
    // Extended.
    w.tag("f0002", &[]);
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok, "{}", r.message);
    assert_eq!(gateway_names(&w), ["human", "f0000", "f0001", "f0002"]);
    // Shrunk on deregistration; the person's item and field are kept.
    w.functions.remove(&arn("f0001"));
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok, "{}", r.message);
    assert_eq!(gateway_names(&w), ["human", "f0000", "f0002"]);
    let body = &w.mesh["terminating-gateway/tgw"].1;
    assert_eq!(
        body["Services"][0],
        json!({"Name": "human", "CAFile": "/ca.pem"})
    );
    // The person's Meta pair is kept; the registrator's record names its items
    // (the ones written before the person replaced the Meta were adopted: exactly
    // what it writes).
    assert_eq!(
        body["Meta"],
        json!({"owner": "net", "consul-lambda-sync/lambdas/0": "f0000,f0002"})
    );
    // In step: nothing to write.
    w.seen.clear();
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok && r.plan.unwrap().mesh.is_empty());
    assert_eq!(w.writes(), 0, "{:?}", w.seen);
}

#[test]
fn a_missing_gateway_entry_is_not_created_unless_asked() {
    let mut w = world_with(2);
    let (r, _) = run(&mut w, mesh_start(&[("TERMINATING_GATEWAY_NAME", "tgw")]));
    assert!(r.ok, "{}", r.message);
    assert!(w.mesh.is_empty());
    let plan = r.plan.unwrap();
    assert!(plan.mesh.is_empty());
    assert!(plan
        .warnings
        .iter()
        .any(|d| d.code.as_str() == "mesh_entry_unchanged"));
}

#[test]
fn an_agent_dead_for_the_rest_of_the_sync_gets_few_requests() {
    let mut w = world_with(500);
    w.down_after_writes = Some(100);
    let (r, _) = run(&mut w, start());
    assert!(!r.ok);
    assert!(r.operations.failed > 0, "{:?}", r.operations);
    // Those in flight when it died (at most 8 × MAX_CONCURRENCY, 64), then one probe
    // at a time, each after its backoff, until the outage budget is spent; everything
    // else fails without being sent (29 in this run; about 2,000 before the probes of
    // writes whose answer was lost waited out their backoff).
    assert!(
        w.sent_while_down <= 64 + 8,
        "{} sent to the dead agent",
        w.sent_while_down
    );
}

#[test]
fn a_gateway_entry_edited_after_review_makes_the_plan_stale() {
    let gw = [("TERMINATING_GATEWAY_NAME", "tgw")];
    let mut w = world_with(2);
    w.mesh.insert(
        "terminating-gateway/tgw".into(),
        (
            5,
            json!({"Kind": "terminating-gateway", "Name": "tgw", "Services": []}),
        ),
    );
    let mut s = mesh_start(&gw);
    s.dry_run = Some(true);
    let (dry, _) = run(&mut w, s);
    assert!(dry.ok, "{}", dry.message);
    // A person lists their own service in the entry after the review.
    w.mesh.insert(
        "terminating-gateway/tgw".into(),
        (
            9,
            json!({"Kind": "terminating-gateway", "Name": "tgw", "Services": [{"Name": "human"}]}),
        ),
    );
    w.seen.clear();
    let mut s = mesh_start(&gw);
    s.reviewed = Some(reviewed_from(&dry));
    let (r, _) = run(&mut w, s);
    assert!(!r.ok);
    assert_eq!(w.writes(), 0, "{:?}", w.seen);
    let f = r.failure.unwrap();
    assert_eq!(f.code.as_str(), "plan_stale", "{}", f.message);
    assert!(
        f.message.contains("tgw") && f.message.contains("index 5 then, 9 now"),
        "{}",
        f.message
    );
    assert_eq!(gateway_names(&w), ["human"]);
}

#[test]
fn a_concurrent_edit_of_the_gateway_entry_is_merged_not_lost() {
    let gw = [("TERMINATING_GATEWAY_NAME", "tgw")];
    let mut w = world_with(2);
    w.mesh.insert(
        "terminating-gateway/tgw".into(),
        (
            5,
            json!({"Kind": "terminating-gateway", "Name": "tgw", "Services": []}),
        ),
    );
    w.mesh_race = Some((
        "terminating-gateway/tgw".into(),
        json!({"Kind": "terminating-gateway", "Name": "tgw", "Services": [{"Name": "human"}]}),
    ));
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok, "{}", r.message);
    assert_eq!(gateway_names(&w), ["human", "f0000", "f0001"]);
    let puts = w.seen.iter().filter(|s| *s == "PUT /v1/config").count();
    assert_eq!(
        puts,
        2 + 2,
        "two service-defaults, a miss and the merged write"
    );
    let gateway_op = r
        .outcomes
        .iter()
        .find(|o| o.kind == consul_lambda_sync::plan::OperationKind::UpdateTerminatingGateway)
        .unwrap();
    assert_eq!(gateway_op.status, OpStatus::Ok);
    assert_eq!(r.metrics.values["MeshEntriesWritten"], 1);
}

#[test]
fn a_lost_answer_to_a_gateway_write_is_read_back() {
    let gw = [
        ("TERMINATING_GATEWAY_NAME", "tgw"),
        ("TERMINATING_GATEWAY_CREATE", "true"),
    ];
    let mut w = world_with(1);
    run(&mut w, start());
    w.lose_next_write = 1;
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok, "{}", r.message);
    assert_eq!(r.operations.conflicts, 0);
    assert_eq!(gateway_names(&w), ["f0000"]);
}

#[test]
fn services_are_exported_to_the_peers() {
    let mut w = world_with(2);
    w.mesh.insert(
        "exported-services/default".into(),
        (
            5,
            json!({"Kind": "exported-services", "Name": "default", "Services": [
                {"Name": "web", "Consumers": [{"Peer": "east"}]}
            ]}),
        ),
    );
    let (r, _) = run(&mut w, mesh_start(&[("EXPORTED_SERVICES_PEERS", "west")]));
    assert!(r.ok, "{}", r.message);
    let entry = &w.mesh["exported-services/default"].1;
    assert_eq!(
        entry["Services"],
        json!([
            {"Name": "web", "Consumers": [{"Peer": "east"}]},
            {"Name": "f0000", "Consumers": [{"Peer": "west"}]},
            {"Name": "f0001", "Consumers": [{"Peer": "west"}]}
        ])
    );
    assert_eq!(
        entry["Meta"],
        json!({"consul-lambda-sync/lambdas/0": "f0000,f0001"})
    );
    // Deregistered: its item goes.
    w.functions.remove(&arn("f0000"));
    let (r, _) = run(&mut w, mesh_start(&[("EXPORTED_SERVICES_PEERS", "west")]));
    assert!(r.ok, "{}", r.message);
    let entry = &w.mesh["exported-services/default"].1;
    let names: Vec<&str> = entry["Services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["web", "f0001"]);
    assert_eq!(
        entry["Meta"],
        json!({"consul-lambda-sync/lambdas/0": "f0001"})
    );
}

fn warning_codes(r: &SyncResult) -> Vec<String> {
    r.plan
        .as_ref()
        .unwrap()
        .warnings
        .iter()
        .map(|d| d.code.as_str().to_owned())
        .collect()
}

#[test]
fn a_persons_gateway_item_for_a_managed_name_is_unchanged_across_our_add_and_withdraw() {
    let gw = [("TERMINATING_GATEWAY_NAME", "tgw2")];
    let theirs = json!({"Name": "ledger-api", "CAFile": "/etc/ca.pem", "SNI": "ledger.internal"});
    let meta = json!({"owner": "network-team", "note": "TLS for ledger-api, see RUN-12"});
    let mut w = World::new();
    w.tag("ledger", &[]);
    w.tag("ledger-api", &[]);
    w.mesh.insert(
        "terminating-gateway/tgw2".into(),
        (
            5,
            json!({"Kind": "terminating-gateway", "Name": "tgw2", "Meta": meta, "Services": [theirs]}),
        ),
    );
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok, "{}", r.message);
    let entry = &w.mesh["terminating-gateway/tgw2"].1;
    assert_eq!(entry["Services"], json!([theirs, {"Name": "ledger"}]));
    let mut recorded = meta.clone();
    recorded["consul-lambda-sync/lambdas/0"] = json!("ledger");
    assert_eq!(entry["Meta"], recorded);
    assert_eq!(warning_codes(&r), ["mesh_item_not_ours"]);
    let warning = &r.plan.as_ref().unwrap().warnings[0];
    assert!(
        warning.message.contains("ledger-api"),
        "{}",
        warning.message
    );
    // Both functions go: only our item is taken out; theirs and their Meta stay
    // exactly as written.
    w.functions.clear();
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok, "{}", r.message);
    assert!(w.services.is_empty());
    let entry = &w.mesh["terminating-gateway/tgw2"].1;
    assert_eq!(
        *entry,
        json!({"Kind": "terminating-gateway", "Name": "tgw2", "Meta": meta, "Services": [theirs]})
    );
}

#[test]
fn a_persons_exported_item_for_a_managed_name_is_unchanged_across_our_add_and_withdraw() {
    let peers = [("EXPORTED_SERVICES_PEERS", "west")];
    let theirs = json!({"Name": "payments", "Consumers": [{"Peer": "east"}]});
    let mut w = World::new();
    w.tag("payments", &[]);
    w.tag("orders", &[]);
    w.mesh.insert(
        "exported-services/default".into(),
        (
            5,
            json!({"Kind": "exported-services", "Name": "default", "Services": [theirs]}),
        ),
    );
    let (r, _) = run(&mut w, mesh_start(&peers));
    assert!(r.ok, "{}", r.message);
    let entry = &w.mesh["exported-services/default"].1;
    assert_eq!(
        entry["Services"],
        json!([theirs, {"Name": "orders", "Consumers": [{"Peer": "west"}]}]),
        "west is not merged into their item"
    );
    assert_eq!(warning_codes(&r), ["mesh_item_not_ours"]);
    let hint = &r.plan.as_ref().unwrap().warnings[0].hint;
    assert!(hint.contains("add them to the item yourself"), "{hint}");
    // Withdrawn: their item, with its export to east, stays.
    w.functions.clear();
    let (r, _) = run(&mut w, mesh_start(&peers));
    assert!(r.ok, "{}", r.message);
    assert_eq!(
        w.mesh["exported-services/default"].1,
        json!({"Kind": "exported-services", "Name": "default", "Services": [theirs]})
    );
}

#[test]
fn an_earlier_versions_item_is_adopted_when_exact_and_left_when_not() {
    let gw = [("TERMINATING_GATEWAY_NAME", "tgw")];
    let mut w = world_with(3);
    run(&mut w, start());
    // As an earlier version left it (no record), with one item edited since, and
    // one item another registrator recorded.
    let before = json!({"Kind": "terminating-gateway", "Name": "tgw",
        "Meta": {"consul-lambda-sync/east/0": "f0002"},
        "Services": [{"Name": "f0000"}, {"Name": "f0001", "SNI": "f1.internal"}, {"Name": "f0002"}]});
    w.mesh
        .insert("terminating-gateway/tgw".into(), (5, before.clone()));
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok, "{}", r.message);
    let plan = r.plan.as_ref().unwrap();
    assert_eq!(plan.mesh[0].adopt.len(), 1);
    assert_eq!(warning_codes(&r), ["mesh_item_not_ours"]);
    let entry = &w.mesh["terminating-gateway/tgw"].1;
    assert_eq!(
        entry["Services"], before["Services"],
        "only the record is written"
    );
    assert_eq!(
        entry["Meta"],
        json!({"consul-lambda-sync/east/0": "f0002", "consul-lambda-sync/lambdas/0": "f0000"})
    );
    // In step.
    w.seen.clear();
    run(&mut w, mesh_start(&gw));
    assert_eq!(w.writes(), 0, "{:?}", w.seen);
    // All three go: only the adopted item is taken out.
    w.functions.clear();
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok, "{}", r.message);
    assert!(w.services.is_empty());
    assert_eq!(
        w.mesh["terminating-gateway/tgw"].1,
        json!({"Kind": "terminating-gateway", "Name": "tgw",
            "Meta": {"consul-lambda-sync/east/0": "f0002"},
            "Services": [{"Name": "f0001", "SNI": "f1.internal"}, {"Name": "f0002"}]})
    );
}

#[test]
fn a_full_meta_record_lists_only_what_fits_and_loses_track_of_nothing() {
    let gw = [("TERMINATING_GATEWAY_NAME", "tgw")];
    let mut meta = serde_json::Map::new();
    for i in 0..63 {
        meta.insert(format!("team-{i:02}"), json!(format!("value {i}")));
    }
    let mut w = World::new();
    // 60-character names: 8 to a 512-byte value (8 × 61 − 1 = 487 bytes).
    let name = |i: usize| format!("{i:02}-{}", "x".repeat(57));
    for i in 0..20 {
        w.tag(&name(i), &[]);
    }
    w.mesh.insert(
        "terminating-gateway/tgw".into(),
        (
            5,
            json!({"Kind": "terminating-gateway", "Name": "tgw", "Meta": meta, "Services": []}),
        ),
    );
    let listed = |w: &World| -> Vec<String> {
        w.mesh["terminating-gateway/tgw"].1["Services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["Name"].as_str().unwrap().to_owned())
            .collect()
    };
    let record = |w: &World| -> Vec<String> {
        let m = w.mesh["terminating-gateway/tgw"].1["Meta"]
            .as_object()
            .unwrap();
        assert!(m.len() <= 64);
        m.iter()
            .filter(|(k, _)| k.starts_with("consul-lambda-sync/lambdas/"))
            .flat_map(|(_, v)| v.as_str().unwrap().split(',').map(str::to_owned))
            .collect()
    };
    // One pair is left: 8 services are listed, 12 are not (a warning).
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok, "{}", r.message);
    assert_eq!(listed(&w).len(), 8);
    assert_eq!(record(&w), listed(&w), "every item listed is recorded");
    assert_eq!(warning_codes(&r), ["mesh_record_full"]);
    assert!(r.plan.as_ref().unwrap().warnings[0]
        .message
        .contains("no room for 12 more"));
    // A person drops two pairs: 16 more fit (12 wanted).
    {
        let m = w.mesh.get_mut("terminating-gateway/tgw").unwrap();
        let meta = m.1["Meta"].as_object_mut().unwrap();
        meta.remove("team-00");
        meta.remove("team-01");
    }
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok, "{}", r.message);
    assert_eq!(listed(&w).len(), 20);
    assert_eq!(record(&w).len(), 20);
    assert!(warning_codes(&r).is_empty());
    // A person fills the Meta again: nothing is lost, and every function's item
    // is taken out when it goes.
    {
        let m = w.mesh.get_mut("terminating-gateway/tgw").unwrap();
        let meta = m.1["Meta"].as_object_mut().unwrap();
        meta.insert("team-00".into(), json!("value 0"));
    }
    w.functions.clear();
    let all = [gw[0], ("ALLOW_MASS_DEREGISTRATION", "true")];
    let (r, _) = run(&mut w, mesh_start(&all));
    assert!(r.ok, "{}", r.message);
    assert!(listed(&w).is_empty());
    let m = w.mesh["terminating-gateway/tgw"].1["Meta"]
        .as_object()
        .unwrap();
    assert_eq!(m.len(), 62, "the people's pairs, and no record");
    assert_eq!(m["team-00"], "value 0");
}

#[test]
fn exported_partitions_without_enterprise_are_one_config_error() {
    let mut w = world_with(1);
    let (r, _) = run(
        &mut w,
        mesh_start(&[("EXPORTED_SERVICES_PARTITIONS", "team-a")]),
    );
    assert_eq!(r.verdict, Verdict::InvalidConfig);
    let f = r.failure.unwrap();
    assert_eq!(f.errors.len(), 1);
    assert_eq!(
        f.errors[0].code.as_str(),
        "exported_partitions_require_enterprise"
    );
    assert!(w.seen.is_empty(), "nothing is read or written");
}

#[test]
fn a_dry_run_shows_the_gateway_change_and_writes_nothing() {
    let gw = [
        ("TERMINATING_GATEWAY_NAME", "tgw"),
        ("TERMINATING_GATEWAY_CREATE", "true"),
        ("DRY_RUN", "true"),
    ];
    let mut w = world_with(2);
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok, "{}", r.message);
    assert!(w.mesh.is_empty());
    let plan = r.plan.unwrap();
    assert_eq!(plan.mesh[0].add.len(), 2);
    let text = consul_lambda_sync::render::format_plan(&plan);
    assert!(
        text.contains("+ terminating-gateway tgw  create the entry; list f0000, f0001"),
        "{text}"
    );
}

#[test]
fn a_service_is_deregistered_only_after_it_is_taken_out_of_the_gateway() {
    let gw = [
        ("TERMINATING_GATEWAY_NAME", "tgw"),
        ("TERMINATING_GATEWAY_CREATE", "true"),
    ];
    let mut w = world_with(2);
    run(&mut w, mesh_start(&gw));
    assert_eq!(gateway_names(&w), ["f0000", "f0001"]);
    w.functions.remove(&arn("f0001"));
    // The removal is refused: the service stays registered and listed.
    w.mesh_denied = 1;
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(!r.ok);
    assert!(w.services.contains_key("f0001"), "not deregistered");
    assert_eq!(gateway_names(&w), ["f0000", "f0001"]);
    let status = |kind: consul_lambda_sync::plan::OperationKind| {
        r.outcomes.iter().find(|o| o.kind == kind).unwrap().status
    };
    use consul_lambda_sync::plan::OperationKind as K;
    assert_eq!(status(K::UpdateTerminatingGateway), OpStatus::Failed);
    assert_eq!(status(K::DeregisterService), OpStatus::Skipped);
    let failure = r
        .failures
        .iter()
        .find(|o| o.kind == K::UpdateTerminatingGateway)
        .unwrap();
    assert!(failure
        .error
        .as_deref()
        .unwrap()
        .contains("mesh = \"write\""));
    // The next sync takes it out, then deregisters it.
    let (r, _) = run(&mut w, mesh_start(&gw));
    assert!(r.ok, "{}", r.message);
    assert!(!w.services.contains_key("f0001"));
    assert_eq!(gateway_names(&w), ["f0000"]);
    let order: Vec<&str> = w
        .seen
        .iter()
        .rev()
        .filter(|s| *s == "PUT /v1/config" || *s == "PUT /v1/txn")
        .take(2)
        .map(String::as_str)
        .collect();
    assert_eq!(
        order,
        ["PUT /v1/txn", "PUT /v1/config"],
        "the entry first, then the deregistration"
    );
}

/// A plan file as `plan --out` wrote it, edited by `edit`.
fn edited(dry: &SyncResult, edit: impl FnOnce(&mut Value)) -> Box<serde_json::value::RawValue> {
    let mut doc = json!({"plan": dry.plan, "basis": dry.basis});
    edit(&mut doc);
    serde_json::value::RawValue::from_string(doc.to_string()).unwrap()
}

/// Applies a plan file; returns the result.
fn apply_file(w: &mut World, file: Box<serde_json::value::RawValue>) -> SyncResult {
    let mut s = start();
    s.reviewed = Some(file);
    run(w, s).0
}

/// A world of three services after one sync, `f0001` retagged (its entry to
/// update) and `f0002` gone (its service to deregister, its entry to delete), and
/// the dry run's result.
fn reviewed_world() -> (World, SyncResult) {
    let mut w = world_with(3);
    run(&mut w, start());
    w.tag("f0001", &[("invocation-mode", "ASYNCHRONOUS")]);
    w.functions.remove(&arn("f0002"));
    let mut s = start();
    s.dry_run = Some(true);
    let (dry, _) = run(&mut w, s);
    assert!(dry.ok, "{}", dry.message);
    w.seen.clear();
    (w, dry)
}

#[test]
fn a_plan_file_with_an_operation_the_engine_did_not_decide_is_refused_before_any_write() {
    let evil = "arn:aws:lambda:us-east-1:999999999999:function:evil";
    let appended = [
        json!({"kind": "upsertConfigEntry", "service": {"datacenter": "dc1", "name": "billing"}, "change": "create",
            "reason": "x", "index": 0, "entry": {"arn": evil, "invocationMode": "synchronous", "payloadPassthrough": false}}),
        json!({"kind": "registerService", "service": {"datacenter": "dc1", "name": "vault"}, "change": "create", "reason": "x", "index": 0}),
        json!({"kind": "deregisterService", "service": {"datacenter": "dc1", "name": "f0000"}, "change": "delete", "reason": "x",
            "serviceId": "f0000", "index": 11}),
        json!({"kind": "deleteConfigEntry", "service": {"datacenter": "dc1", "name": "f0000"}, "change": "delete", "reason": "x"}),
        json!({"kind": "putExtensionData", "service": {"datacenter": "dc1", "name": "f0000"}, "change": "update", "reason": "x",
            "parameter": "/elsewhere/default/default/f0000", "keyId": "arn:aws:kms:us-east-1:999999999999:key/1", "leafSerial": "01"}),
        json!({"kind": "deleteExtensionData", "service": {"datacenter": "dc1", "name": "f0000"}, "change": "delete", "reason": "x",
            "parameter": "/consul/token"}),
        json!({"kind": "updateTerminatingGateway", "service": {"name": "tgw"}, "change": "update", "reason": "x",
            "mesh": {"kind": "terminatingGateway", "name": "tgw", "add": [{"name": "billing"}]}}),
        json!({"kind": "updateExportedServices", "service": {"name": "default"}, "change": "create", "reason": "x",
            "mesh": {"kind": "exportedServices", "name": "default", "create": true, "add": [{"name": "billing"}],
                "consumers": [{"peer": "evil-peer"}]}}),
    ];
    for op in appended {
        let (mut w, dry) = reviewed_world();
        let kind = op["kind"].clone();
        let r = apply_file(
            &mut w,
            edited(&dry, |doc| {
                doc["plan"]["operations"].as_array_mut().unwrap().push(op)
            }),
        );
        assert!(!r.ok, "{kind}: applied");
        let failure = r.failure.unwrap();
        assert_eq!(
            failure.code.as_str(),
            "plan_rejected",
            "{kind}: {}",
            failure.message
        );
        assert!(
            failure.message.contains(kind.as_str().unwrap()),
            "{kind}: names it: {}",
            failure.message
        );
        assert_eq!(w.writes(), 0, "{kind}: wrote {:?}", w.seen);
    }
}

#[test]
fn an_altered_operation_a_request_or_an_empty_basis_refuses_the_whole_file() {
    let evil = "arn:aws:lambda:us-east-1:999999999999:function:evil";
    type Edit = Box<dyn FnOnce(&mut Value)>;
    let edits: Vec<(&str, Edit)> = vec![
        (
            "altered content",
            Box::new(move |doc: &mut Value| {
                for op in doc["plan"]["operations"].as_array_mut().unwrap() {
                    if op["kind"] == "upsertConfigEntry" {
                        op["entry"]["arn"] = json!(evil);
                    }
                }
            }),
        ),
        (
            "altered index",
            Box::new(|doc: &mut Value| {
                for op in doc["plan"]["operations"].as_array_mut().unwrap() {
                    if op["kind"] == "upsertConfigEntry" {
                        op["index"] = json!(999);
                    }
                }
            }),
        ),
        (
            "a raw request",
            Box::new(|doc: &mut Value| {
                doc["plan"]["operations"][0]["request"] =
                    json!({"target": "consul", "method": "DELETE", "path": "/v1/acl/token/0000"});
            }),
        ),
        (
            "an unknown kind",
            Box::new(|doc: &mut Value| {
                doc["plan"]["operations"][0]["kind"] = json!("deleteAclToken");
            }),
        ),
        (
            "an empty basis",
            Box::new(|doc: &mut Value| {
                doc["basis"] = json!({"objects": [], "functions": []});
            }),
        ),
        (
            "a kept step whose earlier step is left out",
            Box::new(|doc: &mut Value| {
                // f0002's entry deletion without its deregistration.
                doc["plan"]["operations"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|op| op["kind"] != "deregisterService");
            }),
        ),
    ];
    for (what, edit) in edits {
        let (mut w, dry) = reviewed_world();
        let r = apply_file(&mut w, edited(&dry, edit));
        assert!(!r.ok, "{what}: applied");
        assert_eq!(r.failure.unwrap().code.as_str(), "plan_rejected", "{what}");
        assert_eq!(w.writes(), 0, "{what}: wrote {:?}", w.seen);
    }
}

#[test]
fn a_plan_file_that_leaves_out_independent_operations_applies_the_rest() {
    let (mut w, dry) = reviewed_world();
    let r = apply_file(
        &mut w,
        edited(&dry, |doc| {
            doc["plan"]["operations"]
                .as_array_mut()
                .unwrap()
                .retain(|op| op["service"]["name"] != "f0002");
        }),
    );
    assert!(r.ok, "{}", r.message);
    assert_eq!(
        w.entries["f0001"].1["EnvoyExtensions"][0]["Arguments"]["invocationMode"],
        "asynchronous"
    );
    assert!(
        w.services.contains_key("f0002"),
        "left out: not deregistered"
    );
    assert!(w.entries.contains_key("f0002"));
}

#[test]
fn showing_a_plan_file_shows_every_operation_in_it() {
    let (_, dry) = reviewed_world();
    let mut plan = serde_json::to_value(dry.plan.as_ref().unwrap()).unwrap();
    plan["operations"].as_array_mut().unwrap().push(json!({
        "kind": "registerService", "service": {"datacenter": "dc1", "name": "vault"}, "change": "create", "reason": "appended", "index": 0}));
    let text = consul_lambda_sync::ffi::call("formatPlan", &plan.to_string()).unwrap();
    let text: String = serde_json::from_str(&text).unwrap();
    assert!(text.contains("vault"), "{text}");
    assert!(
        text.contains("Operations no row of this plan explains"),
        "{text}"
    );
}

#[test]
fn metrics_count_what_was_confirmed_not_what_was_planned() {
    // A registration refused by a check-and-set conflict is not a creation.
    let mut w = world_with(2);
    w.race_entry = Some("f0001".into());
    let (r, _) = run(&mut w, start());
    assert_eq!(r.summary.create, 2, "planned");
    assert_eq!(r.applied.created, 1, "confirmed");
    assert_eq!(r.metrics.values["ServicesCreated"], 1);
    assert_eq!(r.metrics.values["ServicesToCreate"], 2);
    assert_eq!(r.metrics.values["CasConflicts"], 2);
    // A dry run reports what it would do, under names that say so.
    let mut s = start();
    s.dry_run = Some(true);
    let (dry, _) = run(&mut world_with(3), s);
    let doc = serde_json::to_value(&dry.metrics).unwrap();
    assert!(doc.get("ServicesCreated").is_none(), "{doc}");
    assert_eq!(doc["ServicesToCreate"], 3);
    assert!(dry.message.contains("3 to create"), "{}", dry.message);
}

#[test]
fn text_from_outside_cannot_forge_lines_or_colours() {
    let mut w = world_with(2);
    let forged = "boom\n\u{1b}[2K\u{1b}[32msynced: everything is fine\u{1b}[0m\r";
    w.entry_writes_fail = Some((500, forged.to_owned()));
    let (r, _) = run(&mut w, start());
    assert!(!r.ok);
    let mut texts = vec![r.message.clone()];
    for f in &r.failures {
        texts.push(f.error.clone().unwrap_or_default());
    }
    let joined = texts.join(" | ");
    assert!(joined.contains("boom\\n\\u{1b}[2K"), "{joined}");
    for t in &texts {
        assert!(
            !t.chars().any(|c| c.is_control()),
            "control character in {t:?}"
        );
    }
}

fn codes(r: &SyncResult) -> Vec<String> {
    r.errors
        .iter()
        .map(|e| e.code.as_str().to_owned())
        .collect()
}

#[test]
fn a_name_consul_has_on_another_node_is_refused_in_any_datacenter() {
    let mut w = world_with(3);
    w.more_dcs = vec!["dc2".into()];
    w.tag("payments", &[]);
    w.tag("ledger", &[("aliases", "api")]);
    // `payments` runs on a VM in the other datacenter; `ledger-api` on a node here.
    w.elsewhere
        .insert(("dc2".into(), "payments".into()), "vm-7".into());
    w.elsewhere
        .insert(("dc1".into(), "ledger-api".into()), "ext-node".into());
    let (r, _) = run(&mut w, start());
    assert!(w.services.contains_key("f0000") && w.entries.contains_key("f0002"));
    for name in ["payments", "ledger", "ledger-api"] {
        assert!(!w.services.contains_key(name), "{name} registered");
        assert!(!w.entries.contains_key(name), "{name} entry written");
    }
    let refusals: Vec<&str> = r
        .errors
        .iter()
        .filter(|e| e.code.as_str() == "name_on_other_node")
        .map(|e| e.message.as_str())
        .collect();
    assert_eq!(refusals.len(), 2, "{:?}", codes(&r));
    assert!(refusals
        .iter()
        .any(|m| m.contains("node vm-7 in datacenter dc2")));
    assert!(refusals
        .iter()
        .any(|m| m.contains("node ext-node in datacenter dc1")));
    assert_ne!(r.verdict, Verdict::Ok);
    // One list per datacenter, one instance read per name found: a bounded cost.
    let lists = w
        .seen
        .iter()
        .filter(|s| *s == "GET /v1/catalog/services")
        .count();
    let instances = w
        .seen
        .iter()
        .filter(|s| s.starts_with("GET /v1/catalog/service/"))
        .count();
    assert_eq!((lists, instances), (2, 2));

    // The other node's instance goes: the next sync takes the name.
    w.elsewhere.clear();
    let (r, _) = run(&mut w, start());
    assert!(r.ok, "{}", r.message);
    assert!(w.services.contains_key("payments") && w.services.contains_key("ledger-api"));
}

#[test]
fn alias_services_are_created_only_for_aliases_the_function_has() {
    let mut w = world_with(2);
    w.tag("ledger", &[("aliases", "api+live")]);
    w.missing_aliases.insert(format!("{}:api", arn("ledger")));
    let (r, _) = run(&mut w, start());
    assert!(w.services.contains_key("ledger") && w.services.contains_key("ledger-live"));
    assert!(!w.services.contains_key("ledger-api") && !w.entries.contains_key("ledger-api"));
    let e = r
        .errors
        .iter()
        .find(|e| e.code.as_str() == "alias_not_found")
        .expect("alias_not_found");
    assert_eq!(
        (e.key.as_deref(), e.value.as_deref()),
        (Some("aliases"), Some("api"))
    );
    let asked = |w: &World| w.seen.iter().filter(|s| *s == "aws ListAliases").count();
    assert_eq!(
        asked(&w),
        1,
        "one ListAliases per function with alias services to create"
    );

    // Steady state: nothing to create, nothing asked (the missing alias again).
    let before = asked(&w);
    let (_, _) = run(&mut w, start());
    assert_eq!(asked(&w) - before, 1);
    w.missing_aliases.clear();
    let (r, _) = run(&mut w, start());
    assert!(
        r.ok && w.services.contains_key("ledger-api"),
        "{}",
        r.message
    );
    let before = asked(&w);
    let (_, _) = run(&mut w, start());
    assert_eq!(asked(&w), before, "a steady sync asks no ListAliases");
}

#[test]
fn an_alias_listing_of_several_pages_is_read_to_its_end() {
    let mut w = world_with(1);
    w.alias_page = 1;
    w.tag("ledger", &[("aliases", "api+live+canary")]);
    w.missing_aliases.insert(format!("{}:live", arn("ledger")));
    let (r, _) = run(&mut w, start());
    for name in ["ledger", "ledger-api", "ledger-canary"] {
        assert!(w.services.contains_key(name), "{name}: {}", r.message);
    }
    assert!(!w.services.contains_key("ledger-live"));
    let asked = w.seen.iter().filter(|s| *s == "aws ListAliases").count();
    assert_eq!(
        asked, 2,
        "two aliases exist, one a page: two pages, the last without a marker"
    );
    let codes: Vec<&str> = r.errors.iter().map(|e| e.code.as_str()).collect();
    assert_eq!(codes, ["alias_not_found"], "{:?}", r.errors);
}

#[test]
fn a_function_gone_before_its_aliases_are_listed_gets_no_alias_service() {
    let mut w = world_with(1);
    w.tag("ledger", &[("aliases", "api")]);
    // Listed by GetResources, gone by the time ListAliases asks.
    w.vanish_before_aliases = Some(arn("ledger"));
    let (r, _) = run(&mut w, start());
    assert!(!w.services.contains_key("ledger-api"), "{}", r.message);
    assert!(
        r.errors
            .iter()
            .any(|e| e.code.as_str() == "alias_not_found"),
        "{:?}",
        r.errors
    );
}

#[test]
fn an_entry_written_for_a_registration_that_lost_a_race_is_removed_again() {
    let mut w = world_with(3);
    // Someone registers f0001 on our node between our read and our transaction.
    w.race_register = Some("f0001".into());
    let (r, _) = run(&mut w, start());
    assert!(
        r.message.contains("1 check-and-set conflict"),
        "{}",
        r.message
    );
    assert_eq!(
        w.services.get("f0001").map(|s| s.1.clone()),
        Some(vec!["theirs".to_owned()])
    );
    assert!(
        !w.entries.contains_key("f0001"),
        "our entry stayed on their service"
    );
    assert!(w.entries.contains_key("f0000") && w.entries.contains_key("f0002"));
    let deletes: Vec<&String> = w.seen.iter().filter(|s| s.starts_with("DELETE")).collect();
    assert_eq!(deletes, ["DELETE /v1/config/service-defaults/f0001"]);

    // A newer write by someone else between our re-read and our delete stands.
    let mut w = world_with(3);
    w.race_register = Some("f0001".into());
    w.edit_before_delete = Some("f0001".into());
    let (_, _) = run(&mut w, start());
    assert_eq!(
        w.entries
            .get("f0001")
            .map(|e| e.1["Meta"]["edited"].clone()),
        Some(json!("by someone"))
    );
}

const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

fn signed_start() -> Start {
    let mut s = start();
    s.account_id = None; // STS tells it (the query protocol)
    s.env
        .insert("AWS_ENDPOINT_URL".into(), "http://127.0.0.1:5000".into());
    s.env
        .insert("CONSUL_HTTP_TOKEN_PATH".into(), "/cls/token".into());
    s.aws = serde_json::from_value(json!({
        "accessKeyId": "AKIDEXAMPLE",
        "secretAccessKey": SECRET_KEY,
        "sessionToken": "SESSIONTOKEN",
        "epochMs": 1_440_938_160_000u64,
    }))
    .unwrap();
    s
}

#[test]
fn signed_aws_calls_sync_the_same_as_sdk_calls() {
    let world = || {
        let mut w = world_with(120);
        w.tag("aliased", &[("aliases", "live+beta")]);
        w.missing_aliases.insert(format!("{}:beta", arn("aliased")));
        w
    };
    let mut sdk = world();
    let mut start_sdk = signed_start();
    start_sdk.aws = None;
    let (by_sdk, _) = run(&mut sdk, start_sdk);
    let mut http = world();
    let (by_http, _) = run(&mut http, signed_start());
    assert!(by_http.ok, "{}", by_http.message);
    assert_eq!(by_http.verdict, by_sdk.verdict);
    assert_eq!(http.seen, sdk.seen, "the same requests in the same order");
    assert_eq!(http.services, sdk.services);
    assert_eq!(http.entries, sdk.entries);
    assert_eq!(by_http.requests, by_sdk.requests);
    assert!(sdk.signed.is_empty());
    let ops: BTreeSet<&str> = http
        .seen
        .iter()
        .filter_map(|s| s.strip_prefix("aws "))
        .collect();
    assert_eq!(
        ops,
        BTreeSet::from([
            "GetCallerIdentity",
            "GetParameter",
            "GetResources",
            "ListAliases"
        ])
    );
    for call in &http.signed {
        assert!(
            call.url.starts_with("http://127.0.0.1:5000/"),
            "{}",
            call.url
        );
        assert_eq!(call.headers["host"], "127.0.0.1:5000");
        assert_eq!(call.headers["x-amz-date"], "20150830T123600Z");
        assert_eq!(call.headers["x-amz-security-token"], "SESSIONTOKEN");
        let auth = &call.headers["authorization"];
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/"),
            "{auth}"
        );
        assert!(!auth.contains(SECRET_KEY));
    }
    // The secret key is in no request and no result; the engine's debug form hides it.
    let everything = format!(
        "{:?} {}",
        http.signed,
        serde_json::to_string(&by_http).unwrap()
    );
    assert!(!everything.contains(SECRET_KEY));
    assert!(!format!("{:?}", Engine::new(signed_start())).contains(SECRET_KEY));
}

#[test]
fn signed_calls_are_signed_at_the_start_clock_plus_the_time_since() {
    let mut w = world_with(300);
    let mut engine = Engine::new(signed_start());
    let (first, mut now) = (5_000u64, 5_000u64);
    let mut dates = Vec::new();
    loop {
        let step = view(engine.next(now, None));
        if step.done.is_some() {
            break;
        }
        if let Some(ms) = step.sleep {
            now += ms;
            continue;
        }
        let send = step.send.unwrap();
        for call in send.iter().filter_map(|r| r.http.as_ref()) {
            let at = 1_440_938_160 + (now - first) / 1000;
            assert_eq!(
                call.headers["x-amz-date"],
                consul_lambda_sync::sigv4::amz_date(at)
            );
            dates.push(call.headers["x-amz-date"].clone());
        }
        let answers: Vec<Answer> = send.iter().map(|r| w.answer(r)).collect();
        now += 45_000; // each step's answers take 45 s of the host's monotonic clock
        feed(&mut engine, answers, now).unwrap();
    }
    dates.dedup();
    assert!(dates.len() >= 3, "{dates:?}");
    assert_eq!(dates[0], "20150830T123600Z");
}

#[test]
fn aws_errors_over_http_are_the_same_decisions() {
    // A token parameter that does not exist: the sync stops before any write,
    // naming the AWS error code read from the body's `__type`.
    let mut w = world_with(3);
    let mut s = signed_start();
    s.env
        .insert("CONSUL_HTTP_TOKEN_PATH".into(), "/missing".into());
    let (r, _) = run(&mut w, s);
    assert!(!r.ok);
    assert!(r.message.contains("ParameterNotFound"), "{}", r.message);
    assert_eq!(w.writes(), 0);
}

#[test]
fn a_bad_endpoint_url_is_an_invalid_configuration() {
    let mut s = signed_start();
    s.env
        .insert("AWS_ENDPOINT_URL_LAMBDA".into(), "localhost:4566".into());
    let mut w = world_with(1);
    let (r, _) = run(&mut w, s);
    assert_eq!(r.verdict, Verdict::InvalidConfig);
    let errors = r.failure.unwrap().errors;
    let e = &errors[0];
    assert_eq!(e.code.as_str(), "invalid_url");
    assert_eq!(e.key.as_deref(), Some("AWS_ENDPOINT_URL_LAMBDA"));
    assert_eq!(e.value.as_deref(), Some("localhost:4566"));
    assert!(w.seen.is_empty());
}
