//! Writes the planner benchmark's input for N functions (default 10,000) as JSON
//! on standard output, so the Python, Node and wasm benchmarks plan exactly what
//! the Rust benchmark plans: `cargo run -q --release --example bench_input -- 10000`
#[path = "../benches/workload.rs"]
mod workload;

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(10_000);
    println!("{}", workload::input(n));
}
