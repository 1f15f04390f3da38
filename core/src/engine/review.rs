//! Reviewed plans and pruning.
//!
//! A dry run's result carries the plan's [`PlanBasis`]: every Consul object an
//! operation touches with the `ModifyIndex` observed (or its absence), and the
//! tags of every function an operation concerns. `sync --plan FILE` starts the
//! engine with that [`ReviewedPlan`]: the engine observes again, and applies
//! exactly the reviewed operations — with check-and-set at the reviewed
//! indexes — only if nothing they touch moved; otherwise it refuses, naming what
//! moved. Unrelated Consul writes (the global index always moves) do not matter.
//!
//! Pruning plans the removal of everything the registrator manages, under the
//! ownership rules of a sync: every function is taken as gone.

use super::execute::CasIndex;
use super::Engine;
use crate::arn::split_function_arn;
use crate::consul::{EntryView, Request, ServiceKey};
use crate::plan::{Operation, OperationKind, Plan};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// What kind of Consul object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase")]
pub enum ObjectKind {
    /// A `service-defaults` config entry.
    ServiceDefaults,
    /// A service instance on the registrator's node.
    CatalogService,
}

/// A Consul object a plan touches, as it was observed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedObject {
    /// The kind.
    pub kind: ObjectKind,
    /// Where it lives; `name` is the entry name or the service ID.
    pub service: ServiceKey,
    /// Whether it existed.
    pub present: bool,
    /// Its `ModifyIndex`, when it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub modify_index: Option<u64>,
}

/// A function a plan concerns, as it was observed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ObservedFunction {
    /// Its unqualified ARN.
    pub arn: String,
    /// Its tags; `None`: it was not listed.
    #[serde(default)]
    pub tags: Option<BTreeMap<String, String>>,
}

/// What a plan was computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlanBasis {
    /// Every object an operation touches.
    pub objects: Vec<ObservedObject>,
    /// Every function an operation concerns.
    pub functions: Vec<ObservedFunction>,
}

/// A plan reviewed by a person, to be applied exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ReviewedPlan {
    /// The plan.
    pub plan: Plan,
    /// What it was computed from.
    pub basis: PlanBasis,
}

fn touched(op: &Operation) -> Option<(ObjectKind, String)> {
    match (op.kind, &op.request) {
        (OperationKind::UpsertConfigEntry | OperationKind::DeleteConfigEntry, _) => {
            Some((ObjectKind::ServiceDefaults, op.service.name.clone()))
        }
        (OperationKind::RegisterService, _) => {
            Some((ObjectKind::CatalogService, op.service.name.clone()))
        }
        (OperationKind::DeregisterService, Request::Consul(r)) => r
            .body
            .as_ref()
            .and_then(|b| b.get("ServiceID"))
            .and_then(|v| v.as_str())
            .map(|id| (ObjectKind::CatalogService, id.to_owned())),
        _ => None,
    }
}

fn unqualified(arn: &str) -> Option<String> {
    split_function_arn(arn)
        .ok()
        .map(|a| a.to_arn().unqualified().to_string())
}

impl Engine {
    /// The basis of `plan` in the current observation.
    pub(super) fn basis(&self, plan: &Plan) -> PlanBasis {
        let index = CasIndex::new(&self.obs.scopes, &self.local_datacenter());
        let mut objects = BTreeSet::new();
        let mut arns = BTreeSet::new();
        for op in &plan.operations {
            if let Some((kind, name)) = touched(op) {
                let key = index.key_of(&op.service, &name);
                let seen = match kind {
                    ObjectKind::ServiceDefaults => index.entries.get(&key),
                    ObjectKind::CatalogService => index.services.get(&key),
                };
                objects.insert(ObservedObject {
                    kind,
                    service: ServiceKey {
                        name,
                        ..op.service.clone()
                    },
                    present: seen.is_some(),
                    modify_index: seen.copied().flatten(),
                });
            }
            if let Some(arn) = op.function.as_deref().and_then(unqualified) {
                arns.insert(arn);
            }
        }
        let tags: BTreeMap<&str, &BTreeMap<String, String>> = self
            .obs
            .functions()
            .iter()
            .map(|f| (f.arn.as_str(), &f.tags))
            .collect();
        PlanBasis {
            objects: objects.into_iter().collect(),
            functions: arns
                .into_iter()
                .map(|arn| ObservedFunction {
                    tags: tags.get(arn.as_str()).map(|t| (*t).clone()),
                    arn,
                })
                .collect(),
        }
    }

    /// What moved since the plan was reviewed (empty: nothing).
    pub(super) fn moved(&self, reviewed: &ReviewedPlan) -> Vec<String> {
        let now = self.basis(&reviewed.plan);
        let mut moved = Vec::new();
        let current: BTreeMap<(ObjectKind, &ServiceKey), &ObservedObject> = now
            .objects
            .iter()
            .map(|o| ((o.kind, &o.service), o))
            .collect();
        for was in &reviewed.basis.objects {
            let is = current.get(&(was.kind, &was.service));
            let same =
                is.is_some_and(|o| o.present == was.present && o.modify_index == was.modify_index);
            if !same {
                let what = match was.kind {
                    ObjectKind::ServiceDefaults => "service-defaults entry",
                    ObjectKind::CatalogService => "catalog service",
                };
                let describe = |o: Option<&ObservedObject>| match o {
                    Some(o) if o.present => format!(
                        "ModifyIndex {}",
                        o.modify_index.map_or("?".into(), |i| i.to_string())
                    ),
                    _ => "absent".to_owned(),
                };
                moved.push(format!(
                    "{what} {} ({} then, {} now)",
                    was.service.name,
                    describe(Some(was)),
                    describe(is.copied())
                ));
            }
        }
        let functions: BTreeMap<&str, &ObservedFunction> =
            now.functions.iter().map(|f| (f.arn.as_str(), f)).collect();
        for was in &reviewed.basis.functions {
            if functions.get(was.arn.as_str()).map(|f| &f.tags) != Some(&was.tags) {
                moved.push(format!(
                    "function {} (its tags changed, or it appeared or went)",
                    was.arn
                ));
            }
        }
        moved
    }

    /// The unqualified ARNs of this account and region named by the observed
    /// service-defaults entries (pruning takes them all as gone).
    pub(super) fn owned_arns(&self) -> Vec<String> {
        let account = self.account.as_deref().unwrap_or_default();
        let mut out = BTreeSet::new();
        for scope in &self.obs.scopes {
            for e in scope.service_defaults.iter().flatten() {
                if let EntryView::Lambda(l) = e.view() {
                    if let Some(a) = l.arn.as_deref().and_then(|a| split_function_arn(a).ok()) {
                        if a.is_in(account, &self.region) {
                            out.insert(a.to_arn().unqualified().to_string());
                        }
                    }
                }
            }
        }
        out.into_iter().collect()
    }
}
