//! Requests to a version that is stored as another (`autoscaling/v1` HPAs): the object layer
//! works on the stored version; bodies are converted on the way in and out.

use crate::handlers::{parse_body, patch_body, query_of, req_content_type, write_options, Query};
use crate::respond::{json_response, Body, Representation};
use crate::rest::{DeleteOptions, DeleteOutcome, ListQuery};
use crate::server::{read_body, State};
use crate::strategy::Part;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use nodeless_core::resource::ResourceType;
use nodeless_core::{convert, meta, patch, StatusError};
use serde_json::{json, Value};
use std::sync::Arc;

/// The served type and the type its objects are stored as.
pub struct Edge {
    pub served: ResourceType,
    pub stored: ResourceType,
}

impl Edge {
    pub fn of(state: &State, rt: &ResourceType) -> Option<Edge> {
        let version = convert::storage_version(&rt.group, &rt.version, &rt.plural)?;
        let stored = state.api.registry.lookup(&rt.group, version, &rt.plural)?;
        Some(Edge {
            served: rt.clone(),
            stored,
        })
    }

    pub fn inbound(&self, obj: &Value) -> Value {
        convert::to_storage(
            &self.served.group,
            &self.served.version,
            &self.served.kind,
            obj,
        )
    }

    pub fn outbound(&self, obj: &Value) -> Value {
        convert::from_storage(
            &self.served.group,
            &self.served.version,
            &self.served.kind,
            obj,
        )
    }

    /// A function the watch stream applies to each event's object.
    pub fn outbound_fn(&self) -> Arc<dyn Fn(&Value) -> Value + Send + Sync> {
        let (g, v, k) = (
            self.served.group.clone(),
            self.served.version.clone(),
            self.served.kind.clone(),
        );
        Arc::new(move |o: &Value| convert::from_storage(&g, &v, &k, o))
    }

    fn respond(
        &self,
        state: &State,
        obj: &Value,
        rep: Representation,
        code: StatusCode,
    ) -> Response<Body> {
        match rep {
            // Tables are printed from the stored version, which the printers know.
            Representation::Table | Representation::PartialMetadata => {
                crate::tables::object_response(state, &self.stored, obj, rep, code)
            }
            _ => json_response(code, &self.outbound(obj)),
        }
    }
}

pub async fn handle(
    state: &Arc<State>,
    req: Request<Incoming>,
    edge: Edge,
    ns: Option<&str>,
    name: Option<&str>,
    rep: Representation,
) -> Result<Response<Body>, StatusError> {
    let q: Query = query_of(&req);
    let api = &state.api;
    let stored = &edge.stored;
    match (req.method().clone(), name) {
        (Method::GET, None) if matches!(q.get("watch").map(String::as_str), Some("true" | "1")) => {
            crate::watch::serve(
                state,
                stored,
                ns,
                &ListQuery::from_query(&q)?,
                &q,
                rep,
                Some(edge.outbound_fn()),
            )
            .await
        }
        (Method::GET, None) => {
            let mut list = api.list(stored, ns, &ListQuery::from_query(&q)?).await?;
            if rep == Representation::Object {
                list.items = list
                    .items
                    .iter()
                    .map(|o| Arc::new(edge.outbound(o)))
                    .collect();
                let meta = crate::tables::list_meta(&list);
                let items: Vec<&Value> = list.items.iter().map(|o| o.as_ref()).collect();
                return Ok(json_response(
                    StatusCode::OK,
                    &json!({"kind": edge.served.list_kind, "apiVersion": edge.served.api_version(), "metadata": meta, "items": items}),
                ));
            }
            Ok(crate::tables::list_response(state, stored, list, rep))
        }
        (Method::GET, Some(n)) => {
            Ok(edge.respond(state, &*api.get(stored, ns, n)?, rep, StatusCode::OK))
        }
        (Method::POST, None) => {
            let body = parse_body(
                &req_content_type(&req),
                read_body(req.into_body(), state.limits.max_body_bytes).await?,
            )?;
            let out = api
                .create(stored, ns, edge.inbound(&body), &write_options(&q)?)
                .await?;
            Ok(edge.respond(state, &out.object, rep, StatusCode::CREATED))
        }
        (Method::PUT, Some(n)) => {
            let body = parse_body(
                &req_content_type(&req),
                read_body(req.into_body(), state.limits.max_body_bytes).await?,
            )?;
            let out = api
                .update(
                    stored,
                    ns,
                    n,
                    Part::Main,
                    edge.inbound(&body),
                    &write_options(&q)?,
                )
                .await?;
            Ok(edge.respond(state, &out.object, rep, StatusCode::OK))
        }
        (Method::PATCH, Some(n)) => {
            let (pt, bytes) = patch_body(state, req).await?;
            let current = api.get(stored, ns, n)?;
            let served = edge.outbound(&current);
            let patched =
                patch::apply_patch(pt, &edge.served.group, &edge.served.kind, &served, &bytes)?;
            let mut body = edge.inbound(&patched);
            // The read above is the base of the patch: a concurrent write makes this one conflict.
            meta::set_str(
                &mut body,
                "resourceVersion",
                meta::resource_version(&current).unwrap_or_default(),
            );
            let out = api
                .update(stored, ns, n, Part::Main, body, &write_options(&q)?)
                .await?;
            Ok(edge.respond(state, &out.object, rep, StatusCode::OK))
        }
        (Method::DELETE, Some(n)) => {
            let ct = req_content_type(&req);
            let bytes = read_body(req.into_body(), state.limits.max_body_bytes).await?;
            let body = if bytes.iter().all(u8::is_ascii_whitespace) {
                None
            } else {
                Some(parse_body(&ct, bytes)?)
            };
            match api
                .delete(
                    stored,
                    ns,
                    n,
                    &DeleteOptions::from_parts(body.as_ref(), &q)?,
                )
                .await?
            {
                DeleteOutcome::Deleted(o) | DeleteOutcome::Pending(o) => {
                    Ok(edge.respond(state, &o, rep, StatusCode::OK))
                }
            }
        }
        (m, _) => Err(StatusError::new(
            405,
            "MethodNotAllowed",
            format!("{m} is not supported on {}", edge.served.group_resource()),
        )),
    }
}
