//! Serves the OpenAPI documents, rebuilt only when the set of served types changes.

use crate::openapi::{self, OpenApiInput};
use crate::respond::{error_response, json_bytes, Body};
use crate::server::State;
use http::{Request, Response, StatusCode};
use nodeless_core::resource::ResourceType;
use nodeless_core::StatusError;
use parking_lot::Mutex;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Default)]
pub struct OpenApiCache {
    inner: Mutex<Option<Built>>,
}

struct Built {
    generation: u64,
    v2: Option<Arc<Vec<u8>>>,
    v3_index: Option<Arc<Vec<u8>>>,
    v3: HashMap<String, Arc<Vec<u8>>>,
}

fn crd_schemas(state: &State) -> Vec<(ResourceType, Value)> {
    state.api.registry.custom().into_iter().map(|(t, i)| (t, i.schema_json)).collect()
}

impl OpenApiCache {
    fn get(&self, state: &State, key: &str, build: impl FnOnce(&OpenApiInput) -> Option<Value>) -> Option<Arc<Vec<u8>>> {
        let generation = state.api.registry.generation();
        {
            let mut guard = self.inner.lock();
            if guard.as_ref().is_none_or(|b| b.generation != generation) {
                *guard = Some(Built { generation, v2: None, v3_index: None, v3: HashMap::new() });
            }
            let b = guard.as_ref().expect("just set");
            let hit = match key {
                "v2" => b.v2.clone(),
                "v3" => b.v3_index.clone(),
                gv => b.v3.get(gv).cloned(),
            };
            if hit.is_some() {
                return hit;
            }
        }
        // Build outside the lock: the v2 document takes a while.
        let resources = state.api.registry.all();
        let crds = crd_schemas(state);
        let input = OpenApiInput { resources: &resources, crd_schemas: &crds };
        let bytes = Arc::new(serde_json::to_vec(&build(&input)?).ok()?);
        let mut guard = self.inner.lock();
        if let Some(b) = guard.as_mut().filter(|b| b.generation == generation) {
            match key {
                "v2" => b.v2 = Some(bytes.clone()),
                "v3" => b.v3_index = Some(bytes.clone()),
                gv => {
                    b.v3.insert(gv.to_string(), bytes.clone());
                }
            }
        }
        Some(bytes)
    }
}

pub fn serve<B>(state: &State, path: &str, _req: &Request<B>) -> Result<Response<Body>, StatusError> {
    let cache = &state.openapi;
    let found = if path == "/openapi/v2" || path == "/swagger.json" {
        cache.get(state, "v2", |i| Some(openapi::v2_document(i)))
    } else if path == "/openapi/v3" || path == "/openapi/v3/" {
        cache.get(state, "v3", |i| Some(openapi::v3_index(i)))
    } else {
        let gv = path.trim_start_matches("/openapi/v3/").trim_end_matches('/');
        let (group, version) = match gv.split('/').collect::<Vec<_>>().as_slice() {
            ["api", v] => (String::new(), v.to_string()),
            ["apis", g, v] => (g.to_string(), v.to_string()),
            _ => return Ok(error_response(&crate::handlers::not_found(path))),
        };
        cache.get(state, gv, |i| openapi::v3_group_version(i, &group, &version))
    };
    match found {
        Some(bytes) => Ok(json_bytes(StatusCode::OK, bytes.as_ref().clone(), "application/json")),
        None => Err(crate::handlers::not_found(path)),
    }
}
