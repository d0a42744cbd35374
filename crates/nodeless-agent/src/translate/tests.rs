use std::collections::HashMap;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use nodeless_engine::instance::{
    ProbeAction, PullPolicy, RestartPolicy, RuntimeKind, StorageMedium, VolumeFile, VolumeSource,
    POD_IP_PLACEHOLDER,
};
use serde_json::{json, Value};

use super::*;

fn ctx() -> Context {
    Context {
        host_ip: "192.168.1.10".parse().expect("ip"),
        node_name: "nodeless".into(),
        cluster_dns: vec![],
        cluster_domain: "cluster.local".into(),
        host_resolv_conf: "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp\n".into(),
    }
}

/// A bound Pod in namespace `ns` with the given spec.
fn pod(spec: Value) -> Pod {
    serde_json::from_value(json!({
        "metadata": {
            "name": "web", "namespace": "ns", "uid": "0f3c2b6e-1111-2222-3333-444455556666",
            "labels": {"app": "web", "tier": "front"},
            "annotations": {"nodeless.dev/instance-spec": "1-2Gi", "note": "say \"hi\""}
        },
        "spec": spec
    }))
    .expect("pod")
}

fn simple(container: Value) -> Pod {
    pod(json!({"nodeName": "nodeless", "containers": [container]}))
}

fn cm(name: &str, data: Value) -> ConfigMap {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns"}, "data": data}))
        .expect("configmap")
}

fn secret(name: &str, data: Value) -> Secret {
    serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns"}, "data": data}))
        .expect("secret")
}

fn sources(cms: Vec<ConfigMap>, secrets: Vec<Secret>) -> Sources {
    let name = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        m.name.clone().unwrap_or_default()
    };
    Sources {
        config_maps: cms.into_iter().map(|c| (name(&c.metadata), c)).collect(),
        secrets: secrets
            .into_iter()
            .map(|s| (name(&s.metadata), s))
            .collect(),
    }
}

fn build(p: &Pod) -> InstanceSpec {
    instance_spec(p, &Sources::default(), &ctx()).expect("translates")
}

fn env_of(spec: &InstanceSpec) -> HashMap<String, String> {
    spec.containers[0].env.iter().cloned().collect()
}

fn files(spec: &InstanceSpec, volume: &str) -> Vec<VolumeFile> {
    match &spec
        .volumes
        .iter()
        .find(|v| v.name == volume)
        .expect("volume")
        .source
    {
        VolumeSource::Files { files } => files.clone(),
        other => panic!("not a files volume: {other:?}"),
    }
}

fn text(files: &[VolumeFile], path: &str) -> String {
    let f = files.iter().find(|f| f.path == path).expect(path);
    String::from_utf8(f.contents.clone()).expect("utf8")
}

#[test]
fn a_pod_becomes_an_instance_named_after_it_with_its_uid_as_id() {
    let spec = build(&simple(json!({"name": "app", "image": "busybox:1.36"})));
    assert_eq!(spec.id, "0f3c2b6e-1111-2222-3333-444455556666");
    assert_eq!(spec.name, "ns/web");
    assert_eq!(spec.hostname, "web");
    assert_eq!(spec.runtime, RuntimeKind::Runc);
    assert_eq!(spec.restart_policy, RestartPolicy::Always);
    assert_eq!(spec.containers[0].image, "busybox:1.36");
    assert_eq!(spec.labels.get("app").map(String::as_str), Some("web"));
    assert_eq!(
        spec.labels
            .get("io.kubernetes.pod.namespace")
            .map(String::as_str),
        Some("ns")
    );
}

#[test]
fn the_instance_is_sized_by_the_instance_spec_annotation() {
    let spec = build(&simple(json!({"name": "app", "image": "busybox"})));
    assert_eq!(spec.cpu_millis, 1000);
    assert_eq!(spec.memory_bytes, 2 << 30);
}

#[test]
fn without_the_annotation_the_instance_is_sized_from_limits() {
    let mut p = simple(json!({"name": "app", "image": "busybox",
        "resources": {"limits": {"cpu": "500m", "memory": "1Gi"}}}));
    p.metadata.annotations = None;
    let spec = build(&p);
    assert_eq!(spec.cpu_millis, 500);
    assert_eq!(spec.memory_bytes, 1 << 30);
    assert_eq!(spec.containers[0].cpu_millis, Some(500));
    assert_eq!(spec.containers[0].memory_bytes, Some(1 << 30));
}

