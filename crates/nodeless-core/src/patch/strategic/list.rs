//! Merging lists whose strategy is `merge`: primitives as an ordered set, objects by their
//! merge key.

use super::{failed, fresh, kind_name, merge_map, order, DIRECTIVE};
use crate::patch::typegraph::TypeRef;
use crate::patch::PatchError;
use serde_json::Value;

/// Merges a patch list into the original list. Patched items take the patch's order;
/// items only the server has keep their place relative to them.
pub(super) fn merge(
    original: Vec<Value>,
    patch: Vec<Value>,
    merge_key: Option<&'static str>,
    child: Option<TypeRef>,
) -> Result<Vec<Value>, PatchError> {
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    match element_kind(&original, &patch)? {
        Kind::Primitive => {
            let patch_order = order::identities(&patch, merge_key)?;
            let server_order = order::identities(&original, merge_key)?;
            let merged = dedup(original.into_iter().chain(patch));
            order::enforce(merged, &patch_order, &server_order, merge_key)
        }
        Kind::Object => {
            let key = merge_key
                .ok_or_else(|| failed("cannot merge lists of maps without a merge key"))?;
            let (original, patch) = apply_special_elements(original, patch, key)?;
            let patch_order = order::identities(&patch, merge_key)?;
            let server_order = order::identities(&original, merge_key)?;
            let merged = merge_objects(original, patch, key, child)?;
            order::enforce(merged, &patch_order, &server_order, merge_key)
        }
    }
}

enum Kind {
    Primitive,
    Object,
}

/// Upstream requires every element of both lists to have one JSON type, and no nested lists.
fn element_kind(original: &[Value], patch: &[Value]) -> Result<Kind, PatchError> {
    let mut items = original.iter().chain(patch);
    let first = items.next().map(kind_name).unwrap_or("null");
    if first == "list" {
        return Err(failed("lists of lists are not supported"));
    }
    if let Some(other) = items.map(kind_name).find(|k| *k != first) {
        return Err(failed(format!(
            "list element types are not identical: found a {first} and a {other}"
        )));
    }
    Ok(if first == "map" {
        Kind::Object
    } else {
        Kind::Primitive
    })
}

/// Keeps the first of equal values.
fn dedup(items: impl Iterator<Item = Value>) -> Vec<Value> {
    let mut out: Vec<Value> = Vec::new();
    for v in items {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Handles `{"$patch": "delete", key: ...}` (drop matching originals) and `{"$patch": "replace"}`
/// (the list becomes the patch's other elements); returns the original and the plain patch
/// elements left to merge.
fn apply_special_elements(
    mut original: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
) -> Result<(Vec<Value>, Vec<Value>), PatchError> {
    let mut plain = Vec::with_capacity(patch.len());
    let mut replace = false;
    for item in patch {
        let Some(directive) = item.get(DIRECTIVE) else {
            plain.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let value = item.get(key).ok_or_else(|| no_merge_key(&item, key))?;
                original.retain(|o| o.get(key) != Some(value));
            }
            Some("replace") => replace = true,
            Some("merge") => {
                return Err(failed("merging lists cannot yet be specified in the patch"))
            }
            _ => {
                return Err(failed(format!(
                    "unknown patch type: {directive} in map: {item}"
                )))
            }
        }
    }
    Ok(if replace {
        (plain, Vec::new())
    } else {
        (original, plain)
    })
}

/// Merges each patch element into the original element with the same key, or appends it.
fn merge_objects(
    mut merged: Vec<Value>,
    patch: Vec<Value>,
    key: &str,
    child: Option<TypeRef>,
) -> Result<Vec<Value>, PatchError> {
    for item in patch {
        let Value::Object(fields) = item else {
            return Err(failed(format!(
                "expected a map in the list, but found {item}"
            )));
        };
        let value = fields
            .get(key)
            .ok_or_else(|| no_merge_key(&Value::Object(fields.clone()), key))?;
        match merged.iter_mut().find(|o| o.get(key) == Some(value)) {
            Some(Value::Object(existing)) => {
                let base = std::mem::take(existing);
                *existing = merge_map(base, fields, child)?;
            }
            _ => merged.extend(fresh(Value::Object(fields))),
        }
    }
    Ok(merged)
}

pub(super) fn no_merge_key(item: &Value, key: &str) -> PatchError {
    failed(format!(
        "map: {item} does not contain declared merge key: {key}"
    ))
}
