//! Configuration: raw JSON to configFromEnv/configFromObject, and environment maps
//! built from `KEY=value` lines. The ACL token never appears in any output.
#![no_main]

use consul_lambda_sync::config;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;

include!("common.rs");

const TOKEN: &str = "f7d1c0de-5ec2-e7a1-b0b0-token-canary";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_call("configFromEnv", text);
    // Input that itself holds the canary (the fuzzer learns it from the comparisons
    // below) may echo it back as another key's value: not a leak of the token.
    // So may input whose JSON escaping spells it (a form feed before "7d1c0de-…" is
    // written `\f7d1c0de-…`).
    let echoes_canary =
        text.contains(TOKEN) || serde_json::to_string(text).is_ok_and(|j| j.contains(TOKEN));
    check_call("configFromObject", text);
    let mut env: BTreeMap<String, String> = pairs(text).into_iter().collect();
    env.insert("CONSUL_HTTP_TOKEN".into(), TOKEN.into());
    let out = match config::config_from_env(&env) {
        Ok(c) => {
            assert!(c.consul_http_token_set);
            serde_json::to_string(&c).expect("config serialises")
        }
        Err(f) => {
            assert!(!f.errors.is_empty());
            serde_json::to_string(&f).expect("failure serialises")
        }
    };
    if echoes_canary {
        return;
    }
    assert!(!out.contains(TOKEN), "the token leaked: {out}");
    let json = serde_json::to_string(&env).expect("env serialises");
    let enveloped = ffi::call_enveloped("configFromEnv", &json);
    assert!(!enveloped.contains(TOKEN), "the token leaked: {enveloped}");
});
