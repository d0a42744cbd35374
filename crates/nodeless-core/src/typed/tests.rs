use super::*;
use crate::resource::builtins;
use serde_json::json;

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "namespace": "default"}, "spec": spec})
}

fn decode_err(group: &str, version: &str, kind: &str, obj: &Value) -> TypedError {
    decode(group, version, kind, obj).expect_err("decode should fail")
}

#[test]
fn a_string_where_an_int_is_expected_names_the_go_struct_and_field() {
    let obj = pod(
        json!({"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": "80"}]}]}),
    );
    let err = decode_err("", "v1", "Pod", &obj);
    let TypedError::Decode { field, message, .. } = &err else {
        panic!("unexpected {err:?}")
    };
    assert_eq!(field, "spec.containers[0].ports[0].containerPort");
    assert_eq!(
        message,
        "json: cannot unmarshal string into Go struct field ContainerPort.spec.containers.ports.containerPort of type int32"
    );
    assert!(err
        .to_string()
        .starts_with("Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal"));
}

#[test]
fn a_wrongly_typed_map_value_is_reported_inside_its_struct() {
    let obj = json!({"metadata": {"name": "x", "labels": {"app": 5}}});
    let err = decode_err("", "v1", "ConfigMap", &obj);
    let TypedError::Decode { field, message, .. } = &err else {
        panic!("unexpected {err:?}")
    };
    assert_eq!(field, "metadata.labels.app");
    assert!(message.contains("cannot unmarshal number into Go struct field ObjectMeta.metadata.labels.app of type string"), "{message}");
}

#[test]
fn a_fraction_for_an_integer_is_a_type_error() {
    let obj = json!({"metadata": {"name": "d"}, "spec": {"replicas": 1.5, "selector": {}, "template": {}}});
    let err = decode_err("apps", "v1", "Deployment", &obj);
    let TypedError::Decode { field, message, .. } = &err else {
        panic!("unexpected {err:?}")
    };
    assert_eq!(field, "spec.replicas");
    assert!(message.contains("cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32"), "{message}");
}

#[test]
fn a_struct_given_a_scalar_names_the_struct_type() {
    let err = decode_err("", "v1", "Pod", &json!({"spec": "nope"}));
    let TypedError::Decode { field, message, .. } = &err else {
        panic!("unexpected {err:?}")
    };
    assert_eq!(field, "spec");
    assert_eq!(
        message,
        "json: cannot unmarshal string into Go struct field Pod.spec of type v1.PodSpec"
    );
}

#[test]
fn bad_visitor_input_is_located_too() {
    let obj = json!({"metadata": {"name": "s"}, "data": {"key": "not base64!"}});
    let err = decode_err("", "v1", "Secret", &obj);
    let TypedError::Decode { field, .. } = &err else {
        panic!("unexpected {err:?}")
    };
    assert_eq!(field, "data.key");
    let obj = json!({"metadata": {"name": "n", "creationTimestamp": "yesterday"}});
    let TypedError::Decode { field, .. } = decode_err("", "v1", "Namespace", &obj) else {
        panic!()
    };
    assert_eq!(field, "metadata.creationTimestamp");
}

#[test]
fn unknown_fields_are_listed_with_full_paths_inside_lists() {
    let obj = pod(json!({
        "contaners": [],
        "containers": [{"name": "c", "imagee": "nginx", "ports": [{"containerPort": 80, "hostPorts": 1}]}]
    }));
    let mut obj = obj;
    obj["metadata"]["lables"] = json!({"a": "b"});
    obj["extra"] = json!(null);
    let decoded = decode("", "v1", "Pod", &obj).expect("decodes");
    assert_eq!(
        decoded.unknown_fields,
        vec![
            "metadata.lables",
            "spec.contaners",
            "spec.containers[0].imagee",
            "spec.containers[0].ports[0].hostPorts",
            "extra",
        ]
    );
    assert!(decoded.object["spec"].get("contaners").is_none());
    assert!(decoded.object["spec"]["containers"][0]
        .get("imagee")
        .is_none());
    assert!(decoded.object.get("extra").is_none());
}

