//! CustomResourceDefinitions (apiextensions-apiserver's validation): names, group,
//! versions, scope and the structural schema's basics.

use super::names;
use super::{field, flag, items, text};
use crate::field::{ErrorList, FieldError, Path};
use serde_json::Value;
use std::collections::HashSet;

pub(crate) fn validate_crd(obj: &Value) -> ErrorList {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    let group = text(spec, "group");
    let crd_names = spec.get("names").unwrap_or(&Value::Null);
    let plural = text(crd_names, "plural");
    let name = crate::meta::name(obj).unwrap_or("");
    if !name.is_empty() && name != format!("{plural}.{group}") {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    if group.is_empty() {
        errs.push(FieldError::required(path.child("group"), ""));
    } else if let msgs @ [_, ..] = names::is_dns1123_subdomain(group).as_slice() {
        errs.push(FieldError::invalid(
            path.child("group"),
            group,
            msgs.join(","),
        ));
    } else if !group.contains('.') {
        errs.push(FieldError::invalid(
            path.child("group"),
            group,
            "should be a domain with at least one dot",
        ));
    }
    match text(spec, "scope") {
        "" => errs.push(FieldError::required(path.child("scope"), "")),
        "Cluster" | "Namespaced" => {}
        other => errs.push(FieldError::not_supported(
            path.child("scope"),
            other,
            &["Cluster", "Namespaced"],
        )),
    }
    errs.extend(validate_versions(spec, &path));
    errs.extend(validate_names(crd_names, &path.child("names")));
    errs
}

fn validate_versions(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let versions = items(spec, "versions");
    let vpath = path.child("versions");
    let mut seen = HashSet::new();
    let mut unique = true;
    for (i, v) in versions.iter().enumerate() {
        let name = text(v, "name");
        unique &= seen.insert(name);
        if let msgs @ [_, ..] = names::is_dns1035_label(name).as_slice() {
            errs.push(FieldError::invalid(
                vpath.index(i).child("name"),
                name,
                msgs.join(","),
            ));
        }
        let schema = v.get("schema").and_then(|s| field(s, "openAPIV3Schema"));
        let schema_path = vpath.index(i).child("schema").child("openAPIV3Schema");
        match schema {
            None => errs.push(FieldError::required(&schema_path, "schemas are required")),
            Some(s) => errs.extend(structural(s, &schema_path, true)),
        }
    }
    if !unique {
        errs.push(FieldError::invalid(
            &vpath,
            Value::Array(versions.to_vec()),
            "must contain unique version names",
        ));
    }
    if versions.iter().filter(|v| flag(v, "storage")).count() != 1 {
        errs.push(FieldError::invalid(
            &vpath,
            Value::Array(versions.to_vec()),
            "must have exactly one version marked as storage version",
        ));
    }
    errs
}

/// The structural-schema rules users trip over: every specified field has a type, and
/// the root is an object.
fn structural(schema: &Value, path: &Path, root: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    let schema_type = text(schema, "type");
    // Nodes that carry arbitrary or int-or-string content need no type.
    let exempt = [
        "x-kubernetes-int-or-string",
        "x-kubernetes-embedded-resource",
        "x-kubernetes-preserve-unknown-fields",
    ]
    .iter()
    .any(|k| flag(schema, k));
    if schema_type.is_empty() && !exempt {
        errs.push(FieldError::required(
            path.child("type"),
            "must not be empty for specified object fields",
        ));
    }
    if root && !schema_type.is_empty() && schema_type != "object" {
        errs.push(FieldError::invalid(
            path.child("type"),
            schema_type,
            "must be object at the root",
        ));
    }
    if let Some(props) = field(schema, "properties").and_then(Value::as_object) {
        for (name, sub) in props {
            errs.extend(structural(sub, &path.child("properties").key(name), false));
        }
    }
    if let Some(sub) = field(schema, "items").filter(|i| i.is_object()) {
        errs.extend(structural(sub, &path.child("items"), false));
    }
    if let Some(sub) = field(schema, "additionalProperties").filter(|i| i.is_object()) {
        errs.extend(structural(sub, &path.child("additionalProperties"), false));
    }
    errs
}

/// `ValidateCustomResourceDefinitionNames`. `singular` and `listKind` are defaulted from
/// `kind`, so only `plural` and `kind` are required here.
fn validate_names(n: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for key in ["plural", "kind"] {
        if text(n, key).is_empty() {
            errs.push(FieldError::required(path.child(key), ""));
        }
    }
    for key in ["plural", "singular"] {
        let v = text(n, key);
        if let msgs @ [_, ..] = names::is_dns1035_label(v).as_slice() {
            if !v.is_empty() {
                errs.push(FieldError::invalid(path.child(key), v, msgs.join(",")));
            }
        }
    }
    for key in ["kind", "listKind"] {
        let v = text(n, key);
        if let msgs @ [_, ..] = names::is_dns1035_label(&v.to_lowercase()).as_slice() {
            if !v.is_empty() {
                let msg = format!(
                    "may have mixed case, but should otherwise match: {}",
                    msgs.join(",")
                );
                errs.push(FieldError::invalid(path.child(key), v, msg));
            }
        }
    }
    for key in ["shortNames", "categories"] {
        for (i, v) in items(n, key).iter().enumerate() {
            let v = v.as_str().unwrap_or("");
            if let msgs @ [_, ..] = names::is_dns1035_label(v).as_slice() {
                errs.push(FieldError::invalid(
                    path.child(key).index(i),
                    v,
                    msgs.join(","),
                ));
            }
        }
    }
    let kind = text(n, "kind");
    if !kind.is_empty() && kind == text(n, "listKind") {
        errs.push(FieldError::invalid(
            path.child("listKind"),
            kind,
            "kind and listKind may not be the same",
        ));
    }
    errs
}

/// The group and scope of a served CRD cannot change.
pub(crate) fn validate_crd_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_crd(new);
    let (spec, old_spec) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    for key in ["group", "scope"] {
        errs.extend(super::meta::immutable(
            field(spec, key),
            field(old_spec, key),
            &Path::new("spec").child(key),
        ));
    }
    errs
}
