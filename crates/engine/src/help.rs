//! `alinea help KIND`, generated from a kind's types: its parameters (JSON schema of `Params`: types and doc
//! comments; defaults from `Params::default()`), its typed inputs and its declared outputs with their schemas.
//! Nothing here is written by hand per kind, so the help cannot drift from the code.

use serde_json::{Map, Value};

use crate::contract::{OutputKind, OutputSlot};
use crate::stage::{DynStage, InputSlot, SlotKind};

/// One documented parameter (nested tables give `parent.child` names).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ParamDoc {
    /// Field path, e.g. `per_lang` or `ibm2.iterations`.
    pub name: String,
    /// Its type as shown to users (`integer`, `"a" | "b"`, `array of string`, …).
    pub r#type: String,
    /// The default value (from `Params::default()`), `null` when the field has none.
    pub default: Value,
    /// The field's doc comment, with the documented alternatives of an enum.
    pub doc: String,
}

/// The parameters of a kind, in declaration order, nested tables expanded after their parent.
pub fn parameters(kind: &dyn DynStage) -> Vec<ParamDoc> {
    let schema = kind.params_schema();
    let defaults = kind.default_params();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let mut out = Vec::new();
    collect(&schema, &defs, &defaults, "", &mut out, 0);
    for param in &mut out {
        if kind.unkeyed_params().contains(&param.name.as_str()) {
            param
                .doc
                .push_str(" Not in the cache key: it cannot change the output, so changing it reruns nothing.");
        }
    }
    out
}

fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .rsplit('/')
            .next()
            .and_then(|name| defs.get(name))
            .map(|d| resolve(d, defs))
            .unwrap_or(schema),
        None => schema,
    }
}

fn collect(
    schema: &Value,
    defs: &Map<String, Value>,
    defaults: &Value,
    prefix: &str,
    out: &mut Vec<ParamDoc>,
    depth: usize,
) {
    let schema = resolve(schema, defs);
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, prop) in props {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let default = defaults
            .get(name)
            .cloned()
            .or_else(|| prop.get("default").cloned())
            .unwrap_or(Value::Null);
        let target = resolve(prop, defs);
        let mut doc = description(prop)
            .or_else(|| description(target))
            .unwrap_or_default();
        let alternatives = variant_docs(target, defs);
        if !alternatives.is_empty() {
            if !doc.is_empty() {
                doc.push('\n');
            }
            doc.push_str(&alternatives.join("\n"));
        }
        out.push(ParamDoc {
            name: path.clone(),
            r#type: type_name(prop, defs, 0),
            default: default.clone(),
            doc,
        });
        if depth < 4 && object_props(target, defs).is_some() {
            collect(target, defs, &default, &path, out, depth + 1);
        }
    }
}

fn object_props<'a>(
    schema: &'a Value,
    defs: &'a Map<String, Value>,
) -> Option<&'a Map<String, Value>> {
    resolve(schema, defs)
        .get("properties")
        .and_then(Value::as_object)
}

fn description(schema: &Value) -> Option<String> {
    schema
        .get("description")
        .and_then(Value::as_str)
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `- "value": doc` for every documented alternative of an enum.
fn variant_docs(schema: &Value, defs: &Map<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for key in ["oneOf", "anyOf"] {
        for v in schema
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let v = resolve(v, defs);
            let Some(doc) = description(v) else { continue };
            let values: Vec<String> = v
                .get("const")
                .map(|c| vec![c.to_string()])
                .or_else(|| {
                    v.get("enum")
                        .and_then(Value::as_array)
                        .map(|a| a.iter().map(Value::to_string).collect())
                })
                .unwrap_or_default();
            if !values.is_empty() {
                out.push(format!(
                    "- {}: {}",
                    values.join(" | "),
                    doc.replace('\n', " ")
                ));
            }
        }
    }
    out
}

/// A type as users write it in TOML.
fn type_name(schema: &Value, defs: &Map<String, Value>, depth: usize) -> String {
    if depth > 6 {
        return "any".into();
    }
    let schema = resolve(schema, defs);
    if let Some(c) = schema.get("const") {
        return c.to_string();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .map(Value::to_string)
            .collect::<Vec<_>>()
            .join(" | ");
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = schema.get(key).and_then(Value::as_array) {
            let mut names: Vec<String> = Vec::new();
            let mut optional = false;
            for a in alts {
                let t = type_name(a, defs, depth + 1);
                if t == "null" {
                    optional = true;
                } else if !names.contains(&t) {
                    names.push(t);
                }
            }
            let joined = names.join(" | ");
            return if optional {
                format!("{joined} (optional)")
            } else {
                joined
            };
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return "any".into(),
    };
    let optional = types.contains(&"null");
    let names: Vec<String> = types
        .iter()
        .filter(|t| **t != "null")
        .map(|t| match *t {
            "array" => match schema.get("items") {
                Some(items) => format!("array of {}", type_name(items, defs, depth + 1)),
                None => "array".into(),
            },
            "object" if schema.get("properties").is_some() => "table".into(),
            "object" => match schema.get("additionalProperties") {
                Some(v @ Value::Object(_)) => format!("table of {}", type_name(v, defs, depth + 1)),
                _ => "table".into(),
            },
            other => other.to_string(),
        })
        .collect();
    let joined = names.join(" | ");
    if optional {
        format!("{joined} (optional)")
    } else {
        joined
    }
}

fn slot_word(kind: SlotKind) -> &'static str {
    match kind {
        SlotKind::Table => "table",
        SlotKind::Tables => "tables",
        SlotKind::Path => "path",
        SlotKind::Blob => "blob",
        SlotKind::Folder => "folder",
        SlotKind::Any => "any",
    }
}

