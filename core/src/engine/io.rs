//! The engine's I/O context, shared by every phase: the host's clock, the log
//! records to hand out, backoff jitter, request counts and each target's retry
//! budget ([`Io`]); and one phase's requests — queued, in flight, waiting for a
//! retry ([`Calls`]).

use super::outcome::RequestCounts;
use super::retry::{judge, CallError, Gate, Jitter, Judgement, Reply, Verdict};
use super::wire::{Incoming, Log, LogValue, Sent};
use crate::config::LogLevel;
use crate::lower::{ConsulRequest, Request};
use std::collections::{BTreeMap, VecDeque};

/// The most requests one step carries (bounds the host's memory; the rest follow).
pub const MAX_STEP_REQUESTS: usize = 1024;

/// Requests one target may have in flight, per request the host runs at once
/// (`MAX_CONCURRENCY`): enough to keep the host's workers busy between steps,
/// few enough that an agent dying mid-sync gets only these before its budget
/// limits the rest (a probe at a time) — not every request queued.
pub const IN_FLIGHT_PER_WORKER: u32 = 8;
/// No new write starts with less Lambda time left than this.
pub const TIME_RESERVE_MS: u64 = 5_000;

/// What every phase shares.
#[derive(Debug)]
pub(crate) struct Io {
    /// The host's monotonic clock, in milliseconds, as last told.
    pub(crate) now: u64,
    /// When the first step was asked for.
    pub(crate) started: Option<u64>,
    /// The Lambda time left, when known.
    pub(crate) remaining: Option<u64>,
    logs: Vec<Log>,
    level: LogLevel,
    pub(crate) jitter: Jitter,
    pub(crate) counts: RequestCounts,
    next_id: u64,
    gates: BTreeMap<&'static str, Gate>,
    /// The bound on requests in flight.
    pub(crate) concurrency: u32,
    /// The timeout of one request.
    pub(crate) timeout_ms: u64,
    /// The id of the last answer no request waited for.
    pub(crate) last_unknown: Option<u64>,
}

impl Io {
    pub(crate) fn new(level: LogLevel, seed: u64, concurrency: u32, timeout_ms: u64) -> Self {
        Io {
            now: 0,
            started: None,
            remaining: None,
            logs: Vec::new(),
            level,
            jitter: Jitter::new(seed),
            counts: RequestCounts::default(),
            next_id: 1,
            gates: BTreeMap::new(),
            concurrency,
            timeout_ms,
            last_unknown: None,
        }
    }

    /// Tells the time (and the Lambda time left, at `next`).
    pub(crate) fn tick(&mut self, now: u64) {
        self.now = self.now.max(now);
        self.started.get_or_insert(now);
    }

    /// Milliseconds since the first step.
    pub(crate) fn elapsed(&self) -> u64 {
        self.now.saturating_sub(self.started.unwrap_or(self.now))
    }