#[test]
fn the_hostname_comes_from_spec_hostname_and_is_cut_to_63_characters() {
    let p = pod(
        json!({"hostname": "db-0", "subdomain": "db", "containers": [{"name": "a", "image": "x"}]}),
    );
    assert_eq!(build(&p).hostname, "db-0");
    let mut p = simple(json!({"name": "a", "image": "x"}));
    p.metadata.name = Some(format!("{}-{}", "a".repeat(62), "b"));
    assert_eq!(build(&p).hostname, "a".repeat(62));
}

#[test]
fn the_gvisor_runtime_class_runs_under_runsc_and_unknown_classes_fail() {
    let p = pod(json!({"runtimeClassName": "gvisor", "containers": [{"name": "a", "image": "x"}]}));
    assert_eq!(build(&p).runtime, RuntimeKind::Runsc);
    let p = pod(json!({"runtimeClassName": "kata", "containers": [{"name": "a", "image": "x"}]}));
    let err = instance_spec(&p, &Sources::default(), &ctx()).expect_err("unknown class");
    assert_eq!(err, TranslateError::UnknownRuntimeClass("kata".into()));
    assert_eq!(err.reason(), "RunContainerError");
}

#[test]
fn restart_policies_carry_over() {
    for (policy, want) in [
        ("Never", RestartPolicy::Never),
        ("OnFailure", RestartPolicy::OnFailure),
        ("Always", RestartPolicy::Always),
    ] {
        let p = pod(json!({"restartPolicy": policy, "containers": [{"name": "a", "image": "x"}]}));
        assert_eq!(build(&p).restart_policy, want);
    }
}

#[test]
fn pull_policy_defaults_follow_the_tag_as_upstream_defaulting_does() {
    let policy = |image: &str, given: Option<&str>| {
        let mut c = json!({"name": "a", "image": image});
        if let Some(g) = given {
            c["imagePullPolicy"] = json!(g);
        }
        build(&simple(c)).containers[0].pull_policy
    };
    assert_eq!(policy("busybox", None), PullPolicy::Always);
    assert_eq!(policy("busybox:latest", None), PullPolicy::Always);
    assert_eq!(policy("busybox:1.36", None), PullPolicy::IfNotPresent);
    assert_eq!(policy("localhost:5000/busybox", None), PullPolicy::Always);
    assert_eq!(policy("busybox:latest", Some("Never")), PullPolicy::Never);
    assert_eq!(
        policy("busybox", Some("IfNotPresent")),
        PullPolicy::IfNotPresent
    );
}

#[test]
fn command_and_args_expand_env_references_as_upstream() {
    let spec = build(&simple(json!({
        "name": "a", "image": "x",
        "env": [{"name": "GREETING", "value": "hello"}, {"name": "WHO", "value": "$(GREETING) world"}],
        "command": ["sh", "-c", "echo $(WHO)"],
        "args": ["$(MISSING)", "$$(GREETING)", "$(GREETING", "cost $5"]
    })));
    let c = &spec.containers[0];
    assert_eq!(
        c.command.as_deref(),
        Some(&["sh".to_string(), "-c".into(), "echo hello world".into()][..])
    );
    assert_eq!(
        c.args.as_deref(),
        Some(
            &[
                "$(MISSING)".to_string(),
                "$(GREETING)".into(),
                "$(GREETING".into(),
                "cost $5".into()
            ][..]
        )
    );
    assert_eq!(env_of(&spec)["WHO"], "hello world");
}

#[test]
fn expansion_handles_trailing_and_doubled_dollars() {
    let vars: HashMap<&str, &str> = [("A", "1")].into_iter().collect();
    assert_eq!(env::expand("$(A)$(A)", &vars), "11");
    assert_eq!(env::expand("x$", &vars), "x$");
    assert_eq!(env::expand("$$$$", &vars), "$$");
    assert_eq!(env::expand("$$(A)", &vars), "$(A)");
    assert_eq!(env::expand("$(A", &vars), "$(A");
    assert_eq!(env::expand("$x", &vars), "$x");
}

