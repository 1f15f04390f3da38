//! The engine fed hostile answers: random statuses, truncated or wrong-shaped
//! bodies, AWS errors, lost answers. It never panics, always ends, and never
//! writes anything when no Consul observation could be read.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod host;

use consul_lambda_sync::engine::{Engine, Start};
use host::{feed, view, Answer, AnswerError, WireRequest};
use proptest::prelude::*;
use std::collections::BTreeMap;

const BODIES: &[&str] = &[
    "",
    "null",
    "{",
    "[]",
    "{}",
    "true",
    "false",
    "\"text\"",
    "[1,2,3]",
    "{\"Config\":{\"Datacenter\":7}}",
    "{\"Node\":null,\"Services\":null}",
    "{\"Node\":{\"Node\":\"lambdas\"},\"Services\":[{\"ID\":\"a\",\"Service\":\"a\",\"Tags\":[\"managed-by-lambda-registrator\"],\"ModifyIndex\":5}]}",
    "[{\"Kind\":\"service-defaults\",\"Name\":\"a\",\"ModifyIndex\":6,\"EnvoyExtensions\":[{\"Name\":\"builtin/aws/lambda\",\"Arguments\":{\"arn\":\"arn:aws:lambda:us-east-1:123456789012:function:a\"}}]}]",
    "{\"Errors\":[{\"OpIndex\":99,\"What\":\"index is stale\"}]}",
    "{\"Errors\":[{\"OpIndex\":0,\"What\":\"x\"}]}",
    "[\"dc1\",\"dc2\"]",
];

const STATUSES: &[u16] = &[200, 200, 200, 404, 403, 409, 413, 429, 500, 501, 503];

#[derive(Debug, Clone)]
enum Reply {
    Http(u16, usize, bool),
    Transport,
    AwsOk(usize),
    AwsError(usize),
}

fn reply() -> impl Strategy<Value = Reply> {
    prop_oneof![
        4 => (0..STATUSES.len(), 0..BODIES.len(), any::<bool>()).prop_map(|(s, b, f)| Reply::Http(STATUSES[s], b, f)),
        1 => Just(Reply::Transport),
        2 => (0..6usize).prop_map(Reply::AwsOk),
        1 => (0..5usize).prop_map(Reply::AwsError),
    ]
}

fn aws_ok(i: usize) -> serde_json::Value {
    use serde_json::json;
    match i {
        0 => json!({}),
        1 => json!({"ResourceTagMappingList": [], "PaginationToken": ""}),
        2 => {
            json!({"ResourceTagMappingList": [{"ResourceARN": "arn:aws:lambda:us-east-1:123456789012:function:b",
            "Tags": [{"Key": "serverless.consul.hashicorp.com/v1alpha1/lambda/enabled", "Value": "true"}]}],
            "PaginationToken": "again"})
        }
        3 => json!({"Account": "123456789012"}),
        4 => json!({"Parameter": {"Value": ""}}),
        _ => json!([1, "x"]),
    }
}

fn aws_error(i: usize) -> AnswerError {
    let code = [
        "ThrottlingException",
        "ResourceNotFoundException",
        "AccessDeniedException",
        "config",
        "transport",
    ][i];
    AnswerError {
        code: code.into(),
        message: "Rate exceeded".into(),
        status: Some(400),
    }
}

fn answer(r: &WireRequest, reply: &Reply) -> Answer {
    let mut a = Answer {
        id: r.id,
        ..Answer::default()
    };
    match (reply, r.consul.is_some()) {
        (Reply::Http(status, body, filtered), true) => {
            a.status = Some(*status);
            a.body = Some(BODIES[*body].to_owned());
            if *filtered {
                a.headers.insert("retry-after".into(), "1".into());
            }
        }
        (Reply::AwsOk(i), false) => a.ok = Some(aws_ok(*i)),
        (Reply::AwsError(i), false) => a.error = Some(aws_error(*i)),
        (Reply::AwsOk(_) | Reply::AwsError(_), true) => {
            a.status = Some(200);
            a.body = Some("{".into());
        }
        (Reply::Http(..), false) => a.ok = Some(aws_ok(1)),
        (Reply::Transport, _) => {
            a.error = Some(AnswerError {
                code: "transport".into(),
                message: "reset".into(),
                status: None,
            })
        }
    }
    a
}

fn start(extension: bool, dc: bool) -> Start {
    let mut env = BTreeMap::from([(
        "CONSUL_HTTP_ADDR".to_owned(),
        "http://127.0.0.1:8500".to_owned(),
    )]);
    if extension {
        env.insert("CONSUL_EXTENSION_DATA_PREFIX".into(), "/lambda".into());
    }
    if dc {
        env.insert("DATACENTER".into(), "dc1".into());
    }
    Start {
        env,
        region: "us-east-1".into(),
        seed: Some(3),
        ..Start::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn hostile_answers_never_panic_and_the_engine_ends(
        replies in proptest::collection::vec(reply(), 1..80),
        extension in any::<bool>(),
        dc in any::<bool>(),
    ) {
        let mut engine = Engine::new(start(extension, dc));
        let mut now = 0u64;
        let mut k = 0usize;
        let mut done = false;
        let mut consul_read_ok = false;
        let mut writes = 0usize;
        for _ in 0..2_000 {
            let step = view(engine.next(now, None));
            if step.done.is_some() {
                done = true;
                break;
            }
            if let Some(ms) = step.sleep {
                now += ms;
                continue;
            }
            let reqs = step.send.unwrap_or_default();
            let mut answers = Vec::new();
            for r in &reqs {
                // A write changes state: not a GET, and not the authorize query (a POST
                // that only asks what the token may do; `Request::is_write` agrees).
                if r.consul.as_ref().is_some_and(|c| c.method != "GET" && c.path != "/v1/internal/acl/authorize") {
                    writes += 1;
                }
                let reply = &replies[k % replies.len()];
                k += 1;
                let a = answer(r, reply);
                if r.consul.as_ref().is_some_and(|c| c.method == "GET") && a.status == Some(200)
                    && a.body.as_deref().is_some_and(|b| serde_json::from_str::<serde_json::Value>(b).is_ok())
                {
                    consul_read_ok = true;
                }
                answers.push(a);
            }
            now += 1;
            feed(&mut engine, answers, now).unwrap();
        }
        prop_assert!(done, "the engine did not end");
        if !consul_read_ok {
            prop_assert_eq!(writes, 0, "wrote without a readable Consul observation");
        }
    }
}
