//! The plan JSON, written by hand from the rows: the same text as serialising
//! the owned [`Plan`](super::Plan) with serde (`tests/plan_written.rs` checks it
//! for every plan vector), without building it.

use super::draft::{runs_first, Draft};
use super::key::Key;
use super::rows::{Reason, Row, Step};
use crate::consul::{path_segment, write_deregister_body, write_entry_body, write_register_body};
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

    /// Writes the `query` member of a request, if any (as [`ServiceKey::query`]'s
    /// sorted map serialises: `dc`, `ns`, `partition`).
    fn write_query(&self, out: &mut JsonOut) {
        let members = [
            ("\"dc\":", self.datacenter),
            ("\"ns\":", self.namespace),
            ("\"partition\":", self.partition),
        ];
        if write_present(out, ",\"query\":{", ",", &members) {
            out.raw("}");
        }
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
            Step::Entry(..) => 350,
            Step::Register => 285,
            Step::Deregister(id) => 210 + id.len(),
            Step::DeleteEntry => 185,
            Step::Put(p) => 160 + p.name.len() + p.serial.len() + p.key_id.map_or(0, str::len),
            Step::DeleteParameter(name) => 150 + name.len(),
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
        let per_step = 2 * key + text + self.confirm.as_deref().map_or(0, str::len);
        let steps: usize = self.steps().map(|s| s.base_len() + per_step).sum();
        steps + 65 + text
    }

    /// Writes one of the row's operations as [`Operation`](super::Operation) serialises.
    fn write_operation(&self, out: &mut JsonOut, step: Step<'_>, node: &str) {
        out.raw("{\"kind\":\"");
        out.raw(step.kind().as_str());
        out.raw("\",\"service\":");
        self.key.write(out);
        out.raw(",\"change\":\"");
        out.raw(self.change.as_str());
        out.raw("\",\"reason\":");
        self.reason.write(out);
        let leaf_serial = match step {
            Step::Put(p) => Some(p.serial),
            _ => None,
        };
        let members = [
            ("\"function\":", self.function.as_deref()),
            ("\"confirmAbsent\":", self.confirm.as_deref()),
            ("\"leafSerial\":", leaf_serial),
        ];
        write_present(out, ",", ",", &members);
        out.raw(",\"request\":");
        self.write_request(out, step, node);
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

    /// Writes a step's request as [`Row::owned_request`]'s serialises.
    fn write_request(&self, out: &mut JsonOut, step: Step<'_>, node: &str) {
        let key = &self.key;
        let consul = |out: &mut JsonOut, method_path: &str| {
            out.raw("{\"target\":\"consul\",\"method\":\"");
            out.raw(method_path);
        };
        match step {
            Step::Entry(arn, mode, pass) => {
                consul(out, "PUT\",\"path\":\"/v1/config\"");
                key.write_query(out);
                out.raw(",\"body\":");
                write_entry_body(out, key.name, arn, mode, pass);
            }
            Step::Register => {
                consul(out, "PUT\",\"path\":\"/v1/catalog/register\"");
                key.write_query(out);
                out.raw(",\"body\":");
                write_register_body(out, key.name, node);
            }
            Step::Deregister(service_id) => {
                consul(out, "PUT\",\"path\":\"/v1/catalog/deregister\"");
                key.write_query(out);
                out.raw(",\"body\":");
                write_deregister_body(out, node, service_id);
            }
            Step::DeleteEntry => {
                consul(out, "DELETE\",\"path\":\"/v1/config/service-defaults/");
                out.string_content(&path_segment(key.name));
                out.raw("\"");
                key.write_query(out);
            }
            Step::Put(put) => {
                out.raw("{\"target\":\"ssm\",\"action\":\"PutParameter\",\"name\":");
                out.string(&put.name);
                if let Some(tier) = put.tier {
                    out.raw(",\"tier\":");
                    out.string(tier.as_str());
                }
                if let Some(key_id) = put.key_id {
                    out.raw(",\"keyId\":");
                    out.string(key_id);
                }
            }
            Step::DeleteParameter(name) => {
                out.raw("{\"target\":\"ssm\",\"action\":\"DeleteParameter\",\"name\":");
                out.string(name);
            }
        }
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
        for op in self.rest.operations.iter().filter(|op| runs_first(op)) {
            out.raw(sep);
            sep = ",";
            out.value(op)?;
        }
        for row in self.rows.ordered() {
            for step in row.steps() {
                out.raw(sep);
                sep = ",";
                row.write_operation(&mut out, step, self.node);
            }
        }
        for op in self.rest.operations.iter().filter(|op| !runs_first(op)) {
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