#[test]
fn env_from_config_maps_and_secrets_comes_first_with_prefixes_and_env_overrides_it() {
    let s = sources(
        vec![cm(
            "cfg",
            json!({"MODE": "prod", "1BAD": "skipped", "LEVEL": "3"}),
        )],
        vec![secret("creds", json!({"PASSWORD": "aHVudGVyMg=="}))],
    );
    let p = simple(json!({
        "name": "a", "image": "x",
        "envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "creds"}, "prefix": "DB_"}],
        "env": [{"name": "LEVEL", "value": "$(MODE)-9"}]
    }));
    let spec = instance_spec(&p, &s, &ctx()).expect("spec");
    let env = env_of(&spec);
    assert_eq!(env["MODE"], "prod");
    assert_eq!(env["DB_PASSWORD"], "hunter2");
    assert_eq!(env["LEVEL"], "prod-9");
    assert!(!env.contains_key("1BAD"));
}

#[test]
fn key_refs_read_config_maps_and_secrets() {
    let s = sources(
        vec![cm("cfg", json!({"mode": "prod"}))],
        vec![secret("creds", json!({"password": "aHVudGVyMg=="}))],
    );
    let p = simple(json!({"name": "a", "image": "x", "env": [
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}},
        {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}},
        {"name": "OPT", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "nope", "optional": true}}},
        {"name": "OPT2", "valueFrom": {"secretKeyRef": {"name": "gone", "key": "k", "optional": true}}}
    ]}));
    let env = env_of(&instance_spec(&p, &s, &ctx()).expect("spec"));
    assert_eq!(env["MODE"], "prod");
    assert_eq!(env["PW"], "hunter2");
    assert!(!env.contains_key("OPT"));
    assert!(!env.contains_key("OPT2"));
}

#[test]
fn a_missing_config_map_is_a_create_container_config_error_naming_it() {
    let p = simple(json!({"name": "a", "image": "x", "env": [
        {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "mode"}}}]}));
    let err = instance_spec(&p, &Sources::default(), &ctx()).expect_err("missing");
    assert_eq!(err.to_string(), "configmap \"x\" not found");
    assert_eq!(err.reason(), "CreateContainerConfigError");
}

#[test]
fn a_missing_secret_or_key_fails_with_upstreams_messages() {
    let p = simple(json!({"name": "a", "image": "x", "envFrom": [{"secretRef": {"name": "s"}}]}));
    let err = instance_spec(&p, &Sources::default(), &ctx()).expect_err("missing");
    assert_eq!(err.to_string(), "secret \"s\" not found");
    let s = sources(vec![cm("cfg", json!({}))], vec![]);
    let p = simple(json!({"name": "a", "image": "x", "env": [
        {"name": "M", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "mode"}}}]}));
    let err = instance_spec(&p, &s, &ctx()).expect_err("missing key");
    assert_eq!(
        err.to_string(),
        "couldn't find key mode in ConfigMap ns/cfg"
    );
}

#[test]
fn field_refs_expose_pod_metadata_and_the_host() {
    let p = pod(
        json!({"nodeName": "nodeless", "serviceAccountName": "robot",
            "containers": [{"name": "a", "image": "x", "env": [
            {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "UID", "valueFrom": {"fieldRef": {"fieldPath": "metadata.uid"}}},
            {"name": "APP", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['app']"}}},
            {"name": "NOTE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.annotations['note']"}}},
            {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
            {"name": "SA", "valueFrom": {"fieldRef": {"fieldPath": "spec.serviceAccountName"}}},
            {"name": "HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.hostIP"}}}
        ]}]}),
    );
    let env = env_of(&build(&p));
    assert_eq!(env["NAME"], "web");
    assert_eq!(env["NS"], "ns");
    assert_eq!(env["UID"], "0f3c2b6e-1111-2222-3333-444455556666");
    assert_eq!(env["APP"], "web");
    assert_eq!(env["NOTE"], "say \"hi\"");
    assert_eq!(env["NODE"], "nodeless");
    assert_eq!(env["SA"], "robot");
    assert_eq!(env["HOST_IP"], "192.168.1.10");
}

