use super::*;
use crate::field::ErrorType;
use crate::resource::builtins;
use serde_json::json;

fn pod_spec(extra: Value) -> Value {
    let mut spec = json!({"containers": [{"name": "c", "image": "busybox", "ports": [{"containerPort": 80}]}]});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    spec
}

fn pod(extra: Value) -> Value {
    json!({"metadata": {"name": "p"}, "spec": pod_spec(extra)})
}

/// (field, detail) of each refusal.
fn refused(group: &str, kind: &str, obj: &Value) -> Vec<(String, String)> {
    refuse_unsupported(group, kind, obj)
        .into_iter()
        .map(|e| (e.field, e.detail))
        .collect()
}

fn fields(group: &str, kind: &str, obj: &Value) -> Vec<String> {
    refused(group, kind, obj)
        .into_iter()
        .map(|(f, _)| f)
        .collect()
}

fn only_refusal(group: &str, kind: &str, obj: &Value) -> (String, String) {
    let mut all = refused(group, kind, obj);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

#[test]
fn an_ordinary_pod_is_admitted() {
    let p = pod(
        json!({"securityContext": {"runAsUser": 1000}, "volumes": [{"name": "v", "emptyDir": {}}]}),
    );
    assert!(refuse_unsupported("", "Pod", &p).is_empty());
}

#[test]
fn false_and_zero_values_are_admitted() {
    let mut p = pod(json!({"hostNetwork": false, "hostPID": false, "hostIPC": false}));
    p["spec"]["containers"][0]["securityContext"] = json!({"privileged": false});
    p["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(0);
    assert!(refuse_unsupported("", "Pod", &p).is_empty());
}

#[test]
fn daemonsets_are_refused_whole_with_the_sidecar_alternative() {
    let ds =
        json!({"metadata": {"name": "agent"}, "spec": {"template": {"spec": pod_spec(json!({}))}}});
    let (field, detail) = only_refusal("apps", "DaemonSet", &ds);
    assert_eq!(field, "spec");
    assert!(
        detail.starts_with("DaemonSets are not supported on nodeless"),
        "{detail}"
    );
    assert!(detail.contains("as a sidecar container"), "{detail}");
}

#[test]
fn privileged_containers_are_refused_with_the_capabilities_alternative() {
    let mut p = pod(
        json!({"initContainers": [{"name": "i", "image": "busybox", "securityContext": {"privileged": true}}]}),
    );
    p["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let all = refused("", "Pod", &p);
    let got: Vec<&str> = all.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(
        got,
        [
            "spec.initContainers[0].securityContext.privileged",
            "spec.containers[0].securityContext.privileged"
        ]
    );
    assert!(
        all[0].1.contains("securityContext.capabilities.add"),
        "{}",
        all[0].1
    );
}

#[test]
fn a_privileged_ephemeral_container_is_refused() {
    let p = pod(
        json!({"ephemeralContainers": [{"name": "debug", "image": "busybox", "securityContext": {"privileged": true}}]}),
    );
    assert_eq!(
        fields("", "Pod", &p),
        ["spec.ephemeralContainers[0].securityContext.privileged"]
    );
}

#[test]
fn host_network_is_refused_with_the_load_balancer_alternative() {
    // Defaulting copies containerPort into hostPort on host-network Pods; that is not a second refusal.
    let mut p = pod(json!({"hostNetwork": true}));
    p["spec"]["containers"][0]["ports"][0]["hostPort"] = json!(80);
    let (field, detail) = only_refusal("", "Pod", &p);
    assert_eq!(field, "spec.hostNetwork");
    assert!(detail.contains("Service of type LoadBalancer"), "{detail}");
}

#[test]
fn host_ports_are_refused_with_the_load_balancer_alternative() {
    let mut p = pod(json!({}));
    p["spec"]["containers"][0]["ports"] =
        json!([{"containerPort": 80}, {"containerPort": 443, "hostPort": 8443}]);
    let (field, detail) = only_refusal("", "Pod", &p);
    assert_eq!(field, "spec.containers[0].ports[1].hostPort");
    assert!(detail.contains("Service of type LoadBalancer"), "{detail}");
}

#[test]
fn host_pid_and_ipc_are_refused_with_their_alternatives() {
    let all = refused("", "Pod", &pod(json!({"hostPID": true, "hostIPC": true})));
    assert_eq!(all[0].0, "spec.hostPID");
    assert!(all[0].1.contains("shareProcessNamespace"), "{}", all[0].1);
    assert_eq!(all[1].0, "spec.hostIPC");
    assert!(
        all[1].1.contains("emptyDir volume with medium Memory"),
        "{}",
        all[1].1
    );
    assert_eq!(all.len(), 2);
}

#[test]
fn host_path_volumes_are_refused_with_the_empty_dir_alternative() {
    let p = pod(
        json!({"volumes": [{"name": "a", "emptyDir": {}}, {"name": "b", "hostPath": {"path": "/var/run"}}]}),
    );
    let (field, detail) = only_refusal("", "Pod", &p);
    assert_eq!(field, "spec.volumes[1].hostPath");
    assert!(detail.contains("use an emptyDir volume"), "{detail}");
}

#[test]
fn pod_templates_of_every_workload_kind_are_checked_at_their_path() {
    let tpl =
        json!({"metadata": {"labels": {"a": "b"}}, "spec": pod_spec(json!({"hostNetwork": true}))});
    let workload = json!({"metadata": {"name": "w"}, "spec": {"template": tpl.clone()}});
    for (group, kind) in [
        ("apps", "Deployment"),
        ("apps", "ReplicaSet"),
        ("apps", "StatefulSet"),
        ("batch", "Job"),
        ("", "ReplicationController"),
    ] {
        assert_eq!(
            fields(group, kind, &workload),
            ["spec.template.spec.hostNetwork"],
            "{kind}"
        );
    }
    let cron =
        json!({"metadata": {"name": "c"}, "spec": {"jobTemplate": {"spec": {"template": tpl}}}});
    assert_eq!(
        fields("batch", "CronJob", &cron),
        ["spec.jobTemplate.spec.template.spec.hostNetwork"]
    );
}

#[test]
fn a_template_with_several_problems_reports_each() {
    let mut spec =
        pod_spec(json!({"hostPID": true, "volumes": [{"name": "h", "hostPath": {"path": "/"}}]}));
    spec["containers"][0]["securityContext"] = json!({"privileged": true});
    let d = json!({"metadata": {"name": "w"}, "spec": {"template": {"spec": spec}}});
    assert_eq!(
        fields("apps", "Deployment", &d),
        [
            "spec.template.spec.hostPID",
            "spec.template.spec.volumes[0].hostPath",
            "spec.template.spec.containers[0].securityContext.privileged"
        ]
    );
}

#[test]
fn node_port_services_are_refused_and_others_admitted() {
    let svc =
        |t: &str| json!({"metadata": {"name": "s"}, "spec": {"type": t, "ports": [{"port": 80}]}});
    let (field, detail) = only_refusal("", "Service", &svc("NodePort"));
    assert_eq!(field, "spec.type");
    assert!(
        detail.contains("use a Service of type LoadBalancer"),
        "{detail}"
    );
    for t in ["ClusterIP", "LoadBalancer", "ExternalName"] {
        assert!(refuse_unsupported("", "Service", &svc(t)).is_empty(), "{t}");
    }
}

#[test]
fn other_kinds_and_malformed_objects_are_admitted() {
    assert!(
        refuse_unsupported("", "ConfigMap", &json!({"data": {"hostNetwork": "true"}})).is_empty()
    );
    assert!(refuse_unsupported("", "Pod", &json!({"spec": "x"})).is_empty());
    assert!(refuse_unsupported("apps", "Deployment", &json!({"spec": {"template": 3}})).is_empty());
    assert!(refuse_unsupported(
        "",
        "Pod",
        &json!({"spec": {"containers": [{"ports": "x"}], "volumes": [1]}})
    )
    .is_empty());
}

#[test]
fn refusals_are_forbidden_errors() {
    let errs = refuse_unsupported("", "Pod", &pod(json!({"hostIPC": true})));
    assert_eq!(errs[0].kind, ErrorType::Forbidden);
}

#[test]
fn an_update_may_keep_what_the_stored_object_already_had() {
    let old = pod(json!({"hostNetwork": true}));
    let mut new = old.clone();
    new["metadata"]["finalizers"] = json!([]);
    assert!(refuse_new_unsupported("", "Pod", &new, &old).is_empty());
    let ds = json!({"metadata": {"name": "d"}, "spec": {}});
    assert!(refuse_new_unsupported("apps", "DaemonSet", &ds, &ds).is_empty());
}

#[test]
fn an_update_may_not_add_anything_refused() {
    let old = pod(json!({"hostNetwork": true}));
    let new = pod(json!({"hostNetwork": true, "hostPID": true}));
    let errs = refuse_new_unsupported("", "Pod", &new, &old);
    assert_eq!(
        errs.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
        ["spec.hostPID"]
    );
}

fn resource(kind: &str) -> ResourceType {
    builtins()
        .into_iter()
        .find(|r| r.kind == kind)
        .expect("built-in kind")
}

#[test]
fn a_refusal_is_a_403_naming_the_object_the_field_and_the_alternative() {
    let mut p = pod(json!({}));
    p["metadata"]["name"] = json!("web");
    p["spec"]["containers"][0]["securityContext"] = json!({"privileged": true});
    let err = admit(&resource("Pod"), &p, None).expect_err("refused");
    assert_eq!((err.code, err.reason), (403, "Forbidden"));
    assert!(
        err.message.starts_with("pods \"web\" is forbidden: spec.containers[0].securityContext.privileged: not supported on nodeless"),
        "{}",
        err.message
    );
    let status = err.to_status();
    assert_eq!(
        status["details"]["causes"][0]["field"],
        "spec.containers[0].securityContext.privileged"
    );
    assert_eq!(
        status["details"]["causes"][0]["reason"],
        "FieldValueForbidden"
    );
}

#[test]
fn several_refusals_are_listed_in_one_message() {
    let err = admit(
        &resource("Pod"),
        &pod(json!({"hostPID": true, "hostIPC": true})),
        None,
    )
    .expect_err("refused");
    assert!(
        err.message
            .starts_with("pods \"p\" is forbidden: [spec.hostPID: "),
        "{}",
        err.message
    );
    assert!(err.message.contains(", spec.hostIPC: "), "{}", err.message);
    assert_eq!(
        err.to_status()["details"]["causes"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );
}

#[test]
fn group_qualified_resources_are_named_with_their_group() {
    let ds = json!({"metadata": {"name": "agent"}, "spec": {}});
    let err = admit(&resource("DaemonSet"), &ds, None).expect_err("refused");
    assert!(
        err.message.starts_with(
            "daemonsets.apps \"agent\" is forbidden: spec: DaemonSets are not supported"
        ),
        "{}",
        err.message
    );
}

#[test]
fn admit_passes_custom_resources_and_unchanged_updates() {
    let mut crd_type = resource("DaemonSet");
    crd_type.group = "example.com".into();
    crd_type.custom = true;
    assert!(admit(&crd_type, &json!({"spec": {}}), None).is_ok());
    let old = pod(json!({"hostPID": true}));
    assert!(admit(&resource("Pod"), &old, Some(&old)).is_ok());
    assert!(admit(&resource("Pod"), &pod(json!({})), None).is_ok());
}

#[test]
fn job_failure_and_success_policies_are_refused_until_the_controller_implements_them() {
    let job = json!({"spec": {
        "podFailurePolicy": {"rules": []},
        "backoffLimitPerIndex": 1,
        "podReplacementPolicy": "Failed",
        "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    let fields: Vec<String> = refuse_unsupported("batch", "Job", &job)
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(
        fields,
        [
            "spec.podFailurePolicy",
            "spec.backoffLimitPerIndex",
            "spec.podReplacementPolicy"
        ]
    );
    let cron = json!({"spec": {"jobTemplate": {"spec": {
        "successPolicy": {"rules": [{"succeededCount": 1}]},
        "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}}}});
    let fields: Vec<String> = refuse_unsupported("batch", "CronJob", &cron)
        .into_iter()
        .map(|e| e.field)
        .collect();
    assert_eq!(fields, ["spec.jobTemplate.spec.successPolicy"]);
    let plain = json!({"spec": {"podReplacementPolicy": "TerminatingOrFailed",
        "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}}}});
    assert!(refuse_unsupported("batch", "Job", &plain).is_empty());
}
