//! Reads a plan input (JSON) on standard input and prints the plan: as text, or as
//! JSON with `--json`. `cargo run -q -p consul-lambda-sync --example plan_stdin < input.json`
use std::io::Read;

fn main() {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        eprintln!("could not read standard input");
        std::process::exit(3);
    }
    match consul_lambda_sync::plan_json(&input) {
        Ok(plan) if std::env::args().any(|a| a == "--json") => {
            println!(
                "{}",
                serde_json::to_string_pretty(&plan).unwrap_or_default()
            );
        }
        Ok(plan) => print!("{}", consul_lambda_sync::render::format_plan(&plan)),
        Err(failure) => {
            eprintln!("{failure}");
            for e in &failure.errors {
                eprintln!("  - {e}");
            }
            std::process::exit(1);
        }
    }
}
