//! A StatefulSet Pod's stable identity: its name `<set>-<ordinal>`, the labels naming it and
//! its revision, and hostname + subdomain so cluster DNS answers
//! `<pod>.<serviceName>.<ns>.svc.cluster.local` through the set's headless Service.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};

use crate::pods::{controller_ref, pod_from_template};

pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
pub const REVISION_LABEL: &str = "controller-revision-hash";

/// The Pod for `ordinal` made from `template` (the revision's), labelled with `revision`.
pub fn pod_for(
    set: &StatefulSet,
    template: &PodTemplateSpec,
    ordinal: i32,
    revision: &str,
) -> Option<Pod> {
    let set_name = set.metadata.name.as_deref()?;
    let namespace = set.metadata.namespace.as_deref().unwrap_or("default");
    let name = format!("{set_name}-{ordinal}");
    let mut pod = pod_from_template(
        template,
        controller_ref(set)?,
        namespace,
        Some(name.clone()),
        "",
    );
    let labels = pod.metadata.labels.get_or_insert_with(Default::default);
    labels.insert(POD_NAME_LABEL.into(), name.clone());
    labels.insert(POD_INDEX_LABEL.into(), ordinal.to_string());
    labels.insert(REVISION_LABEL.into(), revision.into());
    if let Some(spec) = pod.spec.as_mut() {
        spec.hostname = Some(name);
        let service = set.spec.as_ref().and_then(|s| s.service_name.clone());
        spec.subdomain = service.filter(|s| !s.is_empty());
    }
    Some(pod)
}

pub fn revision_of(pod: &Pod) -> String {
    pod.metadata
        .labels
        .as_ref()
        .and_then(|l| l.get(REVISION_LABEL))
        .cloned()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_pod_is_named_by_ordinal_and_resolvable_under_the_service() {
        let set: StatefulSet = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "serviceName": "nginx",
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
        }))
        .expect("set");
        let template = set.spec.clone().expect("spec").template;
        let pod = pod_for(&set, &template, 2, "web-abc").expect("pod");
        assert_eq!(pod.metadata.name.as_deref(), Some("web-2"));
        let labels = pod.metadata.labels.clone().expect("labels");
        assert_eq!(labels[POD_NAME_LABEL], "web-2");
        assert_eq!(labels[POD_INDEX_LABEL], "2");
        assert_eq!(labels["app"], "web");
        assert_eq!(revision_of(&pod), "web-abc");
        let spec = pod.spec.clone().expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some("web-2"));
        assert_eq!(spec.subdomain.as_deref(), Some("nginx"));
        assert!(crate::pods::is_controlled_by(&pod, "u1"));
    }
}
