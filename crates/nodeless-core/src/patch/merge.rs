//! JSON Merge Patch (RFC 7386): objects merge key by key, `null` deletes, anything else
//! (arrays included) replaces.

use super::PatchError;
use serde_json::{Map, Value};

pub(super) fn apply(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let patch: Value = serde_json::from_slice(body).map_err(PatchError::DecodePatch)?;
    // Upstream answers "Invalid JSON Patch" (400) for a body that is not an object: an array
    // or scalar would replace the whole object with something that is not one.
    let Value::Object(patch) = patch else {
        return Err(PatchError::PatchNotObject("merge"));
    };
    let mut doc = original.clone();
    if let Value::Object(target) = &mut doc {
        merge_into(target, patch);
    }
    Ok(doc)
}

fn merge_into(target: &mut Map<String, Value>, patch: Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                target.shift_remove(&key);
            }
            Value::Object(p) => match target.get_mut(&key) {
                Some(Value::Object(t)) => merge_into(t, p),
                _ => {
                    target.insert(key, Value::Object(without_nulls(p)));
                }
            },
            other => {
                target.insert(key, prune(other));
            }
        }
    }
}

/// A value inserted whole is merged into nothing, so its object members set to null vanish
/// (upstream also prunes them inside arrays; null array elements stay).
fn prune(value: Value) -> Value {
    match value {
        Value::Object(m) => Value::Object(without_nulls(m)),
        Value::Array(items) => Value::Array(items.into_iter().map(prune).collect()),
        other => other,
    }
}

fn without_nulls(m: Map<String, Value>) -> Map<String, Value> {
    m.into_iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k, prune(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value, patch: Value) -> Result<Value, PatchError> {
        apply(&doc, patch.to_string().as_bytes())
    }

    #[test]
    fn null_deletes_and_objects_merge_recursively() {
        let doc =
            json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}, "spec": {"replicas": 1}});
        let patch =
            json!({"metadata": {"labels": {"tier": null, "env": "prod"}}, "spec": {"replicas": 2}});
        let out = run(doc, patch).expect("applies");
        assert_eq!(
            out["metadata"]["labels"],
            json!({"app": "web", "env": "prod"})
        );
        assert_eq!(out["spec"]["replicas"], 2);
    }

    #[test]
    fn arrays_are_replaced_whole() {
        let doc = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b"}]}});
        let patch = json!({"spec": {"containers": [{"name": "a", "image": "y"}]}});
        let out = run(doc, patch).expect("applies");
        assert_eq!(
            out["spec"]["containers"],
            json!([{"name": "a", "image": "y"}])
        );
    }

    #[test]
    fn nulls_inside_new_values_are_dropped() {
        let doc = json!({"metadata": {}});
        let patch =
            json!({"spec": {"a": null, "b": {"c": null, "d": 1}, "list": [{"e": null}, null]}});
        let out = run(doc, patch).expect("applies");
        assert_eq!(out["spec"], json!({"b": {"d": 1}, "list": [{}, null]}));
    }

    #[test]
    fn deleting_a_missing_key_is_a_no_op() {
        let doc = json!({"metadata": {"name": "x"}});
        assert_eq!(
            run(doc.clone(), json!({"metadata": {"labels": null}})).expect("applies"),
            doc
        );
    }

    #[test]
    fn an_object_replaces_a_scalar() {
        let out = run(json!({"a": 1}), json!({"a": {"b": 2}})).expect("applies");
        assert_eq!(out, json!({"a": {"b": 2}}));
    }

    #[test]
    fn non_object_patches_are_rejected() {
        for body in [json!([1]), json!("x"), json!(null), json!(3)] {
            assert!(matches!(
                run(json!({}), body),
                Err(PatchError::PatchNotObject(_))
            ));
        }
    }
}
