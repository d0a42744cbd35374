//! Object and list responses in the representation the client asked for.

use crate::respond::{json_bytes, json_response, Body, Representation};
use crate::rest::ListResult;
use crate::server::State;
use http::{Response, StatusCode};
use nodeless_core::resource::ResourceType;
use nodeless_core::table::{self, IncludeObject, PrinterColumn};
use serde_json::{json, Value};
use std::sync::Arc;

fn crd_columns(state: &State, rt: &ResourceType) -> Option<Vec<PrinterColumn>> {
    let info = state.api.registry.custom_info(rt)?;
    // A CRD without columns still gets upstream's Age column: pass an empty list, not None.
    let Some(cols) = info.printer_columns.as_array() else {
        return Some(Vec::new());
    };
    Some(
        cols.iter()
            .map(|c| PrinterColumn {
                name: c["name"].as_str().unwrap_or_default().into(),
                type_: c["type"].as_str().unwrap_or("string").into(),
                format: c["format"].as_str().unwrap_or_default().into(),
                description: c["description"].as_str().unwrap_or_default().into(),
                priority: c["priority"].as_i64().unwrap_or(0) as i32,
                json_path: c["jsonPath"].as_str().unwrap_or_default().into(),
            })
            .collect(),
    )
}

/// A `Table` of the given objects, with the type's printer columns.
pub fn table_of(state: &State, rt: &ResourceType, objects: &[&Value], list_meta: Value) -> Value {
    let cols = if rt.custom {
        crd_columns(state, rt)
    } else {
        None
    };
    table::build_table(
        &rt.group,
        &rt.kind,
        cols.as_deref(),
        objects,
        IncludeObject::Metadata,
        list_meta,
        chrono::Utc::now(),
    )
}

fn partial_metadata(obj: &Value) -> Value {
    json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj.get("metadata").cloned().unwrap_or(json!({}))})
}

pub fn object_response(
    state: &State,
    rt: &ResourceType,
    obj: &Value,
    rep: Representation,
    code: StatusCode,
) -> Response<Body> {
    match rep {
        Representation::Table => json_response(
            code,
            &table_of(
                state,
                rt,
                &[obj],
                json!({"resourceVersion": obj["metadata"]["resourceVersion"]}),
            ),
        ),
        Representation::PartialMetadata => json_response(code, &partial_metadata(obj)),
        _ => json_response(code, obj),
    }
}

pub fn list_meta(list: &ListResult) -> Value {
    let mut m = json!({"resourceVersion": list.resource_version.to_string()});
    if let Some(c) = &list.continue_token {
        m["continue"] = json!(c);
    }
    if let Some(r) = list.remaining {
        m["remainingItemCount"] = json!(r);
    }
    m
}

pub fn list_response(
    state: &State,
    rt: &ResourceType,
    list: ListResult,
    rep: Representation,
) -> Response<Body> {
    let meta = list_meta(&list);
    match rep {
        Representation::Table => {
            let objs: Vec<&Value> = list.items.iter().map(|o| o.as_ref()).collect();
            json_response(StatusCode::OK, &table_of(state, rt, &objs, meta))
        }
        Representation::PartialMetadata => {
            let items: Vec<Value> = list.items.iter().map(|o| partial_metadata(o)).collect();
            json_response(
                StatusCode::OK,
                &json!({"kind": "PartialObjectMetadataList", "apiVersion": "meta.k8s.io/v1", "metadata": meta, "items": items}),
            )
        }
        _ => json_bytes(
            StatusCode::OK,
            encode_list(rt, &meta, &list.items),
            "application/json",
        ),
    }
}

/// Writes a list without building a second tree of its items.
fn encode_list(rt: &ResourceType, meta: &Value, items: &[Arc<Value>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + items.len() * 1024);
    out.extend_from_slice(b"{\"kind\":");
    let _ = serde_json::to_writer(&mut out, &rt.list_kind);
    out.extend_from_slice(b",\"apiVersion\":");
    let _ = serde_json::to_writer(&mut out, &rt.api_version());
    out.extend_from_slice(b",\"metadata\":");
    let _ = serde_json::to_writer(&mut out, meta);
    out.extend_from_slice(b",\"items\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let _ = serde_json::to_writer(&mut out, item.as_ref());
    }
    out.extend_from_slice(b"]}");
    out
}
