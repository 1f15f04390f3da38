//! Property tests: no input makes the core panic, every answer is valid JSON, and
//! the ACL token given in `CONSUL_HTTP_TOKEN` never appears in any output.

use consul_lambda_sync::arn::{parse_function_arn, valid_alias_name};
use consul_lambda_sync::{
    classify_event, config_from_env, ffi, parse_tags, tags, tags_from_options, Code, TagOptions,
    Trigger,
};
use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

const PREFIX: &str = "serverless.consul.hashicorp.com/v1alpha1/lambda/";

/// Field names and values the core reads, so that generated JSON reaches past
/// the first shape check now and then.
const KEYS: &[&str] = &[
    "tags",
    "enterprise",
    "options",
    "function",
    "config",
    "arn",
    "name",
    "aliases",
    "source",
    "detail-type",
    "detail",
    "account",
    "region",
    "eventName",
    "errorCode",
    "requestParameters",
    "responseElements",
    "functionArn",
    "functionName",
    "resource",
    "qualifier",
    "trigger",
    "kind",
    "inventory",
    "accountId",
    "complete",
    "functions",
    "failed",
    "confirmedAbsent",
    "consul",
    "scopes",
    "localDatacenter",
    "datacenter",
    "partition",
    "nodeServices",
    "serviceDefaults",
    "extensionData",
    "nodeName",
    "partitions",
    "pageSize",
    "logLevel",
    "consulHttpAddr",
    "consulExtensionDataPrefix",
    "PaginationToken",
    "ResourceTagMappingList",
    "ResourceARN",
    "Tags",
    "Key",
    "Value",
    "Configuration",
    "FunctionArn",
    "Service",
    "Services",
    "Node",
    "Kind",
    "Name",
    "EnvoyExtensions",
    "Arguments",
];

const VALUES: &[&str] = &[
    "",
    "true",
    "TRUE",
    "false",
    "yes",
    "ASYNCHRONOUS",
    "asynchronous",
    "async",
    "dev+prod",
    "a++b",
    "123",
    "dc1",
    "default",
    "aws.events",
    "aws.lambda",
    "AWS API Call via CloudTrail",
    "CreateFunction20150331",
    "TagResource20170331v2",
    "UntagResource20170331",
    "DeleteFunction20150331",
    "CreateAlias20150331",
    "Invoke",
    "fullSync",
    "function",
    "arn:aws:lambda:us-east-1:123456789012:function:orders",
    "arn:aws:lambda:us-east-1:123456789012:function:orders:prod",
    "arn:aws-cn:lambda:cn-north-1:123456789012:function:f",
    "arn:aws:lambda:us-east-1:123456789012:layer:l:1",
    "123456789012:function:orders",
    "orders",
    "123456789012",
    "us-east-1",
    "managed-by-lambda-registrator",
    "builtin/aws/lambda",
    "service-defaults",
    "lambdas",
    "/lambda_extension_data",
    "http://127.0.0.1:8500",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(VALUES).prop_map(str::to_owned),
        2 => ".{0,24}",
        1 => "[a-zA-Z0-9:/+._-]{0,80}",
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => tag_key(),
        1 => ".{0,12}",
    ]
}

/// Arbitrary JSON, at most four levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..6).prop_map(Value::Array),
            btree_map(key(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// Tag keys, mostly under the registrator's prefix.
fn tag_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(tags::KNOWN_TAGS.to_vec()).prop_map(|n| format!("{PREFIX}{n}")),
        2 => "[a-zA-Z_-]{0,16}".prop_map(|n| format!("{PREFIX}{n}")),
        1 => "[a-z0-9]{0,8}".prop_map(|v| format!("serverless.consul.hashicorp.com/{v}/lambda/enabled")),
        1 => ".{0,20}",
    ]
}

fn tag_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(VALUES).prop_map(str::to_owned),
        2 => "[a-zA-Z0-9_+-]{0,20}",
        1 => ".{0,140}",
    ]
}

fn tag_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    btree_map(tag_key(), tag_value(), 0..10)
}

/// Every ffi function, plus one it does not know.
fn functions() -> Vec<&'static str> {
    let mut all = ffi::FUNCTIONS.to_vec();
    all.push("noSuchFunction");
    all
}

