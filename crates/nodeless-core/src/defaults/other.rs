//! Defaults of the smaller groups: networking, discovery, RBAC, scheduling, storage and
//! apiextensions.

use super::{child, child_or_new, is_empty, items, set_unset, set_zero, str_at, Obj};
use serde_json::{json, Value};

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

pub(super) fn network_policy(obj: &mut Obj) {
    let Some(spec) = child_or_new(obj, "spec") else {
        return;
    };
    for direction in ["ingress", "egress"] {
        for port in items(spec, direction).flat_map(|rule| items(rule, "ports")) {
            set_unset(port, "protocol", "TCP");
        }
    }
    // A policy that names no types restricts ingress, and egress too when it has rules.
    if is_empty(spec.get("policyTypes")) {
        let mut types = vec![Value::from("Ingress")];
        if !is_empty(spec.get("egress")) {
            types.push("Egress".into());
        }
        spec.insert("policyTypes".into(), Value::Array(types));
    }
}

pub(super) fn ingress_class(obj: &mut Obj) {
    if let Some(parameters) = child(obj, "spec").and_then(|s| child(s, "parameters")) {
        set_unset(parameters, "scope", "Cluster");
    }
}

pub(super) fn endpoint_slice(obj: &mut Obj) {
    for port in items(obj, "ports") {
        set_unset(port, "name", "");
        set_unset(port, "protocol", "TCP");
    }
}

/// RoleBinding and ClusterRoleBinding: users and groups, and the role, are RBAC's.
pub(super) fn role_binding(obj: &mut Obj) {
    if let Some(role_ref) = child_or_new(obj, "roleRef") {
        set_zero(role_ref, "apiGroup", RBAC_GROUP);
    }
    for subject in items(obj, "subjects") {
        if matches!(str_at(subject, "kind"), "User" | "Group") {
            set_zero(subject, "apiGroup", RBAC_GROUP);
        }
    }
}

pub(super) fn priority_class(obj: &mut Obj) {
    set_unset(obj, "preemptionPolicy", "PreemptLowerPriority");
}

pub(super) fn storage_class(obj: &mut Obj) {
    set_unset(obj, "reclaimPolicy", "Delete");
    set_unset(obj, "volumeBindingMode", "Immediate");
}

pub(super) fn custom_resource_definition(obj: &mut Obj) {
    let Some(spec) = child_or_new(obj, "spec") else {
        return;
    };
    if let Some(names) = child_or_new(spec, "names") {
        let kind = str_at(names, "kind").to_string();
        set_zero(names, "singular", kind.to_lowercase());
        if !kind.is_empty() {
            set_zero(names, "listKind", format!("{kind}List"));
        }
    }
    set_unset(spec, "conversion", json!({"strategy": "None"}));
    let service = child(spec, "conversion")
        .and_then(|c| child(c, "webhook"))
        .and_then(|w| child(w, "clientConfig"))
        .and_then(|c| child(c, "service"));
    if let Some(service) = service {
        set_unset(service, "port", 443);
    }
    let storage_version = spec
        .get("versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .and_then(|v| v.get("name"))
        .cloned();
    if let Some(version) = storage_version {
        if let Some(status) = child_or_new(obj, "status") {
            if is_empty(status.get("storedVersions")) {
                status.insert("storedVersions".into(), Value::Array(vec![version]));
            }
        }
    }
}
