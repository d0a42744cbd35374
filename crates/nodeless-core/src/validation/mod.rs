//! Validation of objects on create and update, as kube-apiserver does it.
//!
//! Each check mirrors upstream (`pkg/apis/*/validation` and apimachinery's ObjectMeta and
//! name rules) for the mistakes users make most, with upstream's field paths, error types
//! and messages, so `kubectl` prints what people expect and search for. Objects arrive
//! defaulted; a defaulted field that is still absent is not reported (the defaulter owns
//! it), only wrong values are.

mod meta;
pub mod names;
pub mod quantity;
mod render;
mod selector;

#[cfg(test)]
mod tests;

use crate::field::{ErrorList, FieldError, Path};
use meta::NameRule;
use serde_json::Value;

/// Validates an object about to be created. `namespaced` is the resource's scope.
pub fn validate_create(group: &str, kind: &str, obj: &Value, namespaced: bool) -> ErrorList {
    let mut errs = create_meta(group, kind, obj, namespaced);
    errs.extend(create_body(group, kind, obj));
    errs
}

/// Validates replacing `old` with `new`: immutable fields, then the new object's body.
pub fn validate_update(
    group: &str,
    kind: &str,
    new: &Value,
    old: &Value,
    namespaced: bool,
) -> ErrorList {
    let _ = namespaced; // scope cannot change on update; namespace immutability covers it
    let mut errs = meta::validate_object_meta_update(new, old);
    errs.extend(update_body(group, kind, new, old));
    errs
}

fn create_meta(group: &str, kind: &str, obj: &Value, namespaced: bool) -> ErrorList {
    match (group, kind) {
        // Legacy events skip ObjectMeta validation upstream; only the name is needed to store.
        ("", "Event") => match crate::meta::name(obj) {
            Some(_) => ErrorList::new(),
            None => vec![FieldError::required(
                "metadata.name",
                "name or generateName is required",
            )],
        },
        _ => meta::validate_object_meta(obj, namespaced, name_rule(group, kind)),
    }
}

/// The `metadata.name` format each kind requires.
fn name_rule(group: &str, kind: &str) -> NameRule {
    match (group, kind) {
        ("", "Namespace") | ("apps", "StatefulSet") => NameRule::Label,
        ("", "Service") => NameRule::Rfc1035,
        ("rbac.authorization.k8s.io", _) | ("autoscaling", "HorizontalPodAutoscaler") => {
            NameRule::PathSegment
        }
        _ => NameRule::Subdomain,
    }
}

fn create_body(group: &str, kind: &str, obj: &Value) -> ErrorList {
    match (group, kind) {
        _ => ErrorList::new(),
    }
}

fn update_body(group: &str, kind: &str, new: &Value, old: &Value) -> ErrorList {
    let _ = old;
    match (group, kind) {
        _ => create_body(group, kind, new),
    }
}

// Small accessors over JSON objects; absent and `null` are treated alike everywhere.

pub(crate) fn field<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|x| !x.is_null())
}

pub(crate) fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

pub(crate) fn int(v: &Value, key: &str) -> Option<i64> {
    v.get(key).and_then(Value::as_i64)
}

pub(crate) fn items<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

pub(crate) fn flag(v: &Value, key: &str) -> bool {
    v.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// `ValidateNonnegativeField` for an optional integer field.
pub(crate) fn nonnegative(v: &Value, key: &str, path: &Path) -> Option<FieldError> {
    int(v, key)
        .filter(|n| *n < 0)
        .map(|n| FieldError::invalid(path.child(key), n, meta::NEGATIVE))
}
