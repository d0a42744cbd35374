//! OpenAPI 3 forms of the v2-shaped catalog definitions, and the per-group-version subset.
//!
//! kube-apiserver's v3 documents differ from v2 in three ways kubectl notices: refs point at
//! `#/components/schemas/`, a `$ref` with sibling keywords is wrapped as `allOf: [{$ref}]`
//! (OpenAPI 3.0 ignores a `$ref`'s siblings), and int-or-string / quantity are `oneOf`.

use super::catalog::{DEFINITIONS_PREFIX, INT_OR_STRING, QUANTITY};
use super::paths::Flavor;
use serde_json::{json, Map, Value};
use std::collections::BTreeSet;

/// Keywords whose value is one schema.
const SCHEMA_KEYWORDS: &[&str] = &["items", "not", "additionalItems"];
/// Keywords whose value is a list of schemas.
const SCHEMA_LIST_KEYWORDS: &[&str] = &["allOf", "anyOf", "oneOf"];
/// Keywords whose value maps names to schemas.
const SCHEMA_MAP_KEYWORDS: &[&str] = &["properties", "patternProperties", "definitions"];

/// Converts one v2-shaped schema (catalog definition or a part of one) to its v3 form.
pub(crate) fn to_v3(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let mut out = Map::new();
    for (key, value) in map {
        let converted = match key.as_str() {
            "$ref" => match value.as_str() {
                Some(r) => Value::String(v3_ref(r)),
                None => value.clone(),
            },
            k if SCHEMA_KEYWORDS.contains(&k) => to_v3(value),
            "additionalProperties" if value.is_object() => to_v3(value),
            k if SCHEMA_LIST_KEYWORDS.contains(&k) => match value {
                Value::Array(items) => Value::Array(items.iter().map(to_v3).collect()),
                other => other.clone(),
            },
            k if SCHEMA_MAP_KEYWORDS.contains(&k) => match value {
                Value::Object(m) => {
                    Value::Object(m.iter().map(|(n, s)| (n.clone(), to_v3(s))).collect())
                }
                other => other.clone(),
            },
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    if out.len() > 1 {
        if let Some(reference) = out.remove("$ref") {
            out.insert("allOf".into(), json!([{"$ref": reference}]));
        }
    }
    Value::Object(out)
}

fn v3_ref(r: &str) -> String {
    match r.strip_prefix(DEFINITIONS_PREFIX) {
        Some(name) => format!("{}{name}", Flavor::V3.ref_prefix()),
        None => r.to_string(),
    }
}

/// The v3 form of a catalog definition, by name (some scalars differ by name only).
fn definition_v3(name: &str, def: &Value) -> Value {
    let description = def.get("description").cloned();
    let one_of = match name {
        INT_OR_STRING => Some((
            json!([{"type": "integer"}, {"type": "string"}]),
            Some("int-or-string"),
        )),
        QUANTITY => Some((json!([{"type": "string"}, {"type": "number"}]), None)),
        _ => None,
    };
    match one_of {
        Some((types, format)) => {
            let mut out = Map::new();
            if let Some(d) = description {
                out.insert("description".into(), d);
            }
            if let Some(f) = format {
                out.insert("format".into(), f.into());
            }
            out.insert("oneOf".into(), types);
            Value::Object(out)
        }
        None => to_v3(def),
    }
}

/// Every schema reachable from `roots` (operations and the group-version's own, already v3,
/// definitions in `extra`), the catalog's ones converted to v3.
pub(crate) fn reachable_schemas(
    roots: &Value,
    extra: &Map<String, Value>,
    catalog: &Map<String, Value>,
) -> Map<String, Value> {
    let prefix = Flavor::V3.ref_prefix();
    let mut pending: Vec<String> = Vec::new();
    collect_refs(roots, prefix, &mut pending);
    for def in extra.values() {
        collect_refs(def, prefix, &mut pending);
    }
    let mut seen: BTreeSet<String> = extra.keys().cloned().collect();
    let mut out = extra.clone();
    while let Some(name) = pending.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let Some(def) = catalog.get(&name) else {
            continue;
        };
        let converted = definition_v3(&name, def);
        collect_refs(&converted, prefix, &mut pending);
        out.insert(name, converted);
    }
    out
}

/// Names referenced by `$ref`s under `v` (any string `$ref`, wherever it sits).
fn collect_refs(v: &Value, prefix: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.strip_prefix(prefix) {
                            out.push(name.to_string());
                        }
                    }
                    _ => collect_refs(value, prefix, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| collect_refs(i, prefix, out)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_with_siblings_become_all_of_and_point_at_components() {
        let v2 = json!({"properties": {
            "metadata": {"$ref": "#/definitions/io.k8s.X", "description": "d"},
            "spec": {"$ref": "#/definitions/io.k8s.Y"},
            "$ref": {"type": "string"}
        }});
        let v3 = to_v3(&v2);
        assert_eq!(
            v3["properties"]["metadata"],
            json!({"description": "d", "allOf": [{"$ref": "#/components/schemas/io.k8s.X"}]})
        );
        assert_eq!(
            v3["properties"]["spec"],
            json!({"$ref": "#/components/schemas/io.k8s.Y"})
        );
        assert_eq!(v3["properties"]["$ref"], json!({"type": "string"}));
    }
}
