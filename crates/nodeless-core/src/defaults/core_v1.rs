//! Core v1 defaults other than the Pod's: Service, Secret, Namespace, PVC,
//! ReplicationController, Endpoints, Node and LimitRange.

use super::pod::{persistent_volume_claim_spec, pod_spec};
use super::{
    child, child_or_new, is_empty, is_unset, is_zero, items, set_unset, set_zero, str_at, Obj,
};
use serde_json::{json, Map, Value};

/// The ClientIP affinity timeout upstream sets when none is given: three hours.
const CLIENT_IP_TIMEOUT_SECONDS: i64 = 10800;

pub(super) fn service(obj: &mut Obj) {
    if let Some(spec) = child_or_new(obj, "spec") {
        service_spec(spec);
    }
    let is_load_balancer = obj
        .get("spec")
        .and_then(|s| s.get("type"))
        .and_then(Value::as_str)
        == Some("LoadBalancer");
    if is_load_balancer {
        let ingress = child(obj, "status")
            .and_then(|s| child(s, "loadBalancer"))
            .into_iter()
            .flat_map(|lb| items(lb, "ingress"));
        for ing in ingress {
            if !str_at(ing, "ip").is_empty() {
                set_unset(ing, "ipMode", "VIP");
            }
        }
    }
}

fn service_spec(spec: &mut Obj) {
    set_zero(spec, "sessionAffinity", "None");
    match str_at(spec, "sessionAffinity") {
        "None" => {
            spec.remove("sessionAffinityConfig");
        }
        "ClientIP" => {
            let timeout = spec
                .get("sessionAffinityConfig")
                .and_then(|c| c.get("clientIP"))
                .and_then(|c| c.get("timeoutSeconds"));
            if is_unset(timeout) {
                spec.insert(
                    "sessionAffinityConfig".into(),
                    json!({"clientIP": {"timeoutSeconds": CLIENT_IP_TIMEOUT_SECONDS}}),
                );
            }
        }
        _ => {}
    }
    set_zero(spec, "type", "ClusterIP");
    for port in items(spec, "ports") {
        set_zero(port, "protocol", "TCP");
        if is_zero(port.get("targetPort")) {
            let number = port.get("port").cloned().unwrap_or(Value::Null);
            port.insert("targetPort".into(), number);
        }
    }
    let service_type = str_at(spec, "type").to_string();
    let externally_accessible = matches!(service_type.as_str(), "LoadBalancer" | "NodePort")
        || (service_type == "ClusterIP" && !is_empty(spec.get("externalIPs")));
    if externally_accessible {
        set_zero(spec, "externalTrafficPolicy", "Cluster");
    }
    if matches!(
        service_type.as_str(),
        "ClusterIP" | "NodePort" | "LoadBalancer"
    ) {
        set_unset(spec, "internalTrafficPolicy", "Cluster");
        // Upstream's service REST storage fills these when it allocates cluster IPs; a
        // nodeless cluster is single-stack IPv4.
        set_unset(spec, "ipFamilyPolicy", "SingleStack");
        if is_empty(spec.get("ipFamilies")) {
            spec.insert("ipFamilies".into(), json!(["IPv4"]));
        }
    }
    if service_type == "LoadBalancer" {
        set_unset(spec, "allocateLoadBalancerNodePorts", true);
    }
}

pub(super) fn secret(obj: &mut Obj) {
    set_zero(obj, "type", "Opaque");
    // `stringData` is write-only: upstream's conversion folds it into `data` (base64), its
    // keys winning over `data`'s, and never stores it.
    if let Some(Value::Object(strings)) = obj.remove("stringData") {
        use base64::Engine as _;
        let data = obj
            .entry("data")
            .or_insert_with(|| Value::Object(Default::default()));
        if !data.is_object() {
            *data = Value::Object(Default::default());
        }
        if let Some(data) = data.as_object_mut() {
            for (k, v) in strings {
                let text = match &v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                let encoded = base64::engine::general_purpose::STANDARD.encode(text);
                data.insert(k, Value::String(encoded));
            }
        }
    }
}

