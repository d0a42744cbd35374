//! Per-kind behaviour on create and update, as upstream's registry strategies: which parts a
//! write may change (spec vs status), generation, and the fields set by the server itself.

use chrono::{SecondsFormat, Utc};
use nodeless_core::resource::ResourceType;
use nodeless_core::{meta, ErrorList, FieldError};
use serde_json::{json, Value};

/// RFC 3339 with seconds, the form Kubernetes timestamps take.
pub fn now_rfc3339() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Upstream's `generateName` suffix alphabet: no vowels, no confusable characters.
const NAME_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

pub fn generate_name(prefix: &str) -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    // Names are at most 63 characters for most kinds; keep room for the suffix as upstream
    // does. Cut on a character boundary: validation reports a bad name, we must not panic.
    let mut base: String = prefix.chars().take(58).collect();
    base.extend((0..5).map(|_| NAME_ALPHABET[rng.gen_range(0..NAME_ALPHABET.len())] as char));
    base
}

/// Sets what the server owns on a new object and drops what a create may not set.
pub fn prepare_for_create(rt: &ResourceType, obj: &mut Value) {
    let md = meta::metadata_mut(obj);
    md.insert(
        "uid".into(),
        Value::String(uuid::Uuid::new_v4().to_string()),
    );
    md.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
    md.remove("resourceVersion");
    md.remove("deletionTimestamp");
    md.remove("deletionGracePeriodSeconds");
    md.remove("selfLink");
    md.remove("managedFields");
    if rt.has_spec_generation || rt.custom {
        md.insert("generation".into(), json!(1));
    } else {
        md.remove("generation");
    }
    if rt.has_status && !(rt.group.is_empty() && rt.kind == "Node") {
        if let Some(o) = obj.as_object_mut() {
            o.remove("status");
        }
    }
    initial_status(rt, obj);
}

fn initial_status(rt: &ResourceType, obj: &mut Value) {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Pod") => {
            let qos = qos_class(obj);
            obj["status"] = json!({"phase": "Pending", "qosClass": qos});
        }
        ("", "Namespace") => obj["status"] = json!({"phase": "Active"}),
        ("", "Service") => obj["status"] = json!({"loadBalancer": {}}),
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {}
        _ => {}
    }
}

/// The Pod's QoS class from its containers' requests and limits, as upstream computes it.
fn qos_class(pod: &Value) -> &'static str {
    let containers: Vec<&Value> = ["containers", "initContainers"]
        .iter()
        .filter_map(|f| pod["spec"][*f].as_array())
        .flatten()
        .collect();
    let mut any = false;
    let mut guaranteed = true;
    for c in &containers {
        let req = &c["resources"]["requests"];
        let lim = &c["resources"]["limits"];
        for r in ["cpu", "memory"] {
            let (rq, lm) = (req.get(r), lim.get(r));
            if rq.is_some() || lm.is_some() {
                any = true;
            }
            match (rq, lm) {
                (_, None) => guaranteed = false,
                (Some(a), Some(b)) if a != b => guaranteed = false,
                _ => {}
            }
        }
    }
    match (any, guaranteed) {
        (false, _) => "BestEffort",
        (true, true) => "Guaranteed",
        (true, false) => "Burstable",
    }
}

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Main,
    Status,
}

