//! Who owns a managed service, judged from its service-defaults entry
//! (docs/contract.md §5.3).

use super::context::Ctx;
use super::observed::View;
use crate::arn::split_function_arn;

/// Who a managed service belongs to, judged from its service-defaults entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Owner<'a> {
    /// A function of our account and region, by name.
    Ours(&'a str),
    /// A function of another account or region (its unqualified ARN).
    Elsewhere(String),
    /// Unknown: no entry, or an entry without a readable ARN.
    Unknown,
    /// The entry is not a Lambda entry.
    NotLambda,
}

impl Ctx<'_> {
    /// Who `entry` says owns its service: a function of ours only when the entry
    /// carries the Lambda extension with an ARN of our account and region.
    pub(super) fn owner<'e>(&self, entry: Option<&View<'e>>) -> Owner<'e> {
        match entry {
            None => Owner::Unknown,
            Some(View::Foreign) => Owner::NotLambda,
            Some(View::Lambda(l)) => match l.arn.map(split_function_arn) {
                Some(Ok(a)) if a.is_in(self.account, self.region) => Owner::Ours(a.name),
                Some(Ok(a)) => Owner::Elsewhere(a.to_arn().unqualified().to_string()),
                _ => Owner::Unknown,
            },
        }
    }
}