/// The label every Namespace carries with its own name (upstream overwrites a user's value
/// too), and the `Active` phase.
pub(super) fn namespace(obj: &mut Obj) {
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !name.is_empty() {
        if let Some(labels) = child_or_new(obj, "metadata").and_then(|m| child_or_new(m, "labels"))
        {
            labels.insert("kubernetes.io/metadata.name".into(), name.into());
        }
    }
    if let Some(status) = child_or_new(obj, "status") {
        set_zero(status, "phase", "Active");
    }
}

/// What the Namespace registry does on create: status `Active` and the `kubernetes`
/// finalizer, which the namespace controller removes once the contents are gone. It is not a
/// default because defaults run on every update and would put the finalizer back.
pub fn namespace_on_create(obj: &mut Value) {
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    obj.insert("status".into(), json!({"phase": "Active"}));
    let Some(spec) = child_or_new(obj, "spec") else {
        return;
    };
    let finalizers = spec.entry("finalizers").or_insert_with(|| json!([]));
    if finalizers.is_null() {
        *finalizers = json!([]);
    }
    if let Some(list) = finalizers.as_array_mut() {
        if !list.iter().any(|f| f == "kubernetes") {
            list.push("kubernetes".into());
        }
    }
}

pub(super) fn persistent_volume_claim(obj: &mut Obj) {
    if let Some(status) = child_or_new(obj, "status") {
        set_zero(status, "phase", "Pending");
    }
    if let Some(spec) = child_or_new(obj, "spec") {
        persistent_volume_claim_spec(spec);
    }
}

pub(super) fn replication_controller(obj: &mut Obj) {
    let template_labels = obj
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| l.is_object())
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(spec) = child_or_new(obj, "spec") {
            if is_empty(spec.get("selector")) {
                spec.insert("selector".into(), labels.clone());
            }
        }
        if let Some(metadata) = child_or_new(obj, "metadata") {
            if is_empty(metadata.get("labels")) {
                metadata.insert("labels".into(), labels);
            }
        }
    }
    let Some(spec) = child_or_new(obj, "spec") else {
        return;
    };
    set_unset(spec, "replicas", 1);
    // The RC's template is optional (a pointer), unlike the apps workloads'.
    if let Some(pod) = child(spec, "template").and_then(|t| child_or_new(t, "spec")) {
        pod_spec(pod);
    }
}

pub(super) fn endpoints(obj: &mut Obj) {
    for subset in items(obj, "subsets") {
        for port in items(subset, "ports") {
            set_zero(port, "protocol", "TCP");
        }
    }
}

pub(super) fn node(obj: &mut Obj) {
    let Some(status) = child(obj, "status") else {
        return;
    };
    if is_unset(status.get("allocatable")) {
        if let Some(capacity) = status.get("capacity").filter(|c| c.is_object()).cloned() {
            status.insert("allocatable".into(), capacity);
        }
    }
}

/// Container limits default from each other: the default limit from `max`, the default
/// request from the default limit, then from `min`.
pub(super) fn limit_range(obj: &mut Obj) {
    let Some(spec) = child(obj, "spec") else {
        return;
    };
    for item in items(spec, "limits") {
        if str_at(item, "type") != "Container" {
            continue;
        }
        let mut default = object_at(item, "default");
        fill_missing(&mut default, &object_at(item, "max"));
        let mut default_request = object_at(item, "defaultRequest");
        fill_missing(&mut default_request, &default);
        fill_missing(&mut default_request, &object_at(item, "min"));
        for (key, map) in [("default", default), ("defaultRequest", default_request)] {
            if !map.is_empty() {
                item.insert(key.into(), Value::Object(map));
            }
        }
    }
}

fn object_at(m: &Obj, key: &str) -> Map<String, Value> {
    m.get(key)
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

fn fill_missing(target: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        target.entry(k.clone()).or_insert_with(|| v.clone());
    }
}
