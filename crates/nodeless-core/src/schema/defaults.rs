//! Defaulting from `default:` values, and dropping nulls a schema does not allow.

use super::Schema;
use serde_json::Value;

/// Applies the schema's defaults to `obj`, the way apiextensions-apiserver's decoder does:
/// first a `null` in a non-nullable field without a default is removed (as if absent),
/// then every missing field with a `default` (and every non-nullable `null` with one) is
/// set to a copy of it, at every depth. Defaults are applied before validation.
pub fn apply_defaults(schema: &Schema, obj: &mut Value) {
    drop_disallowed_nulls(obj, schema);
    default(obj, schema);
}

fn is_null_to_replace(v: &Value, s: &Schema) -> bool {
    v.is_null() && !s.nullable
}

fn drop_disallowed_nulls(x: &mut Value, s: &Schema) {
    match x {
        Value::Object(map) => map.retain(|key, v| match s.field_schema(key) {
            Some(fs) if is_null_to_replace(v, fs) && fs.default.is_none() => false,
            Some(fs) => {
                drop_disallowed_nulls(v, fs);
                true
            }
            None => true,
        }),
        Value::Array(items) => {
            if let Some(item) = s.items.as_deref() {
                items
                    .iter_mut()
                    .for_each(|v| drop_disallowed_nulls(v, item));
            }
        }
        _ => {}
    }
}

fn default(x: &mut Value, s: &Schema) {
    match x {
        Value::Object(map) => {
            for (key, prop) in &s.properties {
                let Some(d) = &prop.default else { continue };
                let missing = map.get(key).is_none_or(|v| is_null_to_replace(v, prop));
                if missing {
                    map.insert(key.clone(), d.clone());
                }
            }
            for (key, v) in map.iter_mut() {
                let Some(fs) = s.field_schema(key) else {
                    continue;
                };
                if let Some(d) = fs.default.as_ref().filter(|_| is_null_to_replace(v, fs)) {
                    *v = d.clone();
                }
                default(v, fs);
            }
        }
        Value::Array(items) => {
            let Some(item) = s.items.as_deref() else {
                return;
            };
            for v in items.iter_mut() {
                if let Some(d) = item
                    .default
                    .as_ref()
                    .filter(|_| is_null_to_replace(v, item))
                {
                    *v = d.clone();
                }
                default(v, item);
            }
        }
        _ => {}
    }
}
