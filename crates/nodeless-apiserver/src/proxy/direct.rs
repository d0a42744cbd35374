//! What pods/proxy and services/proxy share: HTTP from the API server straight to an
//! instance's IP and port, as kube-apiserver serves them (`kubectl proxy`,
//! `kubectl get --raw /api/v1/namespaces/ns/pods/web:8080/proxy/healthz`).
//!
//! As upstream, the API server connects to the instance itself, so it must reach the
//! instances' network (it does in `nodeless up`; a separate API server needs a route to the
//! hosts' instance subnets). Objects are named `[scheme:]name[:port]`; with `https:` the API
//! server speaks TLS to the instance and, as upstream, does not verify its certificate.

use super::{exchange, upgrade, OutBody, Peer, HOP_BY_HOP};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, Response};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use nodeless_core::StatusError;

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

/// Request headers that belong to the client's hop to the API server, not to the instance:
/// the caller's credentials are never passed on.
const NOT_FORWARDED: &[&str] = &["authorization", "proxy-authorization", "host"];

/// The parts of a `[scheme:]name[:port]` object id.
#[derive(Debug, PartialEq, Eq)]
pub struct ProxyId<'a> {
    pub scheme: &'a str,
    pub name: &'a str,
    pub port: &'a str,
}

/// Splits an id as upstream's `SplitSchemeNamePort` does, and refuses a method upstream does
/// not proxy (405).
pub fn check<'a>(method: &Method, id: &'a str, what: &str) -> Result<ProxyId<'a>, StatusError> {
    if !METHODS.contains(method) {
        return Err(StatusError::new(
            405,
            "MethodNotAllowed",
            format!("{method} is not supported on {what}/proxy"),
        ));
    }
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
    Ok(ProxyId { scheme, name, port })
}

impl ProxyId<'_> {
    /// The TLS an `https:` id asks for.
    pub fn tls(&self) -> Result<Option<std::sync::Arc<rustls::ClientConfig>>, StatusError> {
        match self.scheme {
            "https" => super::pinned::unverified_client_config()
                .map(Some)
                .map_err(|e| StatusError::internal(format!("cannot set up TLS: {e}"))),
            _ => Ok(None),
        }
    }
}

/// What follows `/<plural>/<id>/proxy` in the request path, trailing slash kept; `/` if
/// nothing.
fn proxy_path(path: &str, plural: &str, id: &str) -> String {
    let marker = format!("/{plural}/{id}/proxy");
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

/// `ip:port`, bracketed for IPv6.
pub fn authority(ip: &str, port: u16) -> String {
    match ip.contains(':') {
        true => format!("[{ip}]:{port}"),
        false => format!("{ip}:{port}"),
    }
}

/// Sends `req` (for `/<plural>/<id>/proxy/...`) on to `peer` and relays the answer.
pub async fn forward(
    mut req: Request<Incoming>,
    plural: &str,
    id: &str,
    peer: Peer,
) -> Result<Response<Body>, StatusError> {
    let mut path_and_query = proxy_path(req.uri().path(), plural, id);
    if let Some(q) = req.uri().query() {
        path_and_query = format!("{path_and_query}?{q}");
    }
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

    #[test]
    fn ids_split_as_upstream_does() {
        assert_eq!(
            check(&Method::GET, "web", "pods").expect("valid"),
            ProxyId {
                scheme: "",
                name: "web",
                port: ""
            }
        );
        assert_eq!(
            check(&Method::GET, "web:8080", "pods").expect("valid").port,
            "8080"
        );
        assert_eq!(
            check(&Method::GET, "http:web:80", "pods")
                .expect("valid")
                .scheme,
            "http"
        );
        for bad in ["", ":80", "ftp:web:21", "a:b:c:d"] {
            assert_eq!(
                check(&Method::GET, bad, "pods").expect_err(bad).code,
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn unproxied_methods_are_refused_and_https_asks_for_tls() {
        let https = check(&Method::GET, "https:web:443", "services").expect("https");
        assert!(https.tls().expect("tls").is_some());
        let http = check(&Method::GET, "http:web:80", "services").expect("http");
        assert!(http.tls().expect("tls").is_none());
        assert_eq!(
            check(&Method::TRACE, "web", "pods")
                .expect_err("trace")
                .code,
            405
        );
    }

    #[test]
    fn the_proxied_path_is_what_follows_proxy_with_its_trailing_slash() {
        let p = "/api/v1/namespaces/default/pods/web:8080/proxy";
        assert_eq!(proxy_path(p, "pods", "web:8080"), "/");
        assert_eq!(proxy_path(&format!("{p}/"), "pods", "web:8080"), "/");
        assert_eq!(
            proxy_path(&format!("{p}/a/b/"), "pods", "web:8080"),
            "/a/b/"
        );
        assert_eq!(
            proxy_path(&format!("{p}/healthz"), "pods", "web:8080"),
            "/healthz"
        );
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
