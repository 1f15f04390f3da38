//! The sync engine (docs/engine.md): one invocation of the registrator, sans-IO.
//!
//! The engine owns the protocol of a sync — which AWS operations and Consul
//! requests to make and in what order, paging, confirmations, leaf reads,
//! retries and backoff, transactions and check-and-set, the verdict and the log
//! records — and does no I/O: [`Engine::next`] yields a [`Step`] (requests to
//! carry, a sleep, or the result), and [`Engine::feed`] takes the answers. The
//! host passes in the time; a seed for backoff jitter comes with the start.
//!
//! Phases: set-up (account, Consul credentials) → observation (Consul topology,
//! then per-scope state, the Lambda inventory, extension data) → plan
//! ([`crate::plan`]) → confirmations and leaves, each followed by a re-plan →
//! execution in five waves (config entries; catalog transactions; config
//! deletions; Parameter Store; mesh entries) → result.

mod doctor;
mod execute;
mod observe;
pub mod outcome;
pub mod review;
pub mod wire;

use crate::config::{parse_bool, Config, ConfigInput, LogLevel};
use crate::error::{Code, Diagnostic, Failure};
use crate::event::{classify_event, Trigger};
use crate::plan::Plan;
use execute::Execution;
use observe::Observation;
use outcome::{InventoryReport, OpCounts, RequestCounts, SyncResult, Verdict};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use wire::{Answer, AwsCall, ConsulCall, Jitter, Log, SecretKind, Step, WireRequest};

/// Default bound on requests in flight.
pub const DEFAULT_CONCURRENCY: u32 = 8;
/// Default timeout of one request.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;
/// The most requests one step carries (bounds the host's memory; the rest follow).
pub const MAX_STEP_REQUESTS: usize = 1024;
/// No new write starts with less Lambda time left than this.
pub const TIME_RESERVE_MS: u64 = 5_000;

/// How an invocation starts (docs/engine.md "Start").
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Start {
    /// The environment (the engine keeps only what it parses).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The EventBridge event; absent: a full sync.
    #[serde(default)]
    pub event: Option<Value>,
    /// One function by name or ARN instead of an event.
    #[serde(default)]
    pub function: Option<String>,
    /// The registrator's account, when the host knows it.
    #[serde(default)]
    pub account_id: Option<String>,
    /// The registrator's region.
    pub region: String,
    /// Overrides `DRY_RUN`.
    #[serde(default)]
    pub dry_run: Option<bool>,
    /// Overrides `MAX_CONCURRENCY`.
    #[serde(default)]
    pub concurrency: Option<i64>,
    /// Seeds backoff jitter.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Plans the removal of everything the registrator manages (`prune`).
    #[serde(default)]
    pub prune: Option<bool>,
    /// Leaves the plan, the outcomes and the basis out of the result (a Lambda
    /// handler returns a small result; the counts, errors and failures stay).
    #[serde(default)]
    pub compact: Option<bool>,
    /// Applies exactly this reviewed plan (a `ReviewedPlan`: what `plan --out`
    /// wrote), or refuses if what it touches moved.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<serde_json::Value>"))]
    pub reviewed: Option<review::ReviewedPlan>,
    /// Checks what this configuration needs instead of syncing (`doctor`): the
    /// result carries the report (`doctor`); nothing is written.
    #[serde(default)]
    pub doctor: Option<bool>,
}

/// What a pending request is for.
#[derive(Debug, Clone)]
pub(crate) enum Purpose {
    Account,
    Secret(SecretKind),
    AgentSelf,
    Datacenters,
    NodeServices(usize),
    ServiceDefaults(usize),
    TaggingPage,
    Function { arn: String, confirm: bool },
    Roots,
    ParametersPage,
    Leaf(crate::consul::ServiceKey),
    MeshEntry(usize),
    Exec(execute::ExecPurpose),
    Probe(doctor::Probe),
}

/// A request with its bookkeeping.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    call: Call,
    purpose: Purpose,
    attempt: u32,
}

#[derive(Debug, Clone)]
pub(crate) enum Call {
    Consul(ConsulCall),
    Aws {
        call: AwsCall,
        secret: Option<SecretKind>,
        sensitive: bool,
    },
}

