//! Resource requests: from method, path and query to a call on [`crate::rest::Api`].

use crate::request::{parse_path, Route, Target};
use crate::respond::{
    self, error_response, json_response, negotiate, with_warnings, Body, Representation,
};
use crate::rest::{
    DeleteOptions, DeleteOutcome, FieldValidation, ListQuery, Outcome, WriteOptions,
};
use crate::server::{read_body, State};
use crate::strategy::Part;
use crate::{discovery, subresources, tables, watch};
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use nodeless_core::patch::PatchType;
use nodeless_core::resource::ResourceType;
use nodeless_core::{meta, StatusError};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

pub type Query = HashMap<String, String>;

pub fn query_of<B>(req: &Request<B>) -> Query {
    req.uri()
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

fn is_true(q: &Query, k: &str) -> bool {
    matches!(q.get(k).map(String::as_str), Some("true" | "1"))
}

/// Watches and streaming subresources hold a connection open; they are not counted as in-flight.
pub fn is_long_running<B>(req: &Request<B>) -> bool {
    let q = query_of(req);
    let path = req.uri().path();
    // A proxied path goes on past the subresource, so it is told by the parsed route.
    let proxied = matches!(
        crate::request::parse_path(path),
        Ok(Some(crate::request::Route::Resource(t))) if t.subresource.as_deref() == Some("proxy")
    );
    is_true(&q, "watch")
        || path.starts_with("/api/v1/watch/")
        || proxied
        || ["/exec", "/attach", "/portforward", "/log"]
            .iter()
            .any(|s| path.ends_with(s))
}

pub async fn handle(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    match dispatch(state, req).await {
        Ok(r) => r,
        Err(e) => error_response(&e),
    }
}

async fn dispatch(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Body>, StatusError> {
    let path = req.uri().path().to_string();
    if path == "/openapi/v2" || path.starts_with("/openapi/v3") || path == "/swagger.json" {
        return crate::openapi_cache::serve(&state, &path, &req);
    }
    let accept = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .map(String::from);
    let route = parse_path(&path)?.ok_or_else(|| not_found(&path))?;
    let registry = &state.api.registry;
    let rep = negotiate(accept.as_deref())?;
    let ok = |v: Value| Ok(json_response(StatusCode::OK, &v));
    match route {
        Route::LegacyRoot => match rep {
            Representation::Discovery(v) => Ok(discovery_response(
                discovery::aggregated(registry, true, v),
                v,
            )),
            _ => ok(discovery::api_versions(&state.server_address)),
        },
        Route::GroupsRoot => match rep {
            Representation::Discovery(v) => Ok(discovery_response(
                discovery::aggregated(registry, false, v),
                v,
            )),
            _ => ok(discovery::group_list(registry)),
        },
        Route::Group(g) => discovery::group(registry, &g).map_or_else(|| Err(not_found(&path)), ok),
        Route::LegacyVersion(v) => {
            discovery::resource_list(registry, "", &v).map_or_else(|| Err(not_found(&path)), ok)
        }
        Route::GroupVersion(g, v) => {
            discovery::resource_list(registry, &g, &v).map_or_else(|| Err(not_found(&path)), ok)
        }
        Route::Resource(t) => {
            let rt = registry
                .lookup(&t.group, &t.version, &t.plural)
                .ok_or_else(|| not_found(&path))?;
            if rt.namespaced != t.namespace.is_some() && t.name.is_some() {
                // A namespaced object addressed without a namespace (or the reverse).
                return Err(not_found(&path));
            }
            resource(state, req, rt, t, rep).await
        }
    }
}

fn discovery_response(v: Value, version: &str) -> Response<Body> {
    let ct = format!("application/json;g=apidiscovery.k8s.io;v={version};as=APIGroupDiscoveryList");
    respond::json_bytes(
        StatusCode::OK,
        serde_json::to_vec(&v).unwrap_or_default(),
        &ct,
    )
}

pub fn not_found(path: &str) -> StatusError {
    let mut e = StatusError::new(
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    e.details = Some(nodeless_core::status::Details {
        causes: vec![nodeless_core::status::Cause {
            reason: "UnexpectedServerResponse".into(),
            message: "404 page not found".into(),
            field: String::new(),
        }],
        ..Default::default()
    });
    let _ = path;
    e
}

async fn resource(
    state: Arc<State>,
    req: Request<Incoming>,
    rt: ResourceType,
    t: Target,
    rep: Representation,
) -> Result<Response<Body>, StatusError> {
    let q = query_of(&req);
    let ns = t.namespace.as_deref();
    let method = req.method().clone();
    let sub = t.subresource.as_deref();
    if let (None, Some(edge)) = (sub, crate::versions::Edge::of(&state, &rt)) {
        return crate::versions::handle(&state, req, edge, ns, t.name.as_deref(), rep).await;
    }
    if let Some(sub) = sub {
        let name = t.name.as_deref().unwrap_or_default();
        return subresources::handle(&state, req, &rt, ns, name, sub, &q, rep).await;
    }
    let api = &state.api;
    match (method, t.name.as_deref()) {
        (Method::GET, None) if is_true(&q, "watch") => {
            let lq = ListQuery::from_query(&q)?;
            watch::serve(&state, &rt, ns, &lq, &q, rep, None).await
        }
        (Method::GET, None) => {
            let lq = ListQuery::from_query(&q)?;
            let list = api.list(&rt, ns, &lq).await?;
            Ok(tables::list_response(&state, &rt, list, rep))
        }
        (Method::GET, Some(name)) => {
            let obj = api.get(&rt, ns, name)?;
            Ok(tables::object_response(
                &state,
                &rt,
                &obj,
                rep,
                StatusCode::OK,
            ))
        }
        (Method::POST, None) => {
            let body = parse_body(
                &req_content_type(&req),
                read_body(req.into_body(), state.limits.max_body_bytes).await?,
            )?;
            if let Some(review) = crate::reviews::answer(&rt, body.clone()) {
                return Ok(json_response(StatusCode::CREATED, &review?));
            }
            let out = api.create(&rt, ns, body, &write_options(&q)?).await?;
            Ok(write_response(&state, &rt, out, rep))
        }
        (Method::PUT, Some(name)) => {
            let body = parse_body(
                &req_content_type(&req),
                read_body(req.into_body(), state.limits.max_body_bytes).await?,
            )?;
            let out = api
                .update(&rt, ns, name, Part::Main, body, &write_options(&q)?)
                .await?;
            Ok(write_response(&state, &rt, out, rep))
        }
        (Method::PATCH, Some(name)) => {
            let (pt, bytes) = patch_body(&state, req).await?;
            let out = api
                .patch(&rt, ns, name, Part::Main, pt, &bytes, &write_options(&q)?)
                .await?;
            Ok(write_response(&state, &rt, out, rep))
        }
        (Method::DELETE, Some(name)) => {
            let opts = delete_options(&state, req, &q).await?;
            let out = api.delete(&rt, ns, name, &opts).await?;
            Ok(delete_response(&rt, name, out))
        }
        (Method::DELETE, None) => {
            let opts = delete_options(&state, req, &q).await?;
            let lq = ListQuery::from_query(&q)?;
            delete_collection(&state, &rt, ns, &lq, &opts).await
        }
        (m, _) => Err(StatusError::new(
            405,
            "MethodNotAllowed",
            format!("the server does not allow this method on the requested resource ({m})"),
        )),
    }
}

async fn delete_collection(
    state: &State,
    rt: &ResourceType,
    ns: Option<&str>,
    lq: &ListQuery,
    opts: &DeleteOptions,
) -> Result<Response<Body>, StatusError> {
    let list = state.api.list(rt, ns, lq).await?;
    let mut deleted = Vec::new();
    for obj in &list.items {
        let name = meta::name(obj).unwrap_or_default();
        match state.api.delete(rt, meta::namespace(obj), name, opts).await {
            Ok(DeleteOutcome::Deleted(o) | DeleteOutcome::Pending(o)) => deleted.push((*o).clone()),
            Err(e) if e.code == 404 => {}
            Err(e) => return Err(e),
        }
    }
    let body = json!({"kind": rt.list_kind, "apiVersion": rt.api_version(), "metadata": {"resourceVersion": list.resource_version.to_string()}, "items": deleted});
    Ok(json_response(StatusCode::OK, &body))
}

pub fn req_content_type<B>(req: &Request<B>) -> String {
    req.headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json")
        .to_string()
}

/// Decodes a JSON, YAML or Kubernetes protobuf body; a malformed one is a 400 that says where
/// it broke.
pub fn parse_body(content_type: &str, bytes: bytes::Bytes) -> Result<Value, StatusError> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    let v: Value = match media {
        "application/yaml" | "application/x-yaml" | "text/yaml" => serde_yaml::from_slice(&bytes)
            .map_err(|e| {
            StatusError::bad_request(format!("the request body is not valid YAML: {e}"))
        })?,
        "application/json" | "" | "*/*" => serde_json::from_slice(&bytes).map_err(|e| {
            StatusError::bad_request(format!("the request body is not valid JSON: {e}"))
        })?,
        // kubectl's typed commands (create deployment/job/secret/..., autoscale, create token) send protobuf.
        "application/vnd.kubernetes.protobuf" => nodeless_core::proto::decode(&bytes)?,
        other => return Err(StatusError::unsupported_media_type(other)),
    };
    if !v.is_object() {
        return Err(StatusError::bad_request(
            "the request body must be an object",
        ));
    }
    Ok(v)
}

pub async fn patch_body(
    state: &State,
    req: Request<Incoming>,
) -> Result<(PatchType, bytes::Bytes), StatusError> {
    let ct = req_content_type(&req);
    let media = ct.split(';').next().unwrap_or("").trim().to_string();
    let pt = PatchType::from_content_type(&media)
        .ok_or_else(|| StatusError::unsupported_media_type(&media))?;
    let bytes = read_body(req.into_body(), state.limits.max_body_bytes).await?;
    Ok((pt, bytes))
}

pub fn write_options(q: &Query) -> Result<WriteOptions, StatusError> {
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(o) => {
            return Err(StatusError::bad_request(format!(
                "dryRun: Unsupported value: \"{o}\": supported values: \"All\""
            )))
        }
    };
    Ok(WriteOptions {
        dry_run,
        field_validation: FieldValidation::parse(q.get("fieldValidation").map(String::as_str))?,
    })
}

async fn delete_options(
    state: &State,
    req: Request<Incoming>,
    q: &Query,
) -> Result<DeleteOptions, StatusError> {
    let ct = req_content_type(&req);
    let bytes = read_body(req.into_body(), state.limits.max_body_bytes).await?;
    let body = if bytes.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(parse_body(&ct, bytes)?)
    };
    DeleteOptions::from_parts(body.as_ref(), q)
}

