//! CustomResourceDefinition structural schemas, treated the way apiextensions-apiserver does.
//!
//! A [`Schema`] is parsed once from a CRD version's `openAPIV3Schema` and then used for the
//! three steps a custom object goes through on write: [`apply_defaults`] (which also drops
//! non-nullable nulls, as upstream's decoder does), [`prune`] (unknown fields, reported so
//! `fieldValidation=Strict|Warn` can act on them) and [`validate`] (every failing field, with
//! kube-openapi's messages as apiextensions-apiserver turns them into field errors).

mod defaults;
mod format;
mod parse;
mod prune;
mod validate;

#[cfg(test)]
mod tests;

pub use defaults::apply_defaults;
pub use prune::prune;
pub use validate::validate;

pub(crate) use format::is_go_duration;

use regex::Regex;
use serde_json::Value;

/// Why an `openAPIV3Schema` could not be used; `path` locates the offending schema node,
/// e.g. `openAPIV3Schema.properties[spec].properties[replicas]`.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{path}: must be an object")]
    NotAnObject { path: String },
    #[error("{path}.{keyword}: must be {expected}")]
    InvalidKeyword {
        path: String,
        keyword: &'static str,
        expected: &'static str,
    },
    #[error("{path}.type: unsupported value {found:?}: supported values: \"array\", \"boolean\", \"integer\", \"number\", \"object\", \"string\"")]
    UnsupportedType { path: String, found: String },
    #[error("{path}.pattern: invalid regular expression {pattern:?}")]
    InvalidPattern {
        path: String,
        pattern: String,
        #[source]
        source: Box<regex::Error>,
    },
    #[error("{path}.$ref: must not be set in a structural schema")]
    RefNotAllowed { path: String },
}

/// The JSON types a structural schema may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaType {
    Object,
    Array,
    String,
    Integer,
    Number,
    Boolean,
}

impl SchemaType {
    pub fn as_str(self) -> &'static str {
        match self {
            SchemaType::Object => "object",
            SchemaType::Array => "array",
            SchemaType::String => "string",
            SchemaType::Integer => "integer",
            SchemaType::Number => "number",
            SchemaType::Boolean => "boolean",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "object" => SchemaType::Object,
            "array" => SchemaType::Array,
            "string" => SchemaType::String,
            "integer" => SchemaType::Integer,
            "number" => SchemaType::Number,
            "boolean" => SchemaType::Boolean,
            _ => return None,
        })
    }
}

/// `additionalProperties`: absent, a boolean, or a schema for every value of a map.
#[derive(Debug, Clone, Default)]
pub enum AdditionalProperties {
    #[default]
    Unspecified,
    Allowed(bool),
    Schema(Box<Schema>),
}

/// A compiled `pattern`, remembering its source for messages.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub source: String,
    regex: Regex,
}

impl Pattern {
    pub fn is_match(&self, s: &str) -> bool {
        self.regex.is_match(s)
    }
}

/// One node of a structural schema. Keywords apiextensions-apiserver ignores for
/// validation (description, example, title, externalDocs, x-kubernetes-validations) are
/// not kept.
#[derive(Debug, Clone, Default)]
pub struct Schema {
    pub schema_type: Option<SchemaType>,
    /// The format, kept only when upstream validates it for this type (others are stripped
    /// exactly as apiextensions-apiserver does, so `format: foo` never rejects anything).
    pub format: Option<String>,
    pub nullable: bool,
    pub int_or_string: bool,
    pub preserve_unknown_fields: bool,
    pub embedded_resource: bool,
    /// In schema order, so errors and defaults follow the author's order.
    pub properties: Vec<(String, Schema)>,
    pub additional_properties: AdditionalProperties,
    pub items: Option<Box<Schema>>,
    pub required: Vec<String>,
    pub enumeration: Option<Vec<Value>>,
    pub default: Option<Value>,
    pub maximum: Option<f64>,
    pub exclusive_maximum: bool,
    pub minimum: Option<f64>,
    pub exclusive_minimum: bool,
    pub multiple_of: Option<f64>,
    pub max_length: Option<u64>,
    pub min_length: Option<u64>,
    pub max_items: Option<u64>,
    pub min_items: Option<u64>,
    pub max_properties: Option<u64>,
    pub min_properties: Option<u64>,
    pub unique_items: bool,
    pub pattern: Option<Pattern>,
    pub all_of: Vec<Schema>,
    pub any_of: Vec<Schema>,
    pub one_of: Vec<Schema>,
    pub not: Option<Box<Schema>>,
    /// `x-kubernetes-list-type`: `atomic`, `set` or `map`.
    pub list_type: Option<String>,
    pub list_map_keys: Vec<String>,
}

impl Schema {
    /// Parses a CRD version's `openAPIV3Schema`.
    pub fn from_json(value: &Value) -> Result<Schema, SchemaError> {
        parse::schema(value, "openAPIV3Schema")
    }

    /// The schema of property `name`, if declared.
    pub fn property(&self, name: &str) -> Option<&Schema> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, s)| s)
    }

    /// The schema that applies to the value under key `name` of an object: a declared
    /// property, else the `additionalProperties` schema.
    fn field_schema(&self, name: &str) -> Option<&Schema> {
        self.property(name).or(match &self.additional_properties {
            AdditionalProperties::Schema(s) => Some(s),
            _ => None,
        })
    }

    /// The type names the value may have, as upstream prints them (`integer,string`).
    fn type_names(&self) -> Vec<&'static str> {
        if self.int_or_string {
            vec!["integer", "string"]
        } else {
            self.schema_type
                .map(|t| vec![t.as_str()])
                .unwrap_or_default()
        }
    }
}

/// Joins a field path the way kube-openapi does: `spec.replicas`, `spec.items[0]`.
fn child(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

fn index(path: &str, i: usize) -> String {
    format!("{path}[{i}]")
}