/// Where the engine is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Setup,
    Topology,
    Scopes,
    Plan,
    Execute,
    Finish,
    Done,
}

/// Why the sync stops early.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    verdict: Verdict,
    message: String,
    failure: Option<Failure>,
}

/// One invocation of the registrator (see the module documentation).
#[derive(Debug)]
pub struct Engine {
    config: Config,
    config_input: ConfigInput,
    prune: bool,
    compact: bool,
    reviewed: Option<review::ReviewedPlan>,
    trigger: Trigger,
    account: Option<String>,
    /// A function given by name before the account is known: resolved once STS answers.
    unresolved_function: Option<String>,
    region: String,
    dry_run: bool,
    concurrency: u32,
    timeout_ms: u64,
    log_level: LogLevel,
    jitter: Jitter,
    now: u64,
    started: Option<u64>,
    remaining: Option<u64>,
    next_id: u64,
    queue: Vec<Pending>,
    inflight: BTreeMap<u64, Pending>,
    delayed: Vec<(Option<u64>, u64, Pending)>,
    logs: Vec<Log>,
    phase: Phase,
    obs: Observation,
    plan: Option<Plan>,
    exec: Option<Execution>,
    stop: Option<Stop>,
    counts: RequestCounts,
    result: Option<SyncResult>,
    doctor: Option<doctor::DoctorRun>,
}

fn setting<T>(
    env: &BTreeMap<String, String>,
    key: &str,
    parse: impl Fn(&str) -> Option<T>,
    hint: &str,
    errors: &mut Vec<Diagnostic>,
) -> Option<T> {
    let v = env.get(key).map(String::as_str).filter(|v| !v.is_empty())?;
    let parsed = parse(v.trim());
    if parsed.is_none() {
        errors.push(
            Diagnostic::new(Code::InvalidConfig, format!("{key} is not valid"), hint)
                .key(key)
                .value(v),
        );
    }
    parsed
}

fn concurrency_of(n: i64) -> Option<u32> {
    u32::try_from(n).ok().filter(|n| (1..=256).contains(n))
}

impl Engine {
    /// Starts an invocation. Fails only on input of the wrong shape; a bad
    /// configuration or event ends the invocation at its first step instead.
    pub fn new(start: Start) -> Engine {
        let (config_input, mut errors) = ConfigInput::from_env(&start.env);
        let dry_run = setting(
            &start.env,
            "DRY_RUN",
            parse_bool,
            "set DRY_RUN=true or DRY_RUN=false",
            &mut errors,
        );
        let max = setting(
            &start.env,
            "MAX_CONCURRENCY",
            |v| v.parse().ok().and_then(concurrency_of),
            "set MAX_CONCURRENCY to a whole number from 1 to 256",
            &mut errors,
        );
        let timeout_ms = setting(
            &start.env,
            "CONSUL_TIMEOUT_MS",
            |v| {
                v.parse::<u64>()
                    .ok()
                    .filter(|n| (100..=300_000).contains(n))
            },
            "set CONSUL_TIMEOUT_MS to milliseconds from 100 to 300000",
            &mut errors,
        );
        let concurrency = match start.concurrency {
            Some(n) => concurrency_of(n).unwrap_or_else(|| {
                errors.push(
                    Diagnostic::new(
                        Code::OutOfRange,
                        "the concurrency must be a whole number from 1 to 256",
                        "pass --concurrency 8, for example",
                    )
                    .key("concurrency")
                    .value(&n.to_string()),
                );
                DEFAULT_CONCURRENCY
            }),
            None => max.unwrap_or(DEFAULT_CONCURRENCY),
        };
        let validated = config_input.validate();
        let config = match &validated {
            Ok(c) => c.clone(),
            Err(more) => {
                errors.extend(more.iter().cloned());
                // The registrator's own name still labels the metrics of this failed
                // invocation (their FunctionName), so that its alarm sees it.
                let name = config_input.name.clone();
                let name = name.filter(|n| crate::arn::validate_function_name(n).is_ok());
                Config {
                    name: name.unwrap_or_else(|| Config::default().name),
                    ..Config::default()
                }
            }
        };
        let mut engine = Engine {
            log_level: config.log_level,
            config,
            config_input,
            prune: start.prune.unwrap_or(false),
            compact: start.compact.unwrap_or(false),
            reviewed: start.reviewed.clone(),
            trigger: Trigger::FullSync,
            account: start.account_id.clone().filter(|a| !a.is_empty()),
            unresolved_function: None,
            region: start.region.clone(),
            dry_run: start.dry_run.or(dry_run).unwrap_or(false),
            concurrency,
            timeout_ms: timeout_ms.unwrap_or(DEFAULT_TIMEOUT_MS),
            jitter: Jitter::new(start.seed.unwrap_or(0)),
            now: 0,
            started: None,
            remaining: None,
            next_id: 1,
            queue: Vec::new(),
            inflight: BTreeMap::new(),
            delayed: Vec::new(),
            logs: Vec::new(),
            phase: Phase::Setup,
            obs: Observation::default(),
            plan: None,
            exec: None,
            stop: None,
            counts: RequestCounts::default(),
            result: None,
            doctor: start
                .doctor
                .unwrap_or(false)
                .then(doctor::DoctorRun::default),
        };
        if !errors.is_empty() {
            let failure = Failure::many(Code::InvalidConfig, "invalid configuration", errors);
            engine.stop_with(
                Verdict::InvalidConfig,
                failure.message.clone(),
                Some(failure),
            );
            return engine;
        }
        engine.resolve_trigger(&start);
        engine
    }

