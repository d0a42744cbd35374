//! `metadata` checks shared by every kind: names, namespace, labels, annotations, owner
//! references and finalizers on create; immutability on update.

use super::names;
use super::render::{invalid_rendered, string_slice};
use crate::field::{ErrorList, FieldError, Path};
use serde_json::Value;

/// Upstream's `FieldImmutableErrorMsg`.
pub(crate) const IMMUTABLE: &str = "field is immutable";
/// Upstream's `IsNegativeErrorMsg`.
pub(crate) const NEGATIVE: &str = "must be greater than or equal to 0";
const TOTAL_ANNOTATION_SIZE_LIMIT: usize = 256 * 1024;

/// Which format a kind's `metadata.name` must have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// DNS-1123 subdomain: most kinds.
    Subdomain,
    /// DNS-1123 label: Namespace, StatefulSet.
    Label,
    /// RFC 1035 label: Service.
    Rfc1035,
    /// One URL path segment: RBAC objects, HorizontalPodAutoscaler.
    PathSegment,
}

impl NameRule {
    pub(crate) fn check(self, name: &str) -> Vec<String> {
        match self {
            NameRule::Subdomain => names::is_dns1123_subdomain(name),
            NameRule::Label => names::is_dns1123_label(name),
            NameRule::Rfc1035 => names::is_dns1035_label(name),
            NameRule::PathSegment => names::is_valid_path_segment_name(name),
        }
    }
}

fn meta_str<'a>(obj: &'a Value, key: &str) -> &'a str {
    obj.get("metadata")
        .and_then(|m| m.get(key))
        .and_then(Value::as_str)
        .unwrap_or("")
}

fn meta_field<'a>(obj: &'a Value, key: &str) -> Option<&'a Value> {
    obj.get("metadata")
        .and_then(|m| m.get(key))
        .filter(|v| !v.is_null())
}

/// `ValidateObjectMeta`, run on create. The name is expected to be generated already.
pub(crate) fn validate_object_meta(obj: &Value, namespaced: bool, rule: NameRule) -> ErrorList {
    let path = Path::new("metadata");
    let mut errs = ErrorList::new();
    let name = meta_str(obj, "name");
    if name.is_empty() {
        errs.push(FieldError::required(
            path.child("name"),
            "name or generateName is required",
        ));
    } else {
        for msg in rule.check(name) {
            errs.push(FieldError::invalid(path.child("name"), name, msg));
        }
    }
    let namespace = meta_str(obj, "namespace");
    if namespaced {
        if namespace.is_empty() {
            errs.push(FieldError::required(path.child("namespace"), ""));
        } else {
            for msg in names::is_dns1123_label(namespace) {
                errs.push(FieldError::invalid(path.child("namespace"), namespace, msg));
            }
        }
    } else if !namespace.is_empty() {
        errs.push(FieldError::forbidden(
            path.child("namespace"),
            "not allowed on this type",
        ));
    }
    if let Some(g) = meta_field(obj, "generation")
        .and_then(Value::as_i64)
        .filter(|g| *g < 0)
    {
        errs.push(FieldError::invalid(path.child("generation"), g, NEGATIVE));
    }
    errs.extend(validate_common(obj, &path));
    errs
}

/// The parts checked the same way on create and update.
fn validate_common(obj: &Value, path: &Path) -> ErrorList {
    let mut errs = validate_labels(meta_field(obj, "labels"), &path.child("labels"));
    errs.extend(validate_annotations(
        meta_field(obj, "annotations"),
        &path.child("annotations"),
    ));
    errs.extend(validate_owner_references(
        meta_field(obj, "ownerReferences"),
        &path.child("ownerReferences"),
    ));
    errs.extend(validate_finalizers(
        meta_field(obj, "finalizers"),
        &path.child("finalizers"),
    ));
    errs
}

/// `ValidateObjectMetaUpdate`: identity fields are immutable, the rest re-validated.
pub(crate) fn validate_object_meta_update(new: &Value, old: &Value) -> ErrorList {
    let path = Path::new("metadata");
    let mut errs = ErrorList::new();
    if meta_field(old, "deletionTimestamp").is_some() {
        errs.extend(no_new_finalizers(new, old, &path.child("finalizers")));
    }
    for key in ["name", "namespace"] {
        let (n, o) = (meta_str(new, key), meta_str(old, key));
        if n != o {
            errs.push(FieldError::invalid(path.child(key), n, IMMUTABLE));
        }
    }
    // The server copies an omitted uid or creationTimestamp from the stored object, so only
    // a value that is present and different is a change.
    for key in ["uid", "creationTimestamp"] {
        let (n, o) = (meta_str(new, key), meta_str(old, key));
        if !n.is_empty() && n != o {
            errs.push(FieldError::invalid(path.child(key), n, IMMUTABLE));
        }
    }
    errs.extend(validate_common(new, &path));
    errs
}

