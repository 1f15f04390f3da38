//! The plan JSON, written by hand from the rows: the same text as serialising
//! the owned [`Plan`](super::Plan) with serde (`tests/plan_written.rs` checks it
//! for every plan vector), without building it.

use super::draft::Draft;
use super::key::Key;
use super::rows::{Reason, Row, Step};
use crate::json::JsonOut;

impl Key<'_> {
    /// Writes the key as [`ServiceKey`] serialises.
    fn write(&self, out: &mut JsonOut) {
        out.raw("{");
        let members = [
            ("\"datacenter\":", self.datacenter),
            ("\"partition\":", self.partition),
            ("\"namespace\":", self.namespace),
        ];
        if write_present(out, "", ",", &members) {
            out.raw(",");
        }
        out.raw("\"name\":");
        out.string(self.name);
        out.raw("}");
    }
}

/// Writes the members whose value is present: each its `"name":` and the value as
/// a JSON string, after `first` (the first one) or `sep` (the others). Returns
/// whether any was written.
#[inline]
fn write_present(
    out: &mut JsonOut,
    first: &str,
    sep: &str,
    members: &[(&str, Option<&str>)],
) -> bool {
    let mut written = false;
    for &(field, value) in members {
        if let Some(value) = value {
            out.raw(if written { sep } else { first });
            out.raw(field);
            out.string(value);
            written = true;
        }
    }
    written
}

impl Reason<'_> {
    /// Writes the reason as a JSON string.
    fn write(&self, out: &mut JsonOut) {
        let (before, part, after) = self.parts();
        out.raw("\"");
        out.raw(before);
        out.string_content(part);
        out.raw(after);
        out.raw("\"");
    }
}

impl Step<'_> {
    /// About how long the step's operation is without its names and reason.
    fn base_len(self) -> usize {
        match self {
            Step::Entry(e) => 160 + e.arn.len(),
            Step::Register => 90,
            Step::Deregister(id, _) => 120 + id.len(),
            Step::DeleteEntry(_) => 100,
            Step::Put(p) => 160 + p.name.len() + p.serial.len() + p.key_id.map_or(0, str::len),
            Step::DeleteParameter(name) => 120 + name.len(),
        }
    }
}

impl Row<'_> {
    /// About how long the row's operations and its service entry are, when nothing
    /// needs escaping.
    fn estimate(&self) -> usize {
        let key = self.key.name.len()
            + [self.key.datacenter, self.key.partition, self.key.namespace]
                .iter()
                .flatten()
                .map(|v| 2 * v.len() + 25)
                .sum::<usize>();
        let text = key + self.function.as_deref().map_or(0, str::len) + self.reason.len();
        let per_step = key + text + self.confirm.as_deref().map_or(0, str::len);
        let steps: usize = self.steps().map(|s| s.base_len() + per_step).sum();
        steps + 65 + text
    }

    /// Writes one of the row's operations as [`Operation`](super::Operation) serialises.
    fn write_operation(&self, out: &mut JsonOut, step: Step<'_>) {
        out.raw("{\"kind\":\"");
        out.raw(step.kind().as_str());
        out.raw("\",\"service\":");
        self.key.write(out);
        out.raw(",\"change\":\"");
        out.raw(self.change.as_str());
        out.raw("\",\"reason\":");
        self.reason.write(out);
        let members = [
            ("\"function\":", self.function.as_deref()),
            ("\"confirmAbsent\":", self.confirm.as_deref()),
        ];
        write_present(out, ",", ",", &members);
        if let Some(index) = step.index() {
            out.raw(",\"index\":");
            out.raw(&index.to_string());
        }
        match step {
            Step::Entry(e) => {
                out.raw(",\"entry\":{\"arn\":");
                out.string(e.arn);
                out.raw(",\"invocationMode\":\"");
                out.raw(e.mode.extension_value());
                out.raw(if e.payload_passthrough {
                    "\",\"payloadPassthrough\":true}"
                } else {
                    "\",\"payloadPassthrough\":false}"
                });
            }
            Step::Deregister(id, _) => {
                out.raw(",\"serviceId\":");
                out.string(id);
            }
            Step::Put(put) => {
                out.raw(",\"parameter\":");
                out.string(&put.name);
                if let Some(tier) = put.tier {
                    out.raw(",\"tier\":");
                    out.string(tier.as_str());
                }
                if let Some(key_id) = put.key_id {
                    out.raw(",\"keyId\":");
                    out.string(key_id);
                }
                out.raw(",\"leafSerial\":");
                out.string(put.serial);
            }
            Step::DeleteParameter(name) => {
                out.raw(",\"parameter\":");
                out.string(name);
            }
            Step::Register | Step::DeleteEntry(_) => {}
        }
        out.raw("}");
    }

    /// Writes the row as [`ServiceChange`](super::ServiceChange) serialises.
    fn write_service(&self, out: &mut JsonOut) {
        out.raw("{\"service\":");
        self.key.write(out);
        out.raw(",\"change\":\"");
        out.raw(self.change.as_str());
        out.raw("\"");
        write_present(
            out,
            ",",
            ",",
            &[("\"function\":", self.function.as_deref())],
        );
        out.raw(",\"reason\":");
        self.reason.write(out);
        out.raw("}");
    }
}

impl Draft<'_> {
    /// Writes the plan JSON: the same text as `serde_json::to_string(&self.to_plan())`.
    pub(super) fn write_json(&self) -> serde_json::Result<String> {
        // The length of the text when nothing needs escaping (about; the text
        // grows a little if this falls short).
        let estimate: usize = self.rows.rows.iter().map(Row::estimate).sum();
        let mut out = JsonOut::with_capacity(estimate);
        out.raw("{\"operations\":[");
        let mut sep = "";
        for op in self.rest.operations.iter().filter(|op| op.runs_first()) {
            out.raw(sep);
            sep = ",";
            out.value(op)?;
        }
        for row in self.rows.ordered() {
            for step in row.steps() {
                out.raw(sep);
                sep = ",";
                row.write_operation(&mut out, step);
            }
        }
        for op in self.rest.operations.iter().filter(|op| !op.runs_first()) {
            out.raw(sep);
            sep = ",";
            out.value(op)?;
        }
        out.raw("],\"services\":[");
        let mut sep = "";
        for row in self.rows.ordered() {
            out.raw(sep);
            sep = ",";
            row.write_service(&mut out);
        }
        let p = &self.rest;
        out.raw("],\"errors\":");
        out.value(&p.errors)?;
        out.raw(",\"warnings\":");
        out.value(&p.warnings)?;
        out.raw(",\"skips\":");
        out.value(&p.skips)?;
        out.raw(",\"ignored\":");
        out.value(&p.ignored)?;
        out.raw(",\"confirmations\":");
        out.value(&p.confirmations)?;
        out.raw(",\"summary\":");
        out.value(&p.summary)?;
        if !p.mesh.is_empty() {
            out.raw(",\"mesh\":");
            out.value(&p.mesh)?;
        }
        out.raw("}");
        Ok(out.finish())
    }
}
