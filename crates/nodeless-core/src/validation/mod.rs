//! Validation of objects on create and update, as kube-apiserver does it.
//!
//! Each check mirrors upstream (`pkg/apis/*/validation` and apimachinery's ObjectMeta and
//! name rules) for the mistakes users make most, with upstream's field paths, error types
//! and messages, so `kubectl` prints what people expect and search for. Objects arrive
//! defaulted; a defaulted field that is still absent is not reported (the defaulter owns
//! it), only wrong values are.

mod apps;
mod batch;
mod cluster;
mod config;
mod container;
mod crd;
mod cron;
mod env;
mod meta;
pub mod names;
mod networking;
mod pod;
mod pod_update;
pub mod quantity;
mod render;
mod scaling;
mod selector;
mod service;

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
        ("", "Pod") => pod::validate_pod(obj),
        ("", "PodTemplate") => {
            pod::validate_pod_template(obj.get("template"), &Path::new("template"))
        }
        ("", "Service") => service::validate_service(obj),
        ("", "ConfigMap") => config::validate_config_map(obj),
        ("", "Secret") => config::validate_secret(obj),
        ("", "Namespace") => cluster::validate_namespace(obj),
        ("", "Event") => cluster::validate_event(obj, false),
        ("events.k8s.io", "Event") => cluster::validate_event(obj, true),
        ("", "ReplicationController") => apps::validate_replication_controller(obj),
        ("apps", "Deployment") => apps::validate_deployment(obj),
        ("apps", "ReplicaSet") => apps::validate_replica_set(obj),
        ("apps", "StatefulSet") => apps::validate_stateful_set(obj),
        ("apps", "DaemonSet") => apps::validate_daemon_set(obj),
        ("batch", "Job") => batch::validate_job(obj),
        ("batch", "CronJob") => batch::validate_cron_job(obj, None),
        ("networking.k8s.io", "Ingress") => networking::validate_ingress(obj),
        ("autoscaling", "HorizontalPodAutoscaler") => scaling::validate_hpa(obj),
        ("policy", "PodDisruptionBudget") => scaling::validate_pdb(obj),
        ("coordination.k8s.io", "Lease") => cluster::validate_lease(obj),
        ("node.k8s.io", "RuntimeClass") => cluster::validate_runtime_class(obj),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd::validate_crd(obj),
        _ => ErrorList::new(),
    }
}

fn update_body(group: &str, kind: &str, new: &Value, old: &Value) -> ErrorList {
    match (group, kind) {
        ("", "Pod") => pod_update::validate_pod_update(new, old),
        ("", "Service") => service::validate_service_update(new, old),
        ("", "ConfigMap") => config::validate_config_map_update(new, old),
        ("", "Secret") => config::validate_secret_update(new, old),
        ("apps", "Deployment" | "ReplicaSet" | "DaemonSet") => {
            let mut errs: ErrorList = apps::selector_immutable(new, old).into_iter().collect();
            errs.extend(create_body(group, kind, new));
            errs
        }
        ("apps", "StatefulSet") => apps::validate_stateful_set_update(new, old),
        ("batch", "Job") => batch::validate_job_update(new, old),
        ("batch", "CronJob") => batch::validate_cron_job(new, Some(old)),
        ("node.k8s.io", "RuntimeClass") => cluster::validate_runtime_class_update(new, old),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => crd::validate_crd_update(new, old),
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

/// A value as Go's semantic equality sees it: `null`, `[]` and `{}` below the top level are
/// the same as absent.
pub(crate) fn semantic(v: &Value) -> Value {
    fn keep(v: &Value) -> bool {
        match v {
            Value::Null => false,
            Value::Array(a) => !a.is_empty(),
            Value::Object(m) => !m.is_empty(),
            _ => true,
        }
    }
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, v)| (k.clone(), semantic(v)))
                .filter(|(_, v)| keep(v))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(semantic).collect()),
        other => other.clone(),
    }
}
