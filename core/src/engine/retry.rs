//! What an answer means: a reply the phase reads ([`Reply`]), a failure that ends
//! the request ([`CallError`]), or "try again" — and how long to wait (backoff
//! with jitter from the host's seed, at least the `Retry-After` asked for).
//!
//! Retries to one target share one budget ([`Gate`]): after a run of failing
//! answers the target is *limited* — one request in flight (a probe), spaced by
//! backoff, everything else waiting — and every answer that comes back opens it
//! further (2, 4, 8… requests in flight) until it is open again. An outage that
//! outlasts [`OUTAGE_MS`] of probing ends every waiting request at once. So a dead
//! agent costs a few probes instead of every request's own attempts, and recovery
//! after a restart is a few round trips of opening up.

use super::wire::{AnswerError, HttpReply, Incoming};
use crate::lower::{RawJson, Request};
use crate::text::clip;

/// How often a request is tried at most (while its target is open).
pub const MAX_ATTEMPTS: u32 = 5;
/// The first backoff, doubled per attempt.
const BASE_BACKOFF_MS: u64 = 200;
/// The longest backoff.
const MAX_BACKOFF_MS: u64 = 5_000;
/// The longest wait a `Retry-After` may ask for.
const MAX_RETRY_AFTER_MS: u64 = 30_000;
/// Failing answers in a row from one target that limit it.
pub const TRIP_AFTER: u32 = 8;
/// Requests in flight to a limited target at which it is open again.
const OPEN_WINDOW: u32 = 64;
/// How long a limited target is probed before everything waiting for it fails.
pub const OUTAGE_MS: u64 = 4_000;

/// A successful answer, for the phase to read.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Consul's answer (any status that is not "try again": 200, 403, 404, 409…).
    Http(HttpReply),
    /// AWS's response.
    Aws(RawJson),
    /// A definite AWS error (not found, access denied…).
    AwsError(AnswerError),
}

/// Why a request ended without a usable answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// No answer came (refused, reset, timed out, TLS).
    Unreachable(String),
    /// Consul kept answering "try again" (429, 5xx).
    Http {
        /// The last status.
        status: u16,
        /// The last body (clipped).
        body: String,
    },
    /// AWS kept answering "try again" (throttling, 5xx).
    Aws(AnswerError),
    /// The host could not set up (no credentials, no region).
    Setup(String),
    /// The host fed an answer of the wrong kind for the request.
    Malformed(String),
    /// The answer was larger than the host reads for the request (`maxBytes`).
    TooLarge(String),
}

impl CallError {
    /// Whether no answer came at all.
    pub fn unreachable(&self) -> bool {
        matches!(self, CallError::Unreachable(_))
    }
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Unreachable(m) => write!(f, "no answer ({})", clip(m)),
            CallError::Http { status, body } => f.write_str(&status_text(*status, body)),
            CallError::Aws(e) => f.write_str(&aws_error_text(e)),
            CallError::Setup(m) | CallError::Malformed(m) => f.write_str(&clip(m)),
            CallError::TooLarge(m) => write!(f, "answer too large ({})", clip(m)),
        }
    }
}

/// `HTTP 500: body` (the body clipped).
pub fn status_text(status: u16, body: &str) -> String {
    let body = body.trim();
    if body.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", clip(body))
    }
}

/// `Code: message` of an AWS error.
pub fn aws_error_text(err: &AnswerError) -> String {
    let text = if err.message.is_empty() {
        err.code.clone()
    } else if err.code.is_empty() || err.code == "transport" {
        err.message.clone()
    } else {
        format!("{}: {}", err.code, err.message)
    };
    clip(&text)
}

/// A small deterministic generator for backoff jitter (xorshift64*), seeded by the host.
#[derive(Debug, Clone)]
pub struct Jitter(u64);

