//! The sync engine (docs/engine.md): one invocation of the registrator, sans-IO.
//!
//! The engine owns the protocol of a sync — which AWS operations and Consul
//! requests to make and in what order, paging, confirmations, leaf reads,
//! retries and backoff, transactions and check-and-set, the verdict and the log
//! records — and does no I/O: [`Engine::next`] yields a [`Step`] (requests to
//! carry, a sleep, or the result), and [`Engine::feed`] takes the answers. The
//! host tells the time at both; a seed for backoff jitter comes with the start.
//!
//! The engine is a machine of phases, each a type that owns its data and its
//! requests ([`Phase`]):
//!
//! - [`observe::Observing`]: the account and Consul credentials, Consul's
//!   topology and state, the Lambda inventory, extension data; then the plan
//!   ([`crate::plan`]), with confirmations and leaf reads each followed by a
//!   re-plan, and a reviewed plan checked against the fresh one;
//! - [`execute::Executing`]: the plan's operations, lowered ([`crate::lower`]) and
//!   sent in five waves (config entries; catalog transactions; config deletions;
//!   Parameter Store; mesh entries);
//! - [`doctor::Doctoring`]: read-only probes and the report (`Start.doctor`);
//! - done: the result.
//!
//! What every phase shares — the clock, logs, jitter, counts and each target's
//! retry budget — is the I/O context ([`io::Io`]); what the run is about — the
//! validated configuration, the trigger, the account — is the [`Run`].

mod basis;
pub mod doctor;
mod execute;
mod finish;
pub(crate) mod io;
mod observation;
mod observe;
pub mod outcome;
pub mod retry;
pub mod review;
pub mod wire;

use crate::config::{Config, ConfigInput};
use crate::error::{Code, Diagnostic, Failure};
use crate::event::{classify_event, Trigger};
use io::{Calls, Io, Settled};
use outcome::{SyncResult, Verdict};
use review::ReviewedPlan;
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::BTreeMap;
pub use wire::{Answer, Incoming, Log, LogValue, Sent, Step};

/// How an invocation starts (docs/engine.md "Start").
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Start {
    /// The environment (the engine keeps only the configuration it reads from it).
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
    /// `false`: the result carries the plan, the outcomes and the basis (the
    /// command line asks for them). Default: a compact result (the counts, the
    /// errors and the failures).
    #[serde(default)]
    pub compact: Option<bool>,
    /// Applies this reviewed plan (what `plan --out` wrote): only the operations a
    /// fresh plan also decides, or none.
    #[serde(default)]
    #[cfg_attr(feature = "schema", schemars(with = "Option<serde_json::Value>"))]
    pub reviewed: Option<Box<RawValue>>,
    /// Checks what this configuration needs instead of syncing (`doctor`): the
    /// result carries the report (`doctor`); nothing is written.
    #[serde(default)]
    pub doctor: Option<bool>,
    /// AWS credentials and the wall clock: the engine then yields every AWS call
    /// as a signed HTTP request (`http`) the host carries like a Consul one.
    /// Absent: AWS calls are yielded as `aws` (`{service, operation, input}`) for
    /// an AWS SDK to make.
    #[serde(default)]
    pub aws: Option<crate::lower::aws::AwsAccess>,
}

/// Why the sync stops early: the verdict and the failure (its code and hint say
/// the way out).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Stop {
    pub(crate) verdict: Verdict,
    pub(crate) failure: Failure,
}

impl Stop {
    pub(crate) fn new(verdict: Verdict, d: Diagnostic) -> Self {
        Stop {
            verdict,
            failure: d.into(),
        }
    }
}

/// What the run is about: fixed at the start, but for the account (STS may tell
/// it) and the trigger (a function named before the account was known).
#[derive(Debug)]
pub(crate) struct Run {
    pub(crate) config: Config,
    pub(crate) region: String,
    pub(crate) account: Option<String>,
    pub(crate) trigger: Trigger,
    /// A function given by name before the account is known: resolved once STS answers.
    pub(crate) unresolved_function: Option<String>,
    pub(crate) prune: bool,
    pub(crate) compact: bool,
    pub(crate) reviewed: Option<ReviewedPlan>,
    /// The credentials AWS calls are signed with, when the host gave them, and
    /// where the calls go (the configuration's endpoints, parsed once).
    pub(crate) aws: Option<(crate::lower::aws::AwsAccess, crate::config::AwsEndpoints)>,
}

