//! pods/proxy: HTTP to a port of a Pod (see `direct.rs`). With no port, the first port the
//! Pod's containers declare, else 80; a port may also be a container port's name.

use super::direct;
use super::Peer;
use http::{Request, Response};
use hyper::body::Incoming;
use nodeless_core::resource::ResourceType;
use nodeless_core::StatusError;
use serde_json::Value;

use crate::respond::Body;

/// The port to connect to: a number, a container port's name, or none (the first declared
/// container port, else 80).
fn resolve_port(pod: &Value, port: &str) -> Result<u16, StatusError> {
    let declared = || {
        pod.pointer("/spec/containers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .flat_map(|c| {
                c.get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
            })
    };
    let number = |p: &Value| {
        p.get("containerPort")
            .and_then(Value::as_u64)
            .and_then(|n| u16::try_from(n).ok())
    };
    if port.is_empty() {
        return Ok(declared().find_map(number).unwrap_or(80));
    }
    if let Ok(n) = port.parse::<u16>() {
        return Ok(n);
    }
    declared()
        .find(|p| p.get("name").and_then(Value::as_str) == Some(port))
        .and_then(number)
        .ok_or_else(|| {
            StatusError::bad_request(format!(
                "pod {} has no container port named {port:?}",
                pod.pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            ))
        })
}

/// Proxies `req`, a pods/proxy request for Pod `id` in `ns`, to the Pod.
pub async fn serve(
    api: &crate::rest::Api,
    req: Request<Incoming>,
    rt: &ResourceType,
    ns: &str,
    id: &str,
) -> Result<Response<Body>, StatusError> {
    let parts = direct::check(req.method(), id, "pods")?;
    let pod = api.get(rt, Some(ns), parts.name)?;
    let port = resolve_port(&pod, parts.port)?;
    let ip = pod
        .pointer("/status/podIP")
        .and_then(Value::as_str)
        .filter(|ip| !ip.is_empty())
        .ok_or_else(|| {
            StatusError::service_unavailable(format!(
                "pod {ns}/{} has no IP address yet",
                parts.name
            ))
        })?;
    let peer = Peer {
        label: format!("pod {ns}/{}", parts.name),
        authority: direct::authority(ip, port),
        tls: parts.tls()?,
    };
    direct::forward(req, "pods", id, peer).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_port_is_a_number_a_named_container_port_or_the_first_declared() {
        let pod = json!({"metadata": {"name": "web"}, "spec": {"containers": [
            {"name": "side"},
            {"name": "app", "ports": [{"name": "http", "containerPort": 8080}, {"containerPort": 9090}]}
        ]}});
        assert_eq!(resolve_port(&pod, "").expect("first"), 8080);
        assert_eq!(resolve_port(&pod, "9090").expect("number"), 9090);
        assert_eq!(resolve_port(&pod, "http").expect("name"), 8080);
        assert_eq!(
            resolve_port(&pod, "metrics").expect_err("unknown").code,
            400
        );
        let bare = json!({"spec": {"containers": [{"name": "a"}]}});
        assert_eq!(resolve_port(&bare, "").expect("default"), 80);
    }
}
