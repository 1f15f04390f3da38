//! Events: raw JSON to classifyEvent, and the input wrapped as the detail of a
//! CloudTrail envelope.
#![no_main]

use consul_lambda_sync::{classify_event, Trigger};
use libfuzzer_sys::fuzz_target;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_call("classifyEvent", text);
    if let Ok(detail) = serde_json::from_str::<serde_json::Value>(text) {
        let event = serde_json::json!({
            "source": "aws.lambda",
            "detail-type": "AWS API Call via CloudTrail",
            "account": "123456789012",
            "region": "us-east-1",
            "detail": detail,
        });
        if let Ok(Trigger::Function { arn, name, .. }) = classify_event(&event) {
            // A function trigger always names a valid, unqualified function ARN.
            let parsed = consul_lambda_sync::arn::parse_function_arn(&arn).expect("valid ARN");
            assert_eq!(parsed.qualifier, None);
            assert_eq!(parsed.name, name);
        }
    }
});
