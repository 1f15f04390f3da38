//! The planner benchmark's workload, shared by `benches/plan.rs`, the memory
//! probe (`examples/plan_memory.rs`) and the binding benchmarks (which read the
//! JSON that `examples/bench_input.rs` writes), so every runtime plans the same
//! input.
//!
//! `n` enabled functions with 0 to 3 aliases each (`i % 4`); half of them (even
//! `i`) already registered in Consul exactly as wanted, except that 1% of all
//! functions (`i % 100 == 0`) have a drifted service-defaults entry (it invokes
//! version 3); plus `n / 100` orphaned services of ours that no function wants.

use serde_json::{json, Value};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
const TAG: &str = "serverless.consul.hashicorp.com/v1alpha1/lambda";
const MANAGED: &str = "managed-by-lambda-registrator";
const ALIASES: [&str; 3] = ["live", "beta", "canary"];

fn arn(name: &str, qualifier: Option<&str>) -> String {
    match qualifier {
        Some(q) => format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}:{q}"),
        None => format!("arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"),
    }
}

fn entry(service: &str, target: &str) -> Value {
    json!({
        "Kind": "service-defaults",
        "Name": service,
        "Protocol": "http",
        "EnvoyExtensions": [{
            "Name": "builtin/aws/lambda",
            "Required": false,
            "Arguments": {"arn": target, "invocationMode": "synchronous", "payloadPassthrough": false}
        }]
    })
}

fn service(name: &str) -> Value {
    json!({"ID": name, "Service": name, "Tags": [MANAGED]})
}

/// The plan input for `n` functions (see the module documentation).
pub fn input(n: usize) -> Value {
    let mut functions = Vec::with_capacity(n);
    let mut services = Vec::new();
    let mut entries = Vec::new();
    for i in 0..n {
        let name = format!("fn-{i:06}");
        let aliases = ALIASES.get(..i % 4).unwrap_or(&[]);
        let mut tags = serde_json::Map::new();
        tags.insert(format!("{TAG}/enabled"), json!("true"));
        if !aliases.is_empty() {
            tags.insert(format!("{TAG}/aliases"), json!(aliases.join("+")));
        }
        functions.push(json!({"arn": arn(&name, None), "tags": tags}));
        if i % 2 == 0 {
            let drifted = i % 100 == 0;
            let base = if drifted { Some("3") } else { None };
            services.push(service(&name));
            entries.push(entry(&name, &arn(&name, base)));
            for alias in aliases {
                let s = format!("{name}-{alias}");
                services.push(service(&s));
                entries.push(entry(&s, &arn(&name, Some(alias))));
            }
        }
    }
    for j in 0..n / 100 {
        let name = format!("gone-{j:06}");
        services.push(service(&name));
        entries.push(entry(&name, &arn(&name, None)));
    }
    json!({
        "config": {"nodeName": "lambdas"},
        "trigger": {"kind": "fullSync"},
        "inventory": {"accountId": ACCOUNT, "region": REGION, "complete": true, "functions": functions},
        "consul": {"scopes": [{
            "nodeServices": {"Node": {"Node": "lambdas"}, "Services": services},
            "serviceDefaults": entries
        }]}
    })
}
