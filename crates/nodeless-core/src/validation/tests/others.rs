//! Ingress, HPA, PDB and CRD rules.

use super::{assert_clean, assert_has};
use crate::field::ErrorType;
use crate::validation::{validate_create, validate_update};
use serde_json::{json, Value};

fn ingress(spec: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

#[test]
fn ingress_needs_rules_or_a_default_backend() {
    let errs = validate_create("networking.k8s.io", "Ingress", &ingress(json!({})), true);
    assert_eq!(errs[0].field, "spec");
    assert!(errs[0]
        .detail
        .contains("either `defaultBackend` or `rules` must be specified"));
}

#[test]
fn ingress_paths_and_backends_are_checked() {
    let spec = json!({"rules": [{"host": "10.0.0.1", "http": {"paths": [
        {"path": "/ok", "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}},
        {"path": "relative", "pathType": "Exact", "backend": {"service": {"name": "web", "port": {}}}},
        {"path": "/x", "backend": {"service": {"name": "web", "port": {"name": "http"}}}},
        {"path": "/y", "pathType": "Regex", "backend": {}}
    ]}}]});
    let errs = validate_create("networking.k8s.io", "Ingress", &ingress(spec), true);
    let base = "spec.rules[0].http.paths";
    assert_has(&errs, "spec.rules[0].host", ErrorType::Invalid);
    assert_has(&errs, &format!("{base}[1].path"), ErrorType::Invalid);
    assert_has(&errs, &format!("{base}[1].backend"), ErrorType::Required);
    assert_has(&errs, &format!("{base}[2].pathType"), ErrorType::Required);
    assert_has(
        &errs,
        &format!("{base}[3].pathType"),
        ErrorType::NotSupported,
    );
    assert_has(&errs, &format!("{base}[3].backend"), ErrorType::Invalid);
}

fn hpa(spec: Value) -> Value {
    json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

#[test]
fn hpa_replica_bounds_and_target_are_checked() {
    let spec = json!({"minReplicas": 0, "maxReplicas": 0, "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment"}});
    let errs = validate_create("autoscaling", "HorizontalPodAutoscaler", &hpa(spec), true);
    assert_eq!(
        errs[0].to_string(),
        "spec.minReplicas: Invalid value: 0: must be greater than or equal to 1"
    );
    assert_has(&errs, "spec.maxReplicas", ErrorType::Invalid);
    assert_has(&errs, "spec.scaleTargetRef.name", ErrorType::Required);
    let spec = json!({"minReplicas": 3, "maxReplicas": 2, "scaleTargetRef": {"kind": "Deployment", "name": "web"}});
    let errs = validate_create("autoscaling", "HorizontalPodAutoscaler", &hpa(spec), true);
    assert_eq!(
        errs[0].to_string(),
        "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`"
    );
}

#[test]
fn hpa_metrics_need_a_matching_source() {
    let spec = json!({"maxReplicas": 3, "scaleTargetRef": {"kind": "Deployment", "name": "web"}, "metrics": [
        {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 0}}},
        {"type": "Pods"},
        {"type": "Magic"}
    ]});
    let errs = validate_create("autoscaling", "HorizontalPodAutoscaler", &hpa(spec), true);
    assert_has(
        &errs,
        "spec.metrics[0].resource.target.averageUtilization",
        ErrorType::Invalid,
    );
    assert_has(&errs, "spec.metrics[1].pods", ErrorType::Required);
    assert_has(&errs, "spec.metrics[2].type", ErrorType::NotSupported);
}

#[test]
fn pdb_takes_min_available_or_max_unavailable_not_both() {
    let pdb =
        |spec: Value| json!({"metadata": {"name": "web", "namespace": "default"}, "spec": spec});
    let both = pdb(
        json!({"minAvailable": 1, "maxUnavailable": "150%", "selector": {"matchLabels": {"app": "web"}}}),
    );
    let errs = validate_create("policy", "PodDisruptionBudget", &both, true);
    assert_has(&errs, "spec", ErrorType::Invalid);
    assert!(errs
        .iter()
        .any(|e| e.field == "spec.maxUnavailable"
            && e.detail.ends_with("must not be greater than 100%")));
    let one = pdb(json!({"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}));
    assert_clean(&validate_create(
        "policy",
        "PodDisruptionBudget",
        &one,
        true,
    ));
}

fn crd() -> Value {
    json!({
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com", "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer"}}}}
            }}}]
        }
    })
}

#[test]
fn a_valid_crd_passes() {
    assert_clean(&validate_create(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        &crd(),
        false,
    ));
}

#[test]
fn crd_name_group_scope_and_versions_are_checked() {
    let mut c = crd();
    c["metadata"]["name"] = json!("widgets.other.com");
    c["spec"]["group"] = json!("example");
    c["spec"]["scope"] = json!("Global");
    c["spec"]["versions"][0]["storage"] = json!(false);
    c["spec"]["names"]["kind"] = json!("Wid get");
    let errs = validate_create(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        &c,
        false,
    );
    let name = errs
        .iter()
        .find(|e| e.field == "metadata.name")
        .expect("name error");
    assert_eq!(name.detail, "must be spec.names.plural+\".\"+spec.group");
    assert_has(&errs, "spec.group", ErrorType::Invalid);
    assert_has(&errs, "spec.scope", ErrorType::NotSupported);
    assert!(errs.iter().any(|e| e.field == "spec.versions"
        && e.detail == "must have exactly one version marked as storage version"));
    assert_has(&errs, "spec.names.kind", ErrorType::Invalid);
}

#[test]
fn crd_versions_need_structural_schemas() {
    let mut c = crd();
    c["spec"]["versions"][0]
        .as_object_mut()
        .expect("version")
        .remove("schema");
    let errs = validate_create(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        &c,
        false,
    );
    assert_eq!(
        errs[0].to_string(),
        "spec.versions[0].schema.openAPIV3Schema: Required value: schemas are required"
    );
    let mut c = crd();
    c["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]
        ["size"] = json!({});
    let errs = validate_create(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        &c,
        false,
    );
    assert_has(
        &errs,
        "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].type",
        ErrorType::Required,
    );
}

#[test]
fn crd_group_and_scope_are_immutable() {
    let old = crd();
    let mut new = crd();
    new["spec"]["scope"] = json!("Cluster");
    let errs = validate_update(
        "apiextensions.k8s.io",
        "CustomResourceDefinition",
        &new,
        &old,
        false,
    );
    assert_eq!(
        errs[0].to_string(),
        "spec.scope: Invalid value: \"Cluster\": field is immutable"
    );
}
