//! The planning stage of the observing phase: plan; ask `ListTags` to confirm
//! what the plan would delete for absence, and re-plan; read the leaves of the
//! wanted services, and re-plan; check a reviewed plan against the fresh one;
//! then execute, or end a dry run with the plan and its basis.

use super::Observing;
use crate::config::LogLevel;
use crate::engine::execute::{Executing, Material};
use crate::engine::finish::Ending;
use crate::engine::io::Io;
use crate::engine::outcome::Verdict;
use crate::engine::{review, Advance, Run, Stop};
use crate::error::{Code, Diagnostic, Failure};
use crate::plan::{plan_with, Change, Plan};
use std::borrow::Cow;

impl Observing {
    /// Plans; asks for confirmations and leaves first when the plan needs them.
    pub(super) fn plan_step(&mut self, io: &mut Io, run: &mut Run) -> Advance {
        let plan = match self.plan(run) {
            Ok(p) => p,
            Err(failure) => {
                let stop = Stop {
                    verdict: Verdict::Failed,
                    failure,
                };
                return Advance::Finish(Box::new(self.ending(Some(stop))));
            }
        };
        // Names, aliases and confirmations are asked in one round; each answer
        // set is followed by a plan again.
        let mut asked = !run.prune && self.check_names(run, &plan);
        if !self.confirmed && !plan.confirmations.is_empty() {
            self.confirmed = true;
            for c in &plan.confirmations {
                self.get_function(c.function.clone(), true);
            }
            asked = true;
        }
        if asked {
            return Advance::Continue;
        }
        if self.obs.extension_enabled(run) && !self.leaves_read {
            self.leaves_read = true;
            let wanted = plan.services.iter().filter(|s| s.change != Change::Delete);
            let mut asked = false;
            for s in wanted {
                self.leaf(s.service.clone(), run.config.enterprise);
                asked = true;
            }
            if asked {
                return Advance::Continue;
            }
        }
        log_plan(io, &plan);
        self.decided(io, run, plan)
    }

    /// The final plan: checked against a reviewed one, then executed (or, in a
    /// dry run, reported with its basis).
    fn decided(&mut self, io: &mut Io, run: &mut Run, plan: Plan) -> Advance {
        let plan = match run.reviewed.take() {
            None => plan,
            Some(reviewed) => match review::apply(&reviewed, plan, &self.obs, run) {
                Ok(plan) => {
                    io.log(
                        LogLevel::Info,
                        "applying the reviewed plan",
                        [("operations", Some(plan.operations.len().into()))],
                    );
                    plan
                }
                Err(stop) => {
                    self.stop(io, stop);
                    let stop = self.stop.take();
                    return Advance::Finish(Box::new(self.ending(stop)));
                }
            },
        };
        if run.config.dry_run {
            let basis = (!run.compact).then(|| review::basis(&plan, &self.obs, run));
            let mut ending = self.ending(None);
            ending.plan = Some(plan);
            ending.basis = basis;
            return Advance::Finish(Box::new(ending));
        }
        let material = Material::new(std::mem::take(&mut self.obs), run);
        let inventory = material.inventory.clone();
        Advance::Execute(Box::new(Executing::new(plan, material, inventory, run)))
    }

    /// The plan of the observation so far.
    fn plan(&mut self, run: &Run) -> Result<Plan, Failure> {
        let (config, confirmed_absent) = if run.prune {
            // Pruning takes every function this account's entries name as gone.
            let mut config = run.config.clone();
            config.allow_mass_deregistration = true;
            (Cow::Owned(config), review::owned_arns(&self.obs, run))
        } else {
            (
                Cow::Borrowed(&run.config),
                self.obs.confirmed_absent.clone(),
            )
        };
        let input = self.obs.plan_input(run, confirmed_absent);
        let planned = plan_with(&config, &input);
        self.obs.restore(input);
        planned
    }

    /// The ending of an observation that did not execute.
    pub(super) fn ending(&mut self, stop: Option<Stop>) -> Ending {
        Ending {
            stop,
            inventory: self.obs.report(),
            ..Ending::default()
        }
    }
}

/// The plan's errors and warnings (one record per kind, with a count and the
/// first names: 100,000 orphans are one record, not 100,000), its skipped
/// functions and its counts.
fn log_plan(io: &mut Io, plan: &Plan) {
    log_kinds(io, LogLevel::Error, "plan error", &plan.errors);
    log_kinds(io, LogLevel::Warn, "plan warning", &plan.warnings);
    if io.logs_at(LogLevel::Debug) {
        for s in &plan.skips {
            io.log(
                LogLevel::Debug,
                "function skipped",
                [
                    ("function", Some(s.function.clone().into())),
                    ("reason", Some(s.reason.clone().into())),
                ],
            );
        }
    }
    let s = &plan.summary;
    io.log(
        LogLevel::Info,
        "plan",
        [
            ("create", Some(s.create.into())),
            ("update", Some(s.update.into())),
            ("delete", Some(s.delete.into())),
            ("unchanged", Some(s.unchanged.into())),
            ("operations", Some(s.operations.into())),
            ("errors", Some(s.errors.into())),
            ("warnings", Some(s.warnings.into())),
            ("skipped", Some(s.skipped.into())),
        ],
    );
}

/// How many names a record of several problems of one kind lists.
const FIRST_NAMES: usize = 5;

/// One record per kind of problem, in the order the kinds first appear: the
/// first problem's fields, the count, and the first few functions or values.
fn log_kinds(io: &mut Io, level: LogLevel, msg: &str, problems: &[Diagnostic]) {
    let mut kinds: Vec<(Code, Vec<&Diagnostic>)> = Vec::new();
    for d in problems {
        match kinds.iter_mut().find(|(code, _)| *code == d.code) {
            Some((_, list)) => list.push(d),
            None => kinds.push((d.code, vec![d])),
        }
    }
    for (code, list) in kinds {
        let Some(first) = list.first() else { continue };
        let names: Vec<&str> = list
            .iter()
            .filter_map(|d| {
                d.function
                    .as_deref()
                    .map(|f| f.rsplit(':').next().unwrap_or(f))
                    .or(d.value.as_deref())
            })
            .take(FIRST_NAMES)
            .collect();
        io.log(
            level,
            msg,
            [
                ("code", Some(code.as_str().into())),
                ("count", Some(list.len().into())),
                ("first", (list.len() > 1).then(|| names.join(", ").into())),
                ("function", first.function.clone().map(Into::into)),
                ("key", first.key.clone().map(Into::into)),
                ("value", first.value.clone().map(Into::into)),
                ("message", Some(first.message.clone().into())),
                ("hint", Some(first.hint.clone().into())),
            ],
        );
    }
}
