//! JSON in → plan → JSON out for 10,000 and 100,000 functions (workload in
//! `workload.rs`). `cargo bench -p consul-lambda-sync --bench plan`
#![allow(missing_docs, clippy::expect_used, clippy::unwrap_used)] // benchmark code

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

#[path = "workload.rs"]
mod workload;

fn plan_json(c: &mut Criterion) {
    let mut group = c.benchmark_group("plan_json");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    for n in [10_000usize, 100_000] {
        let text = workload::input(n).to_string();
        let out = consul_lambda_sync::ffi::call("plan", &text).expect("the workload plans");
        let plan: serde_json::Value = serde_json::from_str(&out).expect("plan JSON");
        eprintln!(
            "{n} functions: input {:.1} MB, output {:.1} MB, summary {}",
            text.len() as f64 / 1e6,
            out.len() as f64 / 1e6,
            plan.get("summary").cloned().unwrap_or_default()
        );
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::from_parameter(n), &text, |b, text| {
            b.iter(|| consul_lambda_sync::ffi::call("plan", text).map(|s| s.len()))
        });
    }
    group.finish();
}

criterion_group!(benches, plan_json);
criterion_main!(benches);
