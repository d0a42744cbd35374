use super::{assert_clean, assert_has, container, pod};
use crate::field::ErrorType;
use crate::validation::{validate_create, validate_update};
use serde_json::json;

fn create(p: &serde_json::Value) -> crate::field::ErrorList {
    validate_create("", "Pod", p, true)
}

#[test]
fn containers_are_required() {
    let mut p = pod();
    p["spec"]["containers"] = json!([]);
    assert_eq!(create(&p)[0].to_string(), "spec.containers: Required value");
}

#[test]
fn container_names_are_labels_unique_across_init_containers() {
    let mut p = pod();
    p["spec"]["containers"] = json!([container("web"), container("web"), container("Bad_Name")]);
    p["spec"]["initContainers"] = json!([container("web")]);
    let errs = create(&p);
    assert_has(&errs, "spec.containers[1].name", ErrorType::Duplicate);
    assert_has(&errs, "spec.containers[2].name", ErrorType::Invalid);
    assert_has(&errs, "spec.initContainers[0].name", ErrorType::Duplicate);
}

#[test]
fn image_is_required_and_trimmed() {
    let mut p = pod();
    p["spec"]["containers"][0]["image"] = json!("");
    assert_eq!(
        create(&p)[0].to_string(),
        "spec.containers[0].image: Required value"
    );
    p["spec"]["containers"][0]["image"] = json!(" nginx");
    assert_has(&create(&p), "spec.containers[0].image", ErrorType::Invalid);
}

#[test]
fn ports_need_a_valid_number_protocol_and_unique_names() {
    let mut p = pod();
    p["spec"]["containers"][0]["ports"] = json!([
        {"name": "http", "containerPort": 80, "protocol": "TCP"},
        {"name": "http", "containerPort": 70000, "protocol": "HTTP"},
        {"protocol": "TCP"}
    ]);
    let errs = create(&p);
    assert_has(
        &errs,
        "spec.containers[0].ports[1].name",
        ErrorType::Duplicate,
    );
    assert_has(
        &errs,
        "spec.containers[0].ports[1].containerPort",
        ErrorType::Invalid,
    );
    assert_has(
        &errs,
        "spec.containers[0].ports[2].containerPort",
        ErrorType::Required,
    );
    let proto = errs
        .iter()
        .find(|e| e.field == "spec.containers[0].ports[1].protocol")
        .expect("protocol error");
    assert_eq!(
        proto.body(),
        "Unsupported value: \"HTTP\": supported values: \"SCTP\", \"TCP\", \"UDP\""
    );
}

#[test]
fn env_names_and_value_sources_are_checked() {
    let mut p = pod();
    p["spec"]["containers"][0]["env"] = json!([
        {"name": ""},
        {"name": "A=B", "value": "x"},
        {"name": "FROM", "valueFrom": {}},
        {"name": "BOTH", "valueFrom": {
            "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"},
            "secretKeyRef": {"name": "s", "key": "k"}
        }},
        {"name": "PHASE", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "status.phase"}}},
        {"name": "1 relaxed name is fine in 1.32", "value": "x"}
    ]);
    let errs = create(&p);
    assert_has(&errs, "spec.containers[0].env[0].name", ErrorType::Required);
    assert_has(&errs, "spec.containers[0].env[1].name", ErrorType::Invalid);
    let none = errs
        .iter()
        .find(|e| e.field == "spec.containers[0].env[2].valueFrom")
        .expect("no source error");
    assert_eq!(
        none.body(),
        "Invalid value: \"\": must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"
    );
    let two = errs
        .iter()
        .find(|e| e.field == "spec.containers[0].env[3].valueFrom")
        .expect("two sources error");
    assert!(two
        .detail
        .contains("may not have more than one field specified at a time"));
    assert_has(
        &errs,
        "spec.containers[0].env[4].valueFrom.fieldRef.fieldPath",
        ErrorType::NotSupported,
    );
    assert_eq!(errs.len(), 5, "{errs:?}");
}

#[test]
fn volumes_need_unique_names_and_exactly_one_source() {
    let mut p = pod();
    p["spec"]["volumes"] = json!([
        {"name": "data", "emptyDir": {}},
        {"name": "data", "emptyDir": {}},
        {"name": "none"},
        {"name": "two", "emptyDir": {}, "configMap": {"name": "c"}},
        {"name": "secret", "secret": {}}
    ]);
    let errs = create(&p);
    assert_has(&errs, "spec.volumes[1].name", ErrorType::Duplicate);
    assert_has(&errs, "spec.volumes[2]", ErrorType::Required);
    assert_has(&errs, "spec.volumes[3].configMap", ErrorType::Forbidden);
    assert_has(
        &errs,
        "spec.volumes[4].secret.secretName",
        ErrorType::Required,
    );
}

#[test]
fn volume_mounts_must_refer_to_declared_volumes() {
    let mut p = pod();
    p["spec"]["volumes"] = json!([{"name": "data", "emptyDir": {}}]);
    p["spec"]["containers"][0]["volumeMounts"] = json!([
        {"name": "data", "mountPath": "/data"},
        {"name": "missing", "mountPath": "/data"},
        {"name": "data", "mountPath": "/sub", "subPath": "../escape"}
    ]);
    let errs = create(&p);
    let missing = errs
        .iter()
        .find(|e| e.field == "spec.containers[0].volumeMounts[1].name")
        .expect("not found");
    assert_eq!(missing.body(), "Not found: \"missing\"");
    assert_has(
        &errs,
        "spec.containers[0].volumeMounts[1].mountPath",
        ErrorType::Invalid,
    );
    assert_has(
        &errs,
        "spec.containers[0].volumeMounts.subPath",
        ErrorType::Invalid,
    );
}