fn columns_line(columns: &[crate::contract::ColumnDecl]) -> String {
    columns
        .iter()
        .map(|c| format!("{} {}", c.name, c.dtype))
        .collect::<Vec<_>>()
        .join(", ")
}

fn input_json(s: &InputSlot) -> Value {
    serde_json::json!({
        "name": s.name,
        "kind": slot_word(s.kind),
        "required": s.required,
        "doc": s.doc,
        "columns": s.columns.iter().map(|c| serde_json::json!({"name": c.name, "dtype": c.dtype.to_string()})).collect::<Vec<_>>(),
    })
}

fn output_json(o: &OutputSlot) -> Value {
    serde_json::json!({
        "name": o.display_name(),
        "kind": o.kind_word(),
        "doc": o.doc,
        "columns": o.columns().map(|cs| cs.iter().map(|c| serde_json::json!({"name": c.name, "dtype": c.dtype.to_string()})).collect::<Vec<_>>()),
    })
}

/// The help of a kind as JSON (`alinea help KIND --json`).
pub fn to_json(kind: &dyn DynStage) -> Value {
    serde_json::json!({
        "kind": kind.kind(),
        "summary": kind.summary(),
        "doc": kind.doc(),
        "parameters": parameters(kind),
        "defaults": kind.default_params(),
        "params_schema": kind.params_schema(),
        "inputs": kind.inputs().iter().map(input_json).collect::<Vec<_>>(),
        "outputs": kind.declared_outputs().iter().map(output_json).collect::<Vec<_>>(),
        "fingerprint": kind.fingerprint(),
    })
}

fn compact(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        other => other.to_string(),
    }
}

fn indent(text: &str, by: &str) -> String {
    text.lines()
        .map(|l| format!("{by}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The help of a kind as text (`alinea help KIND`).
pub fn render(kind: &dyn DynStage) -> String {
    let mut s = format!("{} — {}\n", kind.kind(), kind.summary());
    if !kind.doc().is_empty() {
        s.push('\n');
        s.push_str(kind.doc().trim_end());
        s.push('\n');
    }
    let params = parameters(kind);
    s.push_str("\nParameters (name: type = default):\n");
    if params.is_empty() {
        s.push_str("  (none)\n");
    }
    for p in &params {
        let depth = p.name.matches('.').count();
        let pad = "  ".repeat(depth + 1);
        let nested = format!("{}.", p.name);
        let default = if p.default.is_object() && params.iter().any(|q| q.name.starts_with(&nested))
        {
            "{ … } (fields below)".to_string()
        } else {
            compact(&p.default)
        };
        s.push_str(&format!("{pad}{}: {} = {default}\n", p.name, p.r#type));
        if !p.doc.is_empty() {
            s.push_str(&indent(&p.doc, &format!("{pad}    ")));
            s.push('\n');
        }
    }
    s.push_str("\nInputs:\n");
    if kind.inputs().is_empty() {
        s.push_str("  (none)\n");
    }
    for i in kind.inputs() {
        s.push_str(&format!(
            "  {} ({}, {}): {}\n",
            i.name,
            slot_word(i.kind),
            if i.required { "required" } else { "optional" },
            i.doc
        ));
        if !i.columns.is_empty() {
            s.push_str(&format!(
                "      reads columns: {}\n",
                columns_line(i.columns)
            ));
        }
    }
    s.push_str(
        "\nOutputs (the first table is the main one, what `inputs = { x = \"stage\" }` reads):\n",
    );
    if kind.declared_outputs().is_empty() {
        s.push_str("  (named by the pipeline: see the parameters)\n");
    }
    for o in kind.declared_outputs() {
        s.push_str(&format!(
            "  {} ({}): {}\n",
            o.display_name(),
            o.kind_word(),
            o.doc
        ));
        match o.kind {
            OutputKind::Table(columns) => {
                s.push_str(&format!("      columns: {}\n", columns_line(columns)));
            }
            OutputKind::AnyTable => s.push_str("      columns: those of its input\n"),
            OutputKind::Blob | OutputKind::Blobs | OutputKind::Folder => {}
        }
    }
    s
}
