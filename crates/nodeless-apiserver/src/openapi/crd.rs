//! Definitions of custom resources from their CRD's `openAPIV3Schema`, as
//! apiextensions-apiserver publishes them: the schema with `apiVersion`, `kind` and a
//! `metadata` ref to ObjectMeta added, the GVK extension, a `<Kind>List` beside it, and for
//! v2 the schema cut down to what Swagger 2.0 (and kubectl's v2 parser) accepts.

use super::catalog::{
    self, API_VERSION_DESCRIPTION, DEFINITIONS_PREFIX, KIND_DESCRIPTION, METADATA_DESCRIPTION,
    OBJECT_META,
};
use super::paths::Flavor;
use super::v3::to_v3;
use nodeless_core::ResourceType;
use serde_json::{json, Map, Value};

/// Upstream's REST-friendly name: the group's domain reversed, then version and kind
/// (`stable.example.com`, `v1`, `CronTab` → `com.example.stable.v1.CronTab`).
pub(crate) fn definition_name(group: &str, version: &str, kind: &str) -> String {
    let reversed: Vec<&str> = group.split('.').rev().collect();
    let group = reversed.join(".");
    if group.is_empty() {
        format!("{version}.{kind}")
    } else {
        format!("{group}.{version}.{kind}")
    }
}

/// The kind's and the list's definitions, for the document `flavor`. `schema` is the CRD
/// version's `openAPIV3Schema` (`Null` when it has none: every field is then preserved).
pub(crate) fn definitions(
    rt: &ResourceType,
    schema: &Value,
    definition: &str,
    list_definition: &str,
    flavor: Flavor,
) -> Vec<(String, Value)> {
    let mut kind = match schema {
        Value::Object(_) => schema.clone(),
        _ => json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
    };
    if flavor == Flavor::V2 {
        kind = to_v2(&kind);
    }
    let mut kind = kind.as_object().cloned().unwrap_or_default();
    let properties = kind
        .entry("properties")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(props) = properties {
        props.insert(
            "apiVersion".into(),
            json!({"description": API_VERSION_DESCRIPTION, "type": "string"}),
        );
        props.insert(
            "kind".into(),
            json!({"description": KIND_DESCRIPTION, "type": "string"}),
        );
        props.insert(
            "metadata".into(),
            json!({"$ref": format!("{DEFINITIONS_PREFIX}{OBJECT_META}"), "description": METADATA_DESCRIPTION}),
        );
    }
    catalog::mark_kind(&mut kind, &rt.group, &rt.version, &rt.kind);
    let list_item_ref = format!("{DEFINITIONS_PREFIX}{definition}");
    let mut list = catalog::list_definition(definition, &rt.kind, &list_item_ref)
        .as_object()
        .cloned()
        .unwrap_or_default();
    catalog::mark_kind(&mut list, &rt.group, &rt.version, &rt.list_kind);
    let (kind, list) = (Value::Object(kind), Value::Object(list));
    match flavor {
        Flavor::V2 => vec![
            (definition.to_string(), kind),
            (list_definition.to_string(), list),
        ],
        Flavor::V3 => vec![
            (definition.to_string(), to_v3(&kind)),
            (list_definition.to_string(), to_v3(&list)),
        ],
    }
}

/// Keywords a Swagger 2.0 schema may hold; kubectl's v2 parser rejects any other
/// (extensions, `x-...`, are always allowed).
pub(super) const SWAGGER2_KEYWORDS: &[&str] = &[
    "$ref",
    "additionalProperties",
    "allOf",
    "default",
    "description",
    "discriminator",
    "enum",
    "example",
    "exclusiveMaximum",
    "exclusiveMinimum",
    "externalDocs",
    "format",
    "items",
    "maxItems",
    "maxLength",
    "maxProperties",
    "maximum",
    "minItems",
    "minLength",
    "minProperties",
    "minimum",
    "multipleOf",
    "pattern",
    "properties",
    "readOnly",
    "required",
    "title",
    "type",
    "uniqueItems",
    "xml",
];

/// apiextensions-apiserver's `ToStructuralOpenAPIV2`: value-validation junctors are dropped,
/// and nullable or unknown-preserving nodes lose their type, items and properties (kubectl
/// would otherwise reject nulls and unknown fields client-side).
fn to_v2(schema: &Value) -> Value {
    let Value::Object(map) = schema else {
        return schema.clone();
    };
    let untyped = map.get("nullable") == Some(&Value::Bool(true))
        || map.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    let mut out = Map::new();
    for (key, value) in map {
        let keep =
            key.starts_with("x-") || (SWAGGER2_KEYWORDS.contains(&key.as_str()) && key != "allOf");
        if !keep || (untyped && matches!(key.as_str(), "type" | "items" | "properties")) {
            continue;
        }
        let converted = match (key.as_str(), value) {
            ("items", v) | ("additionalProperties", v @ Value::Object(_)) => to_v2(v),
            ("properties", Value::Object(props)) => {
                Value::Object(props.iter().map(|(n, s)| (n.clone(), to_v2(s))).collect())
            }
            _ => value.clone(),
        };
        out.insert(key.clone(), converted);
    }
    // kubectl's v2 parser needs exactly one item schema for an array.
    if out.get("type") == Some(&Value::String("array".into()))
        && !out.get("items").is_some_and(Value::is_object)
    {
        out.remove("type");
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definition_names_reverse_the_group_domain() {
        assert_eq!(
            definition_name("stable.example.com", "v1", "CronTab"),
            "com.example.stable.v1.CronTab"
        );
        assert_eq!(
            definition_name("widgets", "v1alpha1", "Widget"),
            "widgets.v1alpha1.Widget"
        );
    }

    #[test]
    fn v2_schemas_drop_what_swagger_2_cannot_say() {
        let v3 = json!({"type": "object", "properties": {
            "a": {"type": "string", "nullable": true},
            "b": {"type": "object", "x-kubernetes-preserve-unknown-fields": true, "properties": {"c": {"type": "string"}}},
            "d": {"type": "integer", "oneOf": [{"minimum": 1}], "x-kubernetes-validations": [{"rule": "self > 0"}]},
            "e": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]}
        }});
        let v2 = to_v2(&v3);
        assert_eq!(v2["properties"]["a"], json!({}));
        assert_eq!(
            v2["properties"]["b"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(
            v2["properties"]["d"],
            json!({"type": "integer", "x-kubernetes-validations": [{"rule": "self > 0"}]})
        );
        assert_eq!(
            v2["properties"]["e"],
            json!({"x-kubernetes-int-or-string": true})
        );
    }
}