#[test]
fn pod_ip_field_refs_become_ip_env_filled_in_by_the_engine() {
    let p = simple(json!({"name": "a", "image": "x", "env": [
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "POD_IPS", "valueFrom": {"fieldRef": {"fieldPath": "status.podIPs"}}},
        {"name": "OTHER", "value": "1"}
    ]}));
    let spec = build(&p);
    assert_eq!(spec.containers[0].ip_env, ["POD_IP", "POD_IPS"]);
    assert!(!env_of(&spec).contains_key("POD_IP"));
}

#[test]
fn references_to_the_pod_ip_expand_to_the_engines_placeholder_in_env_command_and_args() {
    let p = simple(json!({"name": "a", "image": "x",
    "command": ["serve", "--bind=$(POD_IP):80"],
    "args": ["$$(POD_IP)", "$(UNSET)"],
    "env": [
        {"name": "BEFORE", "value": "$(POD_IP)"},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "ADDR", "value": "http://$(POD_IP):8080"}
    ]}));
    let spec = build(&p);
    let c = &spec.containers[0];
    let env = env_of(&spec);
    // Only variables defined earlier expand in env values, as the kubelet does.
    assert_eq!(env["BEFORE"], "$(POD_IP)");
    assert_eq!(env["ADDR"], format!("http://{POD_IP_PLACEHOLDER}:8080"));
    assert_eq!(
        c.command.as_deref().expect("command")[1],
        format!("--bind={POD_IP_PLACEHOLDER}:80")
    );
    // An escaped reference stays literal text; an unknown one stays as written.
    assert_eq!(
        c.args.as_deref().expect("args"),
        ["$(POD_IP)".to_string(), "$(UNSET)".to_string()]
    );
}

#[test]
fn unsupported_field_refs_are_refused() {
    let p = simple(json!({"name": "a", "image": "x", "env": [
        {"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels"}}}]}));
    assert!(matches!(
        instance_spec(&p, &Sources::default(), &ctx()),
        Err(TranslateError::Unsupported(_))
    ));
}

#[test]
fn resource_field_refs_divide_and_round_up() {
    let p = simple(json!({"name": "a", "image": "x",
        "resources": {"limits": {"cpu": "1500m", "memory": "64Mi"}, "requests": {"cpu": "250m"}},
        "env": [
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}},
        {"name": "REQ_CPU_M", "valueFrom": {"resourceFieldRef": {"resource": "requests.cpu", "divisor": "1m"}}},
        {"name": "MEM_MI", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Mi"}}},
        {"name": "REQ_MEM", "valueFrom": {"resourceFieldRef": {"resource": "requests.memory"}}}
    ]}));
    let env = env_of(&build(&p));
    assert_eq!(env["CPU"], "2");
    assert_eq!(env["CPU_M"], "1500");
    assert_eq!(env["REQ_CPU_M"], "250");
    assert_eq!(env["MEM_MI"], "64");
    assert_eq!(env["REQ_MEM"], (64u64 << 20).to_string());
}