/// Builds the object to store from a requested update, keeping what this write may not change.
pub fn prepare_for_update(rt: &ResourceType, part: Part, new: &mut Value, old: &Value) {
    if part == Part::Status {
        let status = new.get("status").cloned();
        *new = old.clone();
        match status {
            Some(s) => new["status"] = s,
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
        return;
    }
    // Server-owned metadata always comes from the stored object.
    for field in [
        "uid",
        "creationTimestamp",
        "deletionTimestamp",
        "deletionGracePeriodSeconds",
        "generation",
    ] {
        match old.get("metadata").and_then(|m| m.get(field)) {
            Some(v) => {
                meta::metadata_mut(new).insert(field.into(), v.clone());
            }
            None => {
                meta::metadata_mut(new).remove(field);
            }
        }
    }
    meta::metadata_mut(new).remove("selfLink");
    meta::metadata_mut(new).remove("managedFields");
    if rt.has_status {
        match old.get("status") {
            Some(s) => new["status"] = s.clone(),
            None => {
                if let Some(o) = new.as_object_mut() {
                    o.remove("status");
                }
            }
        }
    }
    if rt.group.is_empty() && rt.kind == "Service" {
        // clusterIP is allocated once; an update that leaves it out keeps it.
        for field in ["clusterIP", "clusterIPs"] {
            let missing = new
                .pointer(&format!("/spec/{field}"))
                .is_none_or(|v| v.is_null() || v == "");
            if let (true, Some(v)) = (missing, old.pointer(&format!("/spec/{field}"))) {
                new["spec"][field] = v.clone();
            }
        }
    }
    if spec_changed(rt, new, old) {
        let generation = old["metadata"]["generation"].as_i64().unwrap_or(0) + 1;
        meta::metadata_mut(new).insert("generation".into(), json!(generation));
    }
}

/// Whether a write changed what `metadata.generation` tracks.
fn spec_changed(rt: &ResourceType, new: &Value, old: &Value) -> bool {
    if rt.custom {
        let strip = |v: &Value| {
            let mut v = v.clone();
            if let Some(o) = v.as_object_mut() {
                o.remove("metadata");
                o.remove("status");
            }
            v
        };
        return strip(new) != strip(old);
    }
    rt.has_spec_generation && new.get("spec") != old.get("spec")
}

/// Namespace-scope checks every object gets before kind-specific validation.
pub fn validate_scope(rt: &ResourceType, obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    if rt.namespaced && meta::namespace(obj).is_none() {
        errs.push(FieldError::required("metadata.namespace", ""));
    }
    if !rt.namespaced && meta::namespace(obj).is_some() {
        errs.push(FieldError::forbidden(
            "metadata.namespace",
            "not allowed on this type",
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;
    use nodeless_core::resource::builtins;

    fn rt(kind: &str) -> ResourceType {
        builtins()
            .into_iter()
            .find(|r| r.kind == kind)
            .expect("kind")
    }

    #[test]
    fn a_main_write_keeps_status_and_bumps_generation_on_spec_change() {
        let d = rt("Deployment");
        let old = json!({"metadata": {"name": "a", "generation": 1, "uid": "u"}, "spec": {"replicas": 1}, "status": {"replicas": 1}});
        let mut new =
            json!({"metadata": {"name": "a"}, "spec": {"replicas": 2}, "status": {"replicas": 9}});
        prepare_for_update(&d, Part::Main, &mut new, &old);
        assert_eq!(new["status"]["replicas"], 1);
        assert_eq!(new["metadata"]["generation"], 2);
        assert_eq!(new["metadata"]["uid"], "u");
    }

    #[test]
    fn a_status_write_changes_only_status() {
        let d = rt("Deployment");
        let old = json!({"metadata": {"name": "a", "generation": 1}, "spec": {"replicas": 1}});
        let mut new = json!({"metadata": {"name": "a", "labels": {"x": "y"}}, "spec": {"replicas": 5}, "status": {"replicas": 1}});
        prepare_for_update(&d, Part::Status, &mut new, &old);
        assert_eq!(new["spec"]["replicas"], 1);
        assert_eq!(new["status"]["replicas"], 1);
        assert!(new["metadata"].get("labels").is_none());
    }

    #[test]
    fn pods_start_pending_with_a_qos_class() {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "resources": {"limits": {"cpu": "1", "memory": "1Gi"}, "requests": {"cpu": "1", "memory": "1Gi"}}}]}, "status": {"phase": "Running"}});
        prepare_for_create(&rt("Pod"), &mut p);
        assert_eq!(
            p["status"],
            json!({"phase": "Pending", "qosClass": "Guaranteed"})
        );
        assert!(p["metadata"]["uid"].is_string());
    }
}
