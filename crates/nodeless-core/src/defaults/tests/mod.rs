use super::*;
use crate::resource::builtins;
use serde_json::json;

mod pod;
mod services;
mod workloads;

pub(super) fn defaulted(group: &str, version: &str, kind: &str, mut obj: Value) -> Value {
    apply_defaults(group, version, kind, &mut obj);
    obj
}

pub(super) fn pod_template() -> Value {
    json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx:1.25"}]}})
}

/// What upstream's PodSpec defaults turn `pod_template().spec` into.
pub(super) fn defaulted_template_spec() -> Value {
    json!({
        "containers": [{"name": "c", "image": "nginx:1.25", "imagePullPolicy": "IfNotPresent",
            "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
            "resources": {}}],
        "dnsPolicy": "ClusterFirst", "restartPolicy": "Always", "securityContext": {},
        "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler"
    })
}

/// Objects with the fields that have defaults, for the idempotency check below.
fn rich_object(kind: &str) -> Value {
    let template = pod_template();
    match kind {
        "Pod" => {
            json!({"metadata": {"name": "p"}, "spec": {"hostNetwork": true, "containers": [{"name": "c", "image": "x",
            "ports": [{"containerPort": 1}], "resources": {"limits": {"cpu": "1"}}, "livenessProbe": {"httpGet": {"port": 1}}}],
            "volumes": [{"name": "v"}, {"name": "s", "secret": {"secretName": "s"}}]}})
        }
        "Service" => {
            json!({"spec": {"type": "LoadBalancer", "sessionAffinity": "ClientIP", "ports": [{"port": 1}]},
            "status": {"loadBalancer": {"ingress": [{"ip": "1.1.1.1"}]}}})
        }
        "Namespace" => json!({"metadata": {"name": "n"}}),
        "Node" => json!({"status": {"capacity": {"cpu": "1"}}}),
        "LimitRange" => json!({"spec": {"limits": [{"type": "Container", "max": {"cpu": "1"}}]}}),
        "Endpoints" => json!({"subsets": [{"ports": [{"port": 1}]}]}),
        "Job" => json!({"metadata": {"name": "j"}, "spec": {"template": template}}),
        "CronJob" => json!({"spec": {"jobTemplate": {"spec": {"template": template}}}}),
        "HorizontalPodAutoscaler" => {
            json!({"spec": {"behavior": {"scaleUp": {"selectPolicy": "Min"}}}})
        }
        "NetworkPolicy" => json!({"spec": {"ingress": [{"ports": [{"port": 1}]}]}}),
        "IngressClass" => json!({"spec": {"parameters": {"kind": "K", "name": "n"}}}),
        "EndpointSlice" => json!({"ports": [{"port": 1}]}),
        "RoleBinding" | "ClusterRoleBinding" => {
            json!({"roleRef": {"kind": "Role", "name": "r"}, "subjects": [{"kind": "Group", "name": "g"}]})
        }
        "CustomResourceDefinition" => {
            json!({"spec": {"names": {"kind": "Foo"}, "versions": [{"name": "v1", "storage": true}]}})
        }
        "StatefulSet" => {
            json!({"spec": {"template": template, "volumeClaimTemplates": [{"spec": {}}]}})
        }
        "ReplicationController" => json!({"spec": {"template": template}}),
        _ => json!({"metadata": {"name": "x"}, "spec": {"template": template}}),
    }
}

#[test]
fn defaults_are_idempotent_for_every_builtin_kind() {
    for rt in builtins() {
        let once = defaulted(&rt.group, &rt.version, &rt.kind, rich_object(&rt.kind));
        let twice = defaulted(&rt.group, &rt.version, &rt.kind, once.clone());
        assert_eq!(once, twice, "{}/{} {}", rt.group, rt.version, rt.kind);
    }
}

#[test]
fn malformed_shapes_are_left_alone_without_panicking() {
    for rt in builtins() {
        for junk in [
            json!(5),
            json!({"spec": 5}),
            json!({"spec": {"template": 1, "containers": 5, "ports": "x"}}),
            json!({"spec": {"template": {"spec": {"containers": [1, null]}}}, "metadata": 3, "status": []}),
        ] {
            let _ = defaulted(&rt.group, &rt.version, &rt.kind, junk);
        }
    }
}

#[test]
fn decoded_then_defaulted_objects_still_decode() {
    // Reviews (create-only, never stored) are answered, not decoded or published.
    for rt in builtins()
        .into_iter()
        .filter(|r| r.verbs.iter().any(|v| v == "get"))
    {
        let decoded =
            crate::typed::decode(&rt.group, &rt.version, &rt.kind, &rich_object(&rt.kind))
                .expect("decodes");
        let obj = defaulted(&rt.group, &rt.version, &rt.kind, decoded.object);
        let again = crate::typed::decode(&rt.group, &rt.version, &rt.kind, &obj)
            .unwrap_or_else(|e| panic!("{}: {e}", rt.kind));
        assert!(
            again.unknown_fields.is_empty(),
            "{}: {:?}",
            rt.kind,
            again.unknown_fields
        );
    }
}