impl Run {
    /// The trigger for one function by name or ARN.
    pub(crate) fn function_trigger(&self, function: &str) -> Result<Trigger, Failure> {
        let account = self.account.as_deref().unwrap_or("000000000000");
        let arn = crate::arn::resolve_function_name(function, account, &self.region)?;
        Ok(Trigger::Function {
            arn: arn.unqualified().to_string(),
            name: arn.name.clone(),
            event_name: None,
        })
    }
}

/// Where the engine is.
#[derive(Debug)]
enum Phase {
    Observing(Box<observe::Observing>),
    Executing(Box<execute::Executing>),
    Doctoring(Box<doctor::Doctoring>),
    Done(Box<SyncResult>),
}

/// What a phase does once its requests are answered.
#[derive(Debug)]
pub(crate) enum Advance {
    /// It queued requests (or has more to do).
    Continue,
    /// The plan is made: execute it.
    Execute(Box<execute::Executing>),
    /// The invocation is over.
    Finish(Box<finish::Ending>),
}

/// One invocation of the registrator (see the module documentation).
#[derive(Debug)]
pub struct Engine {
    io: Io,
    run: Run,
    phase: Phase,
}

/// The start's settings into a configuration, with the start's overrides.
fn configure(start: &Start) -> Result<Config, Failure> {
    let (mut input, mut errors): (ConfigInput, Vec<Diagnostic>) = ConfigInput::from_env(&start.env);
    if start.dry_run.is_some() {
        input.dry_run = start.dry_run;
    }
    if start.concurrency.is_some() {
        input.max_concurrency = start.concurrency;
    }
    match input.validate() {
        Ok(config) if errors.is_empty() => Ok(config),
        Ok(_) => Err(Failure::many(
            Code::InvalidConfig,
            "invalid configuration",
            errors,
        )),
        Err(more) => {
            errors.extend(more);
            Err(Failure::many(
                Code::InvalidConfig,
                "invalid configuration",
                errors,
            ))
        }
    }
}

/// The configuration of an invocation whose configuration is invalid: the defaults,
/// but the registrator's own name (`AWS_LAMBDA_FUNCTION_NAME`, when it is a valid
/// function name) still labels its metrics (their `FunctionName`), so that its
/// alarm sees the failure.
fn fallback_config(start: &Start) -> Config {
    let defaults = Config::default();
    let name = start
        .env
        .get("AWS_LAMBDA_FUNCTION_NAME")
        .map(|n| n.trim())
        .filter(|n| crate::arn::validate_function_name(n).is_ok())
        .map_or(defaults.name.clone(), str::to_owned);
    Config { name, ..defaults }
}

impl Engine {
    /// Starts an invocation. A bad configuration, event or reviewed plan ends the
    /// invocation at its first step.
    pub fn new(start: Start) -> Engine {
        let config = configure(&start);
        let valid = config.as_ref().ok();
        let io = Io::new(
            valid.map(|c| c.log_level).unwrap_or_default(),
            start.seed.unwrap_or(0),
            valid.map_or(crate::config::DEFAULT_MAX_CONCURRENCY, |c| {
                c.max_concurrency
            }),
            u64::from(valid.map_or(crate::config::DEFAULT_CONSUL_TIMEOUT_MS, |c| {
                c.consul_timeout_ms
            })),
        );
        let mut run = Run {
            config: valid.cloned().unwrap_or_else(|| fallback_config(&start)),
            region: start.region.clone(),
            account: start.account_id.clone().filter(|a| !a.is_empty()),
            trigger: Trigger::FullSync,
            unresolved_function: None,
            prune: start.prune.unwrap_or(false),
            compact: start.compact.unwrap_or(true),
            reviewed: None,
            aws: None,
        };
        run.aws = start
            .aws
            .clone()
            .map(|access| (access, run.config.aws_endpoints()));
        let doctor = start.doctor.unwrap_or(false);
        let stop = match config {
            Err(failure) => Some(Stop {
                verdict: Verdict::InvalidConfig,
                failure,
            }),
            Ok(_) => resolve(&mut run, &start).err(),
        };
        let mut io = io;
        let phase = match (doctor, stop) {
            (true, stop) => Phase::Doctoring(Box::new(doctor::Doctoring::new(stop))),
            (false, Some(stop)) => Phase::Done(Box::new(finish::result(
                &mut io,
                &run,
                finish::Ending::stopped(stop),
            ))),
            (false, None) => Phase::Observing(Box::default()),
        };
        Engine { io, run, phase }
    }