impl Jitter {
    /// Seeds the generator (any value; zero is replaced).
    pub fn new(seed: u64) -> Self {
        Jitter(if seed == 0 {
            0x9e37_79b9_7f4a_7c15
        } else {
            seed
        })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Exponential backoff with "equal jitter" for the `attempt`-th retry (1-based).
    pub fn backoff(&mut self, attempt: u32) -> u64 {
        let exp = BASE_BACKOFF_MS
            .saturating_mul(1u64 << attempt.saturating_sub(1).min(16))
            .min(MAX_BACKOFF_MS);
        exp / 2 + self.next() % (exp / 2 + 1)
    }
}

/// AWS error codes that mean "slow down" or "try again".
const AWS_RETRY_CODES: &[&str] = &[
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "ProvisionedThroughputExceededException",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "InternalServerError",
    "InternalServerException",
    "InternalFailure",
    "InternalError",
    "RequestTimeout",
    "RequestTimeoutException",
    "PriorRequestNotComplete",
];

/// What one answer means.
#[derive(Debug, Clone, PartialEq)]
pub enum Judgement {
    /// A usable answer.
    Answered(Reply),
    /// A "try again" answer: how long at least to wait, and the error it is if
    /// no retry follows.
    Transient {
        /// The server's `Retry-After`, in milliseconds.
        floor: u64,
        /// The request's failure if it is not retried.
        error: CallError,
    },
    /// A failure no retry mends.
    Final(CallError),
}

fn retry_after_ms(reply: &HttpReply) -> u64 {
    reply
        .retry_after
        .as_deref()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(0, |s| s.saturating_mul(1000).min(MAX_RETRY_AFTER_MS))
}

/// Judges what came back for `request`.
pub fn judge(request: &Request, incoming: Incoming) -> Judgement {
    match (request, incoming) {
        (Request::Consul(_), Incoming::Http(reply)) => match reply.status {
            // Consul's own "try again" answers; 501 (not implemented) is final.
            429 | 500 | 502 | 503 | 504 => Judgement::Transient {
                floor: retry_after_ms(&reply),
                error: CallError::Http {
                    status: reply.status,
                    body: clip(&reply.body),
                },
            },
            _ => Judgement::Answered(Reply::Http(reply)),
        },
        (Request::Aws(_), Incoming::Aws(ok)) => Judgement::Answered(Reply::Aws(ok)),
        (_, Incoming::Error(e)) if e.code == "transport" => Judgement::Transient {
            floor: 0,
            error: CallError::Unreachable(e.message),
        },
        (_, Incoming::Error(e)) if e.code == "config" => {
            Judgement::Final(CallError::Setup(e.message))
        }
        (_, Incoming::Error(e)) if e.code == "answer_too_large" => {
            Judgement::Final(CallError::TooLarge(e.message))
        }
        (Request::Aws(_), Incoming::Error(e)) => judge_aws_error(e),
        (Request::Consul(_), Incoming::Error(e)) => {
            Judgement::Final(CallError::Malformed(format!(
                "the host fed an AWS error for a Consul request: {}",
                aws_error_text(&e)
            )))
        }
        (Request::Consul(_), Incoming::Aws(_)) => Judgement::Final(CallError::Malformed(
            "the host fed an AWS answer for a Consul request".into(),
        )),
        // A signed call's HTTP answer (docs/engine.md "AWS over HTTP").
        (Request::Aws(a), Incoming::Http(reply)) => {
            let answer = crate::lower::aws::AwsHttpAnswer {
                status: reply.status,
                error_type: reply.aws_error_type.as_deref(),
                body: &reply.body,
            };
            match crate::lower::aws::read_answer(a, &answer) {
                Ok(ok) => Judgement::Answered(Reply::Aws(ok)),
                Err(f) => judge_aws_error(AnswerError {
                    code: f.code,
                    message: f.message,
                    status: Some(f.status),
                }),
            }
        }
    }
}

/// An AWS error: throttling and 5xx are tried again; any other is the answer.
fn judge_aws_error(e: AnswerError) -> Judgement {
    let transient = AWS_RETRY_CODES.contains(&e.code.as_str())
        || e.message.contains("Rate exceeded")
        || matches!(e.status, Some(429 | 500..=599));
    if transient {
        Judgement::Transient {
            floor: 0,
            error: CallError::Aws(e),
        }
    } else {
        Judgement::Answered(Reply::AwsError(e))
    }
}

/// The shared retry budget of one target (see the module documentation).
#[derive(Debug, Clone, Default)]
pub struct Gate {
    /// Failing answers in a row.
    failures: u32,
    /// While limited: requests allowed in flight, since when, and probes failed.
    limited: Option<Limited>,
    /// The outage outlasted its budget: why (every request fails with it).
    spent: Option<CallError>,
    /// Reopened after an outage of answers (Consul answering 5xx): each request
    /// gets one attempt until one succeeds.
    degraded: bool,
    /// Requests in flight.
    pub(crate) in_flight: u32,
}

#[derive(Debug, Clone, Copy)]
struct Limited {
    window: u32,
    since: u64,
    probes: u32,
    /// No request is sent before this time (the probe's backoff).
    not_before: u64,
}

/// What the gate says about a request that failed with a "try again" answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Retry it on its own after this wait (the target is open).
    Retry(u64),
    /// It waits with the target's other requests; probe again after this wait.
    Wait(u64),
    /// The budget is spent: it fails.
    Fail(CallError),
}

