//! Peak heap memory of the sync engine over one full sync of N functions (0-3
//! aliases each), driven as a host drives it (JSON text in and out) against a
//! minimal Consul and AWS that accept every write: prints the engine's own peak,
//! the largest step's JSON text, and the requests made. The host's own memory
//! (the Python or Node process) is measured by `scripts/bench.sh`.
//! `cargo run -q --release --example engine_memory -- 10000 [cold|steady]`
#![allow(unsafe_code)] // a counting GlobalAlloc must be an unsafe impl
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use consul_lambda_sync::engine::Engine;
use serde_json::{json, Value};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

struct Counting;
static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to the system allocator unchanged and only
// updates two counters.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Relaxed) + layout.size();
        PEAK.fetch_max(now, Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Relaxed);
        // SAFETY: ptr was allocated by System.alloc with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            let now =
                CURRENT.fetch_add(new_size - layout.size(), Relaxed) + new_size - layout.size();
            PEAK.fetch_max(now, Relaxed);
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Relaxed);
        }
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const ACCOUNT: &str = "123456789012";
const PREFIX: &str = "serverless.consul.hashicorp.com/v1alpha1/lambda/";

/// The functions, with 0-3 aliases each.
fn functions(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let arn = format!("arn:aws:lambda:us-east-1:{ACCOUNT}:function:fn-{i:05}");
            let mut tags = vec![json!({"Key": format!("{PREFIX}enabled"), "Value": "true"})];
            let aliases = ["prod", "staging", "dev"];
            if i % 4 > 0 {
                let list = aliases[..i % 4].join("+");
                tags.push(json!({"Key": format!("{PREFIX}aliases"), "Value": list}));
            }
            tags.push(json!({"Key": "team", "Value": "payments"}));
            json!({"ResourceARN": arn, "Tags": tags})
        })
        .collect()
}

