use crate::proto::{decode, FieldProblem, ProtoError, MAGIC};
use crate::StatusError;
use k8s_pb::api::core::v1 as core;
use k8s_pb::apimachinery::pkg::apis::meta::v1 as meta;
use k8s_pb::apimachinery::pkg::runtime::{TypeMeta, Unknown};
use prost::Message;

fn sample_pod_raw() -> Vec<u8> {
    let pod = core::Pod {
        metadata: Some(meta::ObjectMeta {
            name: Some("web".into()),
            labels: [("app".to_string(), "web".to_string())].into(),
            ..Default::default()
        }),
        spec: Some(core::PodSpec {
            containers: vec![core::Container {
                name: Some("c".into()),
                image: Some("busybox".into()),
                ports: vec![core::ContainerPort {
                    container_port: Some(80),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }),
        status: None,
    };
    pod.encode_to_vec()
}

fn sample_pod() -> Vec<u8> {
    let envelope = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
        }),
        raw: Some(sample_pod_raw()),
        content_encoding: Some(String::new()),
        content_type: Some(String::new()),
    };
    [MAGIC, &envelope.encode_to_vec()].concat()
}

/// A tiny deterministic generator, so a failure is reproducible.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

#[test]
fn a_body_without_the_magic_is_rejected() {
    assert!(matches!(
        decode(b"{\"kind\":\"Pod\"}"),
        Err(ProtoError::BadMagic)
    ));
    assert!(matches!(decode(b""), Err(ProtoError::BadMagic)));
    assert!(matches!(decode(b"k8s"), Err(ProtoError::BadMagic)));
}

#[test]
fn every_truncation_inside_the_object_fails_without_panicking() {
    let full = sample_pod();
    assert!(decode(&full).is_ok());
    // Cuts before `raw` can end on a field boundary and still be a well-formed (empty)
    // envelope; cuts after its start leave a length prefix pointing past the end.
    let raw_len = sample_pod_raw().len();
    let raw_end = full.len() - 4; // content encoding and type, both empty, follow `raw`
    for len in 0..full.len() {
        let result = decode(&full[..len]);
        if len > raw_end - raw_len && len < raw_end {
            assert!(result.is_err(), "a body cut to {len} bytes decoded");
        }
    }
}

#[test]
fn an_unknown_kind_names_the_kind_and_version() {
    let err = decode(&super::body(
        "example.com/v1",
        "Widget",
        &meta::Status::default(),
    ))
    .expect_err("unknown kind");
    assert_eq!(
        err.to_string(),
        "no protobuf schema is known for kind \"Widget\" in apiVersion \"example.com/v1\""
    );
}

#[test]
fn an_envelope_without_kind_or_with_gzip_is_rejected() {
    let mut envelope = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: None,
        }),
        raw: Some(Vec::new()),
        ..Default::default()
    };
    let with_magic = |u: &Unknown| [MAGIC, &u.encode_to_vec()].concat();
    assert!(matches!(
        decode(&with_magic(&envelope)),
        Err(ProtoError::MissingKind)
    ));
    envelope.type_meta = Some(TypeMeta {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
    });
    envelope.content_encoding = Some("gzip".into());
    assert!(
        matches!(decode(&with_magic(&envelope)), Err(ProtoError::ContentEncoding(e)) if e == "gzip")
    );
}

#[test]
fn a_field_of_the_wrong_wire_type_is_reported_with_its_message_tag_and_path() {
    // ContainerPort.containerPort (tag 3) sent as a string instead of a varint.
    let port = [0x1a, 0x02, b'8', b'0'];
    let container = [&[0x32, port.len() as u8][..], &port].concat(); // Container.ports = 6
    let spec = [&[0x12, container.len() as u8][..], &container].concat(); // PodSpec.containers = 2
    let pod = [&[0x12, spec.len() as u8][..], &spec].concat(); // Pod.spec = 2
    let envelope = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
        }),
        raw: Some(pod),
        ..Default::default()
    };
    let err = decode(&[MAGIC, &envelope.encode_to_vec()].concat()).expect_err("wrong wire type");
    assert!(
        matches!(
            err,
            ProtoError::Field {
                tag: 3,
                source: FieldProblem::WireType { .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "k8s.io.api.core.v1.ContainerPort field 3 (spec.containers[0].ports[0].containerPort): \
         expected wire type varint, got length-delimited"
    );
    let status = StatusError::from(err);
    assert_eq!((status.code, status.reason), (400, "BadRequest"));
    assert!(
        status
            .message
            .contains("k8s.io.api.core.v1.ContainerPort field 3"),
        "{}",
        status.message
    );
}

#[test]
fn unknown_fields_are_skipped_as_go_skips_them() {
    let mut raw = core::Namespace {
        metadata: Some(meta::ObjectMeta {
            name: Some("a".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
    .encode_to_vec();
    raw.extend([0xf8, 0x06, 0x01]); // field 111, varint 1
    let envelope = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("v1".into()),
            kind: Some("Namespace".into()),
        }),
        raw: Some(raw),
        ..Default::default()
    };
    let got = decode(&[MAGIC, &envelope.encode_to_vec()].concat()).expect("decodes");
    assert_eq!(
        got,
        serde_json::json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}})
    );
}

#[test]
fn nesting_past_the_depth_limit_is_an_error_not_a_stack_overflow() {
    // JSONSchemaProps.not (tag 28) nested 10,000 deep inside a CRD's openAPIV3Schema.
    let mut schema: Vec<u8> = Vec::new();
    for _ in 0..10_000 {
        let mut outer = vec![0xe2, 0x01]; // tag 28, length-delimited
        prost::encoding::encode_varint(schema.len() as u64, &mut outer);
        outer.extend(schema);
        schema = outer;
    }
    let wrap = |tag: u8, inner: Vec<u8>| {
        let mut out = vec![tag];
        prost::encoding::encode_varint(inner.len() as u64, &mut out);
        out.extend(inner);
        out
    };
    let validation = wrap(0x0a, schema); // CustomResourceValidation.openAPIV3Schema = 1
    let version = wrap(0x22, validation); // CustomResourceDefinitionVersion.schema = 4
    let spec = wrap(0x3a, version); // CustomResourceDefinitionSpec.versions = 7
    let crd = wrap(0x12, spec); // CustomResourceDefinition.spec = 2
    let envelope = Unknown {
        type_meta: Some(TypeMeta {
            api_version: Some("apiextensions.k8s.io/v1".into()),
            kind: Some("CustomResourceDefinition".into()),
        }),
        raw: Some(crd),
        ..Default::default()
    };
    let err = decode(&[MAGIC, &envelope.encode_to_vec()].concat()).expect_err("too deep");
    assert!(matches!(err, ProtoError::TooDeep), "{err:?}");
}

#[test]
fn random_and_mutated_bodies_never_panic() {
    let mut rng = Lcg(0x5eed);
    let valid = sample_pod();
    for _ in 0..20_000 {
        let len = (rng.next() % 64) as usize;
        let mut noise: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = decode(&noise);
        noise.splice(0..0, MAGIC.iter().copied());
        let _ = decode(&noise);
        let mut mutated = valid.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % mutated.len();
            mutated[at] = rng.next() as u8;
        }
        let _ = decode(&mutated);
    }
}
