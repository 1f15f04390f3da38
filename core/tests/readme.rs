//! The README's worked example and error-code table are checked against the code,
//! so the documentation cannot drift.
use consul_lambda_sync::{plan_json, render::format_plan, Code};

fn readme() -> String {
    std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .unwrap_or_default()
}

/// The fenced block that follows `marker`.
fn block_after<'a>(text: &'a str, marker: &str) -> &'a str {
    let after = text.split_once(marker).map_or("", |(_, a)| a);
    let body = after.split_once("```").map_or("", |(_, b)| b);
    let body = body.split_once('\n').map_or("", |(_, b)| b);
    body.split_once("```").map_or("", |(b, _)| b)
}

#[test]
fn worked_example_output_is_what_the_planner_prints() {
    let text = readme();
    let input = block_after(&text, "<!-- worked-example:input -->");
    let output = block_after(&text, "<!-- worked-example:output -->");
    let plan = plan_json(input).expect("the README's input is valid");
    assert_eq!(format_plan(&plan), output);
    assert_eq!(plan.summary.create, 1);
    assert_eq!(plan.summary.update, 1);
    assert_eq!(plan.summary.delete, 1);
}

#[test]
fn error_code_table_lists_every_code() {
    let text = readme();
    let table = text
        .split_once("<!-- error-codes -->")
        .map_or("", |(_, t)| t);
    let documented: Vec<&str> = table
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    assert_eq!(documented, codes);
}