#[test]
fn restart_and_dns_policies_take_known_values() {
    let mut p = pod();
    p["spec"]["restartPolicy"] = json!("Sometimes");
    p["spec"]["dnsPolicy"] = json!("Google");
    let errs = create(&p);
    let restart = errs
        .iter()
        .find(|e| e.field == "spec.restartPolicy")
        .expect("restart policy error");
    assert_eq!(
        restart.body(),
        "Unsupported value: \"Sometimes\": supported values: \"Always\", \"OnFailure\", \"Never\""
    );
    assert_has(&errs, "spec.dnsPolicy", ErrorType::NotSupported);
}

#[test]
fn requests_may_not_exceed_limits_and_quantities_must_parse() {
    let mut p = pod();
    p["spec"]["containers"][0]["resources"] = json!({
        "limits": {"cpu": "500m", "memory": "1Gi"},
        "requests": {"cpu": "1", "memory": "lots"}
    });
    let errs = create(&p);
    let over = errs
        .iter()
        .find(|e| e.field == "spec.containers[0].resources.requests")
        .expect("request over limit");
    assert_eq!(
        over.body(),
        "Invalid value: \"1\": must be less than or equal to cpu limit of 500m"
    );
    assert_has(
        &errs,
        "spec.containers[0].resources.requests[memory]",
        ErrorType::Invalid,
    );
    p["spec"]["containers"][0]["resources"] =
        json!({"limits": {"cpu": "1", "gpu": "1"}, "requests": {"cpu": "0.5"}});
    assert_has(
        &create(&p),
        "spec.containers[0].resources.limits[gpu]",
        ErrorType::Invalid,
    );
    p["spec"]["containers"][0]["resources"] =
        json!({"requests": {"cpu": "1000m", "memory": "512Mi"}, "limits": {"cpu": 1}});
    assert_clean(&create(&p));
}

#[test]
fn probes_need_exactly_one_handler() {
    let mut p = pod();
    p["spec"]["containers"][0]["livenessProbe"] = json!({"periodSeconds": -1});
    p["spec"]["containers"][0]["readinessProbe"] =
        json!({"exec": {"command": ["true"]}, "tcpSocket": {"port": 80}, "successThreshold": 3});
    let errs = create(&p);
    let none = errs
        .iter()
        .find(|e| e.field == "spec.containers[0].livenessProbe")
        .expect("no handler");
    assert_eq!(none.body(), "Required value: must specify a handler type");
    assert_has(
        &errs,
        "spec.containers[0].livenessProbe.periodSeconds",
        ErrorType::Invalid,
    );
    assert_has(
        &errs,
        "spec.containers[0].readinessProbe.tcpSocket",
        ErrorType::Forbidden,
    );
    assert_eq!(
        errs.len(),
        3,
        "readiness may have successThreshold > 1: {errs:?}"
    );
}

#[test]
fn init_containers_need_restart_always_for_probes() {
    let mut p = pod();
    let mut init = container("setup");
    init["livenessProbe"] = json!({"exec": {"command": ["true"]}});
    p["spec"]["initContainers"] = json!([init]);
    assert_has(
        &create(&p),
        "spec.initContainers[0].livenessProbe",
        ErrorType::Forbidden,
    );
    p["spec"]["initContainers"][0]["restartPolicy"] = json!("Always");
    assert_clean(&create(&p));
}

#[test]
fn pod_updates_may_only_change_images_and_a_few_fields() {
    let old = pod();
    let mut new = pod();
    new["spec"]["containers"][0]["image"] = json!("nginx:1.28");
    new["spec"]["activeDeadlineSeconds"] = json!(60);
    new["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
    assert_clean(&validate_update("", "Pod", &new, &old, true));
    new["spec"]["containers"][0]["ports"] = json!([{"containerPort": 8080, "protocol": "TCP"}]);
    let errs = validate_update("", "Pod", &new, &old, true);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].field, "spec");
    assert_eq!(errs[0].kind, ErrorType::Forbidden);
    assert!(errs[0].detail.starts_with(
        "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)\n"
    ));
    assert!(
        errs[0].detail.contains("spec.containers[0].ports"),
        "the diff names the field: {}",
        errs[0].detail
    );
}

#[test]
fn pod_updates_may_not_add_containers_or_drop_tolerations() {
    let mut old = pod();
    old["spec"]["tolerations"] = json!([{"key": "k", "operator": "Exists"}]);
    let mut new = old.clone();
    new["spec"]["containers"] = json!([container("web"), container("sidecar")]);
    let errs = validate_update("", "Pod", &new, &old, true);
    assert_eq!(
        errs[0].to_string(),
        "spec.containers: Forbidden: pod updates may not add or remove containers"
    );
    let mut new = old.clone();
    new["spec"]["tolerations"] = json!([]);
    assert_has(
        &validate_update("", "Pod", &new, &old, true),
        "spec.tolerations",
        ErrorType::Forbidden,
    );
}
