//! Property tests of the planner (docs/contract.md §5) against a small model of Consul and
//! Parameter Store: random inventories (names from a tiny alphabet, so that
//! `a` + alias `b` collides with function `a-b`), random Consul states (managed
//! and unmanaged services, entries of ours, foreign, of another region or
//! account, services on another node), two datacenters and extension data.
//!
//! Properties:
//! (a) applying a plan to the model and planning again gives no operations;
//! (b) with an incomplete inventory, nothing owned by an unlisted function is deleted;
//! (c) unmanaged services, other nodes' services, foreign and other-region entries
//!     are never touched (checked by the model as it applies each operation);
//! (d) shuffling functions, scopes, services, entries, leaves and parameters gives
//!     the identical plan JSON;
//! (e) frozen functions (bad tags, failed to load) have no operation on their services;
//! and no plan ever holds a private key.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a broken invariant fails the test

use consul_lambda_sync::lower::{Lowered, Lowering, Material, Request};
use consul_lambda_sync::plan::{plan, Action, Operation, Plan, PlanInput};
use proptest::prelude::*;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const TAG: &str = "serverless.consul.hashicorp.com/v1alpha1/lambda/";
const MANAGED: &str = "managed-by-lambda-registrator";
const NODE: &str = "lambdas";
const LOCAL_DC: &str = "dc1";
const EXT_PREFIX: &str = "/ext";
/// Function names: `a` with alias `b` is service `a-b`, which is also a function.
const NAMES: [&str; 6] = ["a", "b", "a-b", "b-a", "a-x", "c"];
const ALIASES: [&str; 3] = ["a", "b", "x"];
const TRUST_DOMAIN: &str = "td.consul";

fn arn(name: &str) -> String {
    format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}")
}

/// Every service name the alphabet can produce.
fn service_names() -> Vec<String> {
    let mut out: BTreeSet<String> = NAMES.iter().map(|n| (*n).to_owned()).collect();
    for n in NAMES {
        for a in ALIASES {
            out.insert(format!("{n}-{a}"));
        }
    }
    out.into_iter().collect()
}

// ---------------------------------------------------------------------------
// The generated world.
// ---------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Func {
    name: &'static str,
    enabled: Option<&'static str>,
    mode: Option<&'static str>,
    payload: Option<&'static str>,
    aliases: Option<String>,
    datacenter: Option<&'static str>,
}

impl Func {
    /// Whether a tag value is wrong (the function is frozen).
    fn bad(&self) -> bool {
        self.enabled == Some("yes")
            || self.mode == Some("async")
            || self.aliases.as_deref() == Some("a++b")
    }

    fn tags(&self) -> BTreeMap<String, String> {
        let mut t = BTreeMap::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                t.insert(format!("{TAG}{k}"), v.to_owned());
            }
        };
        put("enabled", self.enabled);
        put("invocation-mode", self.mode);
        put("payload-passthrough", self.payload);
        put("aliases", self.aliases.as_deref());
        put("datacenter", self.datacenter);
        t
    }

    /// The service names this function would register, whatever its state.
    fn names(&self) -> Vec<String> {
        let mut out = vec![self.name.to_owned()];
        // An alias list with an empty alias names no alias at all.
        let aliases = self
            .aliases
            .as_deref()
            .filter(|a| !a.split('+').any(str::is_empty));
        for a in aliases.iter().flat_map(|a| a.split('+')) {
            out.push(format!("{}-{a}", self.name));
        }
        out
    }
}

/// What holds a service name on our node in one datacenter.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Instance {
    Managed,
    Unmanaged,
}

