use super::body;
use crate::proto::decode;
use k8s_pb::api::apps::v1 as apps;
use k8s_pb::api::coordination::v1 as coordination;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::api::resource::Quantity;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::json;
use std::collections::BTreeMap;

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn quantities(pairs: &[(&str, &str)]) -> BTreeMap<String, Quantity> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Quantity { string: s(v) }))
        .collect()
}

fn int(v: i32) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(0),
        int_val: Some(v),
        str_val: Some(String::new()),
    })
}

fn string(v: &str) -> Option<IntOrString> {
    Some(IntOrString {
        r#type: Some(1),
        int_val: Some(0),
        str_val: s(v),
    })
}

/// ObjectMeta as Go writes it: every non-pointer field present, most of them empty.
fn go_meta(name: &str, namespace: &str) -> Option<meta::ObjectMeta> {
    Some(meta::ObjectMeta {
        name: s(name),
        generate_name: s(""),
        namespace: s(namespace),
        self_link: s(""),
        uid: s(""),
        resource_version: s(""),
        generation: Some(0),
        creation_timestamp: Some(meta::Time::default()),
        ..Default::default()
    })
}

#[test]
fn pod_with_containers_ports_env_and_resources_decodes_to_kubernetes_json() {
    let mut metadata = go_meta("web", "default");
    if let Some(m) = metadata.as_mut() {
        m.labels = [("app".to_string(), "web".to_string())].into();
        m.creation_timestamp = Some(meta::Time {
            seconds: Some(1_704_164_645),
            nanos: Some(0),
        });
    }
    let container = core::Container {
        name: s("app"),
        image: s("nginx:1.27"),
        ports: vec![core::ContainerPort {
            name: s("http"),
            host_port: Some(0),
            container_port: Some(80),
            protocol: s("TCP"),
            host_ip: s(""),
        }],
        env: vec![core::EnvVar {
            name: s("MODE"),
            value: s("prod"),
            value_from: None,
        }],
        resources: Some(core::ResourceRequirements {
            limits: quantities(&[("cpu", "500m"), ("memory", "128Mi")]),
            requests: quantities(&[("cpu", "250m")]),
            ..Default::default()
        }),
        stdin: Some(false),
        tty: Some(false),
        termination_message_path: s("/dev/termination-log"),
        ..Default::default()
    };
    let pod = core::Pod {
        metadata,
        spec: Some(core::PodSpec {
            containers: vec![container],
            restart_policy: s("Always"),
            termination_grace_period_seconds: Some(0),
            host_network: Some(false),
            service_account_name: s(""),
            ..Default::default()
        }),
        status: Some(core::PodStatus {
            phase: s("Running"),
            host_ip: s("192.0.2.1"),
            pod_ip: s("10.0.0.7"),
            pod_ips: vec![core::PodIp { ip: s("10.0.0.7") }],
            ..Default::default()
        }),
    };
    let got = decode(&body("v1", "Pod", &pod)).expect("decodes");
    let want = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "creationTimestamp": "2024-01-02T03:04:05Z", "labels": {"app": "web"}},
        "spec": {
            "containers": [{
                "name": "app", "image": "nginx:1.27",
                "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
                "env": [{"name": "MODE", "value": "prod"}],
                "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "250m"}},
                "terminationMessagePath": "/dev/termination-log"
            }],
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 0
        },
        "status": {"phase": "Running", "hostIP": "192.0.2.1", "podIP": "10.0.0.7", "podIPs": [{"ip": "10.0.0.7"}]}
    });
    assert_eq!(got, want);
}

