use super::{assert_clean, assert_has, deployment, pod_spec};
use crate::field::ErrorType;
use crate::status::render_errors;
use crate::validation::{validate_create, validate_update};
use serde_json::{json, Value};

fn create(kind: &str, obj: &Value) -> crate::field::ErrorList {
    validate_create("apps", kind, obj, true)
}

#[test]
fn a_valid_deployment_passes() {
    assert_clean(&create("Deployment", &deployment()));
}

#[test]
fn deployment_without_selector_reads_exactly_like_upstream() {
    let mut d = deployment();
    d["spec"].as_object_mut().expect("spec").remove("selector");
    let errs = create("Deployment", &d);
    assert_eq!(
        render_errors(&errs),
        "[spec.selector: Required value, spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"web\"}: `selector` does not match template `labels`]"
    );
}

#[test]
fn selector_not_matching_labels_reads_exactly_like_upstream() {
    let mut d = deployment();
    d["spec"]["template"]["metadata"]["labels"] = json!({"app": "x"});
    let errs = create("Deployment", &d);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0].to_string(),
        "spec.template.metadata.labels: Invalid value: map[string]string{\"app\":\"x\"}: `selector` does not match template `labels`"
    );
}

#[test]
fn empty_and_malformed_selectors_are_invalid() {
    let mut d = deployment();
    d["spec"]["selector"] = json!({});
    let errs = create("Deployment", &d);
    assert!(errs.iter().any(|e| e.field == "spec.selector"
        && e.detail
            .ends_with("empty selector is invalid for deployment")));
    d["spec"]["selector"] =
        json!({"matchExpressions": [{"key": "app", "operator": "Is", "values": ["web"]}]});
    let errs = create("Deployment", &d);
    assert_has(
        &errs,
        "spec.selector.matchExpressions[0].operator",
        ErrorType::Invalid,
    );
    assert!(errs
        .iter()
        .any(|e| e.field == "spec.selector" && e.detail.ends_with("invalid label selector")));
}

#[test]
fn template_restart_policy_must_be_always() {
    let mut d = deployment();
    d["spec"]["template"]["spec"]["restartPolicy"] = json!("Never");
    let errs = create("Deployment", &d);
    assert_eq!(
        errs[0].to_string(),
        "spec.template.spec.restartPolicy: Unsupported value: \"Never\": supported values: \"Always\""
    );
}

#[test]
fn template_pod_spec_errors_carry_template_paths() {
    let mut d = deployment();
    d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("");
    assert_has(
        &create("Deployment", &d),
        "spec.template.spec.containers[0].image",
        ErrorType::Required,
    );
}

#[test]
fn replicas_and_history_limits_are_non_negative() {
    let mut d = deployment();
    d["spec"]["replicas"] = json!(-1);
    d["spec"]["revisionHistoryLimit"] = json!(-2);
    let errs = create("Deployment", &d);
    assert_eq!(
        errs[0].to_string(),
        "spec.replicas: Invalid value: -1: must be greater than or equal to 0"
    );
    assert_has(&errs, "spec.revisionHistoryLimit", ErrorType::Invalid);
}

#[test]
fn rolling_update_bounds_match_upstream() {
    let mut d = deployment();
    d["spec"]["strategy"] =
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}});
    let errs = create("Deployment", &d);
    assert_eq!(
        errs[0].to_string(),
        "spec.strategy.rollingUpdate.maxUnavailable: Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}: may not be 0 when `maxSurge` is 0"
    );
    d["spec"]["strategy"] = json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "x", "maxUnavailable": "110%"}});
    let errs = create("Deployment", &d);
    assert_has(
        &errs,
        "spec.strategy.rollingUpdate.maxSurge",
        ErrorType::Invalid,
    );
    assert!(errs
        .iter()
        .any(|e| e.detail.ends_with("must not be greater than 100%")));
    d["spec"]["strategy"] = json!({"type": "Recreate", "rollingUpdate": {}});
    assert_has(
        &create("Deployment", &d),
        "spec.strategy.rollingUpdate",
        ErrorType::Forbidden,
    );
    d["spec"]["strategy"] = json!({"type": "BlueGreen"});
    assert_has(
        &create("Deployment", &d),
        "spec.strategy",
        ErrorType::NotSupported,
    );
}

#[test]
fn deployment_selector_is_immutable() {
    let old = deployment();
    let mut new = deployment();
    new["spec"]["selector"] = json!({"matchLabels": {"app": "nginx2"}});
    new["spec"]["template"]["metadata"]["labels"] = json!({"app": "nginx2"});
    let errs = validate_update("apps", "Deployment", &new, &old, true);
    assert_eq!(
        errs[0].to_string(),
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app\":\"nginx2\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable"
    );
    let mut same = deployment();
    same["spec"]["replicas"] = json!(5);
    assert_clean(&validate_update("apps", "Deployment", &same, &old, true));
}

fn stateful_set() -> Value {
    json!({
        "metadata": {"name": "db", "namespace": "default"},
        "spec": {
            "serviceName": "db", "replicas": 1, "podManagementPolicy": "OrderedReady",
            "selector": {"matchLabels": {"app": "db"}},
            "template": {"metadata": {"labels": {"app": "db"}}, "spec": pod_spec()},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}
        }
    })
}

#[test]
fn stateful_set_names_are_labels_and_policies_are_known() {
    let mut s = stateful_set();
    assert_clean(&create("StatefulSet", &s));
    s["metadata"]["name"] = json!("db.v1");
    s["spec"]["podManagementPolicy"] = json!("Random");
    s["spec"]["updateStrategy"] = json!({"type": "OnDelete", "rollingUpdate": {"partition": 1}});
    let errs = create("StatefulSet", &s);
    assert_has(&errs, "metadata.name", ErrorType::Invalid);
    assert_has(&errs, "spec.podManagementPolicy", ErrorType::Invalid);
    assert_has(
        &errs,
        "spec.updateStrategy.rollingUpdate",
        ErrorType::Invalid,
    );
}

#[test]
fn stateful_set_updates_may_only_touch_some_fields() {
    let old = stateful_set();
    let mut new = stateful_set();
    new["spec"]["replicas"] = json!(3);
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("postgres:17");
    assert_clean(&validate_update("apps", "StatefulSet", &new, &old, true));
    new["spec"]["serviceName"] = json!("other");
    let errs = validate_update("apps", "StatefulSet", &new, &old, true);
    assert_eq!(
        errs[0].to_string(),
        "spec: Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"
    );
}

#[test]
fn daemon_set_rolling_update_needs_exactly_one_of_surge_and_unavailable() {
    let mut ds = deployment();
    let spec = ds["spec"].as_object_mut().expect("spec");
    spec.remove("strategy");
    spec.remove("replicas");
    spec.remove("progressDeadlineSeconds");
    spec.insert(
        "updateStrategy".into(),
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 1}}),
    );
    assert_has(
        &create("DaemonSet", &ds),
        "spec.updateStrategy.rollingUpdate.maxSurge",
        ErrorType::Invalid,
    );
    ds["spec"]["updateStrategy"]["rollingUpdate"] = json!({"maxUnavailable": 0, "maxSurge": 0});
    assert_has(
        &create("DaemonSet", &ds),
        "spec.updateStrategy.rollingUpdate.maxUnavailable",
        ErrorType::Required,
    );
    ds["spec"].as_object_mut().expect("spec").remove("selector");
    ds["spec"]["updateStrategy"]["rollingUpdate"] = json!({"maxUnavailable": 1});
    assert_has(
        &create("DaemonSet", &ds),
        "spec.template.metadata.labels",
        ErrorType::Invalid,
    );
}