    /// Starts an invocation from JSON text.
    pub fn from_json(start: &str) -> Result<Engine, Failure> {
        let start: Start =
            serde_json::from_str(start).map_err(|e| Failure::input("engine start", &e))?;
        Ok(Engine::new(start))
    }

    /// Parses a JSON list of answers and feeds them, at the host's time `now_ms`:
    /// each answer is fed as it is read, so only one answer's body is held at a
    /// time.
    pub fn feed_json(&mut self, answers: &str, now_ms: u64) -> Result<(), Failure> {
        self.io.tick(now_ms);
        let mut unknown = None;
        let mut de = serde_json::Deserializer::from_str(answers);
        let fed = serde::de::DeserializeSeed::deserialize(
            Feeder {
                engine: self,
                unknown: &mut unknown,
            },
            &mut de,
        )
        .and_then(|()| de.end());
        match (unknown, fed) {
            (Some(id), _) => Err(unknown_answer(id)),
            (None, Err(e)) => Err(Failure::input("answers", &e)),
            (None, Ok(())) => Ok(()),
        }
    }

    /// Takes the answers to the last step's requests (any order), at the host's
    /// monotonic time `now_ms`.
    pub fn feed(&mut self, answers: Vec<Answer>, now_ms: u64) -> Result<(), Failure> {
        self.io.tick(now_ms);
        for answer in answers {
            if !self.feed_one(answer) {
                return Err(unknown_answer(answer_id_of_last(&self.io)));
            }
        }
        Ok(())
    }

    /// Feeds one answer; `false` when no request of its id is waiting.
    fn feed_one(&mut self, answer: Answer) -> bool {
        let id = answer.id;
        let known = self.with_phase(|phase, io, run| phase.answer(io, run, id, answer.reply));
        if !known {
            self.io.last_unknown = Some(id);
        }
        known
    }

    /// The JSON text of [`Engine::next`].
    pub fn next_json(&mut self, now_ms: u64, remaining_ms: Option<u64>) -> String {
        let step = self.next(now_ms, remaining_ms);
        serde_json::to_string(&step).unwrap_or_else(|_| "{\"sleep\":1000,\"logs\":[]}".to_owned())
    }

    /// What the host does next. `now_ms` is a monotonic clock; `remaining_ms` the
    /// Lambda time left (`None` outside Lambda).
    pub fn next(&mut self, now_ms: u64, remaining_ms: Option<u64>) -> Step {
        self.io.tick(now_ms);
        self.io.remaining = remaining_ms;
        self.with_phase(|phase, io, run| phase.unanswered(io, run));
        loop {
            if let Phase::Done(result) = &self.phase {
                return Step::Done {
                    result: result.clone(),
                    logs: self.io.take_logs(),
                };
            }
            let (sent, settled) = self.with_phase(|phase, io, run| phase.take_batch(io, run));
            if !sent.is_empty() {
                return Step::Send {
                    signing: self.signing(&sent),
                    requests: sent,
                    concurrency: self.io.concurrency,
                    timeout_ms: self.io.timeout_ms,
                    logs: self.io.take_logs(),
                };
            }
            if settled {
                continue;
            }
            if let Some(ms) = self.with_phase(|phase, io, _| phase.wakeup(io)) {
                return Step::Sleep {
                    ms,
                    logs: self.io.take_logs(),
                };
            }
            match self.with_phase(|phase, io, run| phase.advance(io, run)) {
                Advance::Continue => {}
                Advance::Execute(e) => self.phase = Phase::Executing(e),
                Advance::Finish(ending) => self.phase = self.finish(*ending),
            }
        }
    }

