//! The planner: arbitrary bytes as JSON to `plan`; a plan produced is rendered
//! with formatPlan.
#![no_main]

use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_call("plan", text);
    if let Ok(plan) = ffi::call("plan", text) {
        check_call("formatPlan", &plan);
        assert_eq!(
            ffi::call("plan", text).ok(),
            Some(plan),
            "plan is not deterministic"
        );
    }
});
