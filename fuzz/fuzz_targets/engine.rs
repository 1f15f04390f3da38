//! The sync engine's answer-feeding path. A world where every registered service
//! is wanted (so a correct sync deletes nothing) answers the engine's requests
//! truthfully, except where the fuzz input corrupts an answer: another status,
//! a truncated or arbitrary body, an ACL-filtered or Retry-After header, a lost
//! answer, an AWS error (never "not found"), a wrong-shaped AWS result, a page
//! missing an entry, a pagination loop; or the answers are fed as arbitrary JSON
//! text. Checked: no panic, the engine ends, and no request ever deletes a
//! service, config entry or parameter of a live, enabled function.
#![no_main]

use consul_lambda_sync::engine::wire::{Answer, AnswerError, WireRequest};
use consul_lambda_sync::engine::{Engine, Start};
use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const PREFIX: &str = "serverless.consul.hashicorp.com/v1alpha1/lambda/";
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
const SHAPES: [&str; 8] = [
    "null",
    "[]",
    "{}",
    "7",
    "\"x\"",
    "{\"ResourceTagMappingList\":7}",
    "{\"Configuration\":null}",
    "{\"Parameter\":[]}",
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

struct World {
    /// Function name -> aliases.
    functions: BTreeMap<String, Vec<&'static str>>,
    mode: &'static str,
}

impl World {
    fn arn(name: &str) -> String {
        format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
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
    fn services(&self) -> Vec<(String, String, Option<&'static str>)> {
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
        self.services().into_iter().map(|s| s.0).collect()
    }

    fn consul(&self, method: &str, path: &str) -> (u16, Value) {
        match (method, path) {
            ("GET", "/v1/agent/self") => (200, json!({"Config": {"Datacenter": "dc1"}})),
            ("GET", "/v1/catalog/datacenters") => (200, json!(["dc1"])),
            ("GET", p) if p.starts_with("/v1/catalog/node-services/") => {
                let services: Vec<Value> = self
                    .services()
                    .iter()
                    .enumerate()
                    .map(|(i, (s, _, _))| {
                        json!({"ID": s, "Service": s, "Tags": ["managed-by-lambda-registrator"],
                               "Meta": {"serverless.consul.hashicorp.com/v1alpha1/lambda/arn": "x"},
                               "Port": 0, "ModifyIndex": 20 + i})
                    })
                    .collect();
                (
                    200,
                    json!({"Node": {"Node": "lambdas", "Address": "lambdas"}, "Services": services}),
                )
            }
            ("GET", "/v1/config/service-defaults") => {
                let entries: Vec<Value> = self
                    .services()
                    .iter()
                    .enumerate()
                    .map(|(i, (s, f, q))| self.entry(s, f, *q, 40 + i))
                    .collect();
                (200, Value::Array(entries))
            }
            ("GET", p) if p.starts_with("/v1/config/service-defaults/") => {
                let name = &p["/v1/config/service-defaults/".len()..];
                match self.services().iter().find(|s| s.0 == name) {
                    Some((s, f, q)) => (200, self.entry(s, f, *q, 40)),
                    None => (404, Value::Null),
                }
            }
            ("GET", p) if p.starts_with("/v1/agent/connect/ca/leaf/") => (
                200,
                json!({"CertPEM": "c", "PrivateKeyPEM": "k", "ModifyIndex": 3}),
            ),
            ("GET", "/v1/agent/connect/ca/roots") => (200, json!({"Roots": []})),
            ("GET", _) => (404, Value::Null),
            ("PUT", "/v1/txn") => (200, json!({"Results": [], "Errors": null})),
            _ => (200, json!(true)),
        }
    }

    fn entry(&self, service: &str, function: &str, qualifier: Option<&str>, index: usize) -> Value {
        let arn = match qualifier {
            Some(q) => format!("{}:{q}", Self::arn(function)),
            None => Self::arn(function),
        };
        json!({"Kind": "service-defaults", "Name": service, "Protocol": "http", "ModifyIndex": index,
               "EnvoyExtensions": [{"Name": "builtin/aws/lambda", "Required": false,
                 "Arguments": {"ARN": arn, "PayloadPassthrough": false,
                               "InvocationMode": self.mode.to_lowercase()}}]})
    }

    fn aws(&self, operation: &str, input: &Value) -> Result<Value, &'static str> {
        match operation {
            "GetResources" => {
                let list: Vec<Value> = self
                    .functions
                    .keys()
                    .map(|n| {
                        let tags: Vec<Value> = self
                            .tags(n)
                            .iter()
                            .map(|(k, v)| json!({"Key": k, "Value": v}))
                            .collect();
                        json!({"ResourceARN": Self::arn(n), "Tags": tags})
                    })
                    .collect();
                Ok(json!({"ResourceTagMappingList": list, "PaginationToken": ""}))
            }
            "GetFunction" => {
                let name = input
                    .get("FunctionName")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let name = name.rsplit(':').next().unwrap_or(name);
                if self.functions.contains_key(name) {
                    Ok(
                        json!({"Configuration": {"FunctionArn": Self::arn(name), "FunctionName": name},
                              "Tags": self.tags(name)}),
                    )
                } else {
                    Err("ResourceNotFoundException")
                }
            }
            "GetCallerIdentity" => Ok(json!({"Account": ACCOUNT})),
            "GetParameter" => Ok(json!({"Parameter": {"Value": "secret"}})),
            "GetParametersByPath" => Ok(json!({"Parameters": []})),
            _ => Ok(json!({})),
        }
    }

    /// The truthful answer, then the corruption the input asks for.
    fn answer(&self, r: &WireRequest, b: &mut Bytes) -> Answer {
        let mut a = Answer {
            id: r.id,
            ..Answer::default()
        };
        let corrupt = b.byte() % 16;
        if let Some(c) = &r.consul {
            let (status, body) = self.consul(&c.method, &c.path);
            a.status = Some(status);
            let mut text = body.to_string();
            match corrupt {
                8 => a.status = Some(b.pick(&STATUSES)),
                9 => {
                    let cut = usize::from(b.byte()) * text.len() / 256;
                    text.truncate(cut);
                }
                10 => {
                    let n = usize::from(b.byte());
                    text = String::from_utf8_lossy(b.take(n)).into_owned();
                }
                11 => {
                    a.headers
                        .insert("x-consul-results-filtered-by-acls".into(), "true".into());
                }
                12 => {
                    a.status = None;
                    a.error = Some(AnswerError {
                        code: "transport".into(),
                        message: "reset".into(),
                        status: None,
                    });
                }
                13 => {
                    // One element of a list answer goes missing.
                    let mut v = body;
                    let list = match &mut v {
                        Value::Array(l) => Some(l),
                        Value::Object(o) => o.get_mut("Services").and_then(Value::as_array_mut),
                        _ => None,
                    };
                    if let Some(l) = list.filter(|l| !l.is_empty()) {
                        let i = usize::from(b.byte()) % l.len();
                        l.remove(i);
                    }
                    text = v.to_string();
                }
                14 => text = b.pick(&SHAPES).to_owned(),
                15 => {
                    a.status = Some(b.pick(&[429, 500, 503]));
                    let secs = b.byte();
                    a.headers.insert("retry-after".into(), secs.to_string());
                }
                _ => {}
            }
            if a.error.is_none() {
                a.body = Some(text);
            }
            return a;
        }
        let Some(call) = &r.aws else {
            return a;
        };
        match self.aws(&call.operation, &call.input) {
            Err(code) => {
                a.error = Some(AnswerError {
                    code: code.into(),
                    message: String::new(),
                    status: Some(404),
                })
            }
            Ok(mut v) => match corrupt {
                8 | 12 => {
                    a.error = Some(AnswerError {
                        code: b.pick(&CODES).into(),
                        message: "Rate exceeded".into(),
                        status: Some(b.pick(&STATUSES)),
                    })
                }
                9 | 14 => {
                    a.ok = serde_json::from_str(b.pick(&SHAPES)).ok();
                }
                13 => {
                    if let Some(l) = v
                        .get_mut("ResourceTagMappingList")
                        .and_then(Value::as_array_mut)
                        .filter(|l| !l.is_empty())
                    {
                        let i = usize::from(b.byte()) % l.len();
                        l.remove(i);
                    }
                    a.ok = Some(v);
                }
                15 => {
                    if let Some(o) = v.as_object_mut() {
                        o.insert("PaginationToken".into(), json!("again"));
                    }
                    a.ok = Some(v);
                }
                _ => a.ok = Some(v),
            },
        }
        a
    }
}

/// A deleting request, and the name it deletes.
fn deleted(r: &WireRequest) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(c) = &r.consul {
        if c.method == "DELETE" {
            out.push(c.path.rsplit('/').next().unwrap_or_default().to_owned());
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
            let name = call.input.get("Name").and_then(Value::as_str);
            out.push(
                name.unwrap_or_default()
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            );
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let mut b = Bytes(data);
    let shape = b.byte();
    let mut functions = BTreeMap::new();
    for i in 0..usize::from(shape % 5) {
        let n = usize::from(b.byte()) % 4;
        functions.insert(format!("f{i}"), ALIASES[..n.min(3)].to_vec());
    }
    let world = World {
        functions,
        mode: if shape & 0x10 != 0 {
            "ASYNCHRONOUS"
        } else {
            "SYNCHRONOUS"
        },
    };
    let wanted = world.wanted();
    let mut env = BTreeMap::from([(
        "CONSUL_HTTP_ADDR".to_owned(),
        "http://127.0.0.1:8500".to_owned(),
    )]);
    if shape & 0x20 != 0 {
        env.insert("DATACENTER".into(), "dc1".into());
    }
    if shape & 0x40 != 0 {
        env.insert("CONSUL_HTTP_TOKEN_PATH".into(), "/cls/token".into());
    }
    if shape & 0x80 != 0 {
        env.insert("CONSUL_EXTENSION_DATA_PREFIX".into(), "/lambda".into());
    }
    let mut engine = Engine::new(Start {
        env,
        region: REGION.into(),
        account_id: Some(ACCOUNT.into()),
        seed: Some(1),
        ..Start::default()
    });
    // ENGINE_TRACE=1 cargo fuzz run engine <crash file>: print every request and answer.
    let trace = std::env::var_os("ENGINE_TRACE").is_some();
    let mut now = 0u64;
    for _ in 0..500 {
        let step = engine.next(now, Some(900_000u64.saturating_sub(now)));
        if step.done.is_some() {
            return;
        }
        if let Some(ms) = step.sleep {
            now += ms;
            continue;
        }
        let requests = step.send.unwrap_or_default();
        for r in &requests {
            for name in deleted(r) {
                assert!(
                    !wanted.contains(&name),
                    "deleted {name}, which a live function wants: {r:?}"
                );
            }
        }
        now += 10;
        if b.byte() == 0xA5 {
            // The answers as arbitrary JSON text: rejected, never a panic.
            let n = usize::from(b.byte());
            let text = String::from_utf8_lossy(b.take(n)).into_owned();
            let _ = engine.feed_json(&text);
            continue;
        }
        let answers: Vec<Answer> = requests.iter().map(|r| world.answer(r, &mut b)).collect();
        if trace {
            for (r, a) in requests.iter().zip(&answers) {
                eprintln!("-> {}", serde_json::to_string(r).unwrap_or_default());
                eprintln!("<- {}", serde_json::to_string(a).unwrap_or_default());
            }
        }
        if engine.feed(answers).is_err() {
            return;
        }
    }
    panic!("the engine did not end within 500 steps");
});
