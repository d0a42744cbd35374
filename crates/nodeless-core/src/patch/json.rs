//! JSON Patch (RFC 6902), with errors worded like upstream's evanphx/json-patch.

use super::{PatchError, MAX_JSON_PATCH_OPERATIONS};
use json_patch::{PatchErrorKind, PatchOperation};
use serde_json::Value;

pub(super) fn apply(original: &Value, body: &[u8]) -> Result<Value, PatchError> {
    let ops: Vec<PatchOperation> = serde_json::from_slice(body).map_err(PatchError::DecodePatch)?;
    if ops.len() > MAX_JSON_PATCH_OPERATIONS {
        return Err(PatchError::TooManyOperations(ops.len()));
    }
    let mut doc = original.clone();
    for op in &ops {
        if is_vacuous_null_test(&doc, op) {
            continue;
        }
        // One operation at a time so a failure names its operation; the document is a copy,
        // so there is nothing to undo.
        json_patch::patch_unsafe(&mut doc, std::slice::from_ref(op))
            .map_err(|e| PatchError::JsonPatchFailed(describe(op, e.kind)))?;
    }
    Ok(doc)
}

/// Upstream lets `test` of a missing path against `null` pass: absent and null are alike.
fn is_vacuous_null_test(doc: &Value, op: &PatchOperation) -> bool {
    matches!(op, PatchOperation::Test(t) if t.value.is_null() && doc.pointer(t.path.as_str()).is_none())
}

fn describe(op: &PatchOperation, kind: PatchErrorKind) -> String {
    let path = op.path().as_str();
    match (op, kind) {
        (_, PatchErrorKind::TestFailed) => format!("testing value {path} failed: test failed"),
        (PatchOperation::Move(m), PatchErrorKind::CannotMoveInsideItself) => {
            format!(
                "move operation does not apply: cannot move {} inside itself to {path}",
                m.from.as_str()
            )
        }
        (PatchOperation::Move(m), PatchErrorKind::InvalidFromPointer) => {
            missing_from("move", m.from.as_str())
        }
        (PatchOperation::Copy(c), PatchErrorKind::InvalidFromPointer) => {
            missing_from("copy", c.from.as_str())
        }
        (PatchOperation::Remove(_), _) => {
            format!("unable to remove nonexistent key: {path}: missing value")
        }
        (PatchOperation::Replace(_), _) => {
            format!("replace operation does not apply: doc is missing key: {path}: missing value")
        }
        (PatchOperation::Test(_), _) => {
            format!("test operation does not apply: doc is missing path: {path}: missing value")
        }
        (op, _) => {
            let name = match op {
                PatchOperation::Move(_) => "move",
                PatchOperation::Copy(_) => "copy",
                _ => "add",
            };
            format!("{name} operation does not apply: doc is missing path: {path:?}: missing value")
        }
    }
}

fn missing_from(op: &str, from: &str) -> String {
    format!("{op} operation does not apply: doc is missing from path: {from}: missing value")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(doc: Value, ops: Value) -> Result<Value, PatchError> {
        apply(&doc, ops.to_string().as_bytes())
    }

    #[test]
    fn all_six_operations_apply_in_order() {
        let doc = json!({"spec": {"replicas": 1, "args": ["a", "b"]}, "metadata": {"labels": {"x": "1"}}});
        let ops = json!([
            {"op": "test", "path": "/spec/replicas", "value": 1},
            {"op": "replace", "path": "/spec/replicas", "value": 3},
            {"op": "add", "path": "/spec/args/1", "value": "between"},
            {"op": "add", "path": "/spec/args/-", "value": "last"},
            {"op": "remove", "path": "/spec/args/0"},
            {"op": "copy", "from": "/metadata/labels", "path": "/metadata/annotations"},
            {"op": "move", "from": "/metadata/labels/x", "path": "/metadata/labels/y"},
        ]);
        let out = run(doc, ops).expect("applies");
        assert_eq!(
            out["spec"],
            json!({"replicas": 3, "args": ["between", "b", "last"]})
        );
        assert_eq!(
            out["metadata"],
            json!({"labels": {"y": "1"}, "annotations": {"x": "1"}})
        );
    }

    #[test]
    fn pointer_escapes_reach_keys_with_slashes_and_tildes() {
        let doc = json!({"metadata": {"annotations": {"example.com/a~b": "old"}}});
        let ops = json!([{"op": "replace", "path": "/metadata/annotations/example.com~1a~0b", "value": "new"}]);
        let out = run(doc, ops).expect("applies");
        assert_eq!(out["metadata"]["annotations"]["example.com/a~b"], "new");
    }

    #[test]
    fn failed_test_names_the_path_like_upstream() {
        let doc = json!({"spec": {"replicas": 1}});
        let err = run(
            doc,
            json!([{"op": "test", "path": "/spec/replicas", "value": 2}]),
        )
        .expect_err("fails");
        assert_eq!(
            err.to_string(),
            "testing value /spec/replicas failed: test failed"
        );
    }

    #[test]
    fn test_of_missing_path_against_null_passes_as_upstream() {
        let doc = json!({"spec": {}});
        let out = run(
            doc.clone(),
            json!([{"op": "test", "path": "/spec/paused", "value": null}]),
        );
        assert_eq!(out.expect("passes"), doc);
    }

    #[test]
    fn missing_paths_fail_per_operation() {
        let doc = json!({"spec": {}});
        let cases = [
            (
                json!({"op": "remove", "path": "/spec/x"}),
                "unable to remove nonexistent key: /spec/x",
            ),
            (
                json!({"op": "replace", "path": "/spec/x", "value": 1}),
                "replace operation does not apply",
            ),
            (
                json!({"op": "add", "path": "/nope/x", "value": 1}),
                "add operation does not apply",
            ),
            (
                json!({"op": "move", "from": "/a", "path": "/b"}),
                "doc is missing from path: /a",
            ),
            (
                json!({"op": "add", "path": "/spec/list/5", "value": 1}),
                "add operation does not apply",
            ),
        ];
        for (op, want) in cases {
            let err = run(doc.clone(), json!([op])).expect_err("fails");
            assert!(
                err.to_string().starts_with(want) || err.to_string().contains(want),
                "{err}"
            );
        }
    }

    #[test]
    fn earlier_operations_do_not_leak_when_a_later_one_fails() {
        let doc = json!({"spec": {"replicas": 1}});
        let ops = json!([{"op": "replace", "path": "/spec/replicas", "value": 5}, {"op": "remove", "path": "/x"}]);
        assert!(run(doc.clone(), ops).is_err());
        assert_eq!(doc["spec"]["replicas"], 1);
    }

    #[test]
    fn malformed_patches_are_decode_errors() {
        let doc = json!({});
        for body in [
            json!({"op": "add"}),
            json!([{"op": "frobnicate", "path": "/a"}]),
            json!([{"path": "/a"}]),
        ] {
            assert!(matches!(
                run(doc.clone(), body),
                Err(PatchError::DecodePatch(_))
            ));
        }
    }

    #[test]
    fn too_many_operations_are_refused() {
        let ops: Vec<Value> = (0..=MAX_JSON_PATCH_OPERATIONS)
            .map(|_| json!({"op": "test", "path": "", "value": {}}))
            .collect();
        assert!(matches!(
            run(json!({}), Value::Array(ops)),
            Err(PatchError::TooManyOperations(10_001))
        ));
    }
}
