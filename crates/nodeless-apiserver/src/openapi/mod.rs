//! The OpenAPI documents kubectl reads: `/openapi/v2` (Swagger 2.0), the `/openapi/v3` index
//! and one OpenAPI 3.0 document per group-version.
//!
//! What kubectl 1.32 relies on, and so what these documents must get right:
//! - `kubectl explain` (v3): finds the GET/POST/... operation of the resource's path to learn
//!   its `x-kubernetes-group-version-kind`, then the `components.schemas` entry carrying that
//!   GVK in its `x-kubernetes-group-version-kind` list, and follows `$ref`/`allOf` from there.
//! - Server-side validation: kubectl sends `fieldValidation` only when the PATCH operation of
//!   the kind (in the v3 document of its group-version) lists a `fieldValidation` query
//!   parameter; otherwise it validates client-side against the v2 document.
//! - Client-side `kubectl apply`: a PATCH request body accepting
//!   `application/strategic-merge-patch+json` selects strategic merge, computed from the
//!   `x-kubernetes-patch-strategy` / `x-kubernetes-patch-merge-key` of the kind's schema.
//!
//! Built-in schemas come from k8s-openapi's `schemars` impls ([`catalog`]), normalised to the
//! shape kube-apiserver publishes; CRD schemas come from their `openAPIV3Schema` ([`crd`]).
//! Everything here is a pure function of the served types, so the server caches the
//! serialized bytes and rebuilds only when CRDs change.

mod catalog;
mod crd;
mod params;
mod paths;
mod proto;
mod v3;

#[cfg(test)]
mod kubectl_tests;
#[cfg(test)]
mod tests;

pub use proto::{accepts_v2_protobuf, v2_protobuf, V2_PROTOBUF_MEDIA_TYPE};

use nodeless_core::ResourceType;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha512};
use std::collections::BTreeMap;

/// What the documents describe: every served type, and the schemas of the served CRDs
/// (their `openAPIV3Schema`, `Value::Null` when the CRD has none).
pub struct OpenApiInput<'a> {
    pub resources: &'a [ResourceType],
    pub crd_schemas: &'a [(ResourceType, Value)],
}

/// `/openapi/v2`: one Swagger 2.0 document for every served type.
pub fn v2_document(input: &OpenApiInput) -> Value {
    let served = served(input);
    let mut paths = Map::new();
    let mut definitions = catalog::catalog().definitions.clone();
    for s in &served {
        paths::resource_paths(s, paths::Flavor::V2, &mut paths);
        s.add_definitions(&mut definitions, paths::Flavor::V2);
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": format!("v{}.{}.0", crate::version::KUBE_MAJOR, crate::version::KUBE_MINOR)},
        "paths": sorted(paths),
        "definitions": sorted(definitions),
        "securityDefinitions": {"BearerToken": bearer_token()},
        "security": [{"BearerToken": []}],
    })
}

/// The v3 documents of every served group-version, keyed by their index path (`api/v1`,
/// `apis/apps/v1`), and the `/openapi/v3` index pointing at them by content hash.
pub struct V3Documents {
    pub index: Value,
    pub group_versions: BTreeMap<String, Value>,
}

