//! Strategic merge patch as kube-apiserver applies it (k8s.io/apimachinery's
//! `strategicpatch.StrategicMergeMapPatch`): a JSON merge patch whose lists merge by the
//! field's merge key when the field's strategy is `merge`, plus these directives:
//!
//! - `$patch: replace | delete` in a map (replace it whole, or empty it), and in a merging
//!   list as `{"$patch": "replace"}` or `{"<key>": ..., "$patch": "delete"}` elements;
//! - `$retainKeys: [...]`: clear the map's keys not listed;
//! - `$deleteFromPrimitiveList/<field>: [...]`: remove values from a merging primitive list;
//! - `$setElementOrder/<field>: [...]`: the final order of a merging list (kubectl apply).
//!
//! A value taken whole from the patch (the object has none, or one of another JSON type, or
//! the field is replaced rather than merged) is cleaned as upstream cleans new fields: null
//! members are dropped and maps carrying `$patch` vanish. Upstream leaves the other directive
//! keys in such values for typed decoding to drop (or reject, under strict field
//! validation); here they are stripped too, so none can reach storage.

mod list;
mod order;
#[cfg(test)]
mod tests;

use super::typegraph::{PatchStrategy, TypeRef};
use super::PatchError;
use serde_json::{Map, Value};

const DIRECTIVE: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList";
const SET_ELEMENT_ORDER: &str = "$setElementOrder";

pub(super) fn apply(original: &Value, body: &[u8], root: TypeRef) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body).map_err(PatchError::DecodePatch)?;
    let Value::Object(patch) = patch else {
        return Err(PatchError::PatchNotObject("strategic merge"));
    };
    let Value::Object(original) = original.clone() else {
        return Err(PatchError::OriginalNotObject);
    };
    merge_map(original, patch, Some(root)).map(Value::Object)
}

/// A malformed directive: 400, as upstream.
fn bad(message: impl Into<String>) -> PatchError {
    PatchError::InvalidStrategicPatch(message.into())
}

/// A patch that does not fit the object: 422 (upstream answers 422 or 500).
fn failed(message: impl Into<String>) -> PatchError {
    PatchError::StrategicMergeFailed(message.into())
}

/// Merges `patch` into `original`, a value of type `ty` (`None`: untyped, no merge keys).
fn merge_map(
    mut original: Map<String, Value>,
    mut patch: Map<String, Value>,
    ty: Option<TypeRef>,
) -> Result<Map<String, Value>, PatchError> {
    if let Some(directive) = patch.get(DIRECTIVE) {
        return match directive.as_str() {
            Some("replace") => {
                patch.shift_remove(DIRECTIVE);
                merge_map(Map::new(), patch, ty)
            }
            Some("delete") => Ok(Map::new()),
            _ => Err(failed(format!(
                "unknown patch type: {directive} in map: {}",
                Value::Object(patch.clone())
            ))),
        };
    }
    apply_retain_keys(&mut original, &mut patch)?;
    merge_ordered_lists(&mut original, &mut patch, ty)?;
    for (key, value) in patch {
        if key.starts_with(DELETE_FROM_PRIMITIVE_LIST) {
            let field = field_of(
                &key,
                DELETE_FROM_PRIMITIVE_LIST,
                "invalid patch format of primitive list",
            )?;
            delete_from_list(&mut original, field, value);
            continue;
        }
        if value.is_null() {
            original.shift_remove(&key);
            continue;
        }
        let (strategy, merge_key, child) = field_meta(ty, &key);
        let current = original.get_mut(&key).map(std::mem::take);
        match merge_value(current, value, strategy, merge_key, child)? {
            Some(merged) => {
                original.insert(key, merged);
            }
            None => {
                original.shift_remove(&key);
            }
        }
    }
    Ok(original)
}

/// A field's strategy, merge key and type, as far as the type graph knows them.
fn field_meta(
    ty: Option<TypeRef>,
    name: &str,
) -> (Option<PatchStrategy>, Option<&'static str>, Option<TypeRef>) {
    match ty.map(|t| t.field(name)) {
        Some(f) => (
            f.meta.map(|m| m.strategy),
            f.meta.and_then(|m| m.merge_key),
            f.ty,
        ),
        None => (None, None, None),
    }
}

/// The patched value of one field; `None` drops the field (a new value that is a directive).
fn merge_value(
    original: Option<Value>,
    patch: Value,
    strategy: Option<PatchStrategy>,
    merge_key: Option<&'static str>,
    child: Option<TypeRef>,
) -> Result<Option<Value>, PatchError> {
    let merges_lists = strategy.is_some_and(PatchStrategy::merges_lists);
    Ok(match (original, patch) {
        (Some(Value::Object(o)), Value::Object(p)) => {
            // `patchStrategy: replace` maps (a PodDisruptionBudget's selector) take the patch,
            // honouring a `$patch` directive at their top.
            let base = if strategy == Some(PatchStrategy::Replace) {
                Map::new()
            } else {
                o
            };
            Some(Value::Object(merge_map(base, p, child)?))
        }
        (Some(Value::Array(o)), Value::Array(p)) if merges_lists => {
            Some(Value::Array(list::merge(o, p, merge_key, child)?))
        }
        (_, p) => fresh(p),
    })
}

