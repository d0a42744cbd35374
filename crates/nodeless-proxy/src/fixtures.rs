//! Services and EndpointSlices for unit tests, written as the API returns them.

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{json, Value};

/// A ClusterIP Service; `ports` are `(name, protocol, port)`.
pub fn service(ns: &str, name: &str, ip: &str, ports: &[(&str, &str, i32)]) -> Service {
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, proto, port)| json!({ "name": n, "protocol": proto, "port": port }))
        .collect();
    serde_json::from_value(json!({
        "metadata": { "namespace": ns, "name": name },
        "spec": { "type": "ClusterIP", "clusterIP": ip, "clusterIPs": [ip], "ports": ports },
    }))
    .expect("valid service")
}

pub fn with_affinity(mut svc: Service, timeout: Option<i32>) -> Service {
    let spec = svc.spec.as_mut().expect("spec");
    spec.session_affinity = Some("ClientIP".into());
    if let Some(t) = timeout {
        spec.session_affinity_config =
            serde_json::from_value(json!({ "clientIP": { "timeoutSeconds": t } }))
                .expect("valid config");
    }
    svc
}

/// One endpoint: address and (ready, serving, terminating); `None` leaves conditions unset.
pub type Ep<'a> = (&'a str, Option<(bool, bool, bool)>);

/// An IPv4 slice for Service `svc`; `ports` are `(name, protocol, port)`.
pub fn slice(
    ns: &str,
    svc: &str,
    name: &str,
    eps: &[Ep],
    ports: &[(&str, &str, i32)],
) -> EndpointSlice {
    let endpoints: Vec<Value> = eps
        .iter()
        .map(|(ip, c)| match c {
            Some((ready, serving, terminating)) => json!({
                "addresses": [ip],
                "conditions": { "ready": ready, "serving": serving, "terminating": terminating },
            }),
            None => json!({ "addresses": [ip] }),
        })
        .collect();
    let ports: Vec<Value> = ports
        .iter()
        .map(|(n, proto, port)| json!({ "name": n, "protocol": proto, "port": port }))
        .collect();
    serde_json::from_value(json!({
        "metadata": {
            "namespace": ns,
            "name": name,
            "labels": { "kubernetes.io/service-name": svc },
        },
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": ports,
    }))
    .expect("valid slice")
}

pub const READY: Option<(bool, bool, bool)> = Some((true, true, false));
pub const TERMINATING: Option<(bool, bool, bool)> = Some((false, true, true));
pub const NOT_READY: Option<(bool, bool, bool)> = Some((false, false, false));
