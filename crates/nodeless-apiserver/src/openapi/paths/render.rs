//! Rendering one operation as Swagger 2.0 or OpenAPI 3.0: where parameters, request
//! bodies, media types and response schemas go differs between the two.

use super::super::params::{self, QueryParam};
use super::Flavor;
use serde_json::{json, Map, Value};

pub(super) const ANY: &[&str] = &["*/*"];

pub(super) struct Body {
    pub definition: String,
    pub content_types: &'static [&'static str],
    pub required: bool,
}

pub(super) struct Op {
    pub method: &'static str,
    pub id: String,
    pub description: String,
    pub action: &'static str,
    pub gvk: Value,
    pub params: &'static [QueryParam],
    pub body: Option<Body>,
    /// (status code, description, response definition)
    pub responses: Vec<(&'static str, &'static str, String)>,
    pub produces: &'static [&'static str],
}

/// The operation object, with its HTTP method under `method` for the caller to lift out.
pub(super) fn render(op: &Op, flavor: Flavor, tag: &str) -> Value {
    match flavor {
        Flavor::V2 => render_v2(op, tag),
        Flavor::V3 => render_v3(op, tag),
    }
}

fn render_v2(op: &Op, tag: &str) -> Value {
    let flavor = Flavor::V2;
    let mut parameters: Vec<Value> = Vec::new();
    if let Some(body) = &op.body {
        let mut b =
            json!({"name": "body", "in": "body", "schema": flavor.schema_ref(&body.definition)});
        if body.required {
            b["required"] = true.into();
        }
        parameters.push(b);
    }
    parameters.extend(op.params.iter().map(|p| params::query(flavor, p)));
    let mut responses = Map::new();
    for (code, description, def) in &op.responses {
        responses.insert(
            (*code).into(),
            json!({"description": description, "schema": flavor.schema_ref(def)}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    let consumes = op.body.as_ref().map_or(ANY, |b| b.content_types);
    json!({
        "method": op.method,
        "description": op.description,
        "consumes": consumes,
        "produces": op.produces,
        "schemes": ["https"],
        "tags": [tag],
        "operationId": op.id,
        "parameters": parameters,
        "responses": responses,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": op.gvk,
    })
}

fn render_v3(op: &Op, tag: &str) -> Value {
    let flavor = Flavor::V3;
    let mut responses = Map::new();
    for (code, description, def) in &op.responses {
        let content: Map<String, Value> = op
            .produces
            .iter()
            .map(|m| ((*m).to_string(), json!({"schema": flavor.schema_ref(def)})))
            .collect();
        responses.insert(
            (*code).into(),
            json!({"description": description, "content": content}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    let mut out = json!({
        "method": op.method,
        "tags": [tag],
        "description": op.description,
        "operationId": op.id,
        "parameters": op.params.iter().map(|p| params::query(flavor, p)).collect::<Vec<_>>(),
        "responses": responses,
        "x-kubernetes-action": op.action,
        "x-kubernetes-group-version-kind": op.gvk,
    });
    if let Some(body) = &op.body {
        let content: Map<String, Value> = body
            .content_types
            .iter()
            .map(|m| {
                (
                    (*m).to_string(),
                    json!({"schema": flavor.schema_ref(&body.definition)}),
                )
            })
            .collect();
        let mut request = json!({"content": content});
        if body.required {
            request["required"] = true.into();
        }
        out["requestBody"] = request;
    }
    out
}
