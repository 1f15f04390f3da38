//! From the JSON Schemas schemars writes for the registered root types to a small
//! model of declarations, with the input and output shapes of each type told
//! apart and named.

use consul_lambda_sync::schema::{register, Registry};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};

/// Whether a shape is written by the core (serialize) or read by it (deserialize).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dir {
    /// Written by the core.
    Output,
    /// Read by the core.
    Input,
}

/// A type expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    /// Any JSON value.
    Any,
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool,
    /// A whole number.
    Int,
    /// Any number.
    Num,
    /// A string.
    Str,
    /// One string.
    Lit(String),
    /// A list.
    Array(Box<Ty>),
    /// An object with string keys and values of one type.
    Map(Box<Ty>),
    /// A declared type: its declared name, and the name of its definition.
    Ref(String, String),
    /// One of several types.
    Union(Vec<Ty>),
}

impl Ty {
    fn union(mut items: Vec<Ty>) -> Ty {
        let mut flat = Vec::new();
        for t in items.drain(..) {
            match t {
                Ty::Union(inner) => flat.extend(inner),
                t if !flat.contains(&t) => flat.push(t),
                _ => {}
            }
        }
        if flat.len() == 1 {
            flat.pop().unwrap_or(Ty::Any)
        } else {
            Ty::Union(flat)
        }
    }

    /// The type without `null`.
    pub fn non_null(&self) -> Ty {
        match self {
            Ty::Union(items) => {
                Ty::union(items.iter().filter(|t| **t != Ty::Null).cloned().collect())
            }
            t => t.clone(),
        }
    }

    fn refs(&self, out: &mut Vec<String>) {
        match self {
            Ty::Array(t) | Ty::Map(t) => t.refs(out),
            Ty::Ref(_, def) => out.push(def.clone()),
            Ty::Union(items) => items.iter().for_each(|t| t.refs(out)),
            _ => {}
        }
    }
}

/// One key of an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The JSON key.
    pub name: String,
    /// Its type.
    pub ty: Ty,
    /// Whether the key may be absent.
    pub optional: bool,
    /// Its documentation.
    pub doc: String,
}

/// An object type.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    /// Its keys, in key order.
    pub fields: Vec<Field>,
    /// Whether keys other than `fields` are accepted (and ignored).
    pub open: bool,
}

/// What a declaration declares.
#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    /// An object type.
    Object(Object),
    /// A name for a type expression (string enums, untagged unions).
    Alias(Ty),
    /// An internally tagged union: each variant is an object type of its own,
    /// named `<Variant><Name>`, whose `tag` key holds the variant's name.
    Tagged {
        /// The key that tells the variants apart.
        tag: String,
        /// The variants: declared name, documentation, object.
        variants: Vec<(String, String, Object)>,
    },
}

/// One declared type.
#[derive(Debug, Clone, PartialEq)]
pub struct Decl {
    /// Its declared name.
    pub name: String,
    /// Its documentation.
    pub doc: String,
    /// What it is.
    pub body: Body,
}

struct Collect {
    output: SchemaGenerator,
    input: SchemaGenerator,
    roots: Vec<(Dir, Value)>,
}

impl Registry for Collect {
    fn output<T: JsonSchema>(&mut self) {
        let s = self.output.subschema_for::<T>();
        self.roots.push((Dir::Output, s.to_value()));
    }

    fn input<T: JsonSchema>(&mut self) {
        let s = self.input.subschema_for::<T>();
        self.roots.push((Dir::Input, s.to_value()));
    }
}

/// Keywords that carry no type information for the declarations.
const IGNORED: &[&str] = &[
    "description",
    "default",
    "format",
    "minimum",
    "maximum",
    "writeOnly",
    "readOnly",
    "title",
    "examples",
    "deprecated",
    "$schema",
];

type Defs = Map<String, Value>;

struct Model {
    defs: BTreeMap<Dir, Defs>,
    /// Definitions whose input shape equals their output shape (memo).
    same: BTreeMap<String, bool>,
}

fn def_name(reference: &str) -> Result<&str, String> {
    reference
        .strip_prefix("#/$defs/")
        .ok_or_else(|| format!("unsupported $ref {reference}"))
}

/// The documentation of a schema: Rust doc text with intra-doc links unwrapped
/// and lines joined into paragraphs.
fn doc_of(schema: &Value) -> String {
    let text = schema
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .replace("[`", "`")
        .replace("`]", "`");
    text.split("\n\n")
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}

fn check_keywords(obj: &Map<String, Value>, allowed: &[&str], at: &str) -> Result<(), String> {
    for k in obj.keys() {
        if !allowed.contains(&k.as_str()) && !IGNORED.contains(&k.as_str()) {
            return Err(format!(
                "{at}: JSON Schema keyword `{k}` is not supported by gen-types (schema: {})",
                Value::Object(obj.clone())
            ));
        }
    }
    Ok(())
}

