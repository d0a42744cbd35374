use super::{assert_clean, assert_has, pod};
use crate::field::ErrorType;
use crate::validation::{validate_create, validate_update};
use serde_json::json;

#[test]
fn a_valid_pod_passes() {
    assert_clean(&validate_create("", "Pod", &pod(), true));
}

#[test]
fn missing_name_is_required_with_upstream_detail() {
    let mut p = pod();
    p["metadata"] = json!({"namespace": "default"});
    let errs = validate_create("", "Pod", &p, true);
    assert_eq!(
        errs[0].to_string(),
        "metadata.name: Required value: name or generateName is required"
    );
}

#[test]
fn names_follow_each_kinds_rule() {
    let mut p = pod();
    p["metadata"]["name"] = json!("Web_1");
    let errs = validate_create("", "Pod", &p, true);
    assert_eq!(
        errs[0].to_string(),
        "metadata.name: Invalid value: \"Web_1\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    );
    let ns = json!({"metadata": {"name": "a.b"}});
    let errs = validate_create("", "Namespace", &ns, false);
    assert_eq!(
        errs[0].to_string(),
        "metadata.name: Invalid value: \"a.b\": must not contain dots"
    );
    let svc = json!({"metadata": {"name": "1web", "namespace": "default"}, "spec": {"ports": [{"port": 80}]}});
    let errs = validate_create("", "Service", &svc, true);
    assert!(errs[0].detail.starts_with("a DNS-1035 label"), "{errs:?}");
    let role = json!({"metadata": {"name": "system:reader", "namespace": "default"}});
    assert_clean(&validate_create(
        "rbac.authorization.k8s.io",
        "Role",
        &role,
        true,
    ));
}

#[test]
fn namespace_is_required_for_namespaced_kinds_and_forbidden_otherwise() {
    let mut p = pod();
    p["metadata"] = json!({"name": "web"});
    assert_has(
        &validate_create("", "Pod", &p, true),
        "metadata.namespace",
        ErrorType::Required,
    );
    let ns = json!({"metadata": {"name": "team", "namespace": "default"}});
    assert_has(
        &validate_create("", "Namespace", &ns, false),
        "metadata.namespace",
        ErrorType::Forbidden,
    );
}

#[test]
fn labels_and_annotations_are_checked_on_the_map_path() {
    let mut p = pod();
    p["metadata"]["labels"] = json!({"app": "bad value", "-bad": "x"});
    p["metadata"]["annotations"] = json!({"Example.COM/Key": "case does not matter", "a/b/c": "x"});
    let errs = validate_create("", "Pod", &p, true);
    let label_errs = errs.iter().filter(|e| e.field == "metadata.labels").count();
    assert_eq!(label_errs, 2, "{errs:?}");
    assert_eq!(
        errs.iter()
            .filter(|e| e.field == "metadata.annotations")
            .count(),
        1,
        "{errs:?}"
    );
}

#[test]
fn annotations_over_256_kib_are_too_long() {
    let mut p = pod();
    p["metadata"]["annotations"] = json!({"big": "x".repeat(256 * 1024)});
    let errs = validate_create("", "Pod", &p, true);
    assert_eq!(
        errs[0].to_string(),
        "metadata.annotations: Too long: may not be more than 262144 bytes"
    );
}

#[test]
fn owner_references_need_identity_and_one_controller() {
    let mut p = pod();
    p["metadata"]["ownerReferences"] = json!([
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": true},
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "b", "uid": "", "controller": true}
    ]);
    let errs = validate_create("", "Pod", &p, true);
    assert_has(&errs, "metadata.ownerReferences.uid", ErrorType::Invalid);
    assert!(errs.iter().any(|e| e.detail.starts_with(
        "Only one reference can have Controller set to true. Found \"true\" in references for ReplicaSet/a and ReplicaSet/b"
    )));
}

#[test]
fn finalizers_must_be_qualified_names() {
    let mut p = pod();
    p["metadata"]["finalizers"] = json!(["example.com/cleanup", "bad finalizer"]);
    assert_has(
        &validate_create("", "Pod", &p, true),
        "metadata.finalizers",
        ErrorType::Invalid,
    );
}

#[test]
fn identity_fields_are_immutable() {
    let old = json!({"metadata": {"name": "team", "uid": "u1", "creationTimestamp": "2024-01-01T00:00:00Z"}});
    let new = json!({"metadata": {"name": "other", "uid": "u2", "creationTimestamp": "2025-01-01T00:00:00Z"}});
    let errs = validate_update("", "Namespace", &new, &old, false);
    assert_eq!(
        errs[0].to_string(),
        "metadata.name: Invalid value: \"other\": field is immutable"
    );
    assert_has(&errs, "metadata.uid", ErrorType::Invalid);
    assert_has(&errs, "metadata.creationTimestamp", ErrorType::Invalid);
    // The server fills an omitted uid from the stored object: not a change.
    let new = json!({"metadata": {"name": "team"}});
    assert_clean(&validate_update("", "Namespace", &new, &old, false));
}

#[test]
fn no_finalizers_may_be_added_while_deleting() {
    let old = json!({"metadata": {"name": "team", "deletionTimestamp": "2025-01-01T00:00:00Z", "finalizers": ["a.io/x"]}});
    let new = json!({"metadata": {"name": "team", "finalizers": ["a.io/x", "b.io/y"]}});
    let errs = validate_update("", "Namespace", &new, &old, false);
    assert_eq!(
        errs[0].to_string(),
        "metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers []string{\"b.io/y\"}"
    );
}
