//! The Pods a Job creates: its template, the tracking finalizer, and for an Indexed Job the
//! completion index (annotation, label, hostname and `JOB_COMPLETION_INDEX`).

use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{Container, EnvVar, EnvVarSource, ObjectFieldSelector, Pod};

use super::tracking::{INDEX_KEY, TRACKING_FINALIZER};
use crate::pods::{controller_ref, pod_from_template};

const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";

/// A new Pod for `job`, generated as `<job>-` or, for an index, `<job>-<index>-`. None if
/// the Job has no name or uid yet.
pub fn pod_for(job: &Job, index: Option<i32>) -> Option<Pod> {
    let name = job.metadata.name.as_deref()?;
    let namespace = job.metadata.namespace.as_deref().unwrap_or("default");
    let template = &job.spec.as_ref()?.template;
    let prefix = match index {
        Some(i) => format!("{name}-{i}-"),
        None => format!("{name}-"),
    };
    let mut pod = pod_from_template(template, controller_ref(job)?, namespace, None, &prefix);
    let finalizers = pod.metadata.finalizers.get_or_insert_with(Vec::new);
    if !finalizers.iter().any(|f| f == TRACKING_FINALIZER) {
        finalizers.push(TRACKING_FINALIZER.into());
    }
    if let Some(i) = index {
        let value = i.to_string();
        let annotations = pod
            .metadata
            .annotations
            .get_or_insert_with(Default::default);
        annotations.insert(INDEX_KEY.into(), value.clone());
        let labels = pod.metadata.labels.get_or_insert_with(Default::default);
        labels.insert(INDEX_KEY.into(), value);
        if let Some(spec) = pod.spec.as_mut() {
            // Upstream gives each index a stable DNS name under the Job's subdomain.
            if spec.hostname.as_deref().unwrap_or("").is_empty() {
                spec.hostname = Some(format!("{name}-{i}"));
            }
            spec.containers.iter_mut().for_each(add_index_env);
            spec.init_containers
                .iter_mut()
                .flatten()
                .for_each(add_index_env);
        }
    }
    Some(pod)
}

fn add_index_env(container: &mut Container) {
    let env = container.env.get_or_insert_with(Vec::new);
    if env.iter().any(|e| e.name == INDEX_ENV) {
        return;
    }
    env.push(EnvVar {
        name: INDEX_ENV.into(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: format!("metadata.labels['{INDEX_KEY}']"),
            }),
            ..Default::default()
        }),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job() -> Job {
        serde_json::from_value(json!({
            "metadata": {"name": "pi", "namespace": "ns", "uid": "u1"},
            "spec": {"template": {
                "metadata": {"labels": {"job-name": "pi"}},
                "spec": {"restartPolicy": "Never",
                         "initContainers": [{"name": "i", "image": "busybox"}],
                         "containers": [{"name": "c", "image": "busybox"}]}}}
        }))
        .expect("job")
    }

    #[test]
    fn every_pod_holds_the_tracking_finalizer_and_a_controller_reference() {
        let pod = pod_for(&job(), None).expect("pod");
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-"));
        assert_eq!(
            pod.metadata.finalizers,
            Some(vec![TRACKING_FINALIZER.to_string()])
        );
        assert!(crate::pods::is_controlled_by(&pod, "u1"));
        assert_eq!(pod.metadata.labels.expect("labels")["job-name"], "pi");
    }

    #[test]
    fn an_indexed_pod_carries_its_index_as_label_annotation_hostname_and_env() {
        let pod = pod_for(&job(), Some(2)).expect("pod");
        assert_eq!(pod.metadata.generate_name.as_deref(), Some("pi-2-"));
        assert_eq!(
            pod.metadata.labels.as_ref().expect("labels")[INDEX_KEY],
            "2"
        );
        assert_eq!(
            pod.metadata.annotations.as_ref().expect("annotations")[INDEX_KEY],
            "2"
        );
        let spec = pod.spec.expect("spec");
        assert_eq!(spec.hostname.as_deref(), Some("pi-2"));
        for c in spec
            .containers
            .iter()
            .chain(spec.init_containers.iter().flatten())
        {
            let env = c.env.as_ref().expect("env");
            let path = &env[0]
                .value_from
                .as_ref()
                .expect("from")
                .field_ref
                .as_ref()
                .expect("field")
                .field_path;
            assert_eq!(
                path,
                "metadata.labels['batch.kubernetes.io/job-completion-index']"
            );
        }
    }
}