impl Model {
    /// The name a definition is declared under in a direction.
    fn name(&mut self, def: &str, dir: Dir) -> Result<String, String> {
        let in_output = self
            .defs
            .get(&Dir::Output)
            .is_some_and(|d| d.contains_key(def));
        if dir == Dir::Input && in_output && !self.same_shape(def)? {
            Ok(format!("{def}Input"))
        } else {
            Ok(def.to_owned())
        }
    }

    fn schema(&self, def: &str, dir: Dir) -> Result<&Value, String> {
        self.defs
            .get(&dir)
            .and_then(|d| d.get(def))
            .ok_or_else(|| format!("no definition {def}"))
    }

    /// Whether a definition has the same shape, with every type it refers to, as
    /// input and as output.
    fn same_shape(&mut self, def: &str) -> Result<bool, String> {
        if let Some(same) = self.same.get(def) {
            return Ok(*same);
        }
        let both = self.defs.values().all(|d| d.contains_key(def));
        if !both {
            return Ok(true);
        }
        // Assumed while comparing, for recursive types.
        self.same.insert(def.to_owned(), true);
        let mut raw = self.raw_names();
        let out = raw.decl_raw(def, Dir::Output)?;
        let inp = raw.decl_raw(def, Dir::Input)?;
        let mut same = out.body == inp.body;
        if same {
            let mut refs = Vec::new();
            body_refs(&out.body, &mut refs);
            for r in refs {
                if !self.same_shape(&r)? {
                    same = false;
                    break;
                }
            }
        }
        self.same.insert(def.to_owned(), same);
        Ok(same)
    }

    /// A model that names every reference by its definition (for comparisons).
    fn raw_names(&self) -> RawNames<'_> {
        RawNames { defs: &self.defs }
    }

    fn decl(&mut self, def: &str, dir: Dir) -> Result<Decl, String> {
        let name = self.name(def, dir)?;
        let schema = self.schema(def, dir)?.clone();
        let mut namer = |m: &mut Model, d: &str| m.name(d, dir);
        let mut decl = build_decl(self, &mut namer, &name, &schema, dir)?;
        if name != def {
            decl.doc = format!("{} (As the core reads it.)", decl.doc)
                .trim()
                .to_owned();
        }
        Ok(decl)
    }
}

/// Builds declarations with references named after their definitions.
struct RawNames<'a> {
    defs: &'a BTreeMap<Dir, Defs>,
}

impl RawNames<'_> {
    fn decl_raw(&mut self, def: &str, dir: Dir) -> Result<Decl, String> {
        let schema = self
            .defs
            .get(&dir)
            .and_then(|d| d.get(def))
            .ok_or_else(|| format!("no definition {def}"))?
            .clone();
        let mut namer = |_: &mut RawNames<'_>, d: &str| Ok(d.to_owned());
        build_decl(self, &mut namer, def, &schema, dir)
    }
}

trait Defined {
    fn def_schema(&self, def: &str, dir: Dir) -> Result<Value, String>;
}

impl Defined for Model {
    fn def_schema(&self, def: &str, dir: Dir) -> Result<Value, String> {
        self.schema(def, dir).cloned()
    }
}

impl Defined for RawNames<'_> {
    fn def_schema(&self, def: &str, dir: Dir) -> Result<Value, String> {
        self.defs
            .get(&dir)
            .and_then(|d| d.get(def))
            .cloned()
            .ok_or_else(|| format!("no definition {def}"))
    }
}

type Namer<'n, M> = dyn FnMut(&mut M, &str) -> Result<String, String> + 'n;

fn build_decl<M: Defined>(
    m: &mut M,
    namer: &mut Namer<'_, M>,
    name: &str,
    schema: &Value,
    dir: Dir,
) -> Result<Decl, String> {
    let doc = doc_of(schema);
    let obj = schema
        .as_object()
        .ok_or_else(|| format!("{name}: schema is not an object"))?;
    let body = if let Some(tagged) = tagged(m, namer, name, obj, dir)? {
        tagged
    } else if is_object(obj) {
        Body::Object(object(m, namer, name, obj, dir)?)
    } else {
        Body::Alias(ty(m, namer, schema, name)?)
    };
    Ok(Decl {
        name: name.to_owned(),
        doc,
        body,
    })
}

fn is_object(obj: &Map<String, Value>) -> bool {
    obj.get("type").and_then(Value::as_str) == Some("object") && obj.contains_key("properties")
}

