//! The plan JSON written straight from the planner's working state (what
//! `ffi::call("plan")` returns) is the JSON of the owned `Plan`, for every plan
//! vector; the summary shortcut agrees too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)] // test code

use consul_lambda_sync::plan::{plan, plan_summary, plan_to_json, PlanInput};
use serde_json::Value;

/// The JSON written straight from the working state (what `ffi::call` returns)
/// is the JSON of the owned `Plan`, for every plan vector.
#[test]
fn written_plan_is_the_owned_plan() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut compared = 0;
    for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        let text = std::fs::read_to_string(entry.path()).unwrap_or_default();
        let doc: Value = serde_json::from_str(&text).unwrap_or_default();
        if doc.get("function").and_then(Value::as_str) != Some("plan") {
            continue;
        }
        let cases = doc.get("cases").and_then(Value::as_array);
        for case in cases.into_iter().flatten() {
            let input = case.get("input").cloned().unwrap_or_default();
            let Ok(input) = serde_json::from_value::<PlanInput>(input) else {
                continue;
            };
            let owned = plan(&input).map(|p| serde_json::to_string(&p).unwrap_or_default());
            assert_eq!(plan_to_json(&input), owned, "{}", case["name"]);
            if let Ok(p) = plan(&input) {
                assert_eq!(plan_summary(&input).ok(), Some(p.summary));
            }
            compared += 1;
        }
    }
    assert!(compared > 60, "only {compared} plan vectors found");
}
