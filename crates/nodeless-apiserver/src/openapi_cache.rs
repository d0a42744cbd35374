//! Serves the OpenAPI documents, built once per set of served types (they take ~100 ms).

use crate::openapi::{self, OpenApiInput};
use crate::respond::{json_bytes, Body};
use crate::server::State;
use http::{Request, Response, StatusCode};
use nodeless_core::resource::ResourceType;
use nodeless_core::StatusError;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

/// Serialized documents by name (`v2`, `v2.pb`, `v3`, `apis/apps/v1`, ...), for one
/// generation of the registry.
#[derive(Default)]
pub struct OpenApiCache {
    inner: Mutex<(u64, HashMap<String, Arc<Vec<u8>>>)>,
}

fn crd_schemas(state: &State) -> Vec<(ResourceType, Value)> {
    state
        .api
        .registry
        .custom()
        .into_iter()
        .map(|(t, i)| (t, i.schema_json))
        .collect()
}

impl OpenApiCache {
    fn get(
        &self,
        state: &State,
        key: &str,
        build: impl FnOnce(&OpenApiInput) -> Option<Vec<u8>>,
    ) -> Option<Arc<Vec<u8>>> {
        let generation = state.api.registry.generation();
        {
            let mut guard = self.inner.lock();
            if guard.0 != generation {
                *guard = (generation, HashMap::new());
            }
            if let Some(hit) = guard.1.get(key) {
                return Some(hit.clone());
            }
        }
        // Built outside the lock; two concurrent misses may both build, which is harmless.
        let resources = state.api.registry.all();
        let crds = crd_schemas(state);
        let bytes = Arc::new(build(&OpenApiInput {
            resources: &resources,
            crd_schemas: &crds,
        })?);
        let mut guard = self.inner.lock();
        if guard.0 == generation {
            guard.1.insert(key.to_string(), bytes.clone());
        }
        Some(bytes)
    }
}

fn json(v: &Value) -> Option<Vec<u8>> {
    serde_json::to_vec(v).ok()
}

pub fn serve<B>(
    state: &State,
    path: &str,
    req: &Request<B>,
) -> Result<Response<Body>, StatusError> {
    let cache = &state.openapi;
    let accept = req
        .headers()
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let not_found = || crate::handlers::not_found(path);
    if path == "/openapi/v2" || path == "/swagger.json" {
        // client-go asks for the v2 document as protobuf only.
        if openapi::accepts_v2_protobuf(accept) {
            let pb = cache
                .get(state, "v2.pb", |i| {
                    Some(openapi::v2_protobuf(&openapi::v2_document(i)))
                })
                .ok_or_else(not_found)?;
            return Ok(json_bytes(
                StatusCode::OK,
                pb.as_ref().clone(),
                openapi::V2_PROTOBUF_MEDIA_TYPE,
            ));
        }
        let doc = cache
            .get(state, "v2", |i| json(&openapi::v2_document(i)))
            .ok_or_else(not_found)?;
        return Ok(json_bytes(
            StatusCode::OK,
            doc.as_ref().clone(),
            "application/json",
        ));
    }
    let gv = path.trim_start_matches("/openapi/v3").trim_matches('/');
    let doc = if gv.is_empty() {
        cache.get(state, "v3", |i| json(&openapi::v3_index(i)))
    } else {
        let (group, version) = match gv.split('/').collect::<Vec<_>>().as_slice() {
            ["api", v] => (String::new(), v.to_string()),
            ["apis", g, v] => (g.to_string(), v.to_string()),
            _ => return Err(not_found()),
        };
        cache.get(state, gv, |i| {
            openapi::v3_group_version(i, &group, &version)
                .as_ref()
                .and_then(json)
        })
    };
    let doc = doc.ok_or_else(not_found)?;
    Ok(json_bytes(
        StatusCode::OK,
        doc.as_ref().clone(),
        "application/json",
    ))
}