    /// Starts an invocation from JSON text.
    pub fn from_json(start: &str) -> Result<Engine, Failure> {
        let start: Start =
            serde_json::from_str(start).map_err(|e| Failure::input("engine start", &e))?;
        Ok(Engine::new(start))
    }

    fn resolve_trigger(&mut self, start: &Start) {
        if self.region.is_empty() {
            let d = Diagnostic::new(
                Code::InvalidInput,
                "no AWS region",
                "set AWS_REGION (or AWS_DEFAULT_REGION)",
            )
            .key("region");
            self.stop_with(Verdict::Setup, d.message.clone(), Some(d.into()));
            return;
        }
        let trigger = match (&start.event, &start.function) {
            (Some(_), Some(_)) => Err(Diagnostic::new(
                Code::InvalidInput,
                "pass an event or a function, not both",
                "drop one of `event` and `function`",
            )
            .into()),
            (Some(event), None) => classify_event(event).map_err(Failure::from),
            (None, Some(f)) => {
                // A bare name needs the account, which STS tells when the host did not.
                if self.account.is_none() && !f.starts_with("arn:") {
                    self.unresolved_function = Some(f.clone());
                }
                self.function_trigger(f)
            }
            (None, None) => Ok(Trigger::FullSync),
        };
        let trigger = match trigger {
            Ok(t) if self.prune && t != Trigger::FullSync => Err(Diagnostic::new(
                Code::InvalidInput,
                "pruning removes everything the registrator manages: it takes no event or function",
                "drop `event` and `function`",
            )
            .into()),
            other => other,
        };
        match trigger {
            Ok(t) => self.trigger = t,
            Err(f) => {
                let message = f.message.clone();
                self.stop_with(Verdict::Failed, message, Some(f));
            }
        }
    }

    pub(crate) fn function_trigger(&self, function: &str) -> Result<Trigger, Failure> {
        let account = self.account.as_deref().unwrap_or("000000000000");
        let arn = crate::arn::resolve_function_name(function, account, &self.region)?;
        Ok(Trigger::Function {
            arn: arn.unqualified().to_string(),
            name: arn.name.clone(),
            event_name: None,
        })
    }

    /// Parses a JSON list of answers and feeds them.
    pub fn feed_json(&mut self, answers: &str) -> Result<(), Failure> {
        let answers: Vec<Answer> =
            serde_json::from_str(answers).map_err(|e| Failure::input("answers", &e))?;
        self.feed(answers)
    }

    /// Takes the answers to the last step's requests (any order).
    pub fn feed(&mut self, answers: Vec<Answer>) -> Result<(), Failure> {
        for answer in answers {
            let Some(pending) = self.inflight.remove(&answer.id) else {
                return Err(Diagnostic::new(
                    Code::InvalidInput,
                    format!("no request with id {} is waiting for an answer", answer.id),
                    "feed each answer once, with the id of its request",
                )
                .key("id")
                .into());
            };
            self.settle(pending, answer);
        }
        Ok(())
    }