/// A value taken whole from the patch, cleaned as upstream's `discardNullValuesFromPatch` and
/// `removeDirectives` clean it: null members go, maps carrying `$patch` vanish (from lists
/// too, and `None` for the value itself); other directive keys are stripped as well.
pub(super) fn fresh(value: Value) -> Option<Value> {
    match value {
        Value::Object(m) if m.contains_key(DIRECTIVE) => None,
        Value::Object(m) => Some(Value::Object(
            m.into_iter()
                .filter(|(k, v)| !v.is_null() && !is_directive_key(k))
                .filter_map(|(k, v)| Some((k, fresh(v)?)))
                .collect(),
        )),
        Value::Array(items) => Some(Value::Array(items.into_iter().filter_map(fresh).collect())),
        other => Some(other),
    }
}

fn is_directive_key(key: &str) -> bool {
    key == RETAIN_KEYS
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
        || key.starts_with(SET_ELEMENT_ORDER)
}

/// The field a `$deleteFromPrimitiveList/<field>` or `$setElementOrder/<field>` key names.
fn field_of<'k>(key: &'k str, prefix: &str, malformed: &str) -> Result<&'k str, PatchError> {
    match key.split_once('/') {
        Some((p, field)) if p == prefix => Ok(field),
        _ => Err(bad(malformed)),
    }
}

/// `$retainKeys`: every key the patch sets must be listed; the original keeps only listed keys.
fn apply_retain_keys(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
) -> Result<(), PatchError> {
    let Some(retain) = patch.shift_remove(RETAIN_KEYS) else {
        return Ok(());
    };
    let Value::Array(retain) = retain else {
        return Err(bad("invalid patch format of retainKeys"));
    };
    let listed = |k: &str| retain.iter().any(|r| r.as_str() == Some(k));
    let unlisted = patch.iter().any(|(k, v)| {
        !v.is_null()
            && !k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            && !k.starts_with(SET_ELEMENT_ORDER)
            && !listed(k)
    });
    if unlisted {
        return Err(bad("invalid patch format of retainKeys"));
    }
    original.retain(|k, _| listed(k));
    Ok(())
}

/// `$deleteFromPrimitiveList/<field>`: removes the listed values from the field's list,
/// whatever its strategy. As upstream, a null list deletes the field and a list for a field
/// the object lacks (or holds as a non-list) changes nothing.
fn delete_from_list(original: &mut Map<String, Value>, field: &str, deletions: Value) {
    match (deletions, original.get_mut(field)) {
        (Value::Null, _) => {
            original.shift_remove(field);
        }
        (Value::Array(deletions), Some(Value::Array(items))) => {
            items.retain(|v| !deletions.contains(v))
        }
        _ => {}
    }
}

/// `$setElementOrder/<field>`: merges the field's list (if patched) and orders the result as
/// listed, keeping items only the server has near their old neighbours.
fn merge_ordered_lists(
    original: &mut Map<String, Value>,
    patch: &mut Map<String, Value>,
    ty: Option<TypeRef>,
) -> Result<(), PatchError> {
    let keys: Vec<String> = patch
        .keys()
        .filter(|k| k.starts_with(SET_ELEMENT_ORDER))
        .cloned()
        .collect();
    for key in keys {
        let field = field_of(
            &key,
            SET_ELEMENT_ORDER,
            "invalid patch format of setElementOrder list",
        )?
        .to_string();
        let Some(Value::Array(wanted)) = patch.shift_remove(&key) else {
            return Err(bad("invalid patch format of setElementOrder list"));
        };
        let (strategy, merge_key, child) = field_meta(ty, &field);
        let current = match original.get_mut(&field) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(std::mem::take(items)),
            Some(other) => return Err(not_a_list(&field, other)),
        };
        let patched = match patch.shift_remove(&field) {
            None | Some(Value::Null) => None,
            Some(Value::Array(items)) => Some(items),
            Some(other) => return Err(not_a_list(&field, &other)),
        };
        if let Some(p) = &patched {
            order::validate_patch_order(p, &wanted, merge_key)?;
        }
        let mut server_order = match &current {
            Some(items) => order::identities(items, merge_key)?,
            None => Vec::new(),
        };
        let merged = match (current, patched) {
            (Some(c), None) => c,
            (Some(c), Some(p)) if strategy.is_some_and(PatchStrategy::merges_lists) => {
                if let Some(key) = merge_key {
                    server_order = order::as_go_sees_it(server_order, &p, key);
                }
                list::merge(c, p, merge_key, child)?
            }
            (_, Some(p)) => p.into_iter().filter_map(fresh).collect(),
            (None, None) => continue,
        };
        let wanted = order::identities(&wanted, merge_key)?;
        let ordered = Value::Array(order::enforce(merged, &wanted, &server_order, merge_key)?);
        match original.get_mut(&field) {
            Some(slot) => *slot = ordered,
            None => {
                original.insert(field, ordered);
            }
        }
    }
    Ok(())
}

fn not_a_list(field: &str, found: &Value) -> PatchError {
    failed(format!(
        "expected a list at {field}, but found a {}",
        kind_name(found)
    ))
}

fn kind_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
    }
}