/// What Consul holds after a cold sync of `fns` (for a steady sync).
fn registered(fns: &[Value]) -> (Value, Value) {
    let mut services = Vec::new();
    let mut entries = Vec::new();
    for (i, f) in fns.iter().enumerate() {
        let arn = f["ResourceARN"].as_str().unwrap();
        let name = arn.rsplit(':').next().unwrap().to_owned();
        let mut names = vec![(name.clone(), arn.to_owned())];
        for a in ["prod", "staging", "dev"].iter().take(i % 4) {
            names.push((format!("{name}-{a}"), format!("{arn}:{a}")));
        }
        for (s, target) in names {
            let index = 100 + services.len();
            services.push(json!({"ID": s, "Service": s, "Tags": ["managed-by-lambda-registrator"], "ModifyIndex": index}));
            entries.push(json!({"Kind": "service-defaults", "Name": s, "Protocol": "http", "ModifyIndex": index,
                "EnvoyExtensions": [{"Name": "builtin/aws/lambda", "Required": false,
                    "Arguments": {"arn": target, "invocationMode": "synchronous", "payloadPassthrough": false}}]}));
        }
    }
    (
        json!({"Node": {"Node": "lambdas"}, "Services": services}),
        Value::Array(entries),
    )
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let steady = args.next().as_deref() == Some("steady");
    let fns = functions(n);
    let (node, entries) = if steady {
        registered(&fns)
    } else {
        (json!({"Node": null, "Services": null}), json!([]))
    };
    let node = node.to_string();
    let entries = entries.to_string();
    let pages: Vec<String> = fns
        .chunks(100)
        .enumerate()
        .map(|(i, page)| {
            let next = if (i + 1) * 100 < n {
                (i + 1).to_string()
            } else {
                String::new()
            };
            json!({"ResourceTagMappingList": page, "PaginationToken": next}).to_string()
        })
        .collect();
    drop(fns);
    eprintln!(
        "node-services {:.1} MiB, service-defaults {:.1} MiB",
        node.len() as f64 / 1048576.0,
        entries.len() as f64 / 1048576.0
    );
    let base = CURRENT.load(Relaxed);
    PEAK.store(base, Relaxed);
    let start = json!({"region": "us-east-1", "accountId": ACCOUNT, "seed": 1, "compact": true,
        "env": {"DATACENTER": "dc1", "LOG_LEVEL": "info"}});
    let mut engine = Engine::from_json(&start.to_string()).unwrap();
    let (mut now, mut largest, mut requests, mut peak) = (0u64, 0usize, 0usize, 0usize);
    // Only the engine's calls are measured: the harness holds nothing but the
    // fixed answers (`base`) while the engine works.
    let mut measured = |f: &mut dyn FnMut()| {
        PEAK.store(CURRENT.load(Relaxed), Relaxed);
        f();
        peak = peak.max(PEAK.load(Relaxed) - base);
    };
    let done = loop {
        now += 1;
        let mut text = String::new();
        measured(&mut || text = engine.next_json(now, None));
        if std::env::var_os("TRACE").is_some() {
            eprintln!(
                "next {:>9} bytes: live {:.1} MiB, peak so far {:.1} MiB",
                text.len(),
                (CURRENT.load(Relaxed) - base) as f64 / 1048576.0,
                (PEAK.load(Relaxed) - base) as f64 / 1048576.0
            );
        }
        largest = largest.max(text.len());
        let step: Value = serde_json::from_str(&text).unwrap();
        drop(text);
        if let Some(done) = step.get("done") {
            break done.clone();
        }
        if let Some(ms) = step.get("sleep").and_then(Value::as_u64) {
            now += ms;
            continue;
        }
        let mut answers = Vec::new();
        for r in step["send"].as_array().unwrap() {
            requests += 1;
            let id = r["id"].as_u64().unwrap();
            if let Some(aws) = r.get("aws") {
                if aws["operation"] == "ListAliases" {
                    // Every alias a function's tag names exists.
                    let names = ["prod", "staging", "dev"].map(|n| json!({ "Name": n }));
                    answers.push(json!({"id": id, "ok": {"Aliases": names}}).to_string());
                    continue;
                }
                let token = aws["input"]["PaginationToken"].as_str().unwrap_or("0");
                let page = token.parse::<usize>().unwrap_or(0);
                let ok = pages.get(page).cloned().unwrap_or_else(|| "{}".into());
                answers.push(format!("{{\"id\":{id},\"ok\":{ok}}}"));
                continue;
            }
            let c = &r["consul"];
            let body = match (c["method"].as_str().unwrap(), c["path"].as_str().unwrap()) {
                ("GET", "/v1/config/service-defaults") => entries.clone(),
                ("GET", "/v1/catalog/datacenters") => "[\"dc1\"]".to_owned(),
                // No name is used on another node.
                ("GET", "/v1/catalog/services") => "{}".to_owned(),
                ("GET", _) => node.clone(),
                ("PUT", "/v1/txn") => "{\"Results\":[],\"Errors\":null}".to_owned(),
                _ => "true".to_owned(),
            };
            answers.push(json!({"id": id, "status": 200, "body": body}).to_string());
        }
        drop(step);
        let answers = format!("[{}]", answers.join(","));
        let nreq = answers.len();
        measured(&mut || engine.feed_json(&answers, now).unwrap());
        if std::env::var_os("TRACE").is_some() {
            eprintln!(
                "feed {nreq:>9} bytes: live {:.1} MiB, peak so far {:.1} MiB",
                (CURRENT.load(Relaxed) - base) as f64 / 1048576.0,
                (PEAK.load(Relaxed) - base) as f64 / 1048576.0
            );
        }
    };
    println!(
        "{n} functions ({}): engine peak heap {:.1} MiB; largest step {:.1} MiB; {requests} requests; verdict {}; {}",
        if steady { "steady" } else { "cold" },
        peak as f64 / 1048576.0,
        largest as f64 / 1048576.0,
        done["verdict"],
        done["message"]
    );
}