    /// What the step's AWS calls are signed with, when the host gave credentials
    /// and the step has AWS calls: the time is the start's wall clock plus the
    /// monotonic time since.
    fn signing(&self, sent: &[Sent]) -> Option<Box<wire::Signing>> {
        let (access, endpoints) = self.run.aws.as_ref()?;
        if !sent
            .iter()
            .any(|s| matches!(s.request, crate::lower::Request::Aws(_)))
        {
            return None;
        }
        Some(Box::new(wire::Signing {
            access: access.clone(),
            region: self.run.region.clone(),
            endpoints: endpoints.clone(),
            unix_secs: access.epoch_ms.saturating_add(self.io.elapsed()) / 1000,
        }))
    }

    /// Builds the result of an ending.
    fn finish(&mut self, ending: finish::Ending) -> Phase {
        Phase::Done(Box::new(finish::result(&mut self.io, &self.run, ending)))
    }

    /// Runs `f` on the current phase's machine.
    fn with_phase<R>(&mut self, f: impl FnOnce(&mut dyn Driver, &mut Io, &mut Run) -> R) -> R {
        let (io, run) = (&mut self.io, &mut self.run);
        match &mut self.phase {
            Phase::Observing(p) => f(p.as_mut(), io, run),
            Phase::Executing(p) => f(p.as_mut(), io, run),
            Phase::Doctoring(p) => f(p.as_mut(), io, run),
            Phase::Done(_) => f(&mut Idle, io, run),
        }
    }
}

/// The failure for an answer no request waits for.
fn unknown_answer(id: u64) -> Failure {
    Diagnostic::new(
        Code::InvalidInput,
        format!("no request with id {id} is waiting for an answer"),
        "feed each answer once, with the id of its request",
    )
    .key("id")
    .into()
}

/// The id of the last answer no request waited for.
fn answer_id_of_last(io: &Io) -> u64 {
    io.last_unknown.unwrap_or_default()
}

/// Reads a JSON list of answers, feeding each as it is read.
struct Feeder<'e> {
    engine: &'e mut Engine,
    unknown: &'e mut Option<u64>,
}

impl<'de> serde::de::DeserializeSeed<'de> for Feeder<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Feeder<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a list of answers")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(answer) = seq.next_element::<Answer>()? {
            let id = answer.id;
            if !self.engine.feed_one(answer) {
                *self.unknown = Some(id);
                return Err(serde::de::Error::custom("an answer no request waits for"));
            }
        }
        Ok(())
    }
}

/// Resolves the trigger and the reviewed plan; `Err`: why the run stops at once.
fn resolve(run: &mut Run, start: &Start) -> Result<(), Stop> {
    let invalid = |message: &str, hint: &str, key: &str| {
        Stop::new(
            Verdict::Failed,
            Diagnostic::new(Code::InvalidInput, message, hint).key(key),
        )
    };
    if run.region.is_empty() {
        return Err(Stop::new(
            Verdict::Setup,
            Diagnostic::new(
                Code::SetupFailed,
                "no AWS region",
                "set AWS_REGION (or AWS_DEFAULT_REGION)",
            )
            .key("region"),
        ));
    }
    let trigger = match (&start.event, &start.function) {
        (Some(_), Some(_)) => {
            return Err(invalid(
                "pass an event or a function, not both",
                "drop one of `event` and `function`",
                "event",
            ))
        }
        (Some(event), None) => classify_event(event).map_err(Failure::from),
        (None, Some(f)) => {
            // A bare name needs the account, which STS tells when the host did not.
            if run.account.is_none() && !f.starts_with("arn:") {
                run.unresolved_function = Some(f.clone());
            }
            run.function_trigger(f)
        }
        (None, None) => Ok(Trigger::FullSync),
    };
    let trigger = trigger.map_err(|failure| Stop {
        verdict: Verdict::Failed,
        failure,
    })?;
    if run.prune && trigger != Trigger::FullSync {
        return Err(invalid(
            "pruning removes everything the registrator manages: it takes no event or function",
            "drop `event` and `function`",
            "prune",
        ));
    }
    run.trigger = trigger;
    if let Some(raw) = &start.reviewed {
        run.reviewed = Some(review::read(raw.get())?);
    }
    Ok(())
}