/// Calls `function` both ways; both answers are JSON and agree.
fn check_call(function: &str, input: &str) -> Result<(), TestCaseError> {
    let enveloped = ffi::call_enveloped(function, input);
    let parsed: Value = serde_json::from_str(&enveloped)
        .map_err(|e| TestCaseError::fail(format!("{function}: envelope is not JSON: {e}")))?;
    match ffi::call(function, input) {
        Ok(out) => {
            let out: Value = serde_json::from_str(&out)
                .map_err(|e| TestCaseError::fail(format!("{function}: output is not JSON: {e}")))?;
            prop_assert_eq!(parsed.get("ok"), Some(&out));
        }
        Err(failure) => {
            prop_assert!(
                !failure.errors.is_empty(),
                "{function}: a failure lists its problems"
            );
            let code = parsed.pointer("/error/code").and_then(Value::as_str);
            prop_assert_eq!(code, Some(failure.code.as_str()));
        }
    }
    Ok(())
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9]{12,32}".prop_map(|t| format!("SECRET-{t}"))
}

fn env_map() -> impl Strategy<Value = BTreeMap<String, String>> {
    let names: Vec<&str> = consul_lambda_sync::config::ENV_KEYS
        .iter()
        .map(|(k, _)| *k)
        .collect();
    btree_map(
        prop_oneof![
            4 => prop::sample::select(names).prop_map(str::to_owned),
            1 => "[A-Z_]{1,12}",
        ],
        prop_oneof![
            3 => prop::sample::select(VALUES).prop_map(str::to_owned),
            1 => "[ -~]{0,30}",
            1 => "[0-9-]{1,6}",
        ],
        0..12,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(input in ".{0,200}") {
        for f in functions() {
            check_call(f, &input)?;
        }
    }

    #[test]
    fn arbitrary_json_never_panics(value in json_value()) {
        let input = value.to_string();
        for f in functions() {
            check_call(f, &input)?;
        }
    }

    #[test]
    fn wrapped_json_never_panics(inner in json_value(), tags in tag_map(), enterprise in any::<bool>()) {
        let inputs = [
            json!({"tags": tags, "enterprise": enterprise}),
            json!({"function": {"arn": inner, "tags": tags}}),
            json!({"function": {"arn": "arn:aws:lambda:us-east-1:123456789012:function:orders", "tags": tags}, "config": inner}),
            json!({"options": inner, "enterprise": enterprise}),
            json!({"source": "aws.lambda", "detail-type": "AWS API Call via CloudTrail", "detail": inner}),
            json!({"source": "aws.lambda", "detail-type": "AWS API Call via CloudTrail", "account": "123456789012", "region": "us-east-1",
                   "detail": {"eventName": "DeleteFunction20150331", "requestParameters": inner}}),
            json!({"ResourceTagMappingList": [{"ResourceARN": inner, "Tags": []}]}),
            json!({"Configuration": {"FunctionArn": inner}, "Tags": tags}),
            json!({"config": {}, "inventory": {"accountId": "123456789012", "region": "us-east-1", "functions": inner}, "consul": {"scopes": []}}),
            json!({"config": {}, "inventory": {"accountId": "123456789012", "region": "us-east-1", "functions": []}, "consul": inner}),
        ];
        for input in inputs {
            let input = input.to_string();
            for f in functions() {
                check_call(f, &input)?;
            }
        }
    }

    #[test]
    fn tag_maps_parse_consistently(map in tag_map(), enterprise in any::<bool>()) {
        let report = parse_tags(&map, enterprise);
        serde_json::to_string(&report).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for d in report.errors.iter().chain(&report.warnings) {
            let key = d.key.clone().unwrap_or_default();
            prop_assert!(map.contains_key(&key), "a diagnostic names a tag that is present: {key}");
        }
        for d in &report.warnings {
            prop_assert_eq!(d.code, Code::UnknownTag);
        }
        let aliases = &report.settings.aliases;
        prop_assert!(aliases.iter().all(|a| valid_alias_name(a)));
        for (i, a) in aliases.iter().enumerate() {
            prop_assert!(!aliases.iter().skip(i + 1).any(|b| b == a), "alias {a} listed twice");
        }
        if !enterprise {
            prop_assert!(report.settings.namespace.is_none() && report.settings.partition.is_none());
        }
        if report.errors.is_empty() {
            // What was read can be written back and read again, unchanged.
            let options = TagOptions {
                enabled: Some(report.settings.enabled),
                payload_passthrough: Some(report.settings.payload_passthrough),
                invocation_mode: Some(report.settings.invocation_mode),
                datacenter: report.settings.datacenter.clone(),
                namespace: report.settings.namespace.clone(),
                partition: report.settings.partition.clone(),
                aliases: Some(report.settings.aliases.clone()),
            };
            let back = tags_from_options(&options, enterprise)
                .map_err(|f| TestCaseError::fail(format!("round trip failed: {f}")))?;
            let again = parse_tags(&back, enterprise);
            prop_assert!(again.errors.is_empty());
            prop_assert_eq!(again.settings, report.settings);
        }
    }

    #[test]
    fn evaluated_functions_are_consistent(map in tag_map(), enterprise in any::<bool>(), dc in prop::option::of("dc[12]")) {
        let arn = "arn:aws:lambda:us-east-1:123456789012:function:orders";
        let config = json!({"enterprise": enterprise, "partitions": if enterprise { vec!["default", "ap1"] } else { vec![] }, "datacenter": dc});
        let input = json!({"function": {"arn": arn, "tags": map}, "config": config}).to_string();
        check_call("evaluateFunction", &input)?;
        let out: Value = serde_json::from_str(&ffi::call("evaluateFunction", &input).map_err(|f| TestCaseError::fail(f.to_string()))?)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let status = out["status"].as_str().unwrap_or_default();
        let services = out["services"].as_array().map_or(0, Vec::len);
        let errors = out["errors"].as_array().map_or(0, Vec::len);
        let aliases = out["settings"]["aliases"].as_array().map_or(0, Vec::len);
        match status {
            "managed" => {
                prop_assert_eq!(errors, 0);
                prop_assert_eq!(services, 1 + aliases);
            }
            "invalid" => {
                prop_assert!(errors > 0);
                prop_assert_eq!(services, 0);
            }
            "disabled" | "skipped" => prop_assert_eq!(services, 0),
            other => prop_assert!(false, "unknown status {other}"),
        }
    }

    #[test]
    fn function_triggers_name_a_valid_function(detail in json_value(), name in prop::sample::select(VALUES), field in text()) {
        let events = [
            json!({"source": "aws.lambda", "detail-type": "AWS API Call via CloudTrail", "account": "123456789012", "region": "us-east-1", "detail": detail}),
            json!({"source": "aws.lambda", "detail-type": "AWS API Call via CloudTrail", "account": "123456789012", "region": "cn-north-1",
                   "detail": {"eventName": name, "requestParameters": {"resource": field, "functionName": field}, "responseElements": {"functionArn": field}}}),
        ];
        for event in events {
            if let Ok(Trigger::Function { arn, name, .. }) = classify_event(&event) {
                let parsed = parse_function_arn(&arn).map_err(|d| TestCaseError::fail(d.to_string()))?;
                prop_assert_eq!(parsed.qualifier, None);
                prop_assert_eq!(parsed.name, name);
            }
        }
    }

    #[test]
    fn environments_never_leak_the_token(mut env in env_map(), secret in token()) {
        env.insert("CONSUL_HTTP_TOKEN".to_owned(), secret.clone());
        match config_from_env(&env) {
            Ok(config) => {
                prop_assert!(config.consul_http_token_set);
                prop_assert!((1..=100).contains(&config.page_size));
                let out = serde_json::to_string(&config).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(!out.contains(&secret), "token in {out}");
            }
            Err(failure) => {
                prop_assert_eq!(failure.code, Code::InvalidConfig);
                prop_assert!(!failure.errors.is_empty());
                let out = serde_json::to_string(&failure).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(!out.contains(&secret), "token in {out}");
            }
        }
        let input = serde_json::to_string(&env).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let out = ffi::call_enveloped("configFromEnv", &input);
        prop_assert!(!out.contains(&secret), "token in {out}");
        check_call("configFromEnv", &input)?;
        // A configuration that carries the token's presence into a plan or an evaluation
        // carries no token either.
        let plan = json!({"config": {"consulHttpTokenSet": true}, "inventory": {"accountId": "123456789012", "region": "us-east-1", "functions": []}, "consul": {"scopes": []}});
        prop_assert!(!ffi::call_enveloped("plan", &plan.to_string()).contains(&secret));
    }
}

#[test]
fn the_token_is_absent_even_when_the_configuration_is_invalid() {
    let secret = "SECRET-0123456789abcdef";
    let env = json!({"CONSUL_HTTP_TOKEN": secret, "PAGE_SIZE": "0", "ENTERPRISE": "maybe", "CONSUL_HTTP_ADDR": "nope"});
    let out = ffi::call_enveloped("configFromEnv", &env.to_string());
    assert!(out.contains("invalid_config"), "{out}");
    assert!(!out.contains(secret), "{out}");
    let ok = ffi::call_enveloped(
        "configFromEnv",
        &json!({"CONSUL_HTTP_TOKEN": secret}).to_string(),
    );
    assert!(ok.contains("\"consulHttpTokenSet\":true"), "{ok}");
    assert!(!ok.contains(secret), "{ok}");
}
