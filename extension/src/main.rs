//! `consul-lambda-extension`: a Lambda extension that lets a function call Consul
//! mesh services. It reads the function's mTLS data (written by the registrator
//! under `CONSUL_EXTENSION_DATA_PREFIX`) from Parameter Store and opens a local
//! listener per upstream (`CONSUL_SERVICE_UPSTREAMS`); each connection goes over
//! mTLS, with the upstream's SNI name, to the mesh gateway
//! (`CONSUL_MESH_GATEWAY_URI`). A drop-in for upstream's `consul-lambda-extension`:
//! same variables, same meaning, same layer path. Guide: docs/lambda-to-mesh.md.
//!
//! The decisions (settings, names, data format, refresh schedule) are the core's
//! (`consul_lambda_sync::extension`); this binary does the I/O.

mod der;
mod http;
mod lambda;
mod log;
mod mesh;
mod proxy;
mod ssm;
mod state;

use consul_lambda_sync::extension::upstreams::{extension_settings_from_env, EXTENSION_NAME};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Instant;

fn main() {
    let started = Instant::now();
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let extensions = env.get("AWS_LAMBDA_RUNTIME_API").filter(|v| !v.is_empty());
    // Lambda knows an extension by its file name (`/opt/extensions/<name>`).
    let name = std::env::args()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| EXTENSION_NAME.to_owned());

    let registered = match extensions {
        Some(api) => match lambda::Extensions::register(api, &name) {
            Ok(r) => Some(r),
            Err(e) => {
                log::error(
                    "cannot register with the Lambda Extensions API",
                    &[("error", json!(e))],
                );
                std::process::exit(1);
            }
        },
        None => None,
    };
    let fail = |kind: &str, message: String, fields: &[(&str, serde_json::Value)]| -> ! {
        let mut all = vec![("error", json!(message))];
        all.extend_from_slice(fields);
        log::error("cannot start", &all);
        if let Some(r) = &registered {
            r.init_error(kind, &message);
        }
        std::process::exit(1);
    };

    let settings = match extension_settings_from_env(&env) {
        Ok(s) => s,
        Err(f) => fail(
            "Extension.InvalidSettings",
            f.message.clone(),
            &[
                ("code", json!(f.code)),
                (
                    "errors",
                    serde_json::to_value(&f.errors).unwrap_or_default(),
                ),
            ],
        ),
    };
    log::init(settings.log_level, settings.trace_enabled);
    let client = match ssm::Client::from_env(&env) {
        Ok(c) => c,
        Err(e) => fail("Extension.InvalidSettings", e, &[]),
    };
    let shared = state::Shared::new(settings);
    let listeners = match proxy::bind(&shared) {
        Ok(l) => l,
        Err(e) => fail("Extension.ListenFailed", e, &[]),
    };
    proxy::serve(&shared, listeners);

    // The first read, before init ends: the function's first call finds the data.
    let first_started = Instant::now();
    let first = shared.read_once(&client);
    let ready_after_read_us = first_started.elapsed().as_micros() as u64;
    match &first {
        Ok(_) => log::info(
            "ready",
            &[
                ("upstreams", json!(shared.settings.upstreams.len())),
                ("startupMs", json!(started.elapsed().as_secs_f64() * 1000.0)),
                ("firstReadAndBuildUs", json!(ready_after_read_us)),
            ],
        ),
        Err(_) => log::warn(
            "listening without extension data; retrying in the background",
            &[("startupMs", json!(started.elapsed().as_secs_f64() * 1000.0))],
        ),
    }
    {
        let shared = shared.clone();
        std::thread::spawn(move || shared.refresh_loop(client, first));
    }

    match registered {
        None => {
            log::warn("AWS_LAMBDA_RUNTIME_API is not set: running without the Extensions API until killed", &[]);
            loop {
                std::thread::park();
            }
        }
        Some(ext) => loop {
            match ext.next() {
                Ok(lambda::Event::Shutdown(reason)) => {
                    log::info("shutting down", &[("reason", json!(reason))]);
                    std::process::exit(0);
                }
                Ok(lambda::Event::Invoke) => {}
                Err(e) => {
                    log::error("the Extensions API failed", &[("error", json!(e))]);
                    std::process::exit(1);
                }
            }
        },
    }
}
