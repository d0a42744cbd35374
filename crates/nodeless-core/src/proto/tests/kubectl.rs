//! Bodies captured from kubectl v1.32.4 (`-v=9` prints them), each checked against the JSON
//! kubectl itself prints for the same object with `--dry-run=client -o json`: the Go JSON
//! encoding that kube-apiserver would produce from the decoded object.

use crate::proto::decode;
use serde_json::{json, Value};

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_bytes!(concat!("kubectl/", $name, ".pb")).as_slice(),
            include_str!(concat!("kubectl/", $name, ".json")))),*]
    };
}

/// Go writes `null` for a zero `creationTimestamp`; the decoder leaves such fields out.
fn without_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(without_nulls).collect()),
        other => other,
    }
}

#[test]
fn kubectl_create_bodies_decode_to_the_json_kubectl_prints_for_them() {
    let cases = fixtures![
        "ns",
        "cm",
        "secret",
        "secret_docker",
        "deploy",
        "job",
        "jobfrom",
        "cronjob",
        "svc",
        "svc_np",
        "svc_ext",
        "svc_lb",
        "autoscale",
        "sa",
        "ing",
        "pdb",
        "pc",
        "quota",
        "role",
        "rb",
        "cr",
        "crb",
    ];
    for (name, body, want) in cases {
        let want: Value = serde_json::from_str(want).expect("fixture is JSON");
        let got = decode(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(got, without_nulls(want), "{name}");
    }
}

#[test]
fn kubectl_create_token_sends_a_token_request() {
    let got = decode(include_bytes!("kubectl/token.pb")).expect("decodes");
    assert_eq!(
        got,
        json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "metadata": {},
            // Go would also write `"audiences": null` and `"expirationTimestamp": null`.
            "spec": {"expirationSeconds": 600},
            "status": {"token": ""}
        })
    );
}

#[test]
fn kubectl_auth_can_i_sends_a_self_subject_access_review() {
    let got = decode(include_bytes!("kubectl/cani.pb")).expect("decodes");
    assert_eq!(
        got,
        json!({
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview",
            "metadata": {},
            "spec": {"resourceAttributes": {"namespace": "default", "verb": "get", "resource": "pods"}},
            "status": {"allowed": false}
        })
    );
}