    /// The JSON text of [`Engine::next`].
    pub fn next_json(&mut self, now_ms: u64, remaining_ms: Option<u64>) -> String {
        let step = self.next(now_ms, remaining_ms);
        serde_json::to_string(&step)
            .unwrap_or_else(|_| "{\"logs\":[],\"done\":null,\"sleep\":1000}".to_owned())
    }

    /// What the host does next. `now_ms` is a monotonic clock; `remaining_ms` the
    /// Lambda time left (`None` outside Lambda).
    pub fn next(&mut self, now_ms: u64, remaining_ms: Option<u64>) -> Step {
        self.now = now_ms;
        self.started.get_or_insert(now_ms);
        self.remaining = remaining_ms;
        if !self.inflight.is_empty() {
            let ids: Vec<String> = self.inflight.keys().map(u64::to_string).collect();
            self.log(
                LogLevel::Error,
                "next() called before every answer was fed; those requests count as unanswered",
                &[("ids", Value::from(ids.join(",")))],
            );
            let pending: Vec<(u64, Pending)> =
                std::mem::take(&mut self.inflight).into_iter().collect();
            for (id, p) in pending {
                let answer = Answer {
                    id,
                    error: Some(wire::AnswerError {
                        code: "transport".into(),
                        message: "the host fed no answer".into(),
                        status: None,
                    }),
                    ..Answer::default()
                };
                self.settle(p, answer);
            }
        }
        loop {
            self.release_due();
            if !self.queue.is_empty() {
                return self.send_queue();
            }
            if let Some(wait) = self.next_wakeup() {
                return Step {
                    send: None,
                    concurrency: None,
                    timeout_ms: None,
                    sleep: Some(wait),
                    done: None,
                    logs: std::mem::take(&mut self.logs),
                };
            }
            if self.phase == Phase::Done {
                return Step {
                    send: None,
                    concurrency: None,
                    timeout_ms: None,
                    sleep: None,
                    done: self.result.clone().map(Box::new),
                    logs: std::mem::take(&mut self.logs),
                };
            }
            self.advance();
        }
    }

    /// Moves delayed requests whose time has come into the queue; dates new ones.
    fn release_due(&mut self) {
        let now = self.now;
        let mut keep = Vec::with_capacity(self.delayed.len());
        for (due, wait, p) in std::mem::take(&mut self.delayed) {
            let due = due.unwrap_or(now + wait);
            if due <= now {
                self.queue.push(p);
            } else {
                keep.push((Some(due), wait, p));
            }
        }
        self.delayed = keep;
    }

    fn next_wakeup(&self) -> Option<u64> {
        self.delayed
            .iter()
            .filter_map(|(due, _, _)| *due)
            .min()
            .map(|due| due.saturating_sub(self.now).max(1))
    }

    fn send_queue(&mut self) -> Step {
        let rest = if self.queue.len() > MAX_STEP_REQUESTS {
            self.queue.split_off(MAX_STEP_REQUESTS)
        } else {
            Vec::new()
        };
        let batch = std::mem::replace(&mut self.queue, rest);
        let mut send = Vec::with_capacity(batch.len());
        for p in batch {
            let id = self.next_id;
            self.next_id += 1;
            send.push(self.wire(id, &p));
            self.count(&p.call);
            self.inflight.insert(id, p);
        }
        Step {
            send: Some(send),
            concurrency: Some(self.concurrency),
            timeout_ms: Some(self.timeout_ms),
            sleep: None,
            done: None,
            logs: std::mem::take(&mut self.logs),
        }
    }

    fn wire(&self, id: u64, p: &Pending) -> WireRequest {
        match &p.call {
            Call::Consul(c) => WireRequest {
                id,
                consul: Some(c.clone()),
                aws: None,
                secret: None,
                sensitive: false,
            },
            Call::Aws {
                call,
                secret,
                sensitive,
            } => WireRequest {
                id,
                consul: None,
                aws: Some(call.clone()),
                secret: *secret,
                sensitive: *sensitive,
            },
        }
    }

