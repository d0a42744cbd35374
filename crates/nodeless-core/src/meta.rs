//! Accessors for `metadata` and friends on objects held as JSON values.

use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `obj.metadata`, created if absent (non-object metadata is replaced).
pub fn metadata_mut(obj: &mut Value) -> &mut Map<String, Value> {
    let root = ensure_object(obj);
    let m = root
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    ensure_object(m)
}

fn ensure_object(v: &mut Value) -> &mut Map<String, Value> {
    if !v.is_object() {
        *v = Value::Object(Map::new());
    }
    match v {
        Value::Object(m) => m,
        _ => unreachable!("just made an object"),
    }
}

pub fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    obj.get("metadata")?.get(field)?.as_str()
}

pub fn name(obj: &Value) -> Option<&str> {
    meta_str(obj, "name").filter(|s| !s.is_empty())
}

pub fn namespace(obj: &Value) -> Option<&str> {
    meta_str(obj, "namespace").filter(|s| !s.is_empty())
}

pub fn uid(obj: &Value) -> Option<&str> {
    meta_str(obj, "uid").filter(|s| !s.is_empty())
}

pub fn resource_version(obj: &Value) -> Option<&str> {
    meta_str(obj, "resourceVersion").filter(|s| !s.is_empty())
}

pub fn deletion_timestamp(obj: &Value) -> Option<&str> {
    meta_str(obj, "deletionTimestamp")
}

pub fn set_str(obj: &mut Value, field: &str, value: impl Into<String>) {
    metadata_mut(obj).insert(field.into(), Value::String(value.into()));
}

pub fn remove(obj: &mut Value, field: &str) -> Option<Value> {
    metadata_mut(obj).remove(field)
}

/// `metadata.labels` as a map; non-string values are skipped (validation rejects them).
pub fn labels(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj.get("metadata").and_then(|m| m.get("labels")))
}

pub fn annotations(obj: &Value) -> BTreeMap<String, String> {
    string_map(obj.get("metadata").and_then(|m| m.get("annotations")))
}

pub fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

pub fn finalizers(obj: &Value) -> Vec<String> {
    obj.get("metadata")
        .and_then(|m| m.get("finalizers"))
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

pub fn set_finalizers(obj: &mut Value, finalizers: &[String]) {
    let md = metadata_mut(obj);
    if finalizers.is_empty() {
        md.remove("finalizers");
    } else {
        md.insert("finalizers".into(), Value::from(finalizers.to_vec()));
    }
}

/// One owner reference, as the garbage collector needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerRef {
    pub api_version: String,
    pub kind: String,
    pub name: String,
    pub uid: String,
    pub controller: bool,
    pub block_owner_deletion: bool,
}

pub fn owner_references(obj: &Value) -> Vec<OwnerRef> {
    let Some(refs) = obj
        .get("metadata")
        .and_then(|m| m.get("ownerReferences"))
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    refs.iter()
        .filter_map(|r| {
            Some(OwnerRef {
                api_version: r.get("apiVersion")?.as_str()?.into(),
                kind: r.get("kind")?.as_str()?.into(),
                name: r.get("name")?.as_str()?.into(),
                uid: r.get("uid")?.as_str()?.into(),
                controller: r
                    .get("controller")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                block_owner_deletion: r
                    .get("blockOwnerDeletion")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            })
        })
        .collect()
}

/// Follows a dotted path such as `spec.replicas` (a leading dot is allowed).
pub fn get_path<'a>(obj: &'a Value, path: &str) -> Option<&'a Value> {
    path.trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .try_fold(obj, |v, part| v.get(part))
}

/// Sets a dotted path, creating objects on the way.
pub fn set_path(obj: &mut Value, path: &str, value: Value) {
    let parts: Vec<&str> = path
        .trim_start_matches('.')
        .split('.')
        .filter(|s| !s.is_empty())
        .collect();
    let Some((last, init)) = parts.split_last() else {
        *obj = value;
        return;
    };
    let mut cur = obj;
    for p in init {
        cur = ensure_object(cur)
            .entry(p.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    ensure_object(cur).insert(last.to_string(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_followed_and_created() {
        let mut o = json!({"spec": {"replicas": 3}});
        assert_eq!(get_path(&o, ".spec.replicas"), Some(&json!(3)));
        set_path(&mut o, "status.replicas", json!(2));
        assert_eq!(o["status"]["replicas"], 2);
    }

    #[test]
    fn owner_references_skip_incomplete_entries() {
        let o = json!({"metadata": {"ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs", "uid": "u1", "controller": true},
            {"kind": "Broken"}
        ]}});
        let refs = owner_references(&o);
        assert_eq!(refs.len(), 1);
        assert!(refs[0].controller);
    }
}