#[test]
fn unknown_fields_inside_map_values_of_structs_are_found() {
    let crd = json!({
        "metadata": {"name": "foos.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
            "names": {"plural": "foos", "kind": "Foo"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {"spec": {"type": "object", "typo": true, "default": {"a": null}}}
            }}}]}
    });
    let decoded = decode(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        &crd,
    )
    .expect("decodes");
    assert_eq!(
        decoded.unknown_fields,
        vec!["spec.versions[0].schema.openAPIV3Schema.properties.spec.typo"]
    );
    // A free-form JSON value keeps its nulls.
    let default = &decoded.object["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]
        ["spec"]["default"];
    assert_eq!(default, &json!({"a": null}));
}

#[test]
fn strict_and_warn_render_unknown_fields_like_upstream() {
    let decoded = decode(
        "",
        "v1",
        "Pod",
        &pod(json!({"containers": [], "contaners": 1})),
    )
    .expect("decodes");
    assert_eq!(decoded.warnings(), vec!["unknown field \"spec.contaners\""]);
    let err = decoded.strict_error("v1", "Pod").expect("strict error");
    assert_eq!(
        err.to_string(),
        "Pod in version \"v1\" cannot be handled as a Pod: strict decoding error: unknown field \"spec.contaners\""
    );
    let status = StatusError::from(err);
    assert_eq!((status.code, status.reason), (400, "BadRequest"));
}

#[test]
fn quantities_keep_the_users_spelling_and_accept_bare_numbers_and_null() {
    let obj = pod(
        json!({"containers": [{"name": "c", "image": "nginx", "resources": {
            "limits": {"cpu": "1500m", "memory": "1.5Gi"},
            "requests": {"cpu": 1, "memory": 0.5, "ephemeral-storage": "1e3", "example.com/gpu": null}
        }}]}),
    );
    let decoded = decode("", "v1", "Pod", &obj).expect("decodes");
    let res = &decoded.object["spec"]["containers"][0]["resources"];
    assert_eq!(res["limits"], json!({"cpu": "1500m", "memory": "1.5Gi"}));
    assert_eq!(
        res["requests"],
        json!({"cpu": "1", "memory": "0.5", "ephemeral-storage": "1e3", "example.com/gpu": "0"})
    );
}

#[test]
fn int_or_string_survives_the_round_trip_in_both_forms() {
    let obj = json!({"metadata": {"name": "d"}, "spec": {
        "selector": {"matchLabels": {"a": "b"}},
        "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 2, "maxUnavailable": "30%"}}
    }});
    let decoded = decode("apps", "v1", "Deployment", &obj).expect("decodes");
    assert_eq!(
        decoded.object["spec"]["strategy"]["rollingUpdate"],
        json!({"maxSurge": 2, "maxUnavailable": "30%"})
    );
    let svc = json!({"metadata": {"name": "s"}, "spec": {"ports": [{"port": 80, "targetPort": "http"}, {"port": 81, "targetPort": 8081}]}});
    let decoded = decode("", "v1", "Service", &svc).expect("decodes");
    assert_eq!(decoded.object["spec"]["ports"][0]["targetPort"], "http");
    assert_eq!(decoded.object["spec"]["ports"][1]["targetPort"], 8081);
}

#[test]
fn null_values_mean_absent_as_in_go() {
    let obj = json!({"metadata": {"name": "d", "labels": null, "annotations": {"a": null}},
        "spec": {"replicas": null, "selector": null, "template": {"spec": {"containers": [{"name": null, "image": "x"}]}}}});
    let decoded = decode("apps", "v1", "Deployment", &obj).expect("decodes");
    let o = &decoded.object;
    assert!(o["metadata"].get("labels").is_none());
    assert_eq!(o["metadata"]["annotations"], json!({"a": ""}));
    assert!(o["spec"].get("replicas").is_none());
    assert_eq!(o["spec"]["template"]["spec"]["containers"][0]["name"], "");
    assert!(decoded.unknown_fields.is_empty());
}

