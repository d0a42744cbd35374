//! Behaviour tests for validation through the public entry points, one file per family of
//! rules. Each asserts upstream's field path and error type; the messages users see most
//! are compared to upstream's text verbatim.

mod apps;
mod batch;
mod core_kinds;
mod meta;
mod others;
mod pod;

use crate::field::{ErrorList, ErrorType};
use serde_json::{json, Value};

/// Asserts that exactly the given (path, type) appears, printing all errors otherwise.
#[track_caller]
fn assert_has(errs: &ErrorList, field: &str, kind: ErrorType) {
    assert!(
        errs.iter().any(|e| e.field == field && e.kind == kind),
        "expected {kind:?} at {field}, got:\n{}",
        render(errs)
    );
}

#[track_caller]
fn assert_clean(errs: &ErrorList) {
    assert!(
        errs.is_empty(),
        "expected no errors, got:\n{}",
        render(errs)
    );
}

fn render(errs: &ErrorList) -> String {
    errs.iter()
        .map(|e| format!("  {e}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A valid, defaulted container.
fn container(name: &str) -> Value {
    json!({
        "name": name, "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
        "terminationMessagePolicy": "File", "terminationMessagePath": "/dev/termination-log"
    })
}

/// A valid, defaulted pod spec.
fn pod_spec() -> Value {
    json!({
        "containers": [container("web")], "restartPolicy": "Always", "dnsPolicy": "ClusterFirst",
        "terminationGracePeriodSeconds": 30, "schedulerName": "default-scheduler"
    })
}

fn pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}, "spec": pod_spec()})
}

fn deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600
        }
    })
}