pub fn write_response(
    state: &State,
    rt: &ResourceType,
    out: Outcome,
    rep: Representation,
) -> Response<Body> {
    let code = if out.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    with_warnings(
        tables::object_response(state, rt, &out.object, rep, code),
        &out.warnings,
    )
}

fn delete_response(rt: &ResourceType, name: &str, out: DeleteOutcome) -> Response<Body> {
    match out {
        DeleteOutcome::Pending(obj) => json_response(StatusCode::OK, &*obj),
        DeleteOutcome::Deleted(obj) if rt.group.is_empty() && rt.kind == "Pod" => {
            json_response(StatusCode::OK, &*obj)
        }
        DeleteOutcome::Deleted(obj) => {
            let status = json!({
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "group": rt.group, "kind": rt.plural, "uid": meta::uid(&obj).unwrap_or_default()}
            });
            json_response(StatusCode::OK, &status)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn long_running(path: &str) -> bool {
        is_long_running(&Request::get(path).body(()).expect("request"))
    }

    #[test]
    fn streams_watches_and_proxied_requests_are_long_running() {
        assert!(long_running("/api/v1/namespaces/d/pods/web/proxy"));
        assert!(long_running("/api/v1/namespaces/d/pods/web:80/proxy/a/b"));
        assert!(long_running("/api/v1/namespaces/d/services/web/proxy/"));
        assert!(long_running("/api/v1/namespaces/d/pods/web/exec"));
        assert!(long_running("/api/v1/namespaces/d/pods?watch=true"));
    }

    #[test]
    fn an_object_or_namespace_named_proxy_is_not_a_proxied_request() {
        assert!(!long_running("/api/v1/namespaces/d/configmaps/proxy"));
        assert!(!long_running("/api/v1/namespaces/proxy/configmaps/a"));
        assert!(!long_running("/api/v1/namespaces/d/pods/web"));
    }
}
