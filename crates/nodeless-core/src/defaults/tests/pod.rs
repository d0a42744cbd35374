use super::*;
use serde_json::json;

#[test]
fn a_minimal_pod_gets_upstreams_defaults() {
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"metadata": {"name": "p"}, "spec": pod_template()["spec"].clone()}),
    );
    let mut expected = defaulted_template_spec();
    expected["enableServiceLinks"] = json!(true);
    assert_eq!(pod["spec"], expected);
}

#[test]
fn pod_defaults_keep_the_users_values() {
    let spec = json!({"restartPolicy": "Never", "dnsPolicy": "Default", "terminationGracePeriodSeconds": 0,
        "enableServiceLinks": false, "schedulerName": "mine", "securityContext": {"runAsUser": 1},
        "containers": [{"name": "c", "image": "nginx", "imagePullPolicy": "Never",
            "terminationMessagePath": "/x", "terminationMessagePolicy": "FallbackToLogsOnError",
            "ports": [{"containerPort": 80, "protocol": "UDP"}]}]});
    let pod = defaulted("", "v1", "Pod", json!({"spec": spec.clone()}));
    for key in [
        "restartPolicy",
        "dnsPolicy",
        "terminationGracePeriodSeconds",
        "enableServiceLinks",
        "schedulerName",
        "securityContext",
    ] {
        assert_eq!(pod["spec"][key], spec[key], "{key}");
    }
    let c = &pod["spec"]["containers"][0];
    assert_eq!(c["imagePullPolicy"], "Never");
    assert_eq!(c["terminationMessagePath"], "/x");
    assert_eq!(c["terminationMessagePolicy"], "FallbackToLogsOnError");
    assert_eq!(c["ports"][0]["protocol"], "UDP");
}

#[test]
fn image_pull_policy_follows_the_tag() {
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {
        "initContainers": [{"name": "i", "image": "busybox"}],
        "containers": [{"name": "a", "image": "nginx:latest"}, {"name": "b", "image": "nginx:1.25"},
            {"name": "c", "image": "nginx@sha256:0123"}, {"name": "d", "image": "registry:5000/nginx"}],
        "ephemeralContainers": [{"name": "e", "image": "busybox:1"}]}}),
    );
    let policy = |list: &str, i: usize| pod["spec"][list][i]["imagePullPolicy"].clone();
    assert_eq!(policy("initContainers", 0), "Always");
    assert_eq!(policy("containers", 0), "Always");
    assert_eq!(policy("containers", 1), "IfNotPresent");
    assert_eq!(policy("containers", 2), "IfNotPresent");
    assert_eq!(policy("containers", 3), "Always");
    assert_eq!(policy("ephemeralContainers", 0), "IfNotPresent");
}

#[test]
fn container_ports_env_probes_and_hooks_are_defaulted() {
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": [{"name": "c", "image": "x:1",
        "ports": [{"containerPort": 80}],
        "env": [{"name": "N", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
        "livenessProbe": {"httpGet": {"port": 80}},
        "readinessProbe": {"tcpSocket": {"port": 80}, "periodSeconds": 3},
        "lifecycle": {"preStop": {"httpGet": {"port": 80, "path": "/stop"}}}}]}}),
    );
    let c = &pod["spec"]["containers"][0];
    assert_eq!(
        c["ports"][0],
        json!({"containerPort": 80, "protocol": "TCP"})
    );
    assert_eq!(
        c["env"][0]["valueFrom"]["fieldRef"],
        json!({"fieldPath": "metadata.name", "apiVersion": "v1"})
    );
    assert_eq!(
        c["livenessProbe"],
        json!({"httpGet": {"port": 80, "path": "/", "scheme": "HTTP"}, "timeoutSeconds": 1, "periodSeconds": 10,
            "successThreshold": 1, "failureThreshold": 3})
    );
    assert_eq!(c["readinessProbe"]["periodSeconds"], 3);
    assert_eq!(
        c["lifecycle"]["preStop"]["httpGet"],
        json!({"port": 80, "path": "/stop", "scheme": "HTTP"})
    );
}

#[test]
fn pod_requests_default_to_limits_but_templates_do_not() {
    let limits = json!({"cpu": "2", "memory": "4Gi"});
    let container = json!({"name": "c", "image": "x:1", "resources": {"limits": limits, "requests": {"cpu": "1"}}});
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": [container.clone()], "initContainers": [container.clone()]}}),
    );
    for list in ["containers", "initContainers"] {
        assert_eq!(
            pod["spec"][list][0]["resources"]["requests"],
            json!({"cpu": "1", "memory": "4Gi"})
        );
    }
    let deploy = defaulted(
        "apps",
        "v1",
        "Deployment",
        json!({"spec": {"template": {"spec": {"containers": [container]}}}}),
    );
    assert_eq!(
        deploy["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"],
        json!({"cpu": "1"})
    );
    assert!(deploy["spec"]["template"]["spec"]
        .get("enableServiceLinks")
        .is_none());
}

#[test]
fn host_network_pods_publish_their_ports_on_the_host() {
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"hostNetwork": true,
        "containers": [{"name": "c", "image": "x:1", "ports": [{"containerPort": 8080}, {"containerPort": 1, "hostPort": 2}]}]}}),
    );
    let ports = &pod["spec"]["containers"][0]["ports"];
    assert_eq!(ports[0]["hostPort"], 8080);
    assert_eq!(ports[1]["hostPort"], 2);
}

#[test]
fn volumes_get_modes_types_and_an_empty_dir_when_sourceless() {
    let pod = defaulted(
        "",
        "v1",
        "Pod",
        json!({"spec": {"containers": [], "volumes": [
            {"name": "a"},
            {"name": "b", "secret": {"secretName": "s"}},
            {"name": "c", "configMap": {"name": "m", "defaultMode": 256}},
            {"name": "d", "downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}},
            {"name": "e", "projected": {"sources": [{"serviceAccountToken": {"path": "t"}},
                {"downwardAPI": {"items": [{"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}]}}]}},
            {"name": "f", "hostPath": {"path": "/x"}},
            {"name": "g", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
            {"name": "h", "emptyDir": {"medium": "Memory"}}
        ]}}),
    );
    let v = &pod["spec"]["volumes"];
    assert_eq!(v[0], json!({"name": "a", "emptyDir": {}}));
    assert_eq!(v[1]["secret"]["defaultMode"], 420);
    assert_eq!(v[2]["configMap"]["defaultMode"], 256);
    assert_eq!(v[3]["downwardAPI"]["defaultMode"], 420);
    assert_eq!(
        v[3]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
        "v1"
    );
    assert_eq!(v[4]["projected"]["defaultMode"], 420);
    assert_eq!(
        v[4]["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"],
        3600
    );
    assert_eq!(
        v[4]["projected"]["sources"][1]["downwardAPI"]["items"][0]["fieldRef"]["apiVersion"],
        "v1"
    );
    assert_eq!(v[5]["hostPath"], json!({"path": "/x", "type": ""}));
    assert_eq!(
        v[6]["ephemeral"]["volumeClaimTemplate"]["spec"]["volumeMode"],
        "Filesystem"
    );
    assert_eq!(v[7], json!({"name": "h", "emptyDir": {"medium": "Memory"}}));
}
