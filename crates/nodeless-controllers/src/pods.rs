//! What the workload controllers share about the Pods they own.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

/// A controller reference to `owner` (controller: true, blockOwnerDeletion: true), as
/// upstream controllers set on what they create.
pub fn controller_ref<K: Resource<DynamicType = ()>>(owner: &K) -> Option<OwnerReference> {
    let meta = owner.meta();
    Some(OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: meta.name.clone()?,
        uid: meta.uid.clone()?,
        controller: Some(true),
        block_owner_deletion: Some(true),
    })
}

/// The controller reference of `obj`, if any.
pub fn controller_of(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|r| r.controller == Some(true))
}

/// Whether `pod` is controlled by the object with `uid`.
pub fn is_controlled_by(pod: &Pod, uid: &str) -> bool {
    controller_of(&pod.metadata).is_some_and(|r| r.uid == uid)
}

/// A Pod made from `template`, owned by `owner`, named `name` (or generated from `prefix`
/// when `name` is None), in `namespace`.
pub fn pod_from_template(
    template: &PodTemplateSpec,
    owner: OwnerReference,
    namespace: &str,
    name: Option<String>,
    prefix: &str,
) -> Pod {
    let tm = template.metadata.clone().unwrap_or_default();
    let metadata = ObjectMeta {
        name: name.clone(),
        generate_name: if name.is_none() {
            Some(prefix.to_string())
        } else {
            None
        },
        namespace: Some(namespace.to_string()),
        labels: tm.labels,
        annotations: tm.annotations,
        finalizers: tm.finalizers,
        owner_references: Some(vec![owner]),
        ..Default::default()
    };
    Pod {
        metadata,
        spec: template.spec.clone(),
        status: None,
    }
}

/// Upstream's "active": not terminal and not being deleted.
pub fn is_active(pod: &Pod) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    pod.metadata.deletion_timestamp.is_none() && !matches!(phase, Some("Succeeded" | "Failed"))
}

pub fn is_terminating(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_some()
}

/// When the Pod's Ready condition last became True, if it is True now.
pub fn ready_since(pod: &Pod) -> Option<DateTime<Utc>> {
    let conds = pod.status.as_ref()?.conditions.as_ref()?;
    let ready = conds.iter().find(|c| c.type_ == "Ready")?;
    if ready.status != "True" {
        return None;
    }
    Some(
        ready
            .last_transition_time
            .as_ref()
            .map(|t| t.0)
            .unwrap_or_else(Utc::now),
    )
}

pub fn is_ready(pod: &Pod) -> bool {
    ready_since(pod).is_some()
}

/// Ready for at least `min_ready_seconds` at `now`, as upstream's IsPodAvailable.
pub fn is_available(pod: &Pod, min_ready_seconds: i32, now: DateTime<Utc>) -> bool {
    match ready_since(pod) {
        None => false,
        Some(_) if min_ready_seconds <= 0 => true,
        Some(since) => now - since >= chrono::Duration::seconds(i64::from(min_ready_seconds)),
    }
}

/// A matcher for a `metav1.LabelSelector`; None when the selector is malformed (upstream
/// controllers then act on no Pods).
pub fn selector_matcher(
    selector: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
) -> Option<nodeless_core::selector::LabelSelector> {
    let value = serde_json::to_value(selector).ok()?;
    nodeless_core::selector::LabelSelector::from_json(&value).ok()
}

/// Whether `selector` selects the object described by `meta` (by its labels).
pub fn selects(selector: &nodeless_core::selector::LabelSelector, meta: &ObjectMeta) -> bool {
    static EMPTY: std::collections::BTreeMap<String, String> = std::collections::BTreeMap::new();
    selector.matches(meta.labels.as_ref().unwrap_or(&EMPTY))
}

/// Sets (`Some`) or clears (`None`) the controller reference of `obj`, keeping its other
/// owner references: how ReplicaSets adopt and release Pods and Deployments ReplicaSets. The
/// uid and resourceVersion in the patch make it a precondition, as upstream's claim does; an
/// object already gone is not an error.
pub async fn set_controller<K>(
    client: &kube::Client,
    obj: &K,
    owner: Option<OwnerReference>,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    use kube::ResourceExt;
    let mut refs: Vec<OwnerReference> = obj
        .owner_references()
        .iter()
        .filter(|r| r.controller != Some(true))
        .cloned()
        .collect();
    refs.extend(owner);
    let refs = if refs.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::json!(refs)
    };
    let patch = serde_json::json!({"metadata": {
        "ownerReferences": refs,
        "resourceVersion": obj.resource_version(),
        "uid": obj.uid(),
    }});
    let api: kube::Api<K> =
        kube::Api::namespaced(client.clone(), &obj.namespace().unwrap_or_default());
    let params = kube::api::PatchParams::default();
    match api
        .patch(&obj.name_any(), &params, &kube::api::Patch::Merge(patch))
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::ReplicaSet;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).expect("pod")
    }

    #[test]
    fn a_pod_from_a_template_carries_its_labels_and_a_controller_reference() {
        let mut rs = ReplicaSet::default();
        rs.metadata.name = Some("web-1".into());
        rs.metadata.uid = Some("u1".into());
        let template: PodTemplateSpec = serde_json::from_value(json!({
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .expect("template");
        let owner = controller_ref(&rs).expect("named");
        let p = pod_from_template(&template, owner, "ns", None, "web-1-");
        assert_eq!(p.metadata.generate_name.as_deref(), Some("web-1-"));
        assert_eq!(p.metadata.labels.as_ref().expect("labels")["app"], "web");
        assert!(is_controlled_by(&p, "u1"));
        assert_eq!(controller_of(&p.metadata).expect("ref").kind, "ReplicaSet");
    }

    #[test]
    fn availability_waits_for_min_ready_seconds() {
        let now = Utc::now();
        let since = (now - chrono::Duration::seconds(5)).to_rfc3339();
        let p = pod(json!({"status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": since}]}}));
        assert!(is_available(&p, 0, now));
        assert!(is_available(&p, 5, now));
        assert!(!is_available(&p, 10, now));
        let not_ready =
            pod(json!({"status": {"conditions": [{"type": "Ready", "status": "False"}]}}));
        assert!(!is_available(&not_ready, 0, now));
    }

    #[test]
    fn terminal_and_deleted_pods_are_not_active() {
        assert!(is_active(&pod(json!({"status": {"phase": "Running"}}))));
        assert!(!is_active(&pod(json!({"status": {"phase": "Failed"}}))));
        assert!(!is_active(&pod(
            json!({"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})
        )));
    }
}