#[test]
fn deployment_keeps_int_or_string_surge_and_pointer_zeros() {
    let template = core::PodTemplateSpec {
        metadata: go_meta("", ""),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: s("nginx"),
                image: s("nginx"),
                ..Default::default()
            }],
            ..Default::default()
        }),
    };
    let deployment = apps::Deployment {
        metadata: go_meta("d", "default"),
        spec: Some(apps::DeploymentSpec {
            replicas: Some(0),
            selector: Some(meta::LabelSelector {
                match_labels: [("app".to_string(), "d".to_string())].into(),
                ..Default::default()
            }),
            template: Some(template),
            strategy: Some(apps::DeploymentStrategy {
                r#type: s("RollingUpdate"),
                rolling_update: Some(apps::RollingUpdateDeployment {
                    max_unavailable: string("25%"),
                    max_surge: int(1),
                }),
            }),
            min_ready_seconds: Some(0),
            revision_history_limit: Some(0),
            paused: Some(false),
            progress_deadline_seconds: Some(600),
        }),
        status: Some(apps::DeploymentStatus::default()),
    };
    let got = decode(&body("apps/v1", "Deployment", &deployment)).expect("decodes");
    let want = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "d", "namespace": "default"},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"metadata": {}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": 1}},
            "revisionHistoryLimit": 0,
            "progressDeadlineSeconds": 600
        },
        "status": {}
    });
    assert_eq!(got, want);
}

#[test]
fn secret_data_bytes_become_base64_and_pointer_false_is_kept() {
    let secret = core::Secret {
        metadata: go_meta("s", "default"),
        immutable: Some(false),
        data: [
            ("p".to_string(), b"q\x00\xff".to_vec()),
            ("empty".to_string(), Vec::new()),
        ]
        .into(),
        string_data: BTreeMap::new(),
        r#type: s("Opaque"),
    };
    let got = decode(&body("v1", "Secret", &secret)).expect("decodes");
    let want = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "namespace": "default"},
        "immutable": false,
        "data": {"empty": "", "p": "cQD/"},
        "type": "Opaque"
    });
    assert_eq!(got, want);
}

#[test]
fn namespace_with_empty_spec_and_status_keeps_both_objects() {
    let ns = core::Namespace {
        metadata: go_meta("a", ""),
        spec: Some(core::NamespaceSpec::default()),
        status: Some(core::NamespaceStatus {
            phase: s(""),
            conditions: vec![],
        }),
    };
    let got = decode(&body("v1", "Namespace", &ns)).expect("decodes");
    assert_eq!(
        got,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}, "spec": {}, "status": {}})
    );
}

#[test]
fn delete_options_keep_a_zero_grace_period_under_any_group_version() {
    let options = meta::DeleteOptions {
        grace_period_seconds: Some(0),
        preconditions: Some(meta::Preconditions {
            uid: s("1234"),
            resource_version: None,
        }),
        orphan_dependents: None,
        propagation_policy: s("Foreground"),
        dry_run: vec!["All".into()],
        ignore_store_read_error_with_cluster_breaking_potential: None,
    };
    for api_version in ["v1", "meta.k8s.io/v1", "apps/v1"] {
        let got = decode(&body(api_version, "DeleteOptions", &options)).expect("decodes");
        let want = json!({
            "apiVersion": api_version, "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": "1234"},
            "propagationPolicy": "Foreground",
            "dryRun": ["All"]
        });
        assert_eq!(got, want);
    }
}