#[test]
fn floats_keep_the_users_integer_spelling() {
    let crd = json!({"metadata": {"name": "foos.example.com"}, "spec": {"group": "example.com", "scope": "Namespaced",
        "names": {"plural": "foos", "kind": "Foo"},
        "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {
            "type": "object", "properties": {"n": {"type": "number", "maximum": 5, "minimum": 0.5}}}}}]}});
    let decoded = decode(
        "apiextensions.k8s.io",
        "v1",
        "CustomResourceDefinition",
        &crd,
    )
    .expect("decodes");
    let n = &decoded.object["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["n"];
    assert_eq!(n["maximum"].to_string(), "5");
    assert_eq!(n["minimum"].to_string(), "0.5");
}

#[test]
fn missing_type_meta_is_filled_and_a_mismatch_is_refused() {
    let decoded = decode(
        "apps",
        "v1",
        "Deployment",
        &json!({"metadata": {"name": "d"}}),
    )
    .expect("decodes");
    assert_eq!(decoded.object["apiVersion"], "apps/v1");
    assert_eq!(decoded.object["kind"], "Deployment");
    let err = decode_err(
        "apps",
        "v1",
        "Deployment",
        &json!({"apiVersion": "apps/v2", "kind": "Deployment"}),
    );
    assert_eq!(
        err.to_string(),
        "the API version in the data (apps/v2) does not match the expected API version (apps/v1)"
    );
    let err = decode_err("", "v1", "Pod", &json!({"kind": "Service"}));
    assert!(matches!(err, TypedError::Mismatch { what: "kind", .. }));
}

#[test]
fn a_body_that_is_not_an_object_is_a_bad_request() {
    let err = decode_err("", "v1", "Pod", &json!([1, 2]));
    assert_eq!(StatusError::from(err.clone()).code, 400);
    assert!(
        err.to_string()
            .contains("cannot unmarshal array into Go value of type v1.Pod"),
        "{err}"
    );
}

#[test]
fn unknown_kinds_are_refused() {
    assert!(!is_builtin("example.com", "v1", "Foo"));
    let err = decode_err("example.com", "v1", "Foo", &json!({}));
    assert_eq!(
        err.to_string(),
        "no kind \"Foo\" is registered for version \"example.com/v1\""
    );
}

#[test]
fn every_builtin_kind_decodes_a_minimal_object_without_unknown_fields() {
    // Reviews (create-only, never stored) are answered, not decoded or published.
    for rt in builtins()
        .into_iter()
        .filter(|r| r.verbs.iter().any(|v| v == "get"))
    {
        assert!(
            is_builtin(&rt.group, &rt.version, &rt.kind),
            "{} not covered",
            rt.kind
        );
        let obj = json!({"apiVersion": rt.api_version(), "kind": rt.kind, "metadata": {"name": "x", "labels": {"a": "b"}}});
        let decoded = decode(&rt.group, &rt.version, &rt.kind, &obj)
            .unwrap_or_else(|e| panic!("{}: {e}", rt.kind));
        assert!(
            decoded.unknown_fields.is_empty(),
            "{}: {:?}",
            rt.kind,
            decoded.unknown_fields
        );
        assert_eq!(
            decoded.object["metadata"]["labels"],
            json!({"a": "b"}),
            "{}",
            rt.kind
        );
    }
}

#[test]
fn a_full_pod_round_trips_unchanged() {
    let obj = json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "uid": "u", "resourceVersion": "5",
            "creationTimestamp": "2024-05-01T10:00:00Z", "ownerReferences": [{"apiVersion": "apps/v1",
            "kind": "ReplicaSet", "name": "rs", "uid": "r", "controller": true}]},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.25", "args": [],
            "env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}],
            "readinessProbe": {"httpGet": {"port": "http", "path": "/"}}}],
            "volumes": [{"name": "v", "emptyDir": {}}], "securityContext": {}},
        "status": {"phase": "Running", "podIP": "10.0.0.5", "conditions": [{"type": "Ready", "status": "True"}]}});
    let decoded = decode("", "v1", "Pod", &obj).expect("decodes");
    assert_eq!(decoded.object, obj);
    assert!(decoded.unknown_fields.is_empty());
}
