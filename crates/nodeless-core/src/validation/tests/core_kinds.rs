use super::{assert_clean, assert_has};
use crate::field::ErrorType;
use crate::validation::{validate_create, validate_update};
use serde_json::{json, Value};

fn service(spec: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn core(kind: &str, obj: &Value) -> crate::field::ErrorList {
    validate_create("", kind, obj, kind != "Namespace")
}

#[test]
fn service_ports_are_required_unless_headless_or_external() {
    let errs = core("Service", &service(json!({"type": "ClusterIP"})));
    assert_eq!(errs[0].to_string(), "spec.ports: Required value");
    assert_clean(&core("Service", &service(json!({"clusterIP": "None"}))));
    assert_clean(&core(
        "Service",
        &service(json!({"type": "ExternalName", "externalName": "db.example.com."})),
    ));
}

#[test]
fn service_ports_need_names_when_several_and_valid_numbers() {
    let svc = service(json!({"ports": [
        {"port": 80, "protocol": "TCP", "targetPort": 8080},
        {"name": "https", "port": 0, "protocol": "TCP", "targetPort": "Bad Name"},
        {"name": "https", "port": 443, "protocol": "HTTP"}
    ]}));
    let errs = core("Service", &svc);
    assert_has(&errs, "spec.ports[0].name", ErrorType::Required);
    assert_eq!(
        errs.iter()
            .find(|e| e.field == "spec.ports[1].port")
            .expect("port")
            .body(),
        "Invalid value: 0: must be between 1 and 65535, inclusive"
    );
    assert_has(&errs, "spec.ports[1].targetPort", ErrorType::Invalid);
    assert_has(&errs, "spec.ports[2].name", ErrorType::Duplicate);
    assert_has(&errs, "spec.ports[2].protocol", ErrorType::NotSupported);
}

#[test]
fn service_type_and_cluster_ip_take_known_values() {
    let errs = core(
        "Service",
        &service(json!({"type": "Public", "clusterIP": "10.0.0.300", "ports": [{"port": 80}]})),
    );
    assert_has(&errs, "spec.type", ErrorType::NotSupported);
    assert_has(&errs, "spec.clusterIPs[0]", ErrorType::Invalid);
    let errs = core(
        "Service",
        &service(json!({"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30080}]})),
    );
    assert_has(&errs, "spec.ports[0].nodePort", ErrorType::Forbidden);
}

#[test]
fn service_cluster_ip_cannot_change_once_set() {
    let old = service(
        json!({"clusterIP": "10.96.0.5", "clusterIPs": ["10.96.0.5"], "ports": [{"port": 80}]}),
    );
    let new = service(
        json!({"clusterIP": "10.96.0.6", "clusterIPs": ["10.96.0.6"], "ports": [{"port": 80}]}),
    );
    let errs = validate_update("", "Service", &new, &old, true);
    assert_eq!(
        errs[0].to_string(),
        "spec.clusterIPs[0]: Invalid value: []string{\"10.96.0.6\"}: may not change once set"
    );
    let omitted = service(json!({"ports": [{"port": 81}]}));
    assert_clean(&validate_update("", "Service", &omitted, &old, true));
}

#[test]
fn config_keys_are_checked_in_configmaps_and_secrets() {
    let cm = json!({"metadata": {"name": "c", "namespace": "default"}, "data": {"ok.key": "1", "bad/key": "2"}});
    let errs = core("ConfigMap", &cm);
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].field, "data[bad/key]");
    assert!(errs[0].detail.starts_with(
        "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
    ));
    let secret =
        json!({"metadata": {"name": "s", "namespace": "default"}, "stringData": {"..x": "v"}});
    assert_has(&core("Secret", &secret), "data[..x]", ErrorType::Invalid);
}

#[test]
fn typed_secrets_need_their_keys() {
    let secret = json!({"metadata": {"name": "s", "namespace": "default"}, "type": "kubernetes.io/dockerconfigjson", "data": {}});
    let errs = core("Secret", &secret);
    assert_eq!(
        errs[0].to_string(),
        "data[.dockerconfigjson]: Required value"
    );
    let bad_json = json!({
        "metadata": {"name": "s", "namespace": "default"}, "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": "bm90IGpzb24="}
    });
    assert_has(
        &core("Secret", &bad_json),
        "data[.dockerconfigjson]",
        ErrorType::Invalid,
    );
    let tls = json!({"metadata": {"name": "s", "namespace": "default"}, "type": "kubernetes.io/tls", "data": {"tls.crt": ""}});
    assert_has(&core("Secret", &tls), "data[tls.key]", ErrorType::Required);
}

#[test]
fn immutable_configmaps_and_secrets_reject_changes() {
    let old = json!({"metadata": {"name": "c", "namespace": "default"}, "immutable": true, "data": {"a": "1"}});
    let new = json!({"metadata": {"name": "c", "namespace": "default"}, "immutable": true, "data": {"a": "2"}});
    let errs = validate_update("", "ConfigMap", &new, &old, true);
    assert_eq!(
        errs[0].to_string(),
        "data: Forbidden: field is immutable when `immutable` is set"
    );
    let new = json!({"metadata": {"name": "c", "namespace": "default"}, "data": {"a": "1"}});
    assert_has(
        &validate_update("", "Secret", &new, &old, true),
        "immutable",
        ErrorType::Forbidden,
    );
    let retyped = json!({"metadata": {"name": "c", "namespace": "default"}, "type": "kubernetes.io/tls", "immutable": true, "data": {"a": "1", "tls.crt": "", "tls.key": ""}});
    assert_has(
        &validate_update("", "Secret", &retyped, &old, true),
        "type",
        ErrorType::Invalid,
    );
}

#[test]
fn namespace_finalizers_are_qualified_names() {
    let ns =
        json!({"metadata": {"name": "team"}, "spec": {"finalizers": ["kubernetes", "not valid"]}});
    let errs = core("Namespace", &ns);
    assert_eq!(errs.len(), 1);
    assert_has(&errs, "spec.finalizers", ErrorType::Invalid);
}

#[test]
fn events_must_match_their_involved_object_namespace() {
    let event = json!({
        "metadata": {"name": "web.1", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web", "namespace": "other"},
        "reason": "Started", "type": "Normal"
    });
    let errs = core("Event", &event);
    assert_eq!(
        errs[0].to_string(),
        "involvedObject.namespace: Invalid value: \"other\": does not match event.namespace"
    );
    let new_style = json!({
        "metadata": {"name": "web.1", "namespace": "default"},
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
        "eventTime": "2025-01-01T00:00:00.000000Z", "type": "Odd"
    });
    let errs = validate_create("events.k8s.io", "Event", &new_style, true);
    assert_has(&errs, "reportingController", ErrorType::Required);
    assert_has(&errs, "action", ErrorType::Required);
    assert_has(&errs, "type", ErrorType::Invalid);
}

#[test]
fn leases_need_positive_durations() {
    let lease = json!({"metadata": {"name": "leader", "namespace": "default"}, "spec": {"leaseDurationSeconds": 0}});
    let errs = validate_create("coordination.k8s.io", "Lease", &lease, true);
    assert_eq!(
        errs[0].to_string(),
        "spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
    );
}

#[test]
fn runtime_class_handler_is_a_label_fixed_after_create() {
    let rc = json!({"metadata": {"name": "gvisor"}, "handler": "runsc"});
    assert_clean(&validate_create("node.k8s.io", "RuntimeClass", &rc, false));
    let bad = json!({"metadata": {"name": "gvisor"}, "handler": "run.sc"});
    assert_has(
        &validate_create("node.k8s.io", "RuntimeClass", &bad, false),
        "handler",
        ErrorType::Invalid,
    );
    let changed = json!({"metadata": {"name": "gvisor"}, "handler": "runc"});
    let errs = validate_update("node.k8s.io", "RuntimeClass", &changed, &rc, false);
    assert_eq!(
        errs[0].to_string(),
        "handler: Invalid value: \"runc\": field is immutable"
    );
}
