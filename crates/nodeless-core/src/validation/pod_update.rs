//! Pod updates (`ValidatePodUpdate`): a running pod's spec is immutable except for images,
//! a shrinking `activeDeadlineSeconds`, added tolerations and removed scheduling gates.

use super::pod::{pod_only, validate_pod_spec};
use super::{int, items};
use crate::field::{ErrorList, FieldError, Path};
use serde_json::{Map, Value};

const UPDATABLE_FIELDS: [&str; 5] = [
    "`spec.containers[*].image`",
    "`spec.initContainers[*].image`",
    "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
];

pub(crate) fn validate_pod_update(new: &Value, old: &Value) -> ErrorList {
    let spec_path = Path::new("spec");
    let new_spec = new.get("spec").unwrap_or(&Value::Null);
    let old_spec = old.get("spec").unwrap_or(&Value::Null);
    let mut errs = validate_pod_spec(new_spec, &spec_path);
    errs.extend(pod_only(new_spec, &spec_path));
    for list in ["containers", "initContainers"] {
        if items(new_spec, list).len() != items(old_spec, list).len() {
            errs.push(FieldError::forbidden(
                spec_path.child(list),
                "pod updates may not add or remove containers",
            ));
            return errs;
        }
    }
    if let Some(e) = active_deadline_change(new_spec, old_spec, &spec_path) {
        errs.push(e);
        return errs;
    }
    errs.extend(only_added_tolerations(
        new_spec,
        old_spec,
        &spec_path.child("tolerations"),
    ));
    errs.extend(only_removed_gates(
        new_spec,
        old_spec,
        &spec_path.child("schedulingGates"),
    ));
    let munged = munge(new_spec, old_spec);
    let (old_clean, new_clean) = (without_nulls(old_spec), without_nulls(&munged));
    if old_clean != new_clean {
        let mut diff = Vec::new();
        diff_values("spec", &old_clean, &new_clean, &mut diff);
        errs.push(FieldError::forbidden(
            &spec_path,
            format!(
                "pod updates may not change fields other than {}\n{}",
                UPDATABLE_FIELDS.join(","),
                diff.join("\n")
            ),
        ));
    }
    errs
}

/// Allowed: nil to a value, or a value to a smaller one.
fn active_deadline_change(new: &Value, old: &Value, path: &Path) -> Option<FieldError> {
    let p = path.child("activeDeadlineSeconds");
    match (
        int(new, "activeDeadlineSeconds"),
        int(old, "activeDeadlineSeconds"),
    ) {
        (Some(n), _) if !(0..=i64::from(i32::MAX)).contains(&n) => Some(FieldError::invalid(
            p,
            n,
            super::names::inclusive_range_error(0, i64::from(i32::MAX)),
        )),
        (Some(n), Some(o)) if o < n => Some(FieldError::invalid(
            p,
            n,
            "must be less than or equal to previous value",
        )),
        (None, Some(_)) => Some(FieldError::invalid(
            p,
            Value::Null,
            "must not update from a positive integer to nil value",
        )),
        _ => None,
    }
}

fn only_added_tolerations(new: &Value, old: &Value, path: &Path) -> Option<FieldError> {
    let strip = |t: &Value| {
        let mut t = without_nulls(t);
        if let Some(m) = t.as_object_mut() {
            m.remove("tolerationSeconds");
        }
        t
    };
    let new_list: Vec<Value> = items(new, "tolerations").iter().map(strip).collect();
    let kept = items(old, "tolerations")
        .iter()
        .all(|t| new_list.contains(&strip(t)));
    (!kept).then(|| {
        FieldError::forbidden(
            path,
            "existing toleration can not be modified except its tolerationSeconds",
        )
    })
}

fn only_removed_gates(new: &Value, old: &Value, path: &Path) -> ErrorList {
    let gate = |g: &Value| {
        g.get("name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let old_gates: Vec<String> = items(old, "schedulingGates").iter().map(gate).collect();
    items(new, "schedulingGates")
        .iter()
        .enumerate()
        .filter(|(_, g)| !old_gates.contains(&gate(g)))
        .map(|(i, g)| {
            FieldError::forbidden(
                path.index(i).child("name"),
                format!(
                    "only deletion is allowed, but found new scheduling gate '{}'",
                    gate(g)
                ),
            )
        })
        .collect()
}

/// The new spec with every field users may change put back to the old value.
fn munge(new: &Value, old: &Value) -> Value {
    let mut munged = new.clone();
    let Some(m) = munged.as_object_mut() else {
        return munged;
    };
    for list in ["containers", "initContainers"] {
        if let Some(Value::Array(cs)) = m.get_mut(list) {
            for (c, o) in cs.iter_mut().zip(items(old, list)) {
                if let Some(c) = c.as_object_mut() {
                    restore(c, "image", o.get("image"));
                }
            }
        }
    }
    for key in ["activeDeadlineSeconds", "tolerations", "schedulingGates"] {
        restore(m, key, old.get(key));
    }
    let old_grace = int(old, "terminationGracePeriodSeconds");
    if old_grace.is_some_and(|g| g < 0) && int(new, "terminationGracePeriodSeconds") == Some(1) {
        restore(
            m,
            "terminationGracePeriodSeconds",
            old.get("terminationGracePeriodSeconds"),
        );
    }
    munged
}

fn restore(m: &mut Map<String, Value>, key: &str, old: Option<&Value>) {
    match old {
        Some(v) => m.insert(key.to_string(), v.clone()),
        None => m.remove(key),
    };
}

/// Absent and `null` mean the same in the API; compare without the nulls.
fn without_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

/// One line per changed leaf: `  spec.x: old -> new`, so users see what they touched.
fn diff_values(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            for (k, ov) in o {
                diff_values(
                    &format!("{path}.{k}"),
                    ov,
                    n.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
            for (k, nv) in n.iter().filter(|(k, _)| !o.contains_key(*k)) {
                diff_values(&format!("{path}.{k}"), &Value::Null, nv, out);
            }
        }
        (Value::Array(o), Value::Array(n)) if o.len() == n.len() => {
            for (i, (ov, nv)) in o.iter().zip(n).enumerate() {
                diff_values(&format!("{path}[{i}]"), ov, nv, out);
            }
        }
        (o, n) if o != n => out.push(format!("  {path}: {o} -> {n}")),
        _ => {}
    }
}
