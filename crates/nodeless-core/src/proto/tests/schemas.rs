use super::body;
use crate::proto::decode;
use crate::proto::schema::{KINDS, MESSAGES};
use crate::proto::table::message_of;
use crate::resource::builtins;
use k8s_pb::apiextensions_apiserver::pkg::apis::apiextensions::v1 as ext;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use serde_json::json;

fn raw(v: &str) -> ext::Json {
    ext::Json {
        raw: Some(v.as_bytes().to_vec()),
    }
}

#[test]
fn every_builtin_kind_and_subresource_body_has_a_schema() {
    for rt in builtins() {
        assert!(
            message_of(&rt.api_version(), &rt.kind).is_some(),
            "{} {}",
            rt.api_version(),
            rt.kind
        );
    }
    for (api_version, kind) in [
        ("v1", "Binding"),
        ("policy/v1", "Eviction"),
        ("autoscaling/v1", "Scale"),
        ("authentication.k8s.io/v1", "TokenRequest"),
        ("meta.k8s.io/v1", "DeleteOptions"),
    ] {
        assert!(
            message_of(api_version, kind).is_some(),
            "{api_version} {kind}"
        );
    }
    assert_eq!(message_of("apps/v1", "Pod"), None);
}

#[test]
fn kinds_point_at_messages_of_the_same_name() {
    for (_, kind, m) in KINDS {
        assert!(
            m.name().ends_with(&format!(".{kind}")),
            "{kind} -> {}",
            m.name()
        );
        assert_eq!(MESSAGES[*m as usize].0, m.name());
    }
}

#[test]
fn crd_schema_unions_decode_as_their_go_json() {
    let replicas = ext::JsonSchemaProps {
        r#type: Some("integer".into()),
        minimum: Some(1.0),
        maximum: Some(10.5),
        default: Some(raw("1")),
        ..Default::default()
    };
    let spec_schema = ext::JsonSchemaProps {
        r#type: Some("object".into()),
        properties: [("replicas".to_string(), replicas)].into(),
        additional_properties: Some(Box::new(ext::JsonSchemaPropsOrBool {
            allows: Some(false),
            schema: None,
        })),
        x_kubernetes_preserve_unknown_fields: Some(false),
        nullable: Some(false),
        ..Default::default()
    };
    let tags = ext::JsonSchemaProps {
        r#type: Some("array".into()),
        items: Some(Box::new(ext::JsonSchemaPropsOrArray {
            schema: Some(Box::new(ext::JsonSchemaProps {
                r#type: Some("string".into()),
                r#enum: vec![raw("\"a\""), raw("\"b\"")],
                ..Default::default()
            })),
            j_son_schemas: vec![],
        })),
        ..Default::default()
    };
    let root = ext::JsonSchemaProps {
        r#type: Some("object".into()),
        properties: [
            ("spec".to_string(), spec_schema),
            ("tags".to_string(), tags),
        ]
        .into(),
        ..Default::default()
    };
    let crd = ext::CustomResourceDefinition {
        metadata: Some(meta::ObjectMeta {
            name: Some("widgets.example.com".into()),
            ..Default::default()
        }),
        spec: Some(ext::CustomResourceDefinitionSpec {
            group: Some("example.com".into()),
            names: Some(ext::CustomResourceDefinitionNames {
                plural: Some("widgets".into()),
                kind: Some("Widget".into()),
                ..Default::default()
            }),
            scope: Some("Namespaced".into()),
            versions: vec![ext::CustomResourceDefinitionVersion {
                name: Some("v1".into()),
                served: Some(true),
                storage: Some(true),
                schema: Some(ext::CustomResourceValidation {
                    open_apiv3_schema: Some(root),
                }),
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    let got = decode(&body(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &crd,
    ))
    .expect("decodes");
    let want = json!({
        "type": "object",
        "properties": {
            "spec": {
                "type": "object",
                "properties": {"replicas": {"type": "integer", "default": 1, "maximum": 10.5, "minimum": 1}},
                "additionalProperties": false,
                "x-kubernetes-preserve-unknown-fields": false
            },
            "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}}
        }
    });
    assert_eq!(
        got["spec"]["versions"][0]["schema"]["openAPIV3Schema"],
        want
    );
    assert_eq!(got["spec"]["versions"][0]["served"], true);
    assert_eq!(
        got["spec"]["names"],
        json!({"plural": "widgets", "kind": "Widget"})
    );
}
