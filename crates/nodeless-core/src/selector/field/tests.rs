use super::*;
use serde_json::json;

fn sel(group: &str, kind: &str, s: &str) -> FieldSelector {
    FieldSelector::parse(group, kind, s).expect(s)
}

fn err(group: &str, kind: &str, s: &str) -> String {
    FieldSelector::parse(group, kind, s)
        .expect_err(s)
        .to_string()
}

fn pod() -> Value {
    json!({
        "metadata": {"name": "web-1", "namespace": "default"},
        "spec": {"nodeName": "vk-1", "restartPolicy": "Always", "schedulerName": "nodeless",
                 "serviceAccountName": "default"},
        "status": {"phase": "Running", "podIP": "10.0.0.9", "podIPs": [{"ip": "10.0.0.9"}]}
    })
}

#[test]
fn every_operator_compares_the_field_as_a_string() {
    let p = pod();
    assert!(sel("", "Pod", "metadata.name=web-1").matches(&p));
    assert!(sel("", "Pod", "metadata.name==web-1").matches(&p));
    assert!(!sel("", "Pod", "metadata.name!=web-1").matches(&p));
    assert!(sel("", "Pod", "status.phase!=Pending,spec.nodeName=vk-1").matches(&p));
    assert!(!sel("", "Pod", "status.phase=Running,spec.nodeName=other").matches(&p));
    assert!(sel("", "Pod", "").matches(&p));
    assert!(sel("", "Pod", "").is_empty());
}

#[test]
fn pod_fields_render_like_upstream_selectable_fields() {
    let p = pod();
    assert!(sel("", "Pod", "spec.hostNetwork=false").matches(&p));
    assert!(sel("", "Pod", "status.podIP=10.0.0.9").matches(&p));
    assert!(sel(
        "",
        "Pod",
        "spec.restartPolicy=Always,spec.schedulerName=nodeless"
    )
    .matches(&p));
    assert!(sel(
        "",
        "Pod",
        "spec.serviceAccountName=default,status.nominatedNodeName="
    )
    .matches(&p));
    // Unscheduled pods are found with an empty node name, as the scheduler does.
    let pending = json!({"metadata": {"name": "p"}, "spec": {}});
    assert!(sel("", "Pod", "spec.nodeName=").matches(&pending));
    assert!(sel("", "Pod", "spec.host=vk-1").matches(&p));
    assert_eq!(
        sel("", "Pod", "spec.host=vk-1").requires_exact("spec.nodeName"),
        Some("vk-1")
    );
}

#[test]
fn unsupported_fields_get_each_kinds_upstream_error() {
    assert_eq!(
        err("", "Pod", "spec.foo=bar"),
        "field label not supported: spec.foo"
    );
    assert_eq!(
        err("", "Node", "metadata.namespace=x"),
        "field label not supported: metadata.namespace"
    );
    assert_eq!(
        err("batch", "Job", "status.active=1"),
        "field label \"status.active\" not supported for batchv1.Job"
    );
    assert_eq!(
        err("apps", "Deployment", "spec.replicas=1"),
        "\"spec.replicas\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
    );
}

#[test]
fn every_kind_accepts_metadata_fields() {
    for (group, kind) in [
        ("", "ConfigMap"),
        ("apps", "Deployment"),
        ("coordination.k8s.io", "Lease"),
        ("", "Namespace"),
    ] {
        let s = FieldSelector::parse(group, kind, "metadata.name=a").expect(kind);
        assert!(s.matches(&json!({"metadata": {"name": "a"}})), "{kind}");
    }
    let cluster = sel("", "Namespace", "metadata.name=a");
    assert!(!cluster.matches(&json!({"metadata": {"name": "b"}})));
}

#[test]
fn per_kind_fields_match_their_objects() {
    let event = json!({
        "metadata": {"name": "e", "namespace": "default"},
        "involvedObject": {"kind": "Pod", "name": "web-1", "namespace": "default", "uid": "u1"},
        "reason": "Scheduled", "type": "Normal", "reportingComponent": "nodeless-scheduler"
    });
    let s = sel(
        "",
        "Event",
        "involvedObject.kind=Pod,involvedObject.name=web-1,involvedObject.uid=u1,type=Normal",
    );
    assert!(s.matches(&event));
    assert!(sel("", "Event", "source=nodeless-scheduler,reason=Scheduled").matches(&event));
    assert!(
        sel("", "Secret", "type=kubernetes.io/tls").matches(&json!({"type": "kubernetes.io/tls"}))
    );
    assert!(sel("", "Namespace", "status.phase=Active")
        .matches(&json!({"status": {"phase": "Active"}})));
    assert!(sel("", "Node", "spec.unschedulable=false").matches(&json!({"spec": {}})));
    assert!(sel("", "Node", "spec.unschedulable=true")
        .matches(&json!({"spec": {"unschedulable": true}})));
    assert!(sel("apps", "ReplicaSet", "status.replicas=0").matches(&json!({"status": {}})));
    assert!(
        sel("batch", "Job", "status.successful=2").matches(&json!({"status": {"succeeded": 2}}))
    );
    assert!(
        sel("", "Service", "spec.type=ClusterIP").matches(&json!({"spec": {"type": "ClusterIP"}}))
    );
}

#[test]
fn escaped_commas_and_equals_are_data() {
    let s = sel("", "Secret", r"metadata.name=a\,b\=c\\d");
    assert!(s.matches(&json!({"metadata": {"name": r"a,b=c\d"}})));
    assert_eq!(
        err("", "Pod", r"metadata.name=a\x"),
        r"invalid field selector: invalid escape sequence: \x"
    );
    assert_eq!(
        err("", "Pod", r"metadata.name=a\"),
        r"invalid field selector: invalid escape sequence: \"
    );
    assert_eq!(
        err("", "Pod", "metadata.name=a=b"),
        "invalid field selector: unescaped character in value: 61"
    );
}

#[test]
fn terms_without_an_operator_are_rejected() {
    assert_eq!(
        err("", "Pod", "metadata.name"),
        "invalid selector: 'metadata.name'; can't understand 'metadata.name'"
    );
}

#[test]
fn custom_resources_select_their_declared_fields() {
    let fields = vec![".spec.color".to_string()];
    let s = FieldSelector::parse_custom("Widget", &fields, "spec.color=blue,metadata.name=w")
        .expect("parses");
    assert!(s.matches(&json!({"metadata": {"name": "w"}, "spec": {"color": "blue"}})));
    let e = FieldSelector::parse_custom("Widget", &fields, "spec.size=1").expect_err("undeclared");
    assert!(e
        .to_string()
        .starts_with("\"spec.size\" is not a known field selector"));
}
