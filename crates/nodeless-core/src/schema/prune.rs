//! Pruning: dropping fields a structural schema does not specify, as apiextensions-apiserver
//! does before storing a custom object.

use super::{child, index, AdditionalProperties, Schema};
use serde_json::Value;

/// Fields every resource (and every `x-kubernetes-embedded-resource`) keeps regardless of
/// its schema; `metadata` is coerced to ObjectMeta by the API server instead.
const TYPE_AND_OBJECT_META: &[&str] = &["apiVersion", "kind", "metadata"];

/// Removes every field of `obj` the schema does not specify, except under
/// `x-kubernetes-preserve-unknown-fields: true` and the root's `apiVersion`, `kind` and
/// `metadata`. Returns the removed fields' paths (`spec.foo`, `spec.items[0].bar`), in
/// document order, for `fieldValidation=Strict` (reject) and `Warn` (warn).
pub fn prune(schema: &Schema, obj: &mut Value) -> Vec<String> {
    let mut pruned = Vec::new();
    prune_value(obj, Some(schema), true, "", &mut pruned);
    pruned
}

/// The schema for the value under `key`: `Ok(Some)` a schema, `Ok(None)` a field that is
/// kept but whose own fields are all unknown (`additionalProperties: true`), `Err` unknown.
fn field_schema<'a>(s: &'a Schema, key: &str) -> Result<Option<&'a Schema>, ()> {
    if let Some(prop) = s.property(key) {
        return Ok(Some(prop));
    }
    match &s.additional_properties {
        AdditionalProperties::Schema(extra) => Ok(Some(extra)),
        AdditionalProperties::Allowed(_) => Ok(None),
        AdditionalProperties::Unspecified => Err(()),
    }
}

fn prune_value(
    x: &mut Value,
    s: Option<&Schema>,
    root: bool,
    path: &str,
    pruned: &mut Vec<String>,
) {
    if let Some(s) = s.filter(|s| s.preserve_unknown_fields) {
        return skip_prune(x, s, root, path, pruned);
    }
    match x {
        Value::Object(map) => {
            let Some(s) = s else {
                pruned.extend(map.keys().map(|k| child(path, k)));
                map.clear();
                return;
            };
            let keeps_meta = root || s.embedded_resource;
            map.retain(|key, v| {
                if keeps_meta && TYPE_AND_OBJECT_META.contains(&key.as_str()) {
                    return true;
                }
                match field_schema(s, key) {
                    Ok(fs) => {
                        prune_value(v, fs, false, &child(path, key), pruned);
                        true
                    }
                    Err(()) => {
                        pruned.push(child(path, key));
                        false
                    }
                }
            });
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.items.as_deref());
            for (i, v) in items.iter_mut().enumerate() {
                prune_value(v, item_schema, false, &index(path, i), pruned);
            }
        }
        _ => {}
    }
}

/// Under `x-kubernetes-preserve-unknown-fields`, unknown fields stay, but the fields the
/// schema does specify are still pruned below.
fn skip_prune(x: &mut Value, s: &Schema, root: bool, path: &str, pruned: &mut Vec<String>) {
    match x {
        Value::Object(map) => {
            let keeps_meta = root || s.embedded_resource;
            for (key, v) in map.iter_mut() {
                if keeps_meta && TYPE_AND_OBJECT_META.contains(&key.as_str()) {
                    continue;
                }
                if let Ok(fs) = field_schema(s, key) {
                    prune_value(v, fs, false, &child(path, key), pruned);
                }
            }
        }
        Value::Array(items) => {
            let Some(item_schema) = s.items.as_deref() else {
                return;
            };
            for (i, v) in items.iter_mut().enumerate() {
                skip_prune(v, item_schema, false, &index(path, i), pruned);
            }
        }
        _ => {}
    }
}
