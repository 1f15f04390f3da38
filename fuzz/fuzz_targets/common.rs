// Helpers shared by the fuzz targets (included with `include!`).

use consul_lambda_sync::ffi;

/// Calls `function` both ways and checks the results are JSON and agree.
fn check_call(function: &str, input: &str) {
    let direct = ffi::call(function, input);
    let enveloped = ffi::call_enveloped(function, input);
    let parsed: serde_json::Value =
        serde_json::from_str(&enveloped).expect("call_enveloped returned invalid JSON");
    match direct {
        Ok(out) => {
            let out: serde_json::Value =
                serde_json::from_str(&out).expect("call returned invalid JSON");
            assert_eq!(parsed.get("ok"), Some(&out), "envelope disagrees with call");
        }
        Err(f) => {
            let code = parsed
                .get("error")
                .and_then(|e| e.get("code"))
                .and_then(|c| c.as_str());
            assert_eq!(code, Some(f.code.as_str()), "envelope disagrees with call");
            assert!(!f.errors.is_empty() || f.code.as_str() == "invalid_input");
        }
    }
}

/// Splits fuzz input into `key=value` lines.
#[allow(dead_code)]
fn pairs(text: &str) -> Vec<(String, String)> {
    text.lines()
        .map(|line| match line.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (line.to_owned(), String::new()),
        })
        .collect()
}