#[test]
fn a_missing_limit_in_the_downward_api_is_the_instance_size() {
    let p = simple(json!({"name": "a", "image": "x", "env": [
        {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu"}}},
        {"name": "MEM", "valueFrom": {"resourceFieldRef": {"resource": "limits.memory", "divisor": "1Gi"}}}
    ]}));
    let env = env_of(&build(&p));
    assert_eq!(env["CPU"], "1");
    assert_eq!(env["MEM"], "2");
}

#[test]
fn security_context_sets_user_read_only_root_and_capabilities() {
    let p = pod(
        json!({"securityContext": {"runAsUser": 1000, "runAsGroup": 3000},
        "containers": [
            {"name": "a", "image": "x"},
            {"name": "b", "image": "x", "securityContext": {"runAsUser": 7,
                "readOnlyRootFilesystem": true,
                "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}}
        ]}),
    );
    let spec = build(&p);
    assert_eq!(spec.containers[0].user.as_deref(), Some("1000:3000"));
    let b = &spec.containers[1];
    assert_eq!(b.user.as_deref(), Some("7:3000"));
    assert!(b.readonly_rootfs);
    assert_eq!(b.add_capabilities, ["NET_ADMIN"]);
    assert_eq!(b.drop_capabilities, ["ALL"]);
    assert!(!spec.containers[0].readonly_rootfs);
}

#[test]
fn working_dir_and_init_containers_carry_over() {
    let p = pod(json!({
        "initContainers": [{"name": "init", "image": "busybox", "command": ["true"]}],
        "containers": [{"name": "a", "image": "x", "workingDir": "/srv"}]}));
    let spec = build(&p);
    assert_eq!(spec.init_containers.len(), 1);
    assert_eq!(spec.init_containers[0].name, "init");
    assert_eq!(spec.containers[0].working_dir.as_deref(), Some("/srv"));
}

#[test]
fn probes_translate_with_named_ports_and_defaults() {
    let p = simple(json!({"name": "a", "image": "x",
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": "http",
            "httpHeaders": [{"name": "Host", "value": "example"}, {"name": "X-A", "value": "b"}]},
            "periodSeconds": 2, "failureThreshold": 5},
        "livenessProbe": {"tcpSocket": {"port": 8080}, "initialDelaySeconds": 3},
        "startupProbe": {"exec": {"command": ["cat", "/ready"]}}
    }));
    let c = build(&p).containers.remove(0);
    let r = c.readiness_probe.expect("readiness");
    assert_eq!(
        r.action,
        ProbeAction::HttpGet {
            path: "/healthz".into(),
            port: 8080,
            host_header: Some("example".into()),
            headers: vec![("X-A".into(), "b".into())]
        }
    );
    assert_eq!(r.period, std::time::Duration::from_secs(2));
    assert_eq!(r.failure_threshold, 5);
    assert_eq!(r.timeout, std::time::Duration::from_secs(1));
    let l = c.liveness_probe.expect("liveness");
    assert_eq!(l.action, ProbeAction::TcpSocket { port: 8080 });
    assert_eq!(l.initial_delay, std::time::Duration::from_secs(3));
    assert_eq!(
        c.startup_probe.expect("startup").action,
        ProbeAction::Exec {
            command: vec!["cat".into(), "/ready".into()]
        }
    );
}

#[test]
fn a_probe_naming_an_unknown_port_is_invalid() {
    let p = simple(json!({"name": "a", "image": "x",
        "readinessProbe": {"tcpSocket": {"port": "metrics"}}}));
    assert!(matches!(
        instance_spec(&p, &Sources::default(), &ctx()),
        Err(TranslateError::Invalid(m)) if m.contains("metrics")
    ));
}

#[test]
fn empty_dirs_keep_medium_and_size_limit() {
    let p = pod(json!({"containers": [{"name": "a", "image": "x",
            "volumeMounts": [{"name": "scratch", "mountPath": "/tmp/s", "subPath": "x"}]}],
        "volumes": [{"name": "scratch", "emptyDir": {}},
                    {"name": "ram", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]}));
    let spec = build(&p);
    assert_eq!(
        spec.volumes[0].source,
        VolumeSource::EmptyDir {
            medium: StorageMedium::Disk,
            size_limit: None
        }
    );
    assert_eq!(
        spec.volumes[1].source,
        VolumeSource::EmptyDir {
            medium: StorageMedium::Memory,
            size_limit: Some(64 << 20)
        }
    );
    let m = &spec.containers[0].mounts[0];
    assert_eq!(
        (m.volume.as_str(), m.mount_path.as_str(), m.read_only),
        ("scratch", "/tmp/s", false)
    );
    assert_eq!(m.sub_path.as_deref(), Some("x"));
}

#[test]
fn config_map_volumes_hold_every_key_or_the_listed_items_and_mount_read_only() {
    let s = sources(
        vec![cm("cfg", json!({"a.conf": "A", "b.conf": "B"}))],
        vec![],
    );
    let p = pod(json!({"containers": [{"name": "a", "image": "x",
        "volumeMounts": [{"name": "all", "mountPath": "/etc/all"}]}],
    "volumes": [
        {"name": "all", "configMap": {"name": "cfg", "defaultMode": 0o600}},
        {"name": "some", "configMap": {"name": "cfg", "items": [{"key": "b.conf", "path": "sub/b", "mode": 0o400}]}}
    ]}));
    let spec = instance_spec(&p, &s, &ctx()).expect("spec");
    let all = files(&spec, "all");
    assert_eq!(all.len(), 2);
    assert_eq!(text(&all, "a.conf"), "A");
    assert!(all.iter().all(|f| f.mode == 0o600));
    let some = files(&spec, "some");
    assert_eq!(some.len(), 1);
    assert_eq!((some[0].path.as_str(), some[0].mode), ("sub/b", 0o400));
    assert!(spec.containers[0].mounts[0].read_only);
}

#[test]
fn optional_missing_volume_sources_give_empty_volumes_and_required_ones_fail() {
    let p = pod(json!({"containers": [{"name": "a", "image": "x"}],
        "volumes": [{"name": "v", "configMap": {"name": "gone", "optional": true}},
                    {"name": "w", "secret": {"secretName": "gone2", "optional": true}}]}));
    let spec = build(&p);
    assert!(files(&spec, "v").is_empty());
    assert!(files(&spec, "w").is_empty());
    let p = pod(json!({"containers": [{"name": "a", "image": "x"}],
        "volumes": [{"name": "w", "secret": {"secretName": "gone2"}}]}));
    let err = instance_spec(&p, &Sources::default(), &ctx()).expect_err("required");
    assert_eq!(err.to_string(), "secret \"gone2\" not found");
}

#[test]
fn a_listed_key_missing_from_a_config_map_volume_fails_unless_optional() {
    let s = sources(vec![cm("cfg", json!({"a": "1"}))], vec![]);
    let vol = |optional: bool| {
        pod(json!({"containers": [{"name": "a", "image": "x"}],
            "volumes": [{"name": "v", "configMap": {"name": "cfg", "optional": optional,
                "items": [{"key": "b", "path": "b"}, {"key": "a", "path": "a"}]}}]}))
    };
    assert!(instance_spec(&vol(false), &s, &ctx()).is_err());
    let spec = instance_spec(&vol(true), &s, &ctx()).expect("optional");
    assert_eq!(files(&spec, "v").len(), 1);
}

#[test]
fn secret_volumes_decode_their_data() {
    let s = sources(vec![], vec![secret("tls", json!({"tls.key": "c2VjcmV0"}))]);
    let p = pod(json!({"containers": [{"name": "a", "image": "x"}],
        "volumes": [{"name": "v", "secret": {"secretName": "tls"}}]}));
    let spec = instance_spec(&p, &s, &ctx()).expect("spec");
    let f = files(&spec, "v");
    assert_eq!(text(&f, "tls.key"), "secret");
    assert_eq!(f[0].mode, 0o644);
}

#[test]
fn downward_api_volumes_render_labels_annotations_and_fields() {
    let p = pod(json!({"containers": [{"name": "a", "image": "x",
        "resources": {"limits": {"memory": "128Mi"}}}],
    "volumes": [{"name": "info", "downwardAPI": {"items": [
        {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}},
        {"path": "annotations", "fieldRef": {"fieldPath": "metadata.annotations"}},
        {"path": "name", "fieldRef": {"fieldPath": "metadata.name"}},
        {"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}},
        {"path": "uid", "fieldRef": {"fieldPath": "metadata.uid"}},
        {"path": "mem", "resourceFieldRef": {"containerName": "a", "resource": "limits.memory", "divisor": "1Mi"}}
    ]}}]}));
    let f = files(&build(&p), "info");
    assert_eq!(text(&f, "labels"), "app=\"web\"\ntier=\"front\"");
    assert_eq!(
        text(&f, "annotations"),
        r#"nodeless.dev/instance-spec="1-2Gi"
note="say \"hi\"""#
    );
    assert_eq!(text(&f, "name"), "web");
    assert_eq!(text(&f, "ns"), "ns");
    assert_eq!(text(&f, "uid"), "0f3c2b6e-1111-2222-3333-444455556666");
    assert_eq!(text(&f, "mem"), "128");
}

#[test]
fn projected_volumes_combine_sources_and_skip_service_account_tokens() {
    let s = sources(
        vec![cm("cfg", json!({"a": "A"}))],
        vec![secret("creds", json!({"b": "Qg=="}))],
    );
    let p = pod(json!({"containers": [{"name": "a", "image": "x"}],
    "volumes": [{"name": "all", "projected": {"defaultMode": 0o440, "sources": [
        {"configMap": {"name": "cfg"}},
        {"secret": {"name": "creds", "items": [{"key": "b", "path": "secret/b"}]}},
        {"downwardAPI": {"items": [{"path": "ns", "fieldRef": {"fieldPath": "metadata.namespace"}}]}},
        {"serviceAccountToken": {"path": "token", "expirationSeconds": 3600}}
    ]}}]}));
    let f = files(&instance_spec(&p, &s, &ctx()).expect("spec"), "all");
    let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["a", "secret/b", "ns"]);
    assert!(f.iter().all(|f| f.mode == 0o440));
    assert_eq!(text(&f, "secret/b"), "B");
}

#[test]
fn unsupported_volume_types_are_refused() {
    let p = pod(json!({"containers": [{"name": "a", "image": "x"}],
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}]}));
    assert!(matches!(
        instance_spec(&p, &Sources::default(), &ctx()),
        Err(TranslateError::Unsupported(_))
    ));
}