    /// Adds a log record if its level is enabled.
    pub(crate) fn log<const N: usize>(
        &mut self,
        level: LogLevel,
        msg: &str,
        fields: [(&str, Option<LogValue>); N],
    ) {
        if level < self.level {
            return;
        }
        self.logs.push(Log {
            level,
            msg: msg.to_owned(),
            fields: fields
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v)))
                .collect(),
        });
    }

    /// Whether records of `level` are kept.
    pub(crate) fn logs_at(&self, level: LogLevel) -> bool {
        level >= self.level
    }

    /// The records since the last step.
    pub(crate) fn take_logs(&mut self) -> Vec<Log> {
        std::mem::take(&mut self.logs)
    }

    /// Whether the invocation is about to time out: no new write should start.
    pub(crate) fn out_of_time(&self) -> bool {
        self.remaining
            .is_some_and(|left| left < TIME_RESERVE_MS + self.timeout_ms.min(TIME_RESERVE_MS))
    }

    /// Whether a retry after `wait` still ends before the Lambda time runs out.
    fn time_allows(&self, wait: u64) -> bool {
        self.remaining.map_or(true, |left| {
            left >= wait + self.timeout_ms + TIME_RESERVE_MS / 2
        })
    }

    fn gate(&mut self, target: &'static str) -> &mut Gate {
        self.gates.entry(target).or_default()
    }

    /// A new wave of writes begins: budgets spent on 5xx answers are probed again
    /// ([`Gate::reopen`]).
    pub(crate) fn reopen_gates(&mut self) {
        let now = self.now;
        for gate in self.gates.values_mut() {
            gate.reopen(now);
        }
    }

    fn count(&mut self, request: &Request) {
        let c = &mut self.counts;
        match request {
            Request::Consul(r) if request.is_write() => {
                c.consul.writes += 1;
                if matches!(r, ConsulRequest::Txn { .. }) {
                    c.consul.transactions += 1;
                }
            }
            Request::Consul(_) => c.consul.reads += 1,
            Request::Aws(a) => {
                if request.is_write() {
                    c.aws.writes += 1;
                } else {
                    c.aws.reads += 1;
                }
                *c.aws.calls.entry(a.operation().to_owned()).or_insert(0) += 1;
            }
        }
    }
}

/// A write whose lost answer leaves it unknown whether it was applied: its phase
/// reads the object back instead of sending it again blindly.
fn ambiguous(request: &Request) -> bool {
    matches!(
        request,
        Request::Consul(
            ConsulRequest::Txn { .. }
                | ConsulRequest::PutServiceDefaults { .. }
                | ConsulRequest::DeleteServiceDefaults { .. }
                | ConsulRequest::PutConfigEntry { .. }
        )
    )
}

/// A read its phase does without when it fails (the extension data's cluster
/// peers), that Consul is slow to refuse: a token without `peering:read` gets its
/// 403 only after Consul's own retries of the denial (about 12 s on 1.22, over the
/// default request timeout). A lost answer is not tried again, which would spend
/// the invocation's time on it, nor counted against Consul's retry budget (the
/// agent answered the other reads).
fn optional(request: &Request) -> bool {
    matches!(request, Request::Consul(ConsulRequest::Peerings))
}

/// A request with what it is for and how often it was tried.
#[derive(Debug, Clone)]
pub(crate) struct Call<P> {
    pub(crate) request: Request,
    pub(crate) purpose: P,
    pub(crate) attempt: u32,
}

/// A call that ended, with its outcome, for its phase.
pub(crate) type Settled<P> = (Call<P>, Result<Reply, CallError>);

/// One phase's requests.
#[derive(Debug)]
pub(crate) struct Calls<P> {
    queue: VecDeque<Call<P>>,
    in_flight: BTreeMap<u64, Call<P>>,
    delayed: Vec<(u64, Call<P>)>,
}

impl<P> Default for Calls<P> {
    fn default() -> Self {
        Calls {
            queue: VecDeque::new(),
            in_flight: BTreeMap::new(),
            delayed: Vec::new(),
        }
    }
}

impl<P> Calls<P> {
    /// Queues a request for the next step.
    pub(crate) fn push(&mut self, request: Request, purpose: P) {
        self.push_attempt(request, purpose, 1);
    }

    /// Queues a request for the next step, counted as attempt `attempt`.
    pub(crate) fn push_attempt(&mut self, request: Request, purpose: P, attempt: u32) {
        self.queue.push_back(Call {
            request,
            purpose,
            attempt,
        });
    }

    /// Queues a call again after `wait` milliseconds, as its next attempt.
    pub(crate) fn retry(&mut self, io: &mut Io, mut call: Call<P>, wait: u64) {
        call.attempt += 1;
        self.delayed.push((io.now + wait, call));
    }

