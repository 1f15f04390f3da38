//! Tag parsing: raw JSON to parseTags/tagsFromOptions/evaluateFunction, and tag maps
//! built from `key=value` lines (keys starting with `~` get the registrator's prefix).
#![no_main]

use consul_lambda_sync::{config::Config, tags};
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

include!("common.rs");

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for f in ["parseTags", "tagsFromOptions", "evaluateFunction"] {
        check_call(f, text);
    }
    let map: BTreeMap<String, String> = pairs(text)
        .into_iter()
        .map(|(k, v)| match k.strip_prefix('~') {
            Some(name) => (format!("{}{name}", tags::TAG_PREFIX), v),
            None => (k, v),
        })
        .collect();
    for enterprise in [false, true] {
        let report = tags::parse_tags(&map, enterprise);
        serde_json::to_string(&report).expect("report serialises");
        // Every setting the parser accepted can be written back and read again.
        if report.errors.is_empty() {
            let options = tags::TagOptions {
                enabled: Some(report.settings.enabled),
                payload_passthrough: Some(report.settings.payload_passthrough),
                invocation_mode: Some(report.settings.invocation_mode),
                datacenter: report.settings.datacenter.clone(),
                namespace: report.settings.namespace.clone(),
                partition: report.settings.partition.clone(),
                aliases: Some(report.settings.aliases.clone()),
            };
            let back =
                tags::tags_from_options(&options, enterprise).expect("valid settings round-trip");
            let again = tags::parse_tags(&back, enterprise);
            assert!(again.errors.is_empty(), "{:?}", again.errors);
            assert_eq!(again.settings, report.settings);
        }
        let config = Config {
            enterprise,
            partitions: if enterprise {
                vec!["default".into()]
            } else {
                Vec::new()
            },
            ..Config::default()
        };
        let function = tags::LambdaFunction {
            arn: "arn:aws:lambda:us-east-1:123456789012:function:fuzz".into(),
            name: None,
            tags: map.clone(),
        };
        let r = tags::evaluate_function(&function, &config);
        serde_json::to_string(&r).expect("report serialises");
        if r.status == tags::FunctionStatus::Managed {
            assert!(r.errors.is_empty(), "{:?}", r.errors);
            assert_eq!(r.services.len(), 1 + r.settings.aliases.len());
        } else {
            assert!(r.services.is_empty());
        }
    }
});