#[test]
fn service_target_ports_are_numbers_or_names() {
    let port = |name: &str, port: i32, target: Option<IntOrString>| core::ServicePort {
        name: s(name),
        protocol: s("TCP"),
        port: Some(port),
        target_port: target,
        node_port: Some(0),
        ..Default::default()
    };
    let svc = core::Service {
        metadata: go_meta("s", "default"),
        spec: Some(core::ServiceSpec {
            ports: vec![
                port("80-8080", 80, int(8080)),
                port("https", 443, string("https")),
                port("dns", 53, int(0)),
            ],
            selector: [("app".to_string(), "s".to_string())].into(),
            cluster_ip: s(""),
            r#type: s("ClusterIP"),
            ..Default::default()
        }),
        status: Some(core::ServiceStatus::default()),
    };
    let got = decode(&body("v1", "Service", &svc)).expect("decodes");
    assert_eq!(
        got["spec"],
        json!({
            "ports": [
                {"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080},
                {"name": "https", "protocol": "TCP", "port": 443, "targetPort": "https"},
                {"name": "dns", "protocol": "TCP", "port": 53, "targetPort": 0}
            ],
            "selector": {"app": "s"},
            "type": "ClusterIP"
        })
    );
}

#[test]
fn lease_micro_times_have_six_fractional_digits() {
    let lease = coordination::Lease {
        metadata: go_meta("l", "kube-system"),
        spec: Some(coordination::LeaseSpec {
            holder_identity: s("node-1"),
            lease_duration_seconds: Some(40),
            renew_time: Some(meta::MicroTime {
                seconds: Some(1_704_164_645),
                nanos: Some(123_456_789),
            }),
            acquire_time: Some(meta::MicroTime {
                seconds: Some(1_704_164_645),
                nanos: Some(0),
            }),
            ..Default::default()
        }),
    };
    let got = decode(&body("coordination.k8s.io/v1", "Lease", &lease)).expect("decodes");
    assert_eq!(got["spec"]["renewTime"], "2024-01-02T03:04:05.123456Z");
    assert_eq!(got["spec"]["acquireTime"], "2024-01-02T03:04:05.000000Z");
    assert_eq!(got["spec"]["leaseDurationSeconds"], 40);
}

#[test]
fn controller_revision_data_is_the_embedded_json() {
    let revision = apps::ControllerRevision {
        metadata: go_meta("r", "default"),
        data: Some(k8s_pb::apimachinery::pkg::runtime::RawExtension {
            raw: Some(br#"{"spec":{"a":[1,2]}}"#.to_vec()),
        }),
        revision: Some(3),
    };
    let got = decode(&body("apps/v1", "ControllerRevision", &revision)).expect("decodes");
    assert_eq!(got["data"], json!({"spec": {"a": [1, 2]}}));
    assert_eq!(got["revision"], 3);
}

#[test]
fn volumes_and_probes_flatten_their_inline_structs() {
    let spec = core::PodSpec {
        volumes: vec![core::Volume {
            name: s("data"),
            volume_source: Some(core::VolumeSource {
                empty_dir: Some(core::EmptyDirVolumeSource {
                    medium: s(""),
                    size_limit: Some(Quantity { string: s("1Gi") }),
                }),
                ..Default::default()
            }),
        }],
        containers: vec![core::Container {
            name: s("c"),
            readiness_probe: Some(core::Probe {
                handler: Some(core::ProbeHandler {
                    http_get: Some(core::HttpGetAction {
                        path: s("/healthz"),
                        port: string("http"),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                period_seconds: Some(5),
                ..Default::default()
            }),
            ..Default::default()
        }],
        ..Default::default()
    };
    let pod = core::Pod {
        metadata: go_meta("p", "default"),
        spec: Some(spec),
        status: None,
    };
    let got = decode(&body("v1", "Pod", &pod)).expect("decodes");
    assert_eq!(
        got["spec"]["volumes"],
        json!([{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}])
    );
    assert_eq!(
        got["spec"]["containers"][0]["readinessProbe"],
        json!({"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 5})
    );
}

#[test]
fn eviction_carries_its_delete_options() {
    let eviction = k8s_pb::api::policy::v1::Eviction {
        metadata: go_meta("web", "default"),
        delete_options: Some(meta::DeleteOptions {
            grace_period_seconds: Some(0),
            ..Default::default()
        }),
    };
    let got = decode(&body("policy/v1", "Eviction", &eviction)).expect("decodes");
    assert_eq!(
        got,
        json!({
            "apiVersion": "policy/v1", "kind": "Eviction",
            "metadata": {"name": "web", "namespace": "default"},
            "deleteOptions": {"gracePeriodSeconds": 0}
        })
    );
}