impl Gate {
    /// Whether another request may be sent at `now`.
    pub fn admits(&self, now: u64) -> bool {
        match self.limited {
            Some(l) => self.in_flight < l.window && now >= l.not_before,
            None => true,
        }
    }

    /// When a limited target takes its next request.
    pub fn opens_at(&self) -> Option<u64> {
        self.limited.map(|l| l.not_before)
    }

    /// Sends nothing to the target before `at` (a probe's backoff).
    pub fn wait_until(&mut self, at: u64) {
        if let Some(l) = self.limited.as_mut() {
            l.not_before = l.not_before.max(at);
        }
    }

    /// Why every request to the target fails, once its budget is spent.
    pub fn spent(&self) -> Option<&CallError> {
        self.spent.as_ref()
    }

    /// Whether the target is limited (requests wait their turn).
    pub fn is_limited(&self) -> bool {
        self.limited.is_some()
    }

    /// A new wave of requests begins. A budget spent on *answers* (the target
    /// answered, with 5xx) is probed again, one attempt per request, so that one
    /// failing endpoint does not fail the writes that do not use it; a budget spent
    /// on silence (no answer: the agent is down) stays spent.
    pub fn reopen(&mut self, now: u64) {
        if matches!(self.spent, Some(CallError::Http { .. })) {
            self.spent = None;
            self.degraded = true;
            self.limited = Some(Limited {
                window: 1,
                since: now,
                probes: 0,
                not_before: now,
            });
        }
    }

    /// A usable answer came: the target opens further.
    pub fn answered(&mut self) {
        self.failures = 0;
        self.degraded = false;
        if let Some(l) = self.limited.as_mut() {
            l.window = l.window.saturating_mul(2);
            l.probes = 0;
            if l.window >= OPEN_WINDOW {
                self.limited = None;
            }
        }
    }

