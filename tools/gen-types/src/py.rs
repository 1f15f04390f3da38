//! Python TypedDicts and Literals (`consul_lambda_sync/_types.py`).
//!
//! Written for Python 3.9 and `typing.get_type_hints`: `Optional` and `Union`
//! rather than `X | Y`, optional keys in a `total=False` subclass of a class
//! of the required keys, and every alias after the types it names.

use crate::schema::{Body, Decl, Field, Object, Ty};
use crate::text::{is_identifier, wrap};
use std::collections::BTreeSet;

const WIDTH: usize = 100;

const KEYWORDS: &[&str] = &[
    "False", "None", "True", "and", "as", "assert", "async", "await", "break", "class", "continue",
    "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import",
    "in", "is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while",
    "with", "yield",
];

struct Py {
    out: String,
    /// The `typing` names used.
    typing: BTreeSet<&'static str>,
    /// Declared names that some field is also called; the field's annotation
    /// names the type through `_<Name>` (in a class body the field would hide it).
    shadowed: BTreeSet<String>,
}

fn lit(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

impl Py {
    /// `t` in Python; `fields` are the names of the class's fields, which hide
    /// module-level names in its body.
    fn ty(&mut self, t: &Ty, fields: &BTreeSet<&str>) -> String {
        match t {
            Ty::Any => {
                self.typing.insert("Any");
                "Any".into()
            }
            Ty::Null => "None".into(),
            Ty::Bool => "bool".into(),
            Ty::Int => "int".into(),
            Ty::Num => "float".into(),
            Ty::Str => "str".into(),
            Ty::Lit(s) => {
                self.typing.insert("Literal");
                format!("Literal[{}]", lit(s))
            }
            Ty::Array(inner) => format!("list[{}]", self.ty(inner, fields)),
            Ty::Map(inner) => format!("dict[str, {}]", self.ty(inner, fields)),
            Ty::Ref(name, _) => {
                if fields.contains(name.as_str()) {
                    self.shadowed.insert(name.clone());
                    format!("_{name}")
                } else {
                    name.clone()
                }
            }
            Ty::Union(items) => {
                let nullable = items.contains(&Ty::Null);
                let rest: Vec<&Ty> = items.iter().filter(|t| **t != Ty::Null).collect();
                let inner = if rest.iter().all(|t| matches!(t, Ty::Lit(_))) && !rest.is_empty() {
                    self.typing.insert("Literal");
                    let values: Vec<String> = rest
                        .iter()
                        .filter_map(|t| match t {
                            Ty::Lit(s) => Some(lit(s)),
                            _ => None,
                        })
                        .collect();
                    format!("Literal[{}]", values.join(", "))
                } else if let [one] = rest.as_slice() {
                    self.ty(one, fields)
                } else {
                    self.typing.insert("Union");
                    let parts: Vec<String> = rest.iter().map(|t| self.ty(t, fields)).collect();
                    format!("Union[{}]", parts.join(", "))
                };
                if nullable {
                    self.typing.insert("Optional");
                    format!("Optional[{inner}]")
                } else {
                    inner
                }
            }
        }
    }

    fn comment(&mut self, text: &str, indent: &str) {
        for line in wrap(text, WIDTH - indent.len() - 2) {
            let line = format!("{indent}# {line}");
            self.out.push_str(line.trim_end());
            self.out.push('\n');
        }
    }

    fn docstring(&mut self, text: &str, indent: &str) {
        if text.is_empty() {
            return;
        }
        let text = text.replace('\\', "\\\\").replace("\"\"\"", "\\\"\\\"\\\"");
        let one = format!("{indent}\"\"\"{text}\"\"\"");
        if !text.contains('\n') && one.chars().count() <= WIDTH {
            self.out.push_str(&one);
            self.out.push('\n');
            return;
        }
        let lines = wrap(&text, WIDTH - indent.len() - 3);
        for (i, line) in lines.iter().enumerate() {
            let quote = if i == 0 { "\"\"\"" } else { "" };
            let line = format!("{}{quote}{line}", if line.is_empty() { "" } else { indent });
            self.out.push_str(&line);
            self.out.push('\n');
        }
        self.out.push_str(&format!("{indent}\"\"\"\n"));
    }

    fn fields(&mut self, fields: &[&Field], names: &BTreeSet<&str>) -> Result<(), String> {
        for f in fields {
            if !is_identifier(&f.name) || KEYWORDS.contains(&f.name.as_str()) {
                return Err(format!(
                    "the key `{}` cannot be a TypedDict class field; teach gen-types the functional syntax",
                    f.name
                ));
            }
            self.comment(&f.doc, "    ");
            let t = self.ty(&f.ty, names);
            self.out.push_str(&format!("    {}: {t}\n", f.name));
        }
        Ok(())
    }

    fn class(
        &mut self,
        name: &str,
        text: &str,
        o: &Object,
        tag: Option<&str>,
    ) -> Result<(), String> {
        self.typing.insert("TypedDict");
        let mut required: Vec<&Field> = o.fields.iter().filter(|f| !f.optional).collect();
        required.sort_by_key(|f| Some(f.name.as_str()) != tag);
        let optional: Vec<&Field> = o.fields.iter().filter(|f| f.optional).collect();
        let names: BTreeSet<&str> = o.fields.iter().map(|f| f.name.as_str()).collect();
        let mut text = text.to_owned();
        if o.open {
            text.push_str(if text.is_empty() { "" } else { "\n\n" });
            text.push_str("Other keys are accepted and ignored.");
        }
        if optional.is_empty() || required.is_empty() {
            let total = if required.is_empty() && !optional.is_empty() {
                ", total=False"
            } else {
                ""
            };
            self.out
                .push_str(&format!("\n\nclass {name}(TypedDict{total}):\n"));
            self.docstring(&text, "    ");
            if !text.is_empty() && !o.fields.is_empty() {
                self.out.push('\n');
            }
            let listed = if optional.is_empty() {
                required
            } else {
                optional
            };
            self.fields(&listed, &names)?;
            if text.is_empty() && o.fields.is_empty() {
                self.out.push_str("    pass\n");
            }
            return Ok(());
        }
        self.out
            .push_str(&format!("\n\nclass _{name}Required(TypedDict):\n"));
        self.fields(&required, &names)?;
        let line = format!("class {name}(_{name}Required, total=False):");
        if line.len() <= WIDTH {
            self.out.push_str(&format!("\n\n{line}\n"));
        } else {
            // As `ruff format` breaks a class line that is too long.
            self.out.push_str(&format!(
                "\n\nclass {name}(\n    _{name}Required, total=False\n):\n"
            ));
        }
        self.docstring(&text, "    ");
        if !text.is_empty() {
            self.out.push('\n');
        }
        self.fields(&optional, &names)
    }

    fn alias(&mut self, name: &str, text: &str, t: &Ty) {
        let value = self.ty(t, &BTreeSet::new());
        self.out.push_str("\n\n");
        self.comment(text, "");
        let one = format!("{name} = {value}");
        if one.chars().count() <= WIDTH {
            self.out.push_str(&one);
            self.out.push('\n');
            return;
        }
        // One member per line: `Literal[` or `Union[` ... `]`.
        let Some((head, members)) = value.split_once('[') else {
            self.out.push_str(&one);
            self.out.push('\n');
            return;
        };
        let members = members.strip_suffix(']').unwrap_or(members);
        self.out.push_str(&format!("{name} = {head}[\n"));
        for m in split_top(members) {
            self.out.push_str(&format!("    {m},\n"));
        }
        self.out.push_str("]\n");
    }
}

/// `a, b[c, d], e` → `a`, `b[c, d]`, `e`.
fn split_top(s: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let (mut depth, mut cur, mut quoted) = (0i32, String::new(), false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            '[' if !quoted => depth += 1,
            ']' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                parts.push(cur.trim().to_owned());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    if !cur.trim().is_empty() {
        parts.push(cur.trim().to_owned());
    }
    parts
}

/// The whole file: `docstring` (the module's), then the declarations.
pub fn render(
    docstring: &str,
    header: &[String],
    decls: &[Decl],
    extra: &[(String, String, Ty)],
) -> Result<String, String> {
    let mut py = Py {
        out: String::new(),
        typing: BTreeSet::new(),
        shadowed: BTreeSet::new(),
    };
    // Twice: the first pass finds the shadowed names, whose aliases the second
    // writes right after their types.
    for pass in 0..2 {
        py.out.clear();
        for d in decls {
            match &d.body {
                Body::Object(o) => py.class(&d.name, &d.doc, o, None)?,
                Body::Alias(t) => py.alias(&d.name, &d.doc, t),
                Body::Tagged { tag, variants } => {
                    for (name, text, o) in variants {
                        py.class(name, text, o, Some(tag))?;
                    }
                    let names = variants
                        .iter()
                        .map(|(n, _, _)| Ty::Ref(n.clone(), n.clone()))
                        .collect();
                    let text = format!("{} Tell the kinds apart by `{tag}`.", d.doc);
                    py.alias(&d.name, text.trim(), &Ty::Union(names));
                }
            }
            if pass == 1 && py.shadowed.contains(&d.name) {
                py.out.push_str(&format!("\n\n_{0} = {0}\n", d.name));
            }
        }
        for (name, text, t) in extra {
            py.alias(name, text, t);
        }
    }
    let mut out = String::new();
    out.push_str(&format!("\"\"\"{}\n\"\"\"\n\n", docstring.trim_end()));
    for line in header {
        out.push_str(format!("# {line}").trim_end());
        out.push('\n');
    }
    out.push_str("\nfrom __future__ import annotations\n\n");
    let typing: Vec<&str> = py.typing.iter().copied().collect();
    out.push_str(&format!("from typing import {}\n", typing.join(", ")));
    // As isort wants it: two blank lines before a class, one before anything else.
    let body = py.out.trim_start_matches('\n');
    out.push_str(if body.starts_with("class ") {
        "\n\n"
    } else {
        "\n"
    });
    out.push_str(body);
    Ok(out)
}