/// An internally tagged enum: `oneOf` objects that each hold a required `const` key.
fn tagged<M: Defined>(
    m: &mut M,
    namer: &mut Namer<'_, M>,
    name: &str,
    obj: &Map<String, Value>,
    dir: Dir,
) -> Result<Option<Body>, String> {
    let Some(variants) = obj.get("oneOf").and_then(Value::as_array) else {
        return Ok(None);
    };
    let tag_of = |v: &Value| -> Option<(String, String)> {
        let props = v.get("properties")?.as_object()?;
        props.iter().find_map(|(k, p)| {
            let value = p.get("const")?.as_str()?;
            let required = v.get("required")?.as_array()?.iter().any(|r| r == k);
            required.then(|| (k.clone(), value.to_owned()))
        })
    };
    let tags: Vec<Option<(String, String)>> = variants.iter().map(tag_of).collect();
    let Some(Some((tag, _))) = tags.first().cloned() else {
        return Ok(None);
    };
    if !tags
        .iter()
        .all(|t| t.as_ref().is_some_and(|(k, _)| *k == tag))
    {
        return Ok(None);
    }
    let mut out = Vec::new();
    for (variant, t) in variants.iter().zip(tags) {
        let value = t.map(|(_, v)| v).unwrap_or_default();
        let vobj = variant
            .as_object()
            .ok_or_else(|| format!("{name}: variant is not an object"))?;
        let mut merged = vobj.clone();
        // A newtype variant: the tag beside the fields of the wrapped struct.
        if let Some(r) = vobj.get("$ref").and_then(Value::as_str) {
            let inner = m.def_schema(def_name(r)?, dir)?;
            let inner = inner
                .as_object()
                .ok_or_else(|| format!("{name}: variant {value} wraps a non-object"))?;
            if !is_object(inner) {
                return Err(format!("{name}: variant {value} must wrap a struct"));
            }
            let mut props = inner
                .get("properties")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            props.extend(
                vobj.get("properties")
                    .and_then(Value::as_object)
                    .cloned()
                    .unwrap_or_default(),
            );
            let mut required: Vec<Value> = vobj
                .get("required")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            required.extend(
                inner
                    .get("required")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default(),
            );
            merged.remove("$ref");
            merged.insert("properties".into(), Value::Object(props));
            merged.insert("required".into(), Value::Array(required));
            if let Some(ap) = inner.get("additionalProperties") {
                merged.insert("additionalProperties".into(), ap.clone());
            }
        }
        let vname = format!("{}{name}", pascal(&value));
        let o = object(m, namer, &vname, &merged, dir)?;
        out.push((vname, doc_of(variant), o));
    }
    Ok(Some(Body::Tagged {
        tag: tag.clone(),
        variants: out,
    }))
}

fn pascal(s: &str) -> String {
    let mut out = String::new();
    let mut up = true;
    for c in s.chars() {
        if c == '_' || c == '-' {
            up = true;
        } else if up {
            out.extend(c.to_uppercase());
            up = false;
        } else {
            out.push(c);
        }
    }
    out
}

fn object<M: Defined>(
    m: &mut M,
    namer: &mut Namer<'_, M>,
    name: &str,
    obj: &Map<String, Value>,
    dir: Dir,
) -> Result<Object, String> {
    check_keywords(
        obj,
        &["type", "properties", "required", "additionalProperties"],
        name,
    )?;
    let open = match obj.get("additionalProperties") {
        None => dir == Dir::Input,
        Some(Value::Bool(false)) => false,
        Some(other) => {
            return Err(format!(
                "{name}: an object with both fields and additionalProperties {other} (flatten?) is not supported"
            ))
        }
    };
    let required: BTreeSet<&str> = obj
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let mut fields = Vec::new();
    for (key, schema) in obj
        .get("properties")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let at = format!("{name}.{key}");
        let mut t = ty(m, namer, schema, &at)?;
        let optional = !required.contains(key.as_str());
        // The core skips an absent value (`skip_serializing_if`) rather than
        // writing null: an optional output key never holds null.
        if optional && dir == Dir::Output {
            t = t.non_null();
        }
        fields.push(Field {
            name: key.clone(),
            ty: t,
            optional,
            doc: doc_of(schema),
        });
    }
    Ok(Object { fields, open })
}