    fn count(&mut self, call: &Call) {
        match call {
            // The doctor's authorize asks; it writes nothing.
            Call::Consul(c) if c.method == "GET" || c.path == "/v1/internal/acl/authorize" => {
                self.counts.consul.reads += 1
            }
            Call::Consul(c) => {
                self.counts.consul.writes += 1;
                if c.path == "/v1/txn" {
                    self.counts.consul.transactions += 1;
                }
            }
            Call::Aws { call, .. } => {
                if matches!(call.operation.as_str(), "PutParameter" | "DeleteParameter") {
                    self.counts.aws.writes += 1;
                } else {
                    self.counts.aws.reads += 1;
                }
                *self
                    .counts
                    .aws
                    .calls
                    .entry(call.operation.clone())
                    .or_insert(0) += 1;
            }
        }
    }

    /// Queues a request for the next step.
    pub(crate) fn push(&mut self, call: Call, purpose: Purpose) {
        self.queue.push(Pending {
            call,
            purpose,
            attempt: 1,
        });
    }

    pub(crate) fn consul_get(
        &mut self,
        path: String,
        query: BTreeMap<String, String>,
        purpose: Purpose,
    ) {
        self.push(
            Call::Consul(ConsulCall {
                method: "GET".into(),
                path,
                query,
                body: None,
            }),
            purpose,
        );
    }

    pub(crate) fn aws(&mut self, service: &str, operation: &str, input: Value, purpose: Purpose) {
        self.push(
            Call::Aws {
                call: AwsCall {
                    service: service.into(),
                    operation: operation.into(),
                    input,
                },
                secret: None,
                sensitive: false,
            },
            purpose,
        );
    }

    /// Judges an answer: retries it, or hands it to its purpose.
    fn settle(&mut self, mut p: Pending, answer: Answer) {
        let verdict = match &p.call {
            Call::Consul(_) => wire::judge_consul(&answer, p.attempt, &mut self.jitter),
            Call::Aws { .. } => wire::judge_aws(&answer, p.attempt, &mut self.jitter),
        };
        match verdict {
            wire::Verdict::Retry(wait) if self.retry_allowed(&p, &answer, wait) => {
                self.log(
                    LogLevel::Debug,
                    "retrying",
                    &[
                        ("request", Value::from(describe(&p.call))),
                        ("attempt", Value::from(p.attempt + 1)),
                        ("waitMs", Value::from(wait)),
                    ],
                );
                p.attempt += 1;
                self.delayed.push((None, wait, p));
            }
            wire::Verdict::Retry(_) => {
                let message = match &answer.error {
                    Some(e) => wire::aws_error_text(e),
                    None => wire::status_message(&answer),
                };
                self.handle(p, Err((message, answer.is_transport_error())), answer);
            }
            wire::Verdict::Answered => self.handle(p, Ok(()), answer),
            wire::Verdict::Failed {
                message,
                unreachable,
            } => {
                // No credentials, no region: a setup failure, whatever the request was for.
                if answer.error.as_ref().is_some_and(|e| e.code == "config") {
                    self.stop_with(
                        Verdict::Setup,
                        format!("{}: {message}", describe(&p.call)),
                        None,
                    );
                }
                self.handle(p, Err((message, unreachable)), answer)
            }
        }
    }

    /// A retry must end before the Lambda time runs out; a write whose answer was
    /// lost is re-checked by its purpose instead of blindly resent.
    fn retry_allowed(&self, p: &Pending, answer: &Answer, wait: u64) -> bool {
        if let Some(left) = self.remaining {
            if left < wait + self.timeout_ms + TIME_RESERVE_MS / 2 {
                return false;
            }
        }
        !(answer.is_transport_error() && execute::is_ambiguous_write(&p.purpose))
    }

    /// Hands an answer (or a failure) to the code of its purpose.
    fn handle(&mut self, p: Pending, outcome: Result<(), (String, bool)>, answer: Answer) {
        match p.purpose.clone() {
            Purpose::Exec(purpose) => self.exec_answer(p, purpose, outcome, answer),
            Purpose::Probe(probe) => self.doctor_answer(probe, outcome, answer),
            purpose => self.observe_answer(purpose, &p, outcome, answer),
        }
    }

