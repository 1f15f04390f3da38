//! Runs every shared test vector in `tests/vectors/` against the core's JSON API.
#![allow(clippy::indexing_slicing)] // test code: a missing key fails the test

use consul_lambda_sync::ffi;
use serde_json::Value;
use std::path::PathBuf;

/// Whether `actual` contains `expected` (see tests/vectors/README.md).
fn matches(actual: Option<&Value>, expected: &Value, path: &str, errors: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Null, None | Some(Value::Null)) => {}
        (Value::Object(exp), Some(Value::Object(act))) => {
            for (k, v) in exp {
                matches(act.get(k), v, &format!("{path}.{k}"), errors);
            }
        }
        (Value::Array(exp), Some(Value::Array(act))) => {
            if exp.len() != act.len() {
                errors.push(format!(
                    "{path}: expected {} items, got {}: {}",
                    exp.len(),
                    act.len(),
                    Value::Array(act.clone())
                ));
                return;
            }
            for (i, (e, a)) in exp.iter().zip(act).enumerate() {
                matches(Some(a), e, &format!("{path}[{i}]"), errors);
            }
        }
        (Value::Number(e), Some(Value::Number(a))) if e.as_f64() == a.as_f64() => {}
        (e, Some(a)) if e == a => {}
        (e, a) => errors.push(format!(
            "{path}: expected {e}, got {}",
            a.map_or("nothing".to_owned(), ToString::to_string)
        )),
    }
}

#[test]
fn all_vectors() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.retain(|p| p.extension().is_some_and(|e| e == "json"));
    files.sort();
    assert!(!files.is_empty(), "no vector files in {}", dir.display());
    let mut failures = Vec::new();
    let mut count = 0;
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap_or_default();
        let doc: Value = match serde_json::from_str(&text) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{}: not JSON: {e}", file.display()));
                continue;
            }
        };
        let function = doc["function"].as_str().unwrap_or_default();
        assert!(
            ffi::FUNCTIONS.contains(&function),
            "{}: unknown function {function}",
            file.display()
        );
        for case in doc["cases"].as_array().into_iter().flatten() {
            count += 1;
            let name = format!(
                "{} / {}",
                file.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
                case["name"].as_str().unwrap_or("?")
            );
            let input = serde_json::to_string(&case["input"]).unwrap_or_default();
            let mut errs = Vec::new();
            match (
                ffi::call(function, &input),
                case.get("expected"),
                case.get("error"),
            ) {
                (Ok(out), Some(exp), None) => {
                    let out: Value = serde_json::from_str(&out).unwrap_or(Value::Null);
                    matches(Some(&out), exp, "$", &mut errs);
                }
                (Err(f), None, Some(exp)) => {
                    let f = serde_json::to_value(&f).unwrap_or(Value::Null);
                    matches(Some(&f), exp, "$error", &mut errs);
                }
                (Ok(out), _, Some(_)) => errs.push(format!("expected an error, got {out}")),
                (Err(f), Some(_), _) => errs.push(format!(
                    "unexpected error {}",
                    serde_json::to_string(&f).unwrap_or_default()
                )),
                _ => errs.push("a case needs exactly one of expected and error".to_owned()),
            }
            if !errs.is_empty() {
                failures.push(format!("{name}:\n    {}", errs.join("\n    ")));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} vector cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    eprintln!("{count} vector cases passed in {} files", files.len());
}