    /// Queues a new request after `wait` milliseconds, counted as attempt `attempt`.
    pub(crate) fn push_after(
        &mut self,
        io: &Io,
        request: Request,
        purpose: P,
        attempt: u32,
        wait: u64,
    ) {
        self.delayed.push((
            io.now + wait,
            Call {
                request,
                purpose,
                attempt,
            },
        ));
    }

    /// How many requests are queued (not sent yet).
    pub(crate) fn queued(&self) -> usize {
        self.queue.len()
    }

    /// Whether nothing is queued, waiting or in flight.
    pub(crate) fn idle(&self) -> bool {
        self.queue.is_empty() && self.in_flight.is_empty() && self.delayed.is_empty()
    }

    /// Every call queued, waiting or in flight (to look for one).
    pub(crate) fn pending(&self) -> impl Iterator<Item = &Call<P>> {
        self.queue
            .iter()
            .chain(self.in_flight.values())
            .chain(self.delayed.iter().map(|(_, c)| c))
    }

    /// The next batch to send (at most [`MAX_STEP_REQUESTS`], and per target at
    /// most [`IN_FLIGHT_PER_WORKER`] × the concurrency in flight, as the targets'
    /// budgets admit), and the calls that fail without being sent (their
    /// target's budget is spent).
    pub(crate) fn take_batch(&mut self, io: &mut Io) -> (Vec<Sent>, Vec<Settled<P>>) {
        let due = io.now;
        let (ready, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.delayed)
            .into_iter()
            .partition(|(at, _)| *at <= due);
        self.delayed = later;
        self.queue.extend(ready.into_iter().map(|(_, c)| c));
        let mut sent = Vec::new();
        let mut failed = Vec::new();
        let mut held = VecDeque::new();
        let cap = io.concurrency.max(1).saturating_mul(IN_FLIGHT_PER_WORKER);
        while let Some(call) = self.queue.pop_front() {
            if sent.len() >= MAX_STEP_REQUESTS {
                held.push_back(call);
                continue;
            }
            let gate = io.gate(call.request.target());
            if let Some(why) = gate.spent() {
                let why = why.clone();
                failed.push((call, Err(why)));
                continue;
            }
            if !gate.admits(due) || gate.in_flight >= cap {
                held.push_back(call);
                continue;
            }
            gate.in_flight += 1;
            io.count(&call.request);
            let id = io.next_id;
            io.next_id += 1;
            sent.push(Sent {
                id,
                request: call.request.clone(),
            });
            self.in_flight.insert(id, call);
        }
        self.queue = held;
        (sent, failed)
    }

    /// How long to sleep before something may be sent.
    pub(crate) fn wakeup(&self, io: &Io) -> Option<u64> {
        let delayed = self.delayed.iter().map(|(at, _)| *at).min();
        let gated = self
            .queue
            .iter()
            .filter_map(|c| io.gates.get(c.request.target()))
            .filter_map(|g| g.opens_at())
            .min();
        [delayed, gated]
            .into_iter()
            .flatten()
            .min()
            .map(|at| at.saturating_sub(io.now).max(1))
    }

    /// The calls still in flight (the host fed no answer for them).
    pub(crate) fn unanswered(&mut self) -> Vec<u64> {
        self.in_flight.keys().copied().collect()
    }

    /// Takes an answer: `None` when no call of this id is in flight; otherwise the
    /// call, settled, for its phase — unless it is tried again.
    pub(crate) fn answer(
        &mut self,
        io: &mut Io,
        id: u64,
        incoming: Incoming,
    ) -> Option<Option<Settled<P>>> {
        let call = self.in_flight.remove(&id)?;
        let gate = io.gate(call.request.target());
        gate.in_flight = gate.in_flight.saturating_sub(1);
        Some(self.settle(io, call, incoming))
    }

