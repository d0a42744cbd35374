//! Conversion between served versions of one built-in resource. Objects are stored in one
//! version (the first served); older versions that clients still send are converted at
//! the edge. Today that is `autoscaling/v1` HorizontalPodAutoscaler, which `kubectl
//! autoscale` sends, stored as `autoscaling/v2`, converted as upstream's conversion does.

use serde_json::{json, Map, Value};

/// The version objects of this resource are stored in, when a request's differs.
pub fn storage_version(group: &str, version: &str, plural: &str) -> Option<&'static str> {
    match (group, version, plural) {
        ("autoscaling", "v1", "horizontalpodautoscalers") => Some("v2"),
        _ => None,
    }
}

/// From the requested version to the stored one.
pub fn to_storage(group: &str, version: &str, kind: &str, obj: &Value) -> Value {
    match (group, version, kind) {
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa_v1_to_v2(obj),
        _ => obj.clone(),
    }
}

/// From the stored version to the requested one.
pub fn from_storage(group: &str, version: &str, kind: &str, obj: &Value) -> Value {
    match (group, version, kind) {
        ("autoscaling", "v1", "HorizontalPodAutoscaler") => hpa_v2_to_v1(obj),
        _ => obj.clone(),
    }
}

fn copy(from: &Value, to: &mut Map<String, Value>, keys: &[&str]) {
    for k in keys {
        if let Some(v) = from.get(*k) {
            to.insert((*k).to_string(), v.clone());
        }
    }
}

fn hpa_v1_to_v2(obj: &Value) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("autoscaling/v2"));
    out.insert("kind".into(), json!("HorizontalPodAutoscaler"));
    copy(obj, &mut out, &["metadata"]);
    let spec = &obj["spec"];
    let mut s = Map::new();
    copy(
        spec,
        &mut s,
        &["scaleTargetRef", "minReplicas", "maxReplicas"],
    );
    if let Some(cpu) = spec
        .get("targetCPUUtilizationPercentage")
        .filter(|v| !v.is_null())
    {
        s.insert(
            "metrics".into(),
            json!([{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": cpu}}}]),
        );
    }
    if !spec.is_null() {
        out.insert("spec".into(), Value::Object(s));
    }
    if let Some(st) = obj.get("status").filter(|v| v.is_object()) {
        let mut t = Map::new();
        copy(
            st,
            &mut t,
            &[
                "observedGeneration",
                "lastScaleTime",
                "currentReplicas",
                "desiredReplicas",
            ],
        );
        if let Some(cpu) = st.get("currentCPUUtilizationPercentage") {
            t.insert(
                "currentMetrics".into(),
                json!([{"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": cpu}}}]),
            );
        }
        out.insert("status".into(), Value::Object(t));
    }
    Value::Object(out)
}

fn hpa_v2_to_v1(obj: &Value) -> Value {
    let mut out = Map::new();
    out.insert("apiVersion".into(), json!("autoscaling/v1"));
    out.insert("kind".into(), json!("HorizontalPodAutoscaler"));
    copy(obj, &mut out, &["metadata"]);
    let spec = &obj["spec"];
    let mut s = Map::new();
    copy(
        spec,
        &mut s,
        &["scaleTargetRef", "minReplicas", "maxReplicas"],
    );
    let cpu_target = spec["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|m| {
            (m["type"] == "Resource"
                && m["resource"]["name"] == "cpu"
                && m["resource"]["target"]["type"] == "Utilization")
                .then(|| m["resource"]["target"]["averageUtilization"].clone())
        });
    if let Some(cpu) = cpu_target {
        s.insert("targetCPUUtilizationPercentage".into(), cpu);
    }
    out.insert("spec".into(), Value::Object(s));
    let st = &obj["status"];
    let mut t = Map::new();
    copy(
        st,
        &mut t,
        &[
            "observedGeneration",
            "lastScaleTime",
            "currentReplicas",
            "desiredReplicas",
        ],
    );
    let cpu_now = st["currentMetrics"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|m| {
            (m["type"] == "Resource" && m["resource"]["name"] == "cpu")
                .then(|| m["resource"]["current"]["averageUtilization"].clone())
        });
    if let Some(cpu) = cpu_now.filter(|v| !v.is_null()) {
        t.insert("currentCPUUtilizationPercentage".into(), cpu);
    }
    t.entry("desiredReplicas").or_insert(json!(0));
    out.insert("status".into(), Value::Object(t));
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v1_cpu_target_becomes_a_v2_resource_metric_and_back() {
        let v1 = json!({"apiVersion": "autoscaling/v1", "kind": "HorizontalPodAutoscaler", "metadata": {"name": "web"},
            "spec": {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "minReplicas": 1, "maxReplicas": 5, "targetCPUUtilizationPercentage": 70}});
        let v2 = to_storage("autoscaling", "v1", "HorizontalPodAutoscaler", &v1);
        assert_eq!(v2["apiVersion"], "autoscaling/v2");
        assert_eq!(
            v2["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"],
            70
        );
        let back = from_storage("autoscaling", "v1", "HorizontalPodAutoscaler", &v2);
        assert_eq!(back["spec"], v1["spec"]);
    }

    #[test]
    fn only_the_hpa_v1_endpoint_needs_conversion() {
        assert_eq!(
            storage_version("autoscaling", "v1", "horizontalpodautoscalers"),
            Some("v2")
        );
        assert_eq!(
            storage_version("autoscaling", "v2", "horizontalpodautoscalers"),
            None
        );
        assert_eq!(storage_version("apps", "v1", "deployments"), None);
    }
}