    /// Ends the sync early (nothing more is sent; what is in flight is drained).
    pub(crate) fn stop_with(
        &mut self,
        verdict: Verdict,
        message: String,
        failure: Option<Failure>,
    ) {
        // The doctor reports problems as checks; only a stop before it runs
        // (an invalid configuration, no region) ends it early.
        if self.doctor.is_some() && self.started.is_some() {
            return;
        }
        if self.stop.is_none() {
            self.log(
                LogLevel::Error,
                "sync stopped",
                &[
                    ("verdict", Value::from(verdict.as_str())),
                    ("error", Value::from(message.clone())),
                ],
            );
            self.stop = Some(Stop {
                verdict,
                message,
                failure,
            });
        }
    }

    /// Adds a log record if its level is enabled.
    pub(crate) fn log(&mut self, level: LogLevel, msg: &str, fields: &[(&str, Value)]) {
        if level < self.log_level {
            return;
        }
        self.logs.push(Log {
            level,
            msg: msg.to_owned(),
            fields: fields
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
        });
    }

    /// Runs the phase machine until it waits for answers or is done.
    fn advance(&mut self) {
        if self.doctor.is_some() {
            if self.phase != Phase::Done {
                self.doctor_advance();
            }
            return;
        }
        if self.stop.is_some() && self.phase != Phase::Done {
            self.phase = Phase::Finish;
        }
        match self.phase {
            Phase::Setup => {
                if let Trigger::Ignore { reason, event_name } = self.trigger.clone() {
                    self.log(
                        LogLevel::Info,
                        "event ignored",
                        &[
                            ("reason", Value::from(reason)),
                            ("eventName", event_name.map_or(Value::Null, Value::from)),
                        ],
                    );
                    self.finish();
                    return;
                }
                self.start_setup();
                self.phase = Phase::Topology;
            }
            Phase::Topology => {
                self.start_topology();
                self.phase = Phase::Scopes;
            }
            Phase::Scopes => {
                self.start_scopes();
                self.phase = Phase::Plan;
            }
            Phase::Plan => {
                if self.plan_step() {
                    self.phase = Phase::Execute;
                }
            }
            Phase::Execute => {
                if self.execute_step() {
                    self.phase = Phase::Finish;
                }
            }
            Phase::Finish => self.finish(),
            Phase::Done => {}
        }
    }

    /// Builds the result and ends.
    fn finish(&mut self) {
        let basis = match &self.plan {
            Some(p) if self.dry_run && !self.compact => Some(self.basis(p)),
            _ => None,
        };
        let (outcomes, operations, partial) = match &self.exec {
            Some(exec) => exec.outcomes(),
            None => {
                let planned = self.plan.as_ref().map_or(0, |p| p.operations.len());
                let outcomes = self
                    .plan
                    .as_ref()
                    .map(|p| execute::planned_outcomes(&p.operations))
                    .unwrap_or_default();
                (
                    outcomes,
                    OpCounts {
                        planned,
                        ..OpCounts::default()
                    },
                    false,
                )
            }
        };
        let inventory = self.obs.report();
        let (verdict, message, failure) = self.verdict(&operations, &inventory, partial);
        // The plan moves into the result (the engine is done with it), with the
        // operations the execution held.
        let mut plan = self.plan.take();
        if let (Some(p), Some(exec)) = (plan.as_mut(), self.exec.as_mut()) {
            p.operations = exec.take_operations();
        }
        let duration_ms = self.now.saturating_sub(self.started.unwrap_or(self.now));
        let ok = matches!(verdict, Verdict::Ok | Verdict::Ignored);
        let summary = plan.as_ref().map(|p| p.summary.clone()).unwrap_or_default();
        self.log(
            if ok { LogLevel::Info } else { LogLevel::Error },
            "sync finished",
            &[
                ("verdict", Value::from(verdict.as_str())),
                ("message", Value::from(message.clone())),
                ("dryRun", Value::from(self.dry_run)),
                ("create", Value::from(summary.create)),
                ("update", Value::from(summary.update)),
                ("delete", Value::from(summary.delete)),
                ("unchanged", Value::from(summary.unchanged)),
                ("ok", Value::from(operations.ok)),
                ("failed", Value::from(operations.failed)),
                ("skipped", Value::from(operations.skipped)),
                ("conflicts", Value::from(operations.conflicts)),
                ("consulReads", Value::from(self.counts.consul.reads)),
                ("consulWrites", Value::from(self.counts.consul.writes)),
                (
                    "awsCalls",
                    Value::from(self.counts.aws.reads + self.counts.aws.writes),
                ),
                ("durationMs", Value::from(duration_ms)),
            ],
        );
        self.result = Some(SyncResult {
            ok,
            verdict,
            exit_code: verdict.exit_code(),
            message,
            dry_run: self.dry_run,
            trigger: self.trigger.clone(),
            summary: summary.clone(),
            errors: plan.as_ref().map(|p| p.errors.clone()).unwrap_or_default(),
            failures: outcomes
                .iter()
                .filter(|o| !matches!(o.status, outcome::OpStatus::Ok | outcome::OpStatus::Planned))
                .cloned()
                .collect(),
            plan,
            outcomes,
            operations,
            inventory,
            requests: self.counts.clone(),
            partial,
            duration_ms,
            failure,
            basis,
            metrics: Value::Null,
            doctor: None,
        });
        if let Some(r) = self.result.as_mut() {
            r.metrics = outcome::metrics_document(r, &self.config.name);
            if self.compact {
                r.plan = None;
                r.outcomes = Vec::new();
            }
        }
        self.phase = Phase::Done;
    }