/// Builds the v3 index and every group-version document at once (the index needs each
/// document's hash, so this is cheaper than asking for them one by one).
pub fn v3_documents(input: &OpenApiInput) -> V3Documents {
    let served = served(input);
    let mut keys: Vec<(String, String)> = served
        .iter()
        .map(|s| (s.rt.group.clone(), s.rt.version.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    let mut group_versions = BTreeMap::new();
    let mut index = Map::new();
    for (group, version) in keys {
        let doc = group_version_doc(&served, &group, &version);
        let key = index_key(&group, &version);
        let bytes = serde_json::to_vec(&doc).expect("a JSON value always serializes");
        let hash: String = Sha512::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        index.insert(
            key.clone(),
            json!({"serverRelativeURL": format!("/openapi/v3/{key}?hash={hash}")}),
        );
        group_versions.insert(key, doc);
    }
    V3Documents {
        index: json!({"paths": index}),
        group_versions,
    }
}

/// `/openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": "/openapi/v3/api/v1?hash=..."}}}`.
/// The hash is of the document's `serde_json::to_vec` bytes.
pub fn v3_index(input: &OpenApiInput) -> Value {
    v3_documents(input).index
}

/// `/openapi/v3/api/<version>` or `/openapi/v3/apis/<group>/<version>`; `None` when nothing
/// is served in that group-version.
pub fn v3_group_version(input: &OpenApiInput, group: &str, version: &str) -> Option<Value> {
    let served = served(input);
    served
        .iter()
        .any(|s| s.rt.group == group && s.rt.version == version)
        .then(|| group_version_doc(&served, group, version))
}

fn index_key(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

fn group_version_doc(served: &[Served], group: &str, version: &str) -> Value {
    let mut paths = Map::new();
    let mut extra = Map::new();
    for s in served
        .iter()
        .filter(|s| s.rt.group == group && s.rt.version == version)
    {
        paths::resource_paths(s, paths::Flavor::V3, &mut paths);
        s.add_definitions(&mut extra, paths::Flavor::V3);
    }
    let schemas = v3::reachable_schemas(
        &Value::Object(paths.clone()),
        &extra,
        &catalog::catalog().definitions,
    );
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": sorted(paths),
        "components": {
            "schemas": sorted(schemas),
            "securitySchemes": {"BearerToken": bearer_token()},
        },
        "security": [{"BearerToken": []}],
    })
}

fn bearer_token() -> Value {
    json!({"type": "apiKey", "description": "Bearer Token authentication", "name": "authorization", "in": "header"})
}

fn sorted(map: Map<String, Value>) -> Map<String, Value> {
    let ordered: BTreeMap<String, Value> = map.into_iter().collect();
    ordered.into_iter().collect()
}

/// One served resource with the definitions describing it.
pub(crate) struct Served<'a> {
    pub rt: &'a ResourceType,
    /// Definition name of the kind, e.g. `io.k8s.api.core.v1.Pod`.
    pub definition: String,
    pub list_definition: String,
    /// Whether PATCH accepts strategic merge (built-ins only, as upstream).
    pub strategic: bool,
    /// The CRD's schema, for custom resources (their definitions are not in the catalog).
    pub custom_schema: Option<&'a Value>,
}

impl Served<'_> {
    fn add_definitions(&self, into: &mut Map<String, Value>, flavor: paths::Flavor) {
        if let Some(schema) = self.custom_schema {
            for (name, def) in crd::definitions(
                self.rt,
                schema,
                &self.definition,
                &self.list_definition,
                flavor,
            ) {
                into.insert(name, def);
            }
        }
    }
}

/// The resources the documents describe: built-ins known to the catalog, then CRDs (with
/// their schema, or an open one when the CRD has none). Types without a schema source are
/// still described, with an open object schema, so their operations are listed.
fn served<'a>(input: &OpenApiInput<'a>) -> Vec<Served<'a>> {
    static OPEN: Value = Value::Null;
    let mut out: Vec<Served> = Vec::new();
    let seen = |out: &Vec<Served>, rt: &ResourceType| {
        out.iter().any(|s| {
            s.rt.group == rt.group && s.rt.version == rt.version && s.rt.plural == rt.plural
        })
    };
    for rt in input.resources.iter().filter(|rt| !rt.custom) {
        if seen(&out, rt) {
            continue;
        }
        match catalog::catalog().kind_definition(&rt.group, &rt.version, &rt.kind) {
            Some(def) => out.push(Served {
                rt,
                definition: def.to_string(),
                list_definition: format!("{def}List"),
                strategic: true,
                custom_schema: None,
            }),
            None => out.push(custom(rt, &OPEN)),
        }
    }
    for (rt, schema) in input.crd_schemas {
        if !seen(&out, rt) {
            out.push(custom(rt, schema));
        }
    }
    for rt in input.resources.iter().filter(|rt| rt.custom) {
        if !seen(&out, rt) {
            out.push(custom(rt, &OPEN));
        }
    }
    out
}

fn custom<'a>(rt: &'a ResourceType, schema: &'a Value) -> Served<'a> {
    let definition = crd::definition_name(&rt.group, &rt.version, &rt.kind);
    Served {
        rt,
        list_definition: format!("{definition}List"),
        definition,
        strategic: false,
        custom_schema: Some(schema),
    }
}
