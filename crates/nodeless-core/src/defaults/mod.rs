//! Defaulting of built-in objects: the values upstream's `SetDefaults_*` functions (and the
//! generated declarative defaults) fill in when an object is decoded.
//!
//! Clients and controllers rely on these being present: kubectl shows them, `kubectl apply`
//! diffs against them, and the Deployment, StatefulSet and Job controllers read
//! `replicas`, `strategy`, `completions` and friends without handling their absence.
//!
//! Rules, as upstream: a pointer field (`Option` in k8s-openapi) is set only when absent or
//! `null`; a plain Go string or integer field is also set when it holds its zero value
//! (`""`, `0`), because Go cannot tell that from unset. Applying the defaults twice gives the
//! same object. The API server runs them after `typed::decode`, so values have their types;
//! anything else is left alone rather than replaced.
//!
//! Not here: what the registries do on create (`job_selector_on_create`,
//! `namespace_on_create` are provided for them), Service IP allocation, Pod `priority`
//! (set by the Priority admission plugin), and the rounding of resource quantities to
//! milli-units (the user's spelling is kept).

mod apps;
mod autoscaling;
mod batch;
mod core_v1;
mod other;
mod pod;

use serde_json::{Map, Value};

pub use batch::job_selector_on_create;
pub use core_v1::namespace_on_create;

type Obj = Map<String, Value>;

/// Sets the upstream defaults of a `group/version, kind` object in place.
pub fn apply_defaults(group: &str, version: &str, kind: &str, obj: &mut Value) {
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    match (group, version, kind) {
        ("", "v1", "Pod") => pod::pod(obj),
        ("", "v1", "Service") => core_v1::service(obj),
        ("", "v1", "Secret") => core_v1::secret(obj),
        ("", "v1", "Namespace") => core_v1::namespace(obj),
        ("", "v1", "PersistentVolumeClaim") => core_v1::persistent_volume_claim(obj),
        ("", "v1", "ReplicationController") => core_v1::replication_controller(obj),
        ("", "v1", "Endpoints") => core_v1::endpoints(obj),
        ("", "v1", "Node") => core_v1::node(obj),
        ("", "v1", "LimitRange") => core_v1::limit_range(obj),
        ("apps", "v1", "Deployment") => apps::deployment(obj),
        ("apps", "v1", "ReplicaSet") => apps::replica_set(obj),
        ("apps", "v1", "StatefulSet") => apps::stateful_set(obj),
        ("apps", "v1", "DaemonSet") => apps::daemon_set(obj),
        ("batch", "v1", "Job") => batch::job(obj),
        ("batch", "v1", "CronJob") => batch::cron_job(obj),
        ("autoscaling", "v2", "HorizontalPodAutoscaler") => autoscaling::hpa_v2(obj),
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => autoscaling::hpa_v1(obj),
        ("networking.k8s.io", "v1", "NetworkPolicy") => other::network_policy(obj),
        ("networking.k8s.io", "v1", "IngressClass") => other::ingress_class(obj),
        ("discovery.k8s.io", "v1", "EndpointSlice") => other::endpoint_slice(obj),
        ("rbac.authorization.k8s.io", "v1", "RoleBinding" | "ClusterRoleBinding") => {
            other::role_binding(obj)
        }
        ("scheduling.k8s.io", "v1", "PriorityClass") => other::priority_class(obj),
        ("storage.k8s.io", "v1", "StorageClass") => other::storage_class(obj),
        ("apiextensions.k8s.io", "v1", "CustomResourceDefinition") => {
            other::custom_resource_definition(obj)
        }
        // Upstream has no defaults for the rest (Ingress, PodDisruptionBudget, Lease, Events,
        // ConfigMap, ServiceAccount, RBAC roles, ...), or only quantity rounding.
        _ => {}
    }
}

/// The object at `key`, when it is one.
fn child<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    m.get_mut(key)?.as_object_mut()
}

/// The object at `key`, created when absent or `null` (a Go struct field is never absent);
/// `None` when the key holds something other than an object.
fn child_or_new<'a>(m: &'a mut Obj, key: &str) -> Option<&'a mut Obj> {
    let slot = m.entry(key).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Object(Map::new());
    }
    slot.as_object_mut()
}

/// The objects of the list at `key`.
fn items<'a>(m: &'a mut Obj, key: &str) -> impl Iterator<Item = &'a mut Obj> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

fn is_unset(v: Option<&Value>) -> bool {
    v.is_none_or(Value::is_null)
}

/// Absent, `null`, `""` or `0`: what Go sees as the zero value of a plain field.
fn is_zero(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(Value::Number(n)) => n.as_f64() == Some(0.0),
        Some(_) => false,
    }
}

/// Absent, `null`, or an empty list, map or string: Go's `len(x) == 0`.
fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// Defaults an optional (Go pointer) field.
fn set_unset(m: &mut Obj, key: &str, value: impl Into<Value>) {
    if is_unset(m.get(key)) {
        m.insert(key.into(), value.into());
    }
}

/// Defaults a plain Go string or integer field, which is "unset" at its zero value.
fn set_zero(m: &mut Obj, key: &str, value: impl Into<Value>) {
    if is_zero(m.get(key)) {
        m.insert(key.into(), value.into());
    }
}

fn str_at<'a>(m: &'a Obj, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// `spec.template.spec` of a workload: Go's template is a struct, so its defaults apply
/// even when the template was left empty.
fn template_spec(spec: &mut Obj) {
    if let Some(pod_spec) = child_or_new(spec, "template").and_then(|t| child_or_new(t, "spec")) {
        pod::pod_spec(pod_spec);
    }
}

#[cfg(test)]
mod tests;