    fn verdict(
        &self,
        ops: &OpCounts,
        inventory: &InventoryReport,
        partial: bool,
    ) -> (Verdict, String, Option<Failure>) {
        if let Some(stop) = &self.stop {
            return (stop.verdict, stop.message.clone(), stop.failure.clone());
        }
        if matches!(self.trigger, Trigger::Ignore { .. }) {
            return (Verdict::Ignored, "the event needs nothing".into(), None);
        }
        let mut problems = Vec::new();
        if ops.failed > 0 {
            problems.push(format!("{} operation(s) failed", ops.failed));
        }
        if ops.skipped > 0 {
            problems.push(format!("{} operation(s) skipped", ops.skipped));
        }
        if !inventory.complete {
            problems.push("the Lambda inventory was incomplete".into());
        }
        if !inventory.failed.is_empty() {
            problems.push("functions could not be loaded".into());
        }
        if let Some(plan) = &self.plan {
            for e in &plan.errors {
                if e.code == Code::MassDeregistrationBlocked {
                    problems.push(e.message.clone());
                }
            }
        }
        if partial {
            return (
                Verdict::Partial,
                format!(
                    "sync incomplete: the invocation ran out of time; the next sync completes it{}",
                    if problems.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", problems.join(", "))
                    }
                ),
                None,
            );
        }
        if !problems.is_empty() {
            return (
                Verdict::Failed,
                format!("sync incomplete: {}", problems.join(", ")),
                None,
            );
        }
        let summary = self
            .plan
            .as_ref()
            .map(|p| p.summary.clone())
            .unwrap_or_default();
        let what = if self.dry_run {
            "dry run, nothing changed"
        } else {
            "synced"
        };
        (
            Verdict::Ok,
            format!(
                "{what}: {} to create, {} to update, {} to delete, {} unchanged{}",
                summary.create,
                summary.update,
                summary.delete,
                summary.unchanged,
                if ops.conflicts > 0 {
                    format!(
                        "; {} check-and-set conflict(s) left for the next sync",
                        ops.conflicts
                    )
                } else {
                    String::new()
                }
            ),
            None,
        )
    }
}

impl Engine {
    /// The datacenter of a scope without one: the agent's, else `DATACENTER`.
    pub(crate) fn local_datacenter(&self) -> String {
        self.obs
            .local_dc
            .clone()
            .or_else(|| self.config.datacenter.clone())
            .unwrap_or_default()
    }
}

/// `GET /v1/agent/self`, `ssm GetParameter`: safe to print.
pub(crate) fn describe(call: &Call) -> String {
    match call {
        Call::Consul(c) => format!("{} {}", c.method, c.path),
        Call::Aws { call, .. } => format!("{} {}", call.service, call.operation),
    }
}