    /// A "try again" answer came for a request on its `attempt`-th try; `now` is
    /// the host's clock.
    pub fn failed(
        &mut self,
        attempt: u32,
        floor: u64,
        error: CallError,
        now: u64,
        jitter: &mut Jitter,
    ) -> Verdict {
        if let Some(why) = &self.spent {
            return Verdict::Fail(why.clone());
        }
        if self.degraded {
            self.spent = Some(error.clone());
            return Verdict::Fail(error);
        }
        self.failures = self.failures.saturating_add(1);
        if self.limited.is_none() && self.failures >= TRIP_AFTER {
            self.limited = Some(Limited {
                window: 1,
                since: now,
                probes: 0,
                not_before: now,
            });
        }
        match self.limited.as_mut() {
            None if attempt >= MAX_ATTEMPTS => Verdict::Fail(error),
            None => Verdict::Retry(jitter.backoff(attempt).max(floor)),
            Some(l) => {
                l.window = 1;
                l.probes = l.probes.saturating_add(1);
                if now.saturating_sub(l.since) >= OUTAGE_MS {
                    self.spent = Some(error.clone());
                    return Verdict::Fail(error);
                }
                Verdict::Wait(jitter.backoff(l.probes).max(floor))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_stays_bounded() {
        let mut j = Jitter::new(7);
        for attempt in 1..10 {
            let b = j.backoff(attempt);
            let exp = (BASE_BACKOFF_MS << (attempt - 1)).min(MAX_BACKOFF_MS);
            assert!(b >= exp / 2 && b <= exp, "{attempt}: {b}");
        }
    }

    fn unreachable() -> CallError {
        CallError::Unreachable("connection refused".into())
    }

    #[test]
    fn a_run_of_failures_limits_the_target_and_answers_open_it_gradually() {
        let mut g = Gate::default();
        let mut j = Jitter::new(1);
        for i in 1..TRIP_AFTER {
            assert!(matches!(
                g.failed(1, 0, unreachable(), i.into(), &mut j),
                Verdict::Retry(_)
            ));
            assert!(!g.is_limited());
        }
        assert!(matches!(
            g.failed(1, 0, unreachable(), 10, &mut j),
            Verdict::Wait(_)
        ));
        g.in_flight = 1;
        assert!(!g.admits(u64::MAX), "one probe at a time");
        g.in_flight = 0;
        let mut windows = Vec::new();
        while g.is_limited() {
            g.answered();
            windows.push(g.limited.map_or(0, |l| l.window));
        }
        assert_eq!(windows, vec![2, 4, 8, 16, 32, 0]);
    }

    #[test]
    fn an_outage_longer_than_the_budget_fails_everything_waiting() {
        let mut g = Gate::default();
        let mut j = Jitter::new(1);
        for _ in 0..TRIP_AFTER {
            g.failed(1, 0, unreachable(), 0, &mut j);
        }
        assert!(matches!(
            g.failed(1, 0, unreachable(), OUTAGE_MS - 1, &mut j),
            Verdict::Wait(_)
        ));
        assert!(matches!(
            g.failed(1, 0, unreachable(), OUTAGE_MS, &mut j),
            Verdict::Fail(_)
        ));
        assert!(g.spent().is_some());
        assert!(matches!(
            g.failed(1, 0, unreachable(), OUTAGE_MS + 9, &mut j),
            Verdict::Fail(_)
        ));
        // Silence stays spent in the next wave.
        g.reopen(OUTAGE_MS + 10);
        assert!(g.spent().is_some());
    }

    fn answered_500() -> CallError {
        CallError::Http {
            status: 500,
            body: "rpc error".into(),
        }
    }

    #[test]
    fn a_budget_spent_on_5xx_answers_is_probed_again_by_the_next_wave() {
        let mut g = Gate::default();
        let mut j = Jitter::new(1);
        for _ in 0..TRIP_AFTER {
            g.failed(1, 0, answered_500(), 0, &mut j);
        }
        assert!(matches!(
            g.failed(1, 0, answered_500(), OUTAGE_MS, &mut j),
            Verdict::Fail(_)
        ));
        assert!(g.spent().is_some());
        // The next wave: one probe; failing again, it fails at once and stays spent.
        g.reopen(OUTAGE_MS + 1);
        assert!(g.spent().is_none() && g.admits(OUTAGE_MS + 1));
        assert!(matches!(
            g.failed(1, 0, answered_500(), OUTAGE_MS + 2, &mut j),
            Verdict::Fail(_)
        ));
        assert!(g.spent().is_some());
        // Or, answered, it opens gradually as after any outage.
        g.reopen(OUTAGE_MS + 3);
        g.answered();
        assert!(g.spent().is_none() && !g.degraded);
        assert!(matches!(
            g.failed(1, 0, answered_500(), OUTAGE_MS + 4, &mut j),
            Verdict::Wait(_)
        ));
    }
}