fn ty<M: Defined>(
    m: &mut M,
    namer: &mut Namer<'_, M>,
    schema: &Value,
    at: &str,
) -> Result<Ty, String> {
    let obj = match schema {
        Value::Bool(true) => return Ok(Ty::Any),
        Value::Object(o) => o,
        other => return Err(format!("{at}: unsupported schema {other}")),
    };
    check_keywords(
        obj,
        &[
            "$ref",
            "type",
            "const",
            "enum",
            "items",
            "additionalProperties",
            "oneOf",
            "anyOf",
        ],
        at,
    )?;
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let def = def_name(r)?;
        return Ok(Ty::Ref(namer(m, def)?, def.to_owned()));
    }
    if let Some(c) = obj.get("const") {
        return lit(c, at);
    }
    if let Some(values) = obj.get("enum").and_then(Value::as_array) {
        return Ok(Ty::union(
            values
                .iter()
                .map(|v| lit(v, at))
                .collect::<Result<_, _>>()?,
        ));
    }
    if let Some(items) = obj
        .get("oneOf")
        .or_else(|| obj.get("anyOf"))
        .and_then(Value::as_array)
    {
        return Ok(Ty::union(
            items
                .iter()
                .map(|s| ty(m, namer, s, at))
                .collect::<Result<_, _>>()?,
        ));
    }
    let types: Vec<&str> = match obj.get("type") {
        None => return Ok(Ty::Any),
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        Some(other) => return Err(format!("{at}: unsupported type {other}")),
    };
    let mut out = Vec::new();
    for t in types {
        out.push(match t {
            "null" => Ty::Null,
            "boolean" => Ty::Bool,
            "integer" => Ty::Int,
            "number" => Ty::Num,
            "string" => Ty::Str,
            "array" => Ty::Array(Box::new(match obj.get("items") {
                Some(items) => ty(m, namer, items, at)?,
                None => Ty::Any,
            })),
            "object" => {
                if obj.contains_key("properties") {
                    return Err(format!(
                        "{at}: an inline struct is not supported; give it a name"
                    ));
                }
                Ty::Map(Box::new(match obj.get("additionalProperties") {
                    Some(s) => ty(m, namer, s, at)?,
                    None => Ty::Any,
                }))
            }
            other => return Err(format!("{at}: unsupported type {other}")),
        });
    }
    Ok(Ty::union(out))
}

fn lit(v: &Value, at: &str) -> Result<Ty, String> {
    match v {
        Value::String(s) => Ok(Ty::Lit(s.clone())),
        Value::Null => Ok(Ty::Null),
        other => Err(format!(
            "{at}: only string constants are supported, not {other}"
        )),
    }
}

fn body_refs(body: &Body, out: &mut Vec<String>) {
    let fields = |o: &Object, out: &mut Vec<String>| o.fields.iter().for_each(|f| f.ty.refs(out));
    match body {
        Body::Object(o) => fields(o, out),
        Body::Alias(t) => t.refs(out),
        Body::Tagged { variants, .. } => variants.iter().for_each(|(_, _, o)| fields(o, out)),
    }
}

/// Every declaration, each after the ones it refers to, roots in registration order.
pub fn declarations() -> Result<Vec<Decl>, String> {
    let mut c = Collect {
        output: SchemaSettings::draft2020_12()
            .for_serialize()
            .into_generator(),
        input: SchemaSettings::draft2020_12()
            .for_deserialize()
            .into_generator(),
        roots: Vec::new(),
    };
    register(&mut c);
    let mut defs = BTreeMap::new();
    defs.insert(Dir::Output, c.output.take_definitions(true));
    defs.insert(Dir::Input, c.input.take_definitions(true));
    let mut model = Model {
        defs,
        same: BTreeMap::new(),
    };
    let mut decls: Vec<Decl> = Vec::new();
    let mut done: BTreeSet<(String, Dir)> = BTreeSet::new();
    for (dir, root) in &c.roots {
        let r = root
            .get("$ref")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("a root type must be a named type, not {root}"))?;
        visit(&mut model, def_name(r)?, *dir, &mut done, &mut decls)?;
    }
    let mut names = BTreeSet::new();
    for d in &decls {
        let mut all = vec![d.name.clone()];
        if let Body::Tagged { variants, .. } = &d.body {
            all.extend(variants.iter().map(|(n, _, _)| n.clone()));
        }
        for n in all {
            if !names.insert(n.clone()) {
                return Err(format!(
                    "two declarations are named {n}: rename one (#[schemars(rename = \"...\")])"
                ));
            }
        }
    }
    Ok(decls)
}

fn visit(
    model: &mut Model,
    def: &str,
    dir: Dir,
    done: &mut BTreeSet<(String, Dir)>,
    decls: &mut Vec<Decl>,
) -> Result<(), String> {
    // A shape that is the same both ways is declared once.
    let key_dir = if model.same_shape(def)? {
        Dir::Output
    } else {
        dir
    };
    if !done.insert((def.to_owned(), key_dir)) {
        return Ok(());
    }
    let decl = model.decl(def, dir)?;
    let mut refs = Vec::new();
    body_refs(&decl.body, &mut refs);
    for r in refs {
        visit(model, &r, dir, done, decls)?;
    }
    decls.push(decl);
    Ok(())
}