/// `true` when the string is `true` (Consul's answer to a check-and-set write).
pub(crate) fn body_is_true(answer: &Answer) -> bool {
    answer.body.as_deref().map(str::trim) == Some("true")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn engine(start: Value) -> Engine {
        Engine::new(serde_json::from_value(start).unwrap())
    }

    fn answer(id: u64, ok: Option<Value>, error: Option<(&str, &str)>) -> Answer {
        Answer {
            id,
            ok,
            error: error.map(|(code, message)| wire::AnswerError {
                code: code.into(),
                message: message.into(),
                status: None,
            }),
            ..Answer::default()
        }
    }

    #[test]
    fn a_function_name_is_resolved_with_the_account_sts_tells() {
        let mut e = engine(json!({"region": "us-east-1", "function": "orders"}));
        let step = e.next(0, None);
        let sts = &step.send.unwrap()[0];
        assert_eq!(sts.aws.as_ref().unwrap().operation, "GetCallerIdentity");
        e.feed(vec![answer(
            sts.id,
            Some(json!({"Account": "123456789012"})),
            None,
        )])
        .unwrap();
        match &e.trigger {
            Trigger::Function { arn, .. } => {
                assert_eq!(arn, "arn:aws:lambda:us-east-1:123456789012:function:orders")
            }
            t => panic!("unexpected trigger {t:?}"),
        }
    }

    #[test]
    fn the_transaction_that_creates_the_node_goes_alone() {
        let mut e = engine(json!({
            "region": "us-east-1",
            "accountId": "123456789012",
            "env": {"DATACENTER": "dc1"}
        }));
        let functions: Vec<Value> = (0..200)
            .map(|i| {
                json!({
                    "ResourceARN": format!("arn:aws:lambda:us-east-1:123456789012:function:f{i}"),
                    "Tags": [{"Key": "serverless.consul.hashicorp.com/v1alpha1/lambda/enabled", "Value": "true"}]
                })
            })
            .collect();
        let (mut now, mut txns) = (0, 0);
        let done = loop {
            now += 1;
            let step = e.next(now, None);
            if let Some(done) = step.done {
                break done;
            }
            let Some(send) = step.send else { continue };
            let in_step: Vec<&WireRequest> = send
                .iter()
                .filter(|r| r.consul.as_ref().is_some_and(|c| c.path == "/v1/txn"))
                .collect();
            let creates = |r: &WireRequest| {
                r.consul
                    .as_ref()
                    .and_then(|c| c.body.as_ref())
                    .is_some_and(|b| {
                        b.as_array()
                            .is_some_and(|ops| ops.iter().any(|op| op.get("Node").is_some()))
                    })
            };
            if in_step.iter().any(|r| creates(r)) {
                assert_eq!(in_step.len(), 1, "a node transaction goes alone");
            }
            txns += in_step.len();
            let answers = send
                .iter()
                .map(|r| match (&r.consul, &r.aws) {
                    (Some(c), _) => {
                        let body = match (c.method.as_str(), c.path.as_str()) {
                            ("GET", "/v1/config/service-defaults") => "[]",
                            ("GET", _) => "{\"Node\": null, \"Services\": null}",
                            ("PUT", "/v1/txn") => "{\"Results\": [], \"Errors\": null}",
                            _ => "true",
                        };
                        Answer {
                            id: r.id,
                            status: Some(200),
                            body: Some(body.into()),
                            ..Answer::default()
                        }
                    }
                    (None, _) => answer(
                        r.id,
                        Some(json!({"ResourceTagMappingList": functions, "PaginationToken": ""})),
                        None,
                    ),
                })
                .collect();
            e.feed(answers).unwrap();
        };
        assert_eq!(done.verdict, Verdict::Ok, "{}", done.message);
        assert_eq!(txns, 2); // 200 registrations + the node: ceil(201 / 128)
    }

    #[test]
    fn a_config_answer_ends_with_verdict_setup() {
        let mut e = engine(json!({"region": "us-east-1"}));
        let step = e.next(0, None);
        let sts = &step.send.unwrap()[0];
        e.feed(vec![answer(
            sts.id,
            None,
            Some(("config", "Unable to locate credentials")),
        )])
        .unwrap();
        let mut now = 1;
        let done = loop {
            let step = e.next(now, None);
            if let Some(done) = step.done {
                break done;
            }
            assert!(step.send.is_none(), "nothing is sent after a setup failure");
            now += step.sleep.unwrap_or(1);
        };
        assert_eq!(done.verdict, Verdict::Setup);
        assert_eq!(done.exit_code, 3);
    }
}