/// A service-defaults entry.
#[derive(Debug, Clone)]
enum Entry {
    /// Invokes a function of ours: (function, qualifier, mode, payload passthrough).
    Ours(&'static str, Option<&'static str>, &'static str, bool),
    /// No Lambda extension.
    Foreign,
    /// Invokes a function of another region.
    OtherRegion(&'static str),
    /// Invokes a function of another account.
    OtherAccount(&'static str),
}

impl Entry {
    fn to_json(&self, name: &str) -> Value {
        let lambda = |arn: String, mode: &str, pp: bool| {
            json!({"Kind": "service-defaults", "Name": name, "Protocol": "http",
                "EnvoyExtensions": [{"Name": "builtin/aws/lambda", "Required": false,
                    "Arguments": {"arn": arn, "invocationMode": mode, "payloadPassthrough": pp}}]})
        };
        match self {
            Entry::Ours(f, q, mode, pp) => {
                let a = q.map_or_else(|| arn(f), |q| format!("{}:{q}", arn(f)));
                lambda(a, mode, *pp)
            }
            Entry::Foreign => json!({"Kind": "service-defaults", "Name": name, "Protocol": "grpc"}),
            Entry::OtherRegion(f) => lambda(
                format!("arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{f}"),
                "synchronous",
                false,
            ),
            Entry::OtherAccount(f) => lambda(
                format!("arn:aws:lambda:{REGION}:999999999999:function:{f}"),
                "synchronous",
                false,
            ),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct DcState {
    /// Our node's services by ID (= name).
    services: BTreeMap<String, Instance>,
    /// service-defaults entries by name (raw JSON).
    entries: BTreeMap<String, Value>,
    /// Managed services on another node.
    other_node: Vec<String>,
}

#[derive(Debug, Clone)]
struct World {
    functions: Vec<Func>,
    failed: Vec<&'static str>,
    confirmed_absent: Vec<&'static str>,
    complete: bool,
    datacenter: Option<&'static str>,
    allow_mass: bool,
    extension_data: bool,
    /// The single-function trigger, if any.
    trigger: Option<&'static str>,
    /// Whether the local datacenter's scope names its datacenter explicitly.
    dc1_explicit: bool,
    dcs: BTreeMap<String, DcState>,
    /// Leaf certificate version per service name (absent: no leaf observed).
    leaves: BTreeMap<String, u8>,
    active_root: u8,
    /// Stored extension data by parameter name.
    params: BTreeMap<String, String>,
}

fn cert(service: &str, version: u8) -> String {
    format!("-----BEGIN CERTIFICATE-----\n{service}/{version}\n-----END CERTIFICATE-----\n")
}

fn root(version: u8) -> String {
    format!("-----BEGIN CERTIFICATE-----\nroot/{version}\n-----END CERTIFICATE-----\n")
}

fn ext_value(service: &str, leaf: u8, root_version: u8, datacenter: Option<&str>) -> String {
    let mut v = json!({"privateKeyPEM": format!("-----BEGIN EC PRIVATE KEY-----\n{service}\n-----END EC PRIVATE KEY-----\n"),
        "certPEM": cert(service, leaf), "rootCertPEM": root(root_version), "trustDomain": TRUST_DOMAIN});
    if let Some(dc) = datacenter {
        v["datacenter"] = json!(dc);
    }
    v.to_string()
}

fn param_name(service: &str) -> String {
    format!("{EXT_PREFIX}/default/default/{service}")
}

impl World {
    fn input(&self) -> Value {
        let functions: Vec<Value> = self
            .functions
            .iter()
            .map(|f| json!({"arn": arn(f.name), "tags": f.tags()}))
            .collect();
        let mut scopes = Vec::new();
        for (dc, s) in &self.dcs {
            let mut scope = json!({
                "nodeServices": {"Node": {"Node": NODE}, "Services": s.services.iter().map(|(id, i)| {
                    let tags: Vec<&str> = if *i == Instance::Managed { vec![MANAGED] } else { vec!["web"] };
                    json!({"ID": id, "Service": id, "Tags": tags})
                }).collect::<Vec<_>>()},
                "serviceDefaults": s.entries.values().cloned().collect::<Vec<_>>(),
            });
            if dc != LOCAL_DC || self.dc1_explicit {
                scope["datacenter"] = json!(dc);
            }
            scopes.push(scope);
            if !s.other_node.is_empty() {
                scopes.push(json!({"datacenter": dc, "nodeServices": {"Node": {"Node": "other"},
                    "Services": s.other_node.iter().map(|n| json!({"ID": n, "Service": n, "Tags": [MANAGED]})).collect::<Vec<_>>()}}));
            }
        }
        let mut config = json!({"allowMassDeregistration": self.allow_mass});
        if let Some(dc) = self.datacenter {
            config["datacenter"] = json!(dc);
        }
        if self.extension_data {
            config["consulExtensionDataPrefix"] = json!(EXT_PREFIX);
        }
        let roots: Vec<Value> = [1u8, 2]
            .iter()
            .map(|v| json!({"ID": format!("r{v}"), "RootCert": root(*v), "Active": *v == self.active_root}))
            .collect();
        let mut input = json!({
            "config": config,
            "inventory": {
                "accountId": ACCOUNT, "region": REGION, "complete": self.complete,
                "functions": functions,
                "failed": self.failed.iter().map(|n| json!({"arn": arn(n), "error": "ThrottlingException"})).collect::<Vec<_>>(),
                "confirmedAbsent": self.confirmed_absent.iter().map(|n| arn(n)).collect::<Vec<_>>(),
            },
            "consul": {"localDatacenter": LOCAL_DC, "scopes": scopes},
            "extensionData": {
                "roots": {"ActiveRootID": format!("r{}", self.active_root), "TrustDomain": TRUST_DOMAIN,
                    "Roots": roots},
                "leaves": self.leaves.iter().map(|(s, v)| json!({"Service": s, "SerialNumber": format!("{v:02x}:{s}"),
                    "CertPEM": cert(s, *v), "PrivateKeyPEM": format!("-----BEGIN EC PRIVATE KEY-----\n{s}\n-----END EC PRIVATE KEY-----\n")})).collect::<Vec<_>>(),
                "parameters": self.params.iter().map(|(n, v)| json!({"Name": n, "Value": v})).collect::<Vec<_>>(),
            },
        });
        if let Some(f) = self.trigger {
            input["trigger"] = json!({"kind": "function", "arn": arn(f), "name": f});
        }
        input
    }

    fn plan(&self) -> Plan {
        plan_value(&self.input())
    }

    /// Applies every operation (those waiting for `GetFunction` as if confirmed),
    /// checking that none touches what is not the registrator's.
    fn apply(&mut self, plan: &Plan) {
        for op in &plan.operations {
            self.apply_one(op);
        }
    }

    fn apply_one(&mut self, op: &Operation) {
        let what = || serde_json::to_string(op).unwrap();
        match sent(op, None) {
            Sent::Consul(r) => {
                let dc = r.query.get("dc").map_or(LOCAL_DC, String::as_str);
                assert!(
                    self.datacenter.map_or(true, |ours| ours == dc),
                    "operation outside DATACENTER: {}",
                    what()
                );
                let state = self.dcs.entry(dc.to_owned()).or_default();
                let body = r.body.clone().unwrap_or(Value::Null);
                match (r.method.as_str(), r.path.as_str()) {
                    ("PUT", "/v1/catalog/register") => {
                        assert_eq!(body["Node"], NODE, "{}", what());
                        let id = body["Service"]["ID"].as_str().unwrap().to_owned();
                        assert_ne!(
                            state.services.get(&id),
                            Some(&Instance::Unmanaged),
                            "(c) overwrites an unmanaged service: {}",
                            what()
                        );
                        assert!(body["Service"]["Tags"]
                            .as_array()
                            .unwrap()
                            .contains(&json!(MANAGED)));
                        state.services.insert(id, Instance::Managed);
                    }
                    ("PUT", "/v1/catalog/deregister") => {
                        assert_eq!(body["Node"], NODE, "(c) another node: {}", what());
                        let id = body["ServiceID"].as_str().unwrap();
                        assert_eq!(
                            state.services.remove(id),
                            Some(Instance::Managed),
                            "(c) deregisters a service that is not managed: {}",
                            what()
                        );
                    }
                    ("PUT", "/v1/config") => {
                        let name = body["Name"].as_str().unwrap().to_owned();
                        if let Some(old) = state.entries.get(&name) {
                            assert!(ours(old), "(c) overwrites a foreign entry: {}", what());
                        }
                        state.entries.insert(name, body);
                    }
                    ("DELETE", path) => {
                        let name = path.strip_prefix("/v1/config/service-defaults/").unwrap();
                        let old = state.entries.remove(name);
                        assert!(
                            old.as_ref().is_some_and(ours),
                            "(c) deletes an entry that is not ours: {}",
                            what()
                        );
                    }
                    other => panic!("unexpected request {other:?}"),
                }
            }
            Sent::Ssm(s) => match s.action {
                "PutParameter" => {
                    let leaf = *self
                        .leaves
                        .get(&op.service.name)
                        .expect("a write has a leaf");
                    assert_eq!(
                        leaf_serial(op),
                        Some(format!("{leaf:02x}:{}", op.service.name).as_str())
                    );
                    self.params.insert(
                        s.name.clone(),
                        ext_value(&op.service.name, leaf, self.active_root, Some("dc1")),
                    );
                }
                "DeleteParameter" => {
                    self.params.remove(&s.name);
                }
                other => panic!("unexpected SSM action {other}"),
            },
        }
    }
}

/// A Consul request as the host sends it.
struct ConsulJson {
    method: String,
    path: String,
    query: BTreeMap<String, String>,
    body: Option<Value>,
}

/// A Parameter Store call.
struct SsmJson {
    action: &'static str,
    name: String,
}

/// What an operation sends, lowered (a mesh entry merged into `entry`).
enum Sent {
    Consul(ConsulJson),
    Ssm(SsmJson),
}

fn sent(op: &Operation, entry: Option<&Value>) -> Sent {
    match &op.action {
        Action::PutExtensionData(w) => {
            return Sent::Ssm(SsmJson {
                action: "PutParameter",
                name: w.parameter.clone(),
            })
        }
        Action::DeleteExtensionData { parameter } => {
            return Sent::Ssm(SsmJson {
                action: "DeleteParameter",
                name: parameter.clone(),
            })
        }
        _ => {}
    }
    let material = match op.mesh() {
        Some(_) => Material::MeshEntry { entry, index: 0 },
        None => Material::None,
    };
    let Lowered::Send(Request::Consul(c)) = (Lowering { node: NODE }).operation(op, material)
    else {
        panic!(
            "operation not lowered to a Consul request: {}",
            serde_json::to_string(op).unwrap()
        );
    };
    let w = serde_json::to_value(c.wire()).unwrap();
    Sent::Consul(ConsulJson {
        method: w["method"].as_str().unwrap().to_owned(),
        path: w["path"].as_str().unwrap().to_owned(),
        query: serde_json::from_value(w.get("query").cloned().unwrap_or(json!({}))).unwrap(),
        body: w.get("body").cloned(),
    })
}

fn leaf_serial(op: &Operation) -> Option<&str> {
    match &op.action {
        Action::PutExtensionData(w) => Some(&w.leaf_serial),
        _ => None,
    }
}

/// Whether an entry invokes a function of our account and region.
fn ours(entry: &Value) -> bool {
    entry["EnvoyExtensions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["Name"] == "builtin/aws/lambda")
        .any(|e| {
            e["Arguments"]["arn"]
                .as_str()
                .is_some_and(|a| a.starts_with(&format!("arn:aws:lambda:{REGION}:{ACCOUNT}:")))
        })
}

fn plan_value(input: &Value) -> Plan {
    let input: PlanInput = serde_json::from_value(input.clone()).expect("valid plan input");
    plan(&input).expect("a plan")
}

/// The function name an operation's ARN refers to.
fn function_name(arn: &str) -> &str {
    arn.split(':').nth(6).unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Strategies.
// ---------------------------------------------------------------------------

fn func(name: &'static str) -> impl Strategy<Value = Func> {
    (
        prop_oneof![6 => Just(Some("true")), 1 => Just(Some("false")), 1 => Just(None), 1 => Just(Some("yes"))],
        prop_oneof![3 => Just(None), 1 => Just(Some("ASYNCHRONOUS")), 1 => Just(Some("synchronous")), 1 => Just(Some("async"))],
        prop_oneof![3 => Just(None), 1 => Just(Some("true")), 1 => Just(Some("FALSE"))],
        prop_oneof![
            3 => Just(None),
            4 => proptest::sample::subsequence(ALIASES.to_vec(), 1..=3).prop_map(|a| Some(a.join("+"))),
            1 => Just(Some("a++b".to_owned())),
        ],
        prop_oneof![4 => Just(None), 1 => Just(Some("dc1")), 1 => Just(Some("dc2"))],
    )
        .prop_map(move |(enabled, mode, payload, aliases, datacenter)| Func {
            name,
            enabled,
            mode,
            payload,
            aliases,
            datacenter,
        })
}

fn entry() -> impl Strategy<Value = Entry> {
    let name = proptest::sample::select(NAMES.to_vec());
    prop_oneof![
        6 => (
            name.clone(),
            proptest::option::of(proptest::sample::select(ALIASES.to_vec())),
            proptest::sample::select(vec!["synchronous", "asynchronous", "ASYNCHRONOUS", "SYNCHRONOUS"]),
            any::<bool>(),
        )
            .prop_map(|(f, q, m, pp)| Entry::Ours(f, q, m, pp)),
        1 => Just(Entry::Foreign),
        1 => name.clone().prop_map(Entry::OtherRegion),
        1 => name.prop_map(Entry::OtherAccount),
    ]
}

/// A service-defaults entry for `service`: mostly the one the registrator would write.
fn entry_for(service: String) -> impl Strategy<Value = (String, Value)> {
    prop_oneof![
        3 => Just(canonical_entry(&service)),
        2 => entry().prop_map(move |e| (service.clone(), e.to_json(&service))),
    ]
}

/// The entry a function of the alphabet would own for `service`.
fn canonical_entry(service: &str) -> (String, Value) {
    let (function, qualifier) = NAMES
        .iter()
        .rev()
        .find_map(|n| {
            if *n == service {
                Some((*n, None))
            } else {
                service
                    .strip_prefix(n)
                    .and_then(|r| r.strip_prefix('-'))
                    .filter(|a| ALIASES.contains(a))
                    .map(|a| (*n, Some(a)))
            }
        })
        .unwrap_or((NAMES[0], None));
    let a = qualifier.map_or_else(|| arn(function), |q| format!("{}:{q}", arn(function)));
    (
        service.to_owned(),
        json!({"Kind": "service-defaults", "Name": service, "Protocol": "http",
            "EnvoyExtensions": [{"Name": "builtin/aws/lambda", "Required": false,
                "Arguments": {"arn": a, "invocationMode": "synchronous", "payloadPassthrough": false}}]}),
    )
}

fn dc_state() -> impl Strategy<Value = DcState> {
    let names = service_names();
    let services = proptest::collection::btree_map(
        proptest::sample::select(names.clone()),
        prop_oneof![5 => Just(Instance::Managed), 1 => Just(Instance::Unmanaged)],
        0..10,
    );
    let entries = proptest::collection::vec(
        proptest::sample::select(names.clone()).prop_flat_map(entry_for),
        0..10,
    )
    .prop_map(|v| v.into_iter().collect::<BTreeMap<_, _>>());
    let other = proptest::collection::vec(proptest::sample::select(names), 0..3);
    (services, entries, other).prop_map(|(services, entries, other_node)| DcState {
        services,
        entries,
        other_node,
    })
}

fn world() -> impl Strategy<Value = World> {
    let names = service_names();
    let functions = proptest::sample::subsequence(NAMES.to_vec(), 0..=NAMES.len())
        .prop_flat_map(|names| names.into_iter().map(func).collect::<Vec<_>>());
    let leaves =
        proptest::collection::btree_map(proptest::sample::select(names.clone()), 1u8..=2, 0..20);
    let params = proptest::collection::btree_map(
        proptest::sample::select(names),
        (1u8..=2, 1u8..=2, 0u8..8),
        0..8,
    )
    .prop_map(|m| {
        m.into_iter()
            .map(|(s, (leaf, root, garbage))| {
                let value = if garbage == 0 {
                    "not json".to_owned()
                } else {
                    ext_value(&s, leaf, root, (garbage % 2 == 0).then_some("dc1"))
                };
                (param_name(&s), value)
            })
            .collect::<BTreeMap<_, _>>()
    });
    (
        functions,
        proptest::sample::subsequence(NAMES.to_vec(), 0..=2),
        proptest::sample::subsequence(NAMES.to_vec(), 0..=3),
        prop_oneof![4 => Just(true), 1 => Just(false)],
        prop_oneof![3 => Just(None), 1 => Just(Some("dc1"))],
        any::<bool>(),
        any::<bool>(),
        prop_oneof![5 => Just(None), 1 => proptest::sample::select(NAMES.to_vec()).prop_map(Some)],
        any::<bool>(),
        (dc_state(), dc_state()),
        (leaves, 1u8..=2, params),
    )
        .prop_map(
            |(
                functions,
                failed,
                absent,
                complete,
                datacenter,
                allow_mass,
                extension_data,
                trigger,
                dc1_explicit,
                (dc1, dc2),
                (leaves, active_root, params),
            )| {
                let listed: BTreeSet<&str> = functions.iter().map(|f| f.name).collect();
                let mut w = World {
                    failed: failed.into_iter().filter(|n| !listed.contains(n)).collect(),
                    confirmed_absent: absent.into_iter().filter(|n| !listed.contains(n)).collect(),
                    functions,
                    complete,
                    datacenter,
                    allow_mass,
                    extension_data,
                    trigger,
                    dc1_explicit,
                    dcs: [("dc1".to_owned(), dc1), ("dc2".to_owned(), dc2)].into(),
                    leaves,
                    active_root,
                    params,
                };
                if let Some(t) = w.trigger {
                    // A single-function sync observes only that function.
                    w.functions.retain(|f| f.name == t);
                    w.failed.retain(|n| *n == t);
                    w.complete = true;
                }
                w
            },
        )
}

/// A deterministic shuffle (xorshift) of a slice.
fn shuffle<T>(items: &mut [T], seed: &mut u64) {
    for i in (1..items.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let j = usize::try_from(*seed % (i as u64 + 1)).unwrap();
        items.swap(i, j);
    }
}

fn shuffled(input: &Value, seed: u64) -> Value {
    let mut seed = seed | 1;
    let mut v = input.clone();
    let shuffle_at = |v: &mut Value, seed: &mut u64| {
        if let Some(a) = v.as_array_mut() {
            shuffle(a, seed);
        }
    };
    shuffle_at(&mut v["inventory"]["functions"], &mut seed);
    shuffle_at(&mut v["inventory"]["failed"], &mut seed);
    shuffle_at(&mut v["inventory"]["confirmedAbsent"], &mut seed);
    shuffle_at(&mut v["consul"]["scopes"], &mut seed);
    for scope in v["consul"]["scopes"].as_array_mut().unwrap() {
        shuffle_at(&mut scope["nodeServices"]["Services"], &mut seed);
        shuffle_at(&mut scope["serviceDefaults"], &mut seed);
    }
    shuffle_at(&mut v["extensionData"]["leaves"], &mut seed);
    shuffle_at(&mut v["extensionData"]["parameters"], &mut seed);
    v
}

/// 400 cases per property (about 10 s in debug on 2 cores); `PROPTEST_CASES` overrides.
fn config() -> ProptestConfig {
    let mut c = ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        c.cases = 400;
    }
    c
}

proptest! {
    #![proptest_config(config())]

    /// (a) Planning again against the state a plan produced gives no operations.
    #[test]
    fn idempotent(w in world()) {
        let first = w.plan();
        let mut after = w.clone();
        after.apply(&first);
        let second = after.plan();
        prop_assert!(
            second.operations.is_empty(),
            "second plan is not empty:\n{}\nfirst plan:\n{}",
            serde_json::to_string_pretty(&second.operations).unwrap(),
            serde_json::to_string_pretty(&first.operations).unwrap()
        );
    }

    /// (b) An incomplete full-sync inventory never deletes for an unlisted function.
    #[test]
    fn incomplete_inventory_deletes_only_for_known_functions(mut w in world()) {
        w.complete = false;
        w.trigger = None;
        let p = w.plan();
        let known: BTreeSet<&str> = w.functions.iter().map(|f| f.name)
            .chain(w.confirmed_absent.iter().copied()).collect();
        for op in &p.operations {
            prop_assert!(op.confirm_absent.is_none(), "waits for GetFunction in an incomplete sync: {op:?}");
            if op.change == consul_lambda_sync::plan::Change::Delete {
                let owner = function_name(op.function.as_deref().unwrap_or_default());
                prop_assert!(known.contains(owner), "deletes for unlisted function {owner}: {op:?}");
            }
        }
    }

    /// (c) Never touches what is not the registrator's (the model checks every operation),
    /// and never deletes for a function that may exist without confirmation.
    #[test]
    fn never_touches_what_is_not_ours(w in world()) {
        let p = w.plan();
        let mut model = w.clone();
        model.apply(&p);
        let known: BTreeSet<&str> = w.functions.iter().map(|f| f.name)
            .chain(w.confirmed_absent.iter().copied()).collect();
        for op in p.operations.iter().filter(|o| o.change == consul_lambda_sync::plan::Change::Delete) {
            let owner = function_name(op.function.as_deref().unwrap_or_default());
            prop_assert!(known.contains(owner) || op.confirm_absent.is_some(), "{op:?}");
        }
        // Every confirmAbsent is listed in confirmations.
        for op in p.operations.iter().filter(|o| o.confirm_absent.is_some()) {
            let c = op.confirm_absent.as_deref().unwrap();
            prop_assert!(p.confirmations.iter().any(|x| x.function == c && x.services.contains(&op.service.name)));
        }
    }

    /// (d) Input order does not matter.
    #[test]
    fn order_independent(w in world(), seed in any::<u64>()) {
        let input = w.input();
        let a = serde_json::to_string(&plan_value(&input)).unwrap();
        let b = serde_json::to_string(&plan_value(&shuffled(&input, seed))).unwrap();
        prop_assert_eq!(a, b);
    }

    /// (e) Frozen functions' services are never in an operation, and plans hold no key.
    #[test]
    fn frozen_functions_are_left_alone(w in world()) {
        let p = w.plan();
        let frozen: BTreeSet<&str> = w.functions.iter().filter(|f| f.bad()).map(|f| f.name)
            .chain(w.failed.iter().copied()).collect();
        // Names frozen functions would register, and names whose entry invokes them.
        let mut names: BTreeSet<String> = w.functions.iter().filter(|f| f.bad()).flat_map(Func::names).collect();
        names.extend(w.failed.iter().map(|n| (*n).to_owned()));
        let mut owned: BTreeSet<(&str, &str)> = BTreeSet::new();
        for (dc, s) in &w.dcs {
            for (name, e) in &s.entries {
                let invoked = e["EnvoyExtensions"][0]["Arguments"]["arn"].as_str().unwrap_or_default();
                if ours(e) && frozen.contains(function_name(invoked)) {
                    owned.insert((dc.as_str(), name.as_str()));
                }
            }
        }
        for op in &p.operations {
            let f = function_name(op.function.as_deref().unwrap_or_default());
            let dc = op.service.datacenter.as_deref().unwrap_or(LOCAL_DC);
            prop_assert!(!frozen.contains(f), "operation for frozen function {f}: {op:?}");
            // Another function may not take a frozen function's name (deleting a service
            // whose entry names another, gone function is fine).
            prop_assert!(
                op.change == consul_lambda_sync::plan::Change::Delete || !names.contains(&op.service.name),
                "operation on a frozen function's name: {op:?}"
            );
            prop_assert!(!owned.contains(&(dc, op.service.name.as_str())), "operation on a frozen function's service: {op:?}");
        }
        let text = serde_json::to_string(&p).unwrap();
        prop_assert!(!text.contains("PRIVATE KEY"));
    }
}

/// The extension-data vectors hold private keys in their input; no plan may echo one.
#[test]
fn extension_data_vectors_never_leak_a_private_key() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tests/vectors/plan-extension-data.json"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut checked = 0;
    for case in doc["cases"].as_array().unwrap() {
        let input = case["input"].to_string();
        let output = consul_lambda_sync::ffi::call_enveloped("plan", &input);
        if input.contains("PRIVATE KEY") {
            checked += 1;
        }
        assert!(
            !output.contains("PRIVATE KEY") && !output.contains("secret"),
            "{}: the plan holds a private key",
            case["name"]
        );
    }
    assert!(checked >= 5, "too few cases with keys: {checked}");
}

// ---------------------------------------------------------------------------
// Idempotence of every plan vector: apply its plan to its own raw input.
// ---------------------------------------------------------------------------

/// The scope of `input` that an operation on `key` reads back, created if absent.
fn scope_for<'a>(
    input: &'a mut Value,
    key: &consul_lambda_sync::consul::ServiceKey,
) -> &'a mut Value {
    let local = input["consul"]["localDatacenter"]
        .as_str()
        .or(input["config"]["datacenter"].as_str())
        .map(str::to_owned);
    let enterprise = input["config"]["enterprise"].as_bool().unwrap_or(false);
    let scopes = input["consul"]["scopes"].as_array_mut().unwrap();
    let position = scopes.iter().position(|s| {
        let dc = s["datacenter"]
            .as_str()
            .map(str::to_owned)
            .or(local.clone());
        let partition = enterprise.then(|| s["partition"].as_str().unwrap_or("default"));
        let node = s["nodeServices"]["Node"]["Node"].as_str();
        dc == key.datacenter
            && partition == key.partition.as_deref()
            && node.map_or(true, |n| n == NODE || n == "lambda-node")
    });
    let i = position.unwrap_or_else(|| {
        let mut s = json!({"nodeServices": null, "serviceDefaults": []});
        if let Some(dc) = &key.datacenter {
            s["datacenter"] = json!(dc);
        }
        if let Some(p) = &key.partition {
            s["partition"] = json!(p);
        }
        scopes.push(s);
        scopes.len() - 1
    });
    &mut scopes[i]
}

fn same_namespace(v: &Value, key: &consul_lambda_sync::consul::ServiceKey) -> bool {
    v["Namespace"].as_str().unwrap_or("default") == key.namespace.as_deref().unwrap_or("default")
}

fn apply_to_input(input: &mut Value, p: &Plan) {
    for op in &p.operations {
        let key = &op.service;
        if let Some(edit) = op.mesh() {
            // A mesh entry write replaces the observed entry of its kind and partition.
            let kind = serde_json::to_value(edit.kind).unwrap();
            let seen = input["mesh"]
                .as_array_mut()
                .unwrap()
                .iter_mut()
                .find(|m| m["kind"] == kind && m["partition"].as_str() == key.partition.as_deref())
                .unwrap();
            let entry = Some(&seen["entry"]).filter(|e| !e.is_null()).cloned();
            if let Sent::Consul(r) = sent(op, entry.as_ref()) {
                seen["entry"] = r.body.unwrap();
            }
            continue;
        }
        match sent(op, None) {
            Sent::Consul(r) => {
                let body = r.body.clone().unwrap_or(Value::Null);
                let scope = scope_for(input, key);
                match (r.method.as_str(), r.path.as_str()) {
                    ("PUT", "/v1/catalog/register") => {
                        let mut s = body["Service"].clone();
                        if let Some(ns) = &key.namespace {
                            s["Namespace"] = json!(ns);
                        }
                        if scope["nodeServices"].is_null() {
                            scope["nodeServices"] =
                                json!({"Node": {"Node": body["Node"]}, "Services": []});
                        }
                        let services = &mut scope["nodeServices"]["Services"];
                        if let Some(map) = services.as_object_mut() {
                            map.insert(key.name.clone(), s);
                        } else {
                            services.as_array_mut().unwrap().push(s);
                        }
                    }
                    ("PUT", "/v1/catalog/deregister") => {
                        let id = body["ServiceID"].as_str().unwrap();
                        let services = &mut scope["nodeServices"]["Services"];
                        if let Some(map) = services.as_object_mut() {
                            map.retain(|_, s| !(s["ID"] == id && same_namespace(s, key)));
                        } else {
                            services
                                .as_array_mut()
                                .unwrap()
                                .retain(|s| !(s["ID"] == id && same_namespace(s, key)));
                        }
                    }
                    ("PUT", "/v1/config") => {
                        let mut e = body.clone();
                        if let Some(ns) = &key.namespace {
                            e["Namespace"] = json!(ns);
                        }
                        let entries = scope["serviceDefaults"].as_array_mut().unwrap();
                        entries.retain(|x| {
                            !(x["Name"] == key.name.as_str() && same_namespace(x, key))
                        });
                        entries.push(e);
                    }
                    ("DELETE", _) => {
                        scope["serviceDefaults"]
                            .as_array_mut()
                            .unwrap()
                            .retain(|x| {
                                !(x["Name"] == key.name.as_str() && same_namespace(x, key))
                            });
                    }
                    other => panic!("unexpected request {other:?}"),
                }
            }
            Sent::Ssm(s) => {
                let registrator_dc: Option<String> = input["config"]["datacenter"]
                    .as_str()
                    .or(input["consul"]["localDatacenter"].as_str())
                    .map(str::to_owned);
                let ext = &mut input["extensionData"];
                let leaf = ext["leaves"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|l| {
                        // A leaf is for the service of its own partition and namespace.
                        let scope = |upper: &str, lower: &str| {
                            l[upper]
                                .as_str()
                                .or(l[lower].as_str())
                                .unwrap_or("default")
                                .to_owned()
                        };
                        l["Service"] == key.name.as_str()
                            && scope("Partition", "partition")
                                == key.partition.as_deref().unwrap_or("default")
                            && scope("Namespace", "namespace")
                                == key.namespace.as_deref().unwrap_or("default")
                    })
                    .cloned();
                let roots = ext["roots"].clone();
                let params = ext["parameters"].as_array_mut().unwrap();
                params.retain(|p| p["Name"] != s.name.as_str());
                if s.action == "PutParameter" {
                    let leaf = leaf.expect("a write has a leaf");
                    let active = roots["Roots"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|r| r["Active"] == true)
                        .cloned()
                        .unwrap();
                    // What the lowering writes: the service's datacenter, the inactive roots.
                    let inactive: Vec<Value> = roots["Roots"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|r| r["RootCert"] != active["RootCert"] && r["RootCert"] != "")
                        .map(|r| r["RootCert"].clone())
                        .collect();
                    let mut value = json!({"privateKeyPEM": leaf["PrivateKeyPEM"], "certPEM": leaf["CertPEM"],
                        "rootCertPEM": active["RootCert"], "trustDomain": roots["TrustDomain"]});
                    // The registrator's datacenter: DATACENTER, else the agent's.
                    if let Some(dc) = &registrator_dc {
                        value["datacenter"] = json!(dc);
                    }
                    if !inactive.is_empty() {
                        value["inactiveRootCertPEMs"] = json!(inactive);
                    }
                    params.push(json!({"Name": s.name, "Value": value.to_string()}));
                }
            }
        }
    }
}

/// Every plan vector, applied to its own input and planned again, gives no operations.
#[test]
fn every_plan_vector_is_idempotent() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/vectors");
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in std::fs::read_dir(dir).unwrap() {
        let path = file.unwrap().path();
        let doc: Value = match std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
        {
            Some(d) => d,
            None => continue,
        };
        if doc["function"] != "plan" {
            continue;
        }
        for case in doc["cases"].as_array().unwrap() {
            let Ok(input) = serde_json::from_value::<PlanInput>(case["input"].clone()) else {
                continue;
            };
            let Ok(first) = plan(&input) else { continue };
            let mut after = case["input"].clone();
            apply_to_input(&mut after, &first);
            let second = plan_value(&after);
            checked += 1;
            if !second.operations.is_empty() {
                failures.push(format!(
                    "{} / {}: {}",
                    path.display(),
                    case["name"],
                    serde_json::to_string(&second.operations).unwrap()
                ));
            }
        }
    }
    eprintln!("{checked} plan vectors are idempotent");
    assert!(checked >= 60, "only {checked} plan vectors");
    assert!(
        failures.is_empty(),
        "not idempotent:\n{}",
        failures.join("\n")
    );
}