#[test]
fn references_list_every_config_map_and_secret_a_pod_reads() {
    let p = pod(json!({
        "imagePullSecrets": [{"name": "regcred"}],
        "containers": [{"name": "a", "image": "x",
            "envFrom": [{"configMapRef": {"name": "cm1"}}, {"secretRef": {"name": "s1"}}],
            "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cm2", "key": "k"}}},
                    {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s2", "key": "k"}}}]}],
        "initContainers": [{"name": "i", "image": "x", "envFrom": [{"configMapRef": {"name": "cm3"}}]}],
        "volumes": [{"name": "v1", "configMap": {"name": "cm4"}},
                    {"name": "v2", "secret": {"secretName": "s3"}},
                    {"name": "v3", "projected": {"sources": [{"configMap": {"name": "cm5"}}, {"secret": {"name": "s4"}}]}}]
    }));
    let refs = references(&p);
    assert_eq!(
        refs.config_maps
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        ["cm1", "cm2", "cm3", "cm4", "cm5"]
    );
    assert_eq!(
        refs.secrets.iter().map(String::as_str).collect::<Vec<_>>(),
        ["regcred", "s1", "s2", "s3", "s4"]
    );
}

#[test]
fn files_volumes_render_only_config_backed_volumes() {
    let s = sources(vec![cm("cfg", json!({"a": "A2"}))], vec![]);
    let p = pod(json!({"containers": [{"name": "a", "image": "x"}],
        "volumes": [{"name": "e", "emptyDir": {}}, {"name": "c", "configMap": {"name": "cfg"}}]}));
    let vols = files_volumes(&p, &s, &ctx()).expect("volumes");
    assert_eq!(vols.len(), 1);
    assert_eq!(vols[0].0, "c");
    assert_eq!(text(&vols[0].1, "a"), "A2");
}

