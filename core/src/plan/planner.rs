//! What deciding a service's row reads, once conflicts are settled: the planner
//! that `wanted.rs`, `unwanted.rs` and `safety.rs` implement, and `draft.rs` drives.

use super::context::Ctx;
use super::extension::ExtensionPlanner;
use super::functions::Roster;
use super::trigger::Reach;

/// What deciding a service's row reads, once conflicts are settled.
pub(super) struct Planner<'p, 'a> {
    pub(super) ctx: &'a Ctx<'a>,
    pub(super) roster: &'p Roster<'a>,
    pub(super) reach: Reach<'a>,
    /// Whether the Lambda inventory is complete.
    pub(super) complete: bool,
    pub(super) ext: &'p ExtensionPlanner<'a>,
}
