//! TypeScript declarations (`bindings/node/types.d.ts`).

use crate::schema::{Body, Decl, Field, Object, Ty};
use crate::text::{is_identifier, wrap};

const WIDTH: usize = 100;

fn lit(s: &str) -> String {
    format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn ty(t: &Ty) -> String {
    match t {
        Ty::Any => "unknown".into(),
        Ty::Null => "null".into(),
        Ty::Bool => "boolean".into(),
        Ty::Int | Ty::Num => "number".into(),
        Ty::Str => "string".into(),
        Ty::Lit(s) => lit(s),
        Ty::Array(inner) => match **inner {
            Ty::Union(_) => format!("({})[]", ty(inner)),
            _ => format!("{}[]", ty(inner)),
        },
        Ty::Map(inner) => format!("Record<string, {}>", ty(inner)),
        Ty::Ref(name, _) => name.clone(),
        Ty::Union(items) => items.iter().map(ty).collect::<Vec<_>>().join(" | "),
    }
}

fn doc(out: &mut String, text: &str, indent: &str) {
    if text.is_empty() {
        return;
    }
    let text = text.replace("*/", "*\\/");
    let one = format!("{indent}/** {text} */");
    if !text.contains('\n') && one.chars().count() <= WIDTH {
        out.push_str(&one);
        out.push('\n');
        return;
    }
    out.push_str(indent);
    out.push_str("/**\n");
    for line in wrap(&text, WIDTH - indent.len() - 3) {
        if line.is_empty() {
            out.push_str(&format!("{indent} *\n"));
        } else {
            out.push_str(&format!("{indent} * {line}\n"));
        }
    }
    out.push_str(indent);
    out.push_str(" */\n");
}

fn key(name: &str) -> String {
    if is_identifier(name) {
        name.to_owned()
    } else {
        lit(name)
    }
}

fn field(out: &mut String, f: &Field) {
    doc(out, &f.doc, "  ");
    let q = if f.optional { "?" } else { "" };
    out.push_str(&format!("  {}{q}: {};\n", key(&f.name), ty(&f.ty)));
}

fn interface(out: &mut String, name: &str, text: &str, o: &Object, tag: Option<&str>) {
    doc(out, text, "");
    out.push_str(&format!("export interface {name} {{\n"));
    let (first, rest): (Vec<&Field>, Vec<&Field>) =
        o.fields.iter().partition(|f| Some(f.name.as_str()) == tag);
    for f in first.into_iter().chain(rest) {
        field(out, f);
    }
    if o.open {
        out.push_str("  /** Other keys are accepted and ignored. */\n");
        out.push_str("  [key: string]: unknown;\n");
    }
    out.push_str("}\n");
}

fn alias(out: &mut String, name: &str, text: &str, t: &Ty) {
    doc(out, text, "");
    let one = format!("export type {name} = {};", ty(t));
    match t {
        Ty::Union(items) if one.chars().count() > WIDTH => {
            out.push_str(&format!("export type {name} =\n"));
            let last = items.len().saturating_sub(1);
            for (i, item) in items.iter().enumerate() {
                let end = if i == last { ";" } else { "" };
                out.push_str(&format!("  | {}{end}\n", ty(item)));
            }
        }
        _ => {
            out.push_str(&one);
            out.push('\n');
        }
    }
}

/// The whole file.
pub fn render(header: &[String], decls: &[Decl], extra: &[(String, String, Ty)]) -> String {
    let mut out = String::new();
    for line in header {
        out.push_str(format!("// {line}").trim_end());
        out.push('\n');
    }
    for d in decls {
        out.push('\n');
        match &d.body {
            Body::Object(o) => interface(&mut out, &d.name, &d.doc, o, None),
            Body::Alias(t) => alias(&mut out, &d.name, &d.doc, t),
            Body::Tagged { tag, variants } => {
                for (name, text, o) in variants {
                    interface(&mut out, name, text, o, Some(tag));
                    out.push('\n');
                }
                let names = variants
                    .iter()
                    .map(|(n, _, _)| Ty::Ref(n.clone(), n.clone()))
                    .collect();
                let text = format!("{} Tell the kinds apart by `{tag}`.", d.doc);
                alias(&mut out, &d.name, text.trim(), &Ty::Union(names));
            }
        }
    }
    for (name, text, t) in extra {
        out.push('\n');
        alias(&mut out, name, text, t);
    }
    out
}
