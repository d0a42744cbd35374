//! pods/proxy: HTTP to a port of a Pod through the API server, as kube-apiserver serves it
//! (`kubectl proxy`, `kubectl get --raw /api/v1/namespaces/ns/pods/web:8080/proxy/healthz`).
//!
//! As upstream, the API server connects to the Pod's IP itself, so it must reach the
//! instances' network (it does in `nodeless up`; a separate API server needs a route to the
//! hosts' instance subnets). The Pod is named `[scheme:]name[:port]`; with no port, the first
//! port the Pod's containers declare (else 80). Only `http` is served: `https` is refused
//! with a 501 naming the alternative.

use super::{exchange, upgrade, OutBody, Peer, HOP_BY_HOP};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use nodeless_core::StatusError;
use serde_json::Value;

use crate::respond::Body;

/// The methods upstream proxies.
const METHODS: &[Method] = &[
    Method::GET,
    Method::HEAD,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

/// Request headers that belong to the client's hop to the API server, not to the Pod: the
/// caller's credentials are never passed on.
const NOT_FORWARDED: &[&str] = &["authorization", "proxy-authorization", "host"];

/// The parts of a `[scheme:]name[:port]` Pod id.
#[derive(Debug, PartialEq, Eq)]
struct PodId<'a> {
    scheme: &'a str,
    name: &'a str,
    port: &'a str,
}

/// Splits a Pod id as upstream's `SplitSchemeNamePort` does.
fn split_id(id: &str) -> Result<PodId<'_>, StatusError> {
    let parts: Vec<&str> = id.split(':').collect();
    let (scheme, name, port) = match parts.as_slice() {
        [name] => ("", *name, ""),
        [name, port] => ("", *name, *port),
        [scheme, name, port] => (*scheme, *name, *port),
        _ => ("", "", ""),
    };
    if name.is_empty() || !matches!(scheme, "" | "http" | "https") {
        return Err(StatusError::bad_request(format!("invalid request {id:?}")));
    }
    Ok(PodId { scheme, name, port })
}

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

/// What follows `/pods/<id>/proxy` in the request path, trailing slash kept; `/` if nothing.
fn proxy_path(path: &str, id: &str) -> String {
    let marker = format!("/pods/{id}/proxy");
    let rest = path
        .find(&marker)
        .map(|i| &path[i + marker.len()..])
        .unwrap_or_default();
    if rest.starts_with('/') {
        rest.to_string()
    } else {
        format!("/{rest}")
    }
}

fn forwarded_headers(from: &HeaderMap, authority: &str, upgrading: bool) -> HeaderMap {
    let mut to = HeaderMap::new();
    for (name, value) in from {
        let n = name.as_str();
        if !HOP_BY_HOP.contains(&n) && !NOT_FORWARDED.contains(&n) {
            to.append(name.clone(), value.clone());
        }
    }
    if let Ok(h) = HeaderValue::from_str(authority) {
        to.insert(header::HOST, h);
    }
    if upgrading {
        upgrade::copy_request_headers(from, &mut to);
    }
    to
}

/// Proxies `req`, a pods/proxy request for Pod `id` in `ns`, to the Pod.
pub async fn serve(
    api: &crate::rest::Api,
    mut req: Request<Incoming>,
    rt: &nodeless_core::resource::ResourceType,
    ns: &str,
    id: &str,
) -> Result<Response<Body>, StatusError> {
    if !METHODS.contains(req.method()) {
        return Err(StatusError::new(
            405,
            "MethodNotAllowed",
            format!("{} is not supported on pods/proxy", req.method()),
        ));
    }
    let parts = split_id(id)?;
    if parts.scheme == "https" {
        return Err(StatusError::new(
            501,
            "NotImplemented",
            "pods/proxy over https is not served: use http, a Service, or kubectl port-forward",
        ));
    }
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
    let authority = match ip.contains(':') {
        true => format!("[{ip}]:{port}"),
        false => format!("{ip}:{port}"),
    };
    let mut path_and_query = proxy_path(req.uri().path(), id);
    if let Some(q) = req.uri().query() {
        path_and_query = format!("{path_and_query}?{q}");
    }
    let peer = Peer {
        label: format!("pod {ns}/{}", parts.name),
        authority,
    };
    let client_upgrade = upgrade::is_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));
    let (head, body) = req.into_parts();
    let mut builder = Request::builder()
        .method(head.method)
        .uri(path_and_query.as_str());
    if let Some(headers) = builder.headers_mut() {
        *headers = forwarded_headers(&head.headers, &peer.authority, client_upgrade.is_some());
    }
    let body: OutBody = match client_upgrade.is_some() {
        true => Empty::new().map_err(|never| match never {}).boxed(),
        false => body.boxed(),
    };
    let outbound = builder
        .body(body)
        .map_err(|e| StatusError::bad_request(format!("cannot proxy to {}: {e}", peer.label)))?;
    exchange(peer, outbound, client_upgrade).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pod_ids_split_as_upstream_does() {
        assert_eq!(
            split_id("web").expect("valid"),
            PodId {
                scheme: "",
                name: "web",
                port: ""
            }
        );
        assert_eq!(split_id("web:8080").expect("valid").port, "8080");
        assert_eq!(split_id("https:web:443").expect("valid").scheme, "https");
        for bad in ["", ":80", "ftp:web:21", "a:b:c:d"] {
            assert_eq!(split_id(bad).expect_err(bad).code, 400, "{bad}");
        }
    }

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

    #[test]
    fn the_proxied_path_is_what_follows_proxy_with_its_trailing_slash() {
        let p = "/api/v1/namespaces/default/pods/web:8080/proxy";
        assert_eq!(proxy_path(p, "web:8080"), "/");
        assert_eq!(proxy_path(&format!("{p}/"), "web:8080"), "/");
        assert_eq!(proxy_path(&format!("{p}/a/b/"), "web:8080"), "/a/b/");
        assert_eq!(proxy_path(&format!("{p}/healthz"), "web:8080"), "/healthz");
    }

    #[test]
    fn the_callers_credentials_are_not_passed_on() {
        let mut from = HeaderMap::new();
        from.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer secret"),
        );
        from.insert(header::HOST, HeaderValue::from_static("apiserver:6443"));
        from.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
        from.insert(header::ACCEPT, HeaderValue::from_static("text/plain"));
        from.insert("x-custom", HeaderValue::from_static("1"));
        let to = forwarded_headers(&from, "10.88.0.5:8080", false);
        assert!(to.get(header::AUTHORIZATION).is_none());
        assert!(to.get(header::CONNECTION).is_none());
        assert_eq!(to[header::HOST], "10.88.0.5:8080");
        assert_eq!(to[header::ACCEPT], "text/plain");
        assert_eq!(to["x-custom"], "1");
    }
}