/// A phase: its requests (each with a purpose of the phase's own), what it does
/// with an answer, and what it does once every answer is in.
pub(crate) trait Machine {
    /// What a request of this phase is for.
    type Purpose;
    /// The phase's requests.
    fn calls(&mut self) -> &mut Calls<Self::Purpose>;
    /// The phase's requests, to look at.
    fn calls_ref(&self) -> &Calls<Self::Purpose>;
    /// A request ended: with a reply, or failed.
    fn settle(&mut self, io: &mut Io, run: &mut Run, settled: Settled<Self::Purpose>);
    /// Every request is answered: queue more, or move on.
    fn advance(&mut self, io: &mut Io, run: &mut Run) -> Advance;
    /// Queues more of what is under way before a step is made (a phase that
    /// starts its requests as the step has room).
    fn refill(&mut self, _io: &mut Io) {}
}

/// What the engine asks of the current phase, whatever its purposes.
pub(crate) trait Driver {
    /// Sends what may be sent now; `true` when calls were settled without being
    /// sent (a spent retry budget), which may queue others.
    fn take_batch(&mut self, io: &mut Io, run: &mut Run) -> (Vec<Sent>, bool);
    /// How long to sleep before something may be sent.
    fn wakeup(&self, io: &Io) -> Option<u64>;
    /// Takes an answer; `false` when no request of this id is in flight.
    fn answer(&mut self, io: &mut Io, run: &mut Run, id: u64, reply: Incoming) -> bool;
    /// Every request still in flight counts as unanswered.
    fn unanswered(&mut self, io: &mut Io, run: &mut Run);
    /// Moves on once every request is answered.
    fn advance(&mut self, io: &mut Io, run: &mut Run) -> Advance;
}

impl<M: Machine> Driver for M {
    fn take_batch(&mut self, io: &mut Io, run: &mut Run) -> (Vec<Sent>, bool) {
        self.refill(io);
        let (sent, failed) = self.calls().take_batch(io);
        let settled = !failed.is_empty();
        for s in failed {
            self.settle(io, run, s);
        }
        (sent, settled)
    }

    fn wakeup(&self, io: &Io) -> Option<u64> {
        self.calls_ref().wakeup(io)
    }

    fn answer(&mut self, io: &mut Io, run: &mut Run, id: u64, reply: Incoming) -> bool {
        match self.calls().answer(io, id, reply) {
            None => false,
            Some(None) => true,
            Some(Some(settled)) => {
                self.settle(io, run, settled);
                true
            }
        }
    }

    fn unanswered(&mut self, io: &mut Io, run: &mut Run) {
        let ids = self.calls().unanswered();
        if ids.is_empty() {
            return;
        }
        let list: Vec<String> = ids.iter().map(u64::to_string).collect();
        io.log(
            crate::config::LogLevel::Error,
            "next() called before every answer was fed; those requests count as unanswered",
            [("ids", Some(list.join(",").into()))],
        );
        for id in ids {
            let reply = Incoming::Error(wire::AnswerError {
                code: "transport".into(),
                message: "the host fed no answer".into(),
                status: None,
            });
            self.answer(io, run, id, reply);
        }
    }

    fn advance(&mut self, io: &mut Io, run: &mut Run) -> Advance {
        Machine::advance(self, io, run)
    }
}

/// The machine of a finished engine: nothing to do.
struct Idle;

impl Driver for Idle {
    fn take_batch(&mut self, _: &mut Io, _: &mut Run) -> (Vec<Sent>, bool) {
        (Vec::new(), false)
    }
    fn wakeup(&self, _: &Io) -> Option<u64> {
        None
    }
    fn answer(&mut self, _: &mut Io, _: &mut Run, _: u64, _: Incoming) -> bool {
        false
    }
    fn unanswered(&mut self, _: &mut Io, _: &mut Run) {}
    fn advance(&mut self, _: &mut Io, _: &mut Run) -> Advance {
        Advance::Continue
    }
}