    fn settle(&mut self, io: &mut Io, call: Call<P>, incoming: Incoming) -> Option<Settled<P>> {
        let (floor, error) = match judge(&call.request, incoming) {
            Judgement::Answered(reply) => {
                io.gate(call.request.target()).answered();
                return Some((call, Ok(reply)));
            }
            Judgement::Final(e) => return Some((call, Err(e))),
            Judgement::Transient { floor, error } => (floor, error),
        };
        if optional(&call.request) && error.unreachable() {
            return Some((call, Err(error)));
        }
        let (now, attempt) = (io.now, call.attempt);
        let target = call.request.target();
        let mut jitter = io.jitter.clone();
        let verdict = io
            .gate(target)
            .failed(attempt, floor, error.clone(), now, &mut jitter);
        io.jitter = jitter;
        if ambiguous(&call.request) && error.unreachable() {
            // The phase reads the object back (or resends it) instead; a limited
            // target still waits out its probe's backoff before anything else goes.
            if let Verdict::Wait(wait) = verdict {
                io.gate(target).wait_until(now + wait);
            }
            return Some((call, Err(error)));
        }
        match verdict {
            Verdict::Retry(wait) if io.time_allows(wait) => {
                io.log(
                    LogLevel::Debug,
                    "retrying",
                    [
                        ("request", Some(call.request.describe().into())),
                        ("attempt", Some((attempt + 1).into())),
                        ("waitMs", Some(wait.into())),
                    ],
                );
                self.retry(io, call, wait);
                None
            }
            Verdict::Wait(wait) if io.time_allows(wait) => {
                io.gate(target).wait_until(now + wait);
                let mut call = call;
                call.attempt += 1;
                self.queue.push_front(call);
                None
            }
            Verdict::Fail(e) => Some((call, Err(e))),
            Verdict::Retry(_) | Verdict::Wait(_) => Some((call, Err(error))),
        }
    }
}

/// An AWS request's answer text, parsed into `T`.
pub(crate) fn parse_aws<T: serde::de::DeserializeOwned>(reply: &Reply) -> Result<T, String> {
    match reply {
        Reply::Aws(raw) => {
            serde_json::from_str(raw.get()).map_err(|e| format!("cannot read the answer: {e}"))
        }
        _ => Err("not an AWS answer".into()),
    }
}

/// A Consul answer's body, parsed into `T`.
pub(crate) fn parse_body<T: serde::de::DeserializeOwned>(body: &str) -> Result<T, String> {
    let body = if body.trim().is_empty() { "null" } else { body };
    serde_json::from_str(body).map_err(|e| format!("cannot read the answer: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::engine::wire::AnswerError;

    fn lost() -> Incoming {
        Incoming::Error(AnswerError {
            code: "transport".into(),
            message: "no answer within 10000 ms".into(),
            status: None,
        })
    }

    #[test]
    fn a_lost_answer_to_the_peerings_read_settles_it_at_once() {
        let mut io = Io::new(LogLevel::Info, 1, 8, 10_000);
        let mut calls: Calls<()> = Calls::default();
        calls.push(Request::Consul(ConsulRequest::Peerings), ());
        let (sent, _) = calls.take_batch(&mut io);
        let Some(Some((call, Err(e)))) = calls.answer(&mut io, sent[0].id, lost()) else {
            panic!("the peerings read is settled, not retried");
        };
        assert_eq!(call.attempt, 1);
        assert!(e.unreachable());
        assert!(calls.idle());
        // Consul's budget is untouched: the next read goes out at once.
        calls.push(Request::Consul(ConsulRequest::Datacenters), ());
        assert_eq!(calls.take_batch(&mut io).0.len(), 1);
    }

    #[test]
    fn a_lost_answer_to_another_read_is_retried() {
        let mut io = Io::new(LogLevel::Info, 1, 8, 10_000);
        let mut calls: Calls<()> = Calls::default();
        calls.push(Request::Consul(ConsulRequest::Datacenters), ());
        let (sent, _) = calls.take_batch(&mut io);
        assert!(matches!(
            calls.answer(&mut io, sent[0].id, lost()),
            Some(None)
        ));
        assert!(!calls.idle());
    }
}