fn no_new_finalizers(new: &Value, old: &Value, path: &Path) -> Option<FieldError> {
    let old_f = crate::meta::finalizers(old);
    let mut extra: Vec<String> = crate::meta::finalizers(new)
        .into_iter()
        .filter(|f| !old_f.contains(f))
        .collect();
    if extra.is_empty() {
        return None;
    }
    extra.sort();
    extra.dedup();
    let rendered = string_slice(Some(&Value::from(extra)));
    Some(FieldError::forbidden(
        path,
        format!("no new finalizers can be added if the object is being deleted, found new finalizers {rendered}"),
    ))
}

/// `field is immutable` when a field changed (absent and `null` are the same).
pub(crate) fn immutable(
    new: Option<&Value>,
    old: Option<&Value>,
    path: &Path,
) -> Option<FieldError> {
    let norm = |v: Option<&Value>| v.filter(|v| !v.is_null()).cloned();
    let (n, o) = (norm(new), norm(old));
    (n != o).then(|| FieldError::invalid(path, n.unwrap_or(Value::Null), IMMUTABLE))
}

pub(crate) fn validate_label_name(key: &str, path: &Path) -> ErrorList {
    names::is_qualified_name(key)
        .into_iter()
        .map(|msg| FieldError::invalid(path, key, msg))
        .collect()
}

/// `ValidateLabels`: keys are qualified names, values label values; errors name the map.
pub(crate) fn validate_labels(labels: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(map) = labels.and_then(Value::as_object) else {
        return errs;
    };
    for (k, v) in map {
        errs.extend(validate_label_name(k, path));
        let v = v.as_str().unwrap_or("");
        for msg in names::is_valid_label_value(v) {
            errs.push(FieldError::invalid(path, v, msg));
        }
    }
    errs
}

/// `ValidateAnnotations`: case-insensitive qualified-name keys, 256 KiB in total.
pub(crate) fn validate_annotations(annotations: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(map) = annotations.and_then(Value::as_object) else {
        return errs;
    };
    let mut total = 0usize;
    for (k, v) in map {
        for msg in names::is_qualified_name(&k.to_lowercase()) {
            errs.push(FieldError::invalid(path, k.as_str(), msg));
        }
        total += k.len() + v.as_str().map_or(0, str::len);
    }
    if total > TOTAL_ANNOTATION_SIZE_LIMIT {
        errs.push(FieldError::too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT));
    }
    errs
}

/// `ValidateOwnerReferences`. Upstream reports these on the list path, without an index.
fn validate_owner_references(refs: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(list) = refs.and_then(Value::as_array) else {
        return errs;
    };
    let mut first_controller: Option<String> = None;
    for r in list {
        let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("");
        let api_version = text("apiVersion");
        let version = api_version.rsplit('/').next().unwrap_or("");
        if version.is_empty() {
            errs.push(FieldError::invalid(
                path.child("apiVersion"),
                api_version,
                "version must not be empty",
            ));
        }
        for key in ["kind", "name", "uid"] {
            if text(key).is_empty() {
                errs.push(FieldError::invalid(
                    path.child(key),
                    "",
                    "must not be empty",
                ));
            }
        }
        if api_version == "v1" && text("kind") == "Event" {
            errs.push(FieldError::invalid(
                path,
                r.clone(),
                "/v1, Kind=Event is disallowed from being an owner",
            ));
        }
        if r.get("controller").and_then(Value::as_bool) == Some(true) {
            let current = format!("{}/{}", text("kind"), text("name"));
            match &first_controller {
                Some(first) => errs.push(FieldError::invalid(
                    path,
                    Value::Array(list.clone()),
                    format!(
                        "Only one reference can have Controller set to true. Found \"true\" in references for {first} and {current}"
                    ),
                )),
                None => first_controller = Some(current),
            }
        }
    }
    errs
}

/// `ValidateFinalizers`: qualified names, and not both orphan and foreground deletion.
fn validate_finalizers(finalizers: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(list) = finalizers.and_then(Value::as_array) else {
        return errs;
    };
    let names: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
    for f in &names {
        for msg in names::is_qualified_name(f) {
            errs.push(FieldError::invalid(path, *f, msg));
        }
    }
    if names.contains(&"orphan") && names.contains(&"foregroundDeletion") {
        errs.push(invalid_rendered(
            path,
            string_slice(finalizers),
            "finalizer orphan and foregroundDeletion cannot be both set",
        ));
    }
    errs
}