#[test]
fn cluster_first_dns_uses_the_cluster_servers_and_search_path() {
    let mut c = ctx();
    c.cluster_dns = vec!["10.96.0.10".into()];
    let p = simple(json!({"name": "a", "image": "x"}));
    let dns = instance_spec(&p, &Sources::default(), &c)
        .expect("spec")
        .dns;
    assert_eq!(dns.nameservers, ["10.96.0.10"]);
    // The host's search domain ("corp") follows the cluster's.
    assert_eq!(
        dns.searches,
        [
            "ns.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local",
            "corp"
        ]
    );
    assert_eq!(dns.options, ["ndots:5"]);
}

#[test]
fn cluster_first_dns_config_merges_after_the_cluster_settings() {
    let mut c = ctx();
    c.cluster_dns = vec!["10.96.0.10".into()];
    c.host_resolv_conf = "nameserver 10.0.0.2\nsearch corp. cluster.local\noptions rotate\n".into();
    let p = pod(json!({"containers": [{"name": "a", "image": "x"}],
        "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["example.com", "corp"],
                      "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}));
    let dns = instance_spec(&p, &Sources::default(), &c)
        .expect("spec")
        .dns;
    assert_eq!(dns.nameservers, ["10.96.0.10", "1.1.1.1"]);
    assert_eq!(
        dns.searches,
        [
            "ns.svc.cluster.local",
            "svc.cluster.local",
            "cluster.local",
            "corp",
            "example.com"
        ]
    );
    // The host's options are not carried over; the Pod's override ndots by name.
    assert_eq!(dns.options, ["ndots:2", "edns0"]);
}

#[test]
fn search_domains_are_capped_as_resolv_conf_allows() {
    let mut c = ctx();
    c.cluster_dns = vec!["10.96.0.10".into()];
    let many: Vec<String> = (0..40).map(|i| format!("d{i}.example")).collect();
    let p = pod(json!({"containers": [{"name": "a", "image": "x"}],
        "dnsConfig": {"searches": many}}));
    let dns = instance_spec(&p, &Sources::default(), &c)
        .expect("spec")
        .dns;
    assert_eq!(dns.searches.len(), 32);
    let long: Vec<String> = (0..20).map(|i| format!("{i}{}", "x".repeat(200))).collect();
    let p = pod(
        json!({"dnsPolicy": "None", "containers": [{"name": "a", "image": "x"}],
        "dnsConfig": {"nameservers": ["9.9.9.9"], "searches": long}}),
    );
    let dns = build(&p).dns;
    assert!(dns.searches.iter().map(|s| s.len() + 1).sum::<usize>() <= 2048);
    assert_eq!(dns.searches.len(), 10);
}

#[test]
fn without_cluster_dns_pods_use_the_hosts_resolvers() {
    let p = simple(json!({"name": "a", "image": "x"}));
    assert_eq!(
        build(&p).dns,
        nodeless_engine::instance::DnsConfig::default()
    );
}

#[test]
fn dns_config_merges_into_the_policy_and_none_uses_only_it() {
    let p = pod(
        json!({"dnsPolicy": "Default", "containers": [{"name": "a", "image": "x"}],
        "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["example.com"],
                      "options": [{"name": "ndots", "value": "2"}, {"name": "edns0"}]}}),
    );
    let dns = build(&p).dns;
    assert_eq!(dns.nameservers, ["10.0.0.2", "1.1.1.1"]);
    assert_eq!(dns.searches, ["corp", "example.com"]);
    assert_eq!(dns.options, ["ndots:2", "edns0"]);
    let p = pod(
        json!({"dnsPolicy": "None", "containers": [{"name": "a", "image": "x"}],
        "dnsConfig": {"nameservers": ["9.9.9.9"]}}),
    );
    let dns = build(&p).dns;
    assert_eq!(dns.nameservers, ["9.9.9.9"]);
    assert!(dns.searches.is_empty());
}

#[test]
fn host_aliases_become_hosts_entries() {
    let p = pod(json!({"containers": [{"name": "a", "image": "x"}],
        "hostAliases": [{"ip": "10.1.2.3", "hostnames": ["db", "db.local"]}]}));
    let hosts = build(&p).hosts;
    assert_eq!(
        hosts,
        [(
            "10.1.2.3".parse().expect("ip"),
            vec!["db".to_string(), "db.local".into()]
        )]
    );
}

#[test]
fn image_pull_secrets_give_credentials_for_the_images_registry() {
    use base64::Engine as _;
    let config = json!({"auths": {"registry.example.com": {"username": "u", "password": "p"}}});
    let encoded = base64::engine::general_purpose::STANDARD.encode(config.to_string());
    let s = sources(
        vec![],
        vec![secret("regcred", json!({".dockerconfigjson": encoded}))],
    );
    let p = pod(
        json!({"imagePullSecrets": [{"name": "missing"}, {"name": "regcred"}],
        "containers": [{"name": "a", "image": "registry.example.com/team/app:1"}]}),
    );
    let spec = instance_spec(&p, &s, &ctx()).expect("a missing pull secret is not fatal");
    let auth = spec.auth.expect("auth");
    assert_eq!(auth.username, "u");
    let p = pod(json!({"imagePullSecrets": [{"name": "regcred"}],
        "containers": [{"name": "a", "image": "busybox"}]}));
    assert!(instance_spec(&p, &s, &ctx()).expect("spec").auth.is_none());
}

#[test]
fn stdin_stdin_once_and_tty_reach_the_container() {
    let spec = build(&simple(json!({
        "name": "c", "image": "busybox", "stdin": true, "stdinOnce": true, "tty": true
    })));
    let c = &spec.containers[0];
    assert!(c.stdin && c.stdin_once && c.tty);
    let plain = build(&simple(json!({"name": "c", "image": "busybox"})));
    let c = &plain.containers[0];
    assert!(!c.stdin && !c.stdin_once && !c.tty);
}
