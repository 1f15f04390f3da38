//! What a trigger lets the plan touch (docs/contract.md §5.8).

use super::context::Ctx;
use super::key::Key;
use super::ownership::Owner;
use super::{Ignored, Plan};
use crate::arn::resolve_function_name;
use crate::error::{Code, Diagnostic};
use crate::event::Trigger;

/// What this plan may touch: everything (a full sync), or one function's services.
#[derive(Debug, Clone, Copy)]
pub(super) struct Reach<'a> {
    /// The function a single-function trigger names.
    function: Option<&'a str>,
}

impl<'a> Reach<'a> {
    /// What `trigger` reaches; `None` when the plan must touch nothing (an `ignore`
    /// trigger, or a function trigger this registrator does not manage, which is
    /// said in the plan).
    pub(super) fn of(ctx: &Ctx<'_>, trigger: &'a Trigger, out: &mut Plan) -> Option<Self> {
        match trigger {
            Trigger::FullSync => Some(Reach { function: None }),
            Trigger::Function { arn, name, .. } => match trigger_problem(ctx, arn, name) {
                None => Some(Reach {
                    function: Some(name.as_str()),
                }),
                Some(problem) => {
                    out.ignored.push(Ignored {
                        service: None,
                        reason: format!(
                            "the trigger names function {}, which this registrator does not manage: {}",
                            crate::error::clip(arn),
                            problem.message
                        ),
                    });
                    out.warnings.push(problem);
                    None
                }
            },
            Trigger::Ignore { .. } => None,
        }
    }

    /// Whether this is a full sync (single-function triggers are not subject to the
    /// incomplete-inventory and mass-deregistration rules).
    pub(super) fn is_full_sync(self) -> bool {
        self.function.is_none()
    }

    /// Whether the plan may touch the service `key`, wanted by `desired_by` (if
    /// any) and owned by `owner`: the services the function wants, those whose entry
    /// names it, and those without a readable owner named after it (`NAME`, `NAME-…`).
    pub(super) fn covers(self, key: &Key<'_>, desired_by: Option<&str>, owner: &Owner<'_>) -> bool {
        let Some(f) = self.function else { return true };
        desired_by == Some(f)
            || matches!(owner, Owner::Ours(o) if *o == f)
            || (matches!(owner, Owner::Unknown)
                && (key.name == f || key.name.strip_prefix(f).is_some_and(|r| r.starts_with('-'))))
    }
}

/// Why a single-function trigger must be ignored, if it must: its ARN names a
/// function of another account or region, is not an ARN, or names another function.
fn trigger_problem(ctx: &Ctx<'_>, arn: &str, name: &str) -> Option<Diagnostic> {
    if let Some(foreign) = ctx.foreign(arn, "trigger.arn") {
        return Some(foreign);
    }
    match resolve_function_name(arn, ctx.account, ctx.region) {
        Ok(a) if a.name == name => None,
        Ok(_) => Some(
            Diagnostic::new(
                Code::InvalidInput,
                "the trigger's name is not the name in its ARN",
                "pass the trigger that classifyEvent returns",
            )
            .key("trigger.name")
            .value(name),
        ),
        Err(d) => Some(d.key("trigger.arn")),
    }
}
