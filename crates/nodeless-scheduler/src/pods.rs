//! What the scheduler reads from a Pod: whether it is waiting for us, what instance it
//! needs, and what an instance already placed takes from its host.

use k8s_openapi::api::core::v1::Pod;
use nodeless_core::instance_spec::{spec_for_pod, InstanceSpec, SpecError};
use nodeless_kube::names::{
    is_our_scheduler, GVISOR_HANDLER, GVISOR_RUNTIME_CLASS, HOST_ANNOTATION,
    INSTANCE_SPEC_ANNOTATION,
};

/// The runtime of Pods that name no RuntimeClass.
pub const DEFAULT_RUNTIME: &str = "runc";

pub fn phase(pod: &Pod) -> &str {
    pod.status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("")
}

/// Succeeded and Failed Pods keep no instance running, so they take no capacity.
pub fn is_terminal(pod: &Pod) -> bool {
    matches!(phase(pod), "Succeeded" | "Failed")
}

/// Whether this scheduler should place the Pod now.
pub fn needs_scheduling(pod: &Pod) -> bool {
    let Some(spec) = pod.spec.as_ref() else {
        return false;
    };
    spec.node_name.as_deref().unwrap_or("").is_empty()
        && pod.metadata.deletion_timestamp.is_none()
        && !is_terminal(pod)
        && is_our_scheduler(spec.scheduler_name.as_deref())
}

/// The OCI runtime the Pod's RuntimeClass stands for.
pub fn runtime_for(pod: &Pod) -> Result<&'static str, String> {
    let class = pod
        .spec
        .as_ref()
        .and_then(|s| s.runtime_class_name.as_deref())
        .unwrap_or("");
    match class {
        "" => Ok(DEFAULT_RUNTIME),
        GVISOR_RUNTIME_CLASS => Ok(GVISOR_HANDLER),
        other => Err(format!(
            "runtimeClassName {other:?} is not offered by the instance pool: leave it empty for runc or use {GVISOR_RUNTIME_CLASS:?}"
        )),
    }
}

/// The instance spec a Pod waiting to be placed needs.
pub fn spec_for(pod: &Pod) -> Result<InstanceSpec, SpecError> {
    let value = serde_json::to_value(pod).map_err(|e| SpecError::Parse {
        value: String::new(),
        reason: format!("the pod does not serialize: {e}"),
    })?;
    spec_for_pod(&value).map(|choice| choice.spec)
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// The host and spec of an instance already placed (the Pod carries the host annotation and
/// is not terminal). The spec is the one written at binding; a Pod whose spec annotation was
/// lost or mangled is sized again as it would be now, so it still counts.
pub fn placement_of(pod: &Pod) -> Option<(&str, InstanceSpec)> {
    let host = annotation(pod, HOST_ANNOTATION)?;
    if is_terminal(pod) {
        return None;
    }
    let spec = annotation(pod, INSTANCE_SPEC_ANNOTATION)
        .and_then(|s| s.parse::<InstanceSpec>().ok())
        .or_else(|| spec_for(pod).ok())
        .or_else(|| {
            let mut bare = pod.clone();
            bare.metadata.annotations = None;
            spec_for(&bare).ok()
        })?;
    Some((host, spec))
}

/// `namespace/name`, as messages and log fields name a Pod.
pub fn pod_key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or(""),
        pod.metadata.name.as_deref().unwrap_or("")
    )
}

/// Whether the Pod already shows `PodScheduled=False` `Unschedulable` with `message`.
pub fn shows_unschedulable(pod: &Pod, message: &str) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| {
            c.type_ == "PodScheduled"
                && c.status == "False"
                && c.reason.as_deref() == Some("Unschedulable")
                && c.message.as_deref() == Some(message)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("valid pod")
    }

    fn pending() -> serde_json::Value {
        json!({
            "metadata": {"name": "p", "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
            "status": {"phase": "Pending"}
        })
    }

    #[test]
    fn a_fresh_pod_for_the_default_scheduler_needs_scheduling() {
        assert!(needs_scheduling(&pod(pending())));
    }

    #[test]
    fn bound_deleted_terminal_or_foreign_pods_are_left_alone() {
        let mut bound = pending();
        bound["spec"]["nodeName"] = json!("nodeless");
        let mut deleting = pending();
        deleting["metadata"]["deletionTimestamp"] = json!("2024-01-01T00:00:00Z");
        let mut done = pending();
        done["status"]["phase"] = json!("Succeeded");
        let mut foreign = pending();
        foreign["spec"]["schedulerName"] = json!("volcano");
        for v in [bound, deleting, done, foreign] {
            assert!(!needs_scheduling(&pod(v.clone())), "{v}");
        }
    }

    #[test]
    fn gvisor_pods_need_runsc_and_unknown_classes_are_refused() {
        let mut v = pending();
        assert_eq!(runtime_for(&pod(v.clone())), Ok("runc"));
        v["spec"]["runtimeClassName"] = json!("gvisor");
        assert_eq!(runtime_for(&pod(v.clone())), Ok("runsc"));
        v["spec"]["runtimeClassName"] = json!("kata");
        let err = runtime_for(&pod(v)).expect_err("kata");
        assert!(err.contains("\"kata\" is not offered"), "{err}");
    }

    #[test]
    fn a_placed_pod_counts_the_spec_it_was_bound_with() {
        let mut v = pending();
        v["metadata"]["annotations"] = json!({
            "nodeless.dev/host": "h1", "nodeless.dev/instance-spec": "4-8Gi"
        });
        let p = pod(v);
        let (host, spec) = placement_of(&p).expect("placed");
        assert_eq!((host, spec.to_string().as_str()), ("h1", "4-8Gi"));
    }

    #[test]
    fn a_placed_pod_with_a_mangled_spec_is_sized_again() {
        let mut v = pending();
        v["metadata"]["annotations"] = json!({
            "nodeless.dev/host": "h1", "nodeless.dev/instance-spec": "lots"
        });
        v["spec"]["containers"][0]["resources"] =
            json!({"requests": {"cpu": "1", "memory": "2Gi"}});
        let p = pod(v);
        let (host, spec) = placement_of(&p).expect("placed");
        assert_eq!((host, spec.to_string().as_str()), ("h1", "1-2Gi"));
    }

    #[test]
    fn a_finished_pod_takes_no_capacity() {
        let mut v = pending();
        v["metadata"]["annotations"] = json!({"nodeless.dev/host": "h1"});
        v["status"]["phase"] = json!("Failed");
        assert!(placement_of(&pod(v)).is_none());
    }

    #[test]
    fn the_unschedulable_condition_is_matched_by_message() {
        let mut v = pending();
        v["status"]["conditions"] = json!([{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "m1"
        }]);
        let p = pod(v);
        assert!(shows_unschedulable(&p, "m1"));
        assert!(!shows_unschedulable(&p, "m2"));
    }
}
