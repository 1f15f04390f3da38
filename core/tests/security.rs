//! Issue 14: secrets never leave the core in an error, names read from Consul never
//! reach a request path unchecked, and foreign functions never cause a deletion.
#![allow(clippy::indexing_slicing)] // test code: a missing key fails the test

use consul_lambda_sync::{ffi, Failure};
use serde_json::{json, Value};

const CANARY: &str = "CANARY-7f3a9c-SECRET";

/// Every way the failure can be printed or sent: JSON, Display, Debug.
fn failure_texts(f: &Failure) -> Vec<String> {
    let mut texts = vec![
        serde_json::to_string(f).unwrap_or_default(),
        f.to_string(),
        format!("{f:?}"),
    ];
    for d in &f.errors {
        texts.push(d.to_string());
        texts.push(format!("{d:?}"));
    }
    texts
}

fn assert_no_canary(function: &str, input: &Value) {
    let text = serde_json::to_string(input).unwrap_or_default();
    let envelope = ffi::call_enveloped(function, &text);
    assert!(!envelope.contains(CANARY), "{function}: {envelope}");
    match ffi::call(function, &text) {
        Ok(out) => assert!(!out.contains(CANARY), "{function}: {out}"),
        Err(f) => {
            for t in failure_texts(&f) {
                assert!(!t.contains(CANARY), "{function}: {t}");
            }
        }
    }
}

fn pem(secret: &str) -> String {
    format!("-----BEGIN EC PRIVATE KEY-----\n{secret}\n-----END EC PRIVATE KEY-----\n")
}

#[test]
fn malformed_leaves_never_echo_the_private_key() {
    let key = pem(CANARY);
    let roots = json!({"ActiveRootID": "r1", "TrustDomain": "td", "Roots": [{"ID": "r1", "RootCert": "root", "Active": true}]});
    let leaf = |l: Value| json!({"name": "/p/default/default/f", "leaf": l, "roots": roots});
    for input in [
        // The leaf response as a string (a host that passed the PEM, or the body unparsed).
        leaf(json!(key)),
        leaf(json!([key])),
        // A leaf without a certificate.
        leaf(json!({"Service": "f", "PrivateKeyPEM": key})),
        leaf(json!({"Service": "f", "PrivateKeyPEM": key, "CertPEM": ""})),
        // Fields of the wrong type next to the key.
        leaf(json!({"Service": "f", "PrivateKeyPEM": key, "CertPEM": 5})),
        leaf(json!({"Service": key, "PrivateKeyPEM": key, "CertPEM": ["c"]})),
        leaf(json!({"PrivateKeyPEM": {"pem": key}, "CertPEM": "c"})),
        // The key in the tier, the name or the roots.
        json!({"name": "/p/default/default/f", "tier": key, "leaf": {"PrivateKeyPEM": key, "CertPEM": "c"}, "roots": roots}),
        json!({"name": 5, "leaf": {"PrivateKeyPEM": key, "CertPEM": "c"}, "roots": key}),
        json!({"name": "/p", "leaf": {"PrivateKeyPEM": key, "CertPEM": "c"}, "roots": {"Roots": key}}),
        json!({"name": "/p", "leaf": {"PrivateKeyPEM": key, "CertPEM": "c"}, "roots": {}}),
    ] {
        assert_no_canary("extensionDataParameter", &input);
    }
}

#[test]
fn malformed_plan_extension_data_never_echoes_secrets() {
    let key = pem(CANARY);
    let plan = |ext: Value| {
        json!({
            "config": {"consulExtensionDataPrefix": "/p"},
            "inventory": {"accountId": "123456789012", "region": "us-east-1", "functions": []},
            "extensionData": ext,
        })
    };
    for input in [
        plan(json!({"leaves": [key]})),
        plan(json!({"leaves": [{"Service": "f", "PrivateKeyPEM": key, "CertPEM": 1}]})),
        plan(json!({"parameters": [{"Name": "/p/default/default/f", "Value": ["x", key]}]})),
        plan(json!({"parameters": [key]})),
        plan(json!(key)),
    ] {
        assert_no_canary("plan", &input);
    }
}

#[test]
fn configuration_errors_never_echo_url_credentials() {
    for addr in [
        format!("http://user:{CANARY}@consul:8500"),
        format!("https://user:{CANARY}@consul.example.com:0"),
        format!("user:{CANARY}@consul:8500"),
        format!("http://{CANARY}@consul"),
        format!("https://user:{CANARY}/x@consul:8501"),
        format!("https://user:{CANARY}#x@consul:8501"),
        format!("ftp://user:{CANARY}@consul"),
        format!("http://user:{CANARY}@"),
    ] {
        assert_no_canary("configFromEnv", &json!({"CONSUL_HTTP_ADDR": addr}));
        assert_no_canary(
            "configFromEnv",
            &json!({"CONSUL_HTTP_ADDR": addr, "PAGE_SIZE": "0"}),
        );
        assert_no_canary("configFromObject", &json!({"consulHttpAddr": addr}));
        assert_no_canary(
            "plan",
            &json!({"config": {"consulHttpAddr": addr}, "inventory": {"accountId": "123456789012", "region": "us-east-1"}}),
        );
    }
}

#[test]
fn a_token_of_the_wrong_type_is_not_echoed() {
    // Hosts pass the environment as strings; a number in CONSUL_HTTP_TOKEN (a
    // template gone wrong) must not come back in the error either.
    for token in [
        json!(918_273_645_546_372_819_u64),
        json!(-918_273_645_546_372_i64),
        json!(9_182.736_455),
    ] {
        let input = json!({"CONSUL_HTTP_TOKEN": token}).to_string();
        let digits = "9182736";
        let out = ffi::call_enveloped("configFromEnv", &input);
        assert!(out.contains("invalid_input"), "{out}");
        assert!(!out.replace(['.', '-'], "").contains(digits), "{out}");
    }
}

#[test]
fn aws_credentials_are_never_echoed() {
    // A start with the AWS credentials and a mistake next to them: the error names
    // the mistake, never the secret key or the session token.
    let secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    let token = "IQoJb3JpZ2luX2VjEXAMPLETOKEN";
    for aws in [
        json!({"accessKeyId": "AKID", "secretAccessKey": secret, "sessionToken": token, "epochMs": "soon"}),
        json!({"accessKeyId": "AKID", "secretAccessKey": secret, "sessionToken": token, "epochMs": 1, "extra": 1}),
        json!({"accessKeyId": "AKID", "secretAccessKey": [secret], "sessionToken": {"t": token}, "epochMs": 1}),
    ] {
        let start = json!({"env": {}, "region": "us-east-1", "aws": aws}).to_string();
        let e = consul_lambda_sync::engine::Engine::from_json(&start).unwrap_err();
        let shown = format!("{e:?} {}", serde_json::to_string(&e).unwrap());
        assert!(
            !shown.contains("EXAMPLEKEY") && !shown.contains("EXAMPLETOKEN"),
            "{shown}"
        );
    }
    // A valid start: the engine's debug form and its first step carry neither.
    let start = json!({"env": {"AWS_ENDPOINT_URL": "http://127.0.0.1:1"}, "region": "us-east-1",
        "aws": {"accessKeyId": "AKID", "secretAccessKey": secret, "sessionToken": token, "epochMs": 1}});
    let mut engine = consul_lambda_sync::engine::Engine::from_json(&start.to_string()).unwrap();
    assert!(!format!("{engine:?}").contains("EXAMPLEKEY"));
    let step = engine.next_json(0, None);
    assert!(step.contains("\"http\""), "{step}");
    assert!(!step.contains("EXAMPLEKEY"), "{step}");
}
