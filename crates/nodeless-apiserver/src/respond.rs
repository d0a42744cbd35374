//! Encoding responses: JSON bodies, `Status` errors, content negotiation (Table,
//! PartialObjectMetadata), and the streaming body watches use.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use nodeless_core::StatusError;
use serde::Serialize;
use std::convert::Infallible;

pub type Body = BoxBody<Bytes, Infallible>;

pub fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

pub fn json_response<T: Serialize + ?Sized>(code: StatusCode, value: &T) -> Response<Body> {
    json_bytes(
        code,
        serde_json::to_vec(value).unwrap_or_default(),
        "application/json",
    )
}

pub fn json_bytes(code: StatusCode, bytes: Vec<u8>, content_type: &str) -> Response<Body> {
    let mut r = Response::new(full(bytes));
    *r.status_mut() = code;
    if let Ok(ct) = HeaderValue::from_str(content_type) {
        r.headers_mut().insert(header::CONTENT_TYPE, ct);
    }
    r
}

pub fn error_response(e: &StatusError) -> Response<Body> {
    if e.code >= 500 {
        tracing::error!(code = e.code, reason = e.reason, message = %e.message, "request failed");
    }
    let code = StatusCode::from_u16(e.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = json_response(code, &e.to_status());
    if let Some(secs) = e.details.as_ref().and_then(|d| d.retry_after_seconds) {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    r
}

pub fn text(code: StatusCode, s: &'static str) -> Response<Body> {
    let mut r = Response::new(full(s));
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Adds `Warning` headers (RFC 7234 form, as kube-apiserver sends for unknown fields).
pub fn with_warnings(mut r: Response<Body>, warnings: &[String]) -> Response<Body> {
    for w in warnings {
        let escaped = w.replace('\\', "\\\\").replace('"', "\\\"");
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{escaped}\"")) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}

/// What representation the client asked for in `Accept`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Representation {
    Object,
    Table,
    PartialMetadata,
    /// Aggregated discovery (`apidiscovery.k8s.io`, v2 or v2beta1).
    Discovery(&'static str),
}

/// Picks the first acceptable representation in the client's order of preference.
pub fn negotiate(accept: Option<&str>) -> Result<Representation, StatusError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(Representation::Object);
    };
    for part in accept.split(',') {
        let mut params = part.split(';').map(str::trim);
        let media = params.next().unwrap_or("");
        if !matches!(
            media,
            "application/json" | "*/*" | "application/*" | "application/yaml" | ""
        ) {
            continue;
        }
        let mut as_ = None;
        let mut group = None;
        let mut version = None;
        for p in params {
            match p.split_once('=') {
                Some(("as", v)) => as_ = Some(v),
                Some(("g", v)) => group = Some(v),
                Some(("v", v)) => version = Some(v),
                _ => {}
            }
        }
        match (as_, group, version) {
            (None, _, _) => return Ok(Representation::Object),
            (Some("Table"), Some("meta.k8s.io"), Some("v1" | "v1beta1")) => {
                return Ok(Representation::Table)
            }
            (
                Some("PartialObjectMetadata" | "PartialObjectMetadataList"),
                Some("meta.k8s.io"),
                Some("v1" | "v1beta1"),
            ) => return Ok(Representation::PartialMetadata),
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2")) => {
                return Ok(Representation::Discovery("v2"))
            }
            (Some("APIGroupDiscoveryList"), Some("apidiscovery.k8s.io"), Some("v2beta1")) => {
                return Ok(Representation::Discovery("v2beta1"))
            }
            _ => continue,
        }
    }
    Err(StatusError::not_acceptable(format!(
        "only the following media types are accepted: application/json, application/yaml; got {accept:?}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubectl_get_accept_header_selects_table() {
        let a = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
        assert_eq!(negotiate(Some(a)).ok(), Some(Representation::Table));
    }

    #[test]
    fn protobuf_only_is_not_acceptable_but_with_json_fallback_is() {
        assert!(negotiate(Some("application/vnd.kubernetes.protobuf")).is_err());
        let a = "application/vnd.kubernetes.protobuf, application/json";
        assert_eq!(negotiate(Some(a)).ok(), Some(Representation::Object));
    }

    #[test]
    fn aggregated_discovery_is_recognised() {
        let a =
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json";
        assert_eq!(
            negotiate(Some(a)).ok(),
            Some(Representation::Discovery("v2"))
        );
    }
}
