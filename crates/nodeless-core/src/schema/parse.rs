//! Reading an `openAPIV3Schema` JSON value into a [`Schema`].

use super::{AdditionalProperties, Pattern, Schema, SchemaError, SchemaType};
use regex::Regex;
use serde_json::{Map, Value};

pub(super) fn schema(value: &Value, path: &str) -> Result<Schema, SchemaError> {
    let map = value.as_object().ok_or_else(|| SchemaError::NotAnObject {
        path: path.to_string(),
    })?;
    if map.contains_key("$ref") {
        return Err(SchemaError::RefNotAllowed {
            path: path.to_string(),
        });
    }
    let k = Keywords { map, path };
    let schema_type = k.schema_type()?;
    let int_or_string = k.bool("x-kubernetes-int-or-string")?;
    let format = k
        .string("format")?
        .and_then(|f| supported_format(schema_type, int_or_string, f));
    Ok(Schema {
        schema_type,
        format,
        nullable: k.bool("nullable")?,
        int_or_string,
        preserve_unknown_fields: k.bool("x-kubernetes-preserve-unknown-fields")?,
        embedded_resource: k.bool("x-kubernetes-embedded-resource")?,
        properties: k.properties()?,
        additional_properties: k.additional_properties()?,
        items: k.items()?,
        required: k.strings("required")?,
        enumeration: k.array("enum")?.cloned(),
        default: map.get("default").cloned(),
        maximum: k.number("maximum")?,
        exclusive_maximum: k.bool("exclusiveMaximum")?,
        minimum: k.number("minimum")?,
        exclusive_minimum: k.bool("exclusiveMinimum")?,
        multiple_of: k.number("multipleOf")?,
        max_length: k.count("maxLength")?,
        min_length: k.count("minLength")?,
        max_items: k.count("maxItems")?,
        min_items: k.count("minItems")?,
        max_properties: k.count("maxProperties")?,
        min_properties: k.count("minProperties")?,
        unique_items: k.bool("uniqueItems")?,
        pattern: k.pattern()?,
        all_of: k.schemas("allOf")?,
        any_of: k.schemas("anyOf")?,
        one_of: k.schemas("oneOf")?,
        not: k.sub("not")?,
        list_type: k.string("x-kubernetes-list-type")?.map(str::to_string),
        list_map_keys: k.strings("x-kubernetes-list-map-keys")?,
    })
}

/// String formats apiextensions-apiserver validates (names compared without dashes, as
/// go-openapi normalises them); any other format is dropped and never rejects a value.
const STRING_FORMATS: &[&str] = &[
    "bsonobjectid",
    "uri",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "cidr",
    "mac",
    "uuid",
    "uuid3",
    "uuid4",
    "uuid5",
    "isbn",
    "isbn10",
    "isbn13",
    "creditcard",
    "ssn",
    "hexcolor",
    "rgbcolor",
    "byte",
    "password",
    "date",
    "duration",
    "datetime",
    "quantity",
];

fn supported_format(t: Option<SchemaType>, int_or_string: bool, format: &str) -> Option<String> {
    let keep = match (t, int_or_string) {
        (None, _) | (Some(SchemaType::String), false) | (_, true) => {
            STRING_FORMATS.contains(&format.replace('-', "").as_str())
        }
        (Some(SchemaType::Integer), _) => format == "int32" || format == "int64",
        (Some(SchemaType::Number), _) => format == "float" || format == "double",
        _ => false,
    };
    keep.then(|| format.to_string())
}

/// Typed access to one schema node's keywords, each failing with the node's path.
struct Keywords<'a> {
    map: &'a Map<String, Value>,
    path: &'a str,
}

impl<'a> Keywords<'a> {
    fn invalid(&self, keyword: &'static str, expected: &'static str) -> SchemaError {
        SchemaError::InvalidKeyword {
            path: self.path.to_string(),
            keyword,
            expected,
        }
    }

    fn get(&self, keyword: &'static str) -> Option<&'a Value> {
        self.map.get(keyword).filter(|v| !v.is_null())
    }

    fn bool(&self, keyword: &'static str) -> Result<bool, SchemaError> {
        match self.get(keyword) {
            None => Ok(false),
            Some(v) => v
                .as_bool()
                .ok_or_else(|| self.invalid(keyword, "a boolean")),
        }
    }

    fn string(&self, keyword: &'static str) -> Result<Option<&'a str>, SchemaError> {
        self.get(keyword)
            .map(|v| v.as_str().ok_or_else(|| self.invalid(keyword, "a string")))
            .transpose()
    }

    fn number(&self, keyword: &'static str) -> Result<Option<f64>, SchemaError> {
        self.get(keyword)
            .map(|v| v.as_f64().ok_or_else(|| self.invalid(keyword, "a number")))
            .transpose()
    }

    fn count(&self, keyword: &'static str) -> Result<Option<u64>, SchemaError> {
        let as_count = |v: &Value| {
            v.as_u64().or_else(|| {
                v.as_f64()
                    .filter(|f| *f >= 0.0 && f.fract() == 0.0)
                    .map(|f| f as u64)
            })
        };
        self.get(keyword)
            .map(|v| as_count(v).ok_or_else(|| self.invalid(keyword, "a non-negative integer")))
            .transpose()
    }

    fn array(&self, keyword: &'static str) -> Result<Option<&'a Vec<Value>>, SchemaError> {
        self.get(keyword)
            .map(|v| {
                v.as_array()
                    .ok_or_else(|| self.invalid(keyword, "an array"))
            })
            .transpose()
    }

    fn strings(&self, keyword: &'static str) -> Result<Vec<String>, SchemaError> {
        let Some(items) = self.array(keyword)? else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| self.invalid(keyword, "an array of strings"))
            })
            .collect()
    }

    fn schema_type(&self) -> Result<Option<SchemaType>, SchemaError> {
        match self.string("type")? {
            None | Some("") => Ok(None),
            Some(t) => SchemaType::parse(t)
                .map(Some)
                .ok_or_else(|| SchemaError::UnsupportedType {
                    path: self.path.to_string(),
                    found: t.to_string(),
                }),
        }
    }

    fn properties(&self) -> Result<Vec<(String, Schema)>, SchemaError> {
        let Some(v) = self.get("properties") else {
            return Ok(Vec::new());
        };
        let props = v
            .as_object()
            .ok_or_else(|| self.invalid("properties", "an object"))?;
        props
            .iter()
            .map(|(name, s)| {
                Ok((
                    name.clone(),
                    schema(s, &format!("{}.properties[{name}]", self.path))?,
                ))
            })
            .collect()
    }

    fn additional_properties(&self) -> Result<AdditionalProperties, SchemaError> {
        Ok(match self.get("additionalProperties") {
            None => AdditionalProperties::Unspecified,
            Some(Value::Bool(b)) => AdditionalProperties::Allowed(*b),
            Some(v @ Value::Object(_)) => AdditionalProperties::Schema(Box::new(schema(
                v,
                &format!("{}.additionalProperties", self.path),
            )?)),
            Some(_) => return Err(self.invalid("additionalProperties", "a boolean or a schema")),
        })
    }

    fn items(&self) -> Result<Option<Box<Schema>>, SchemaError> {
        match self.get("items") {
            None => Ok(None),
            Some(v @ Value::Object(_)) => {
                Ok(Some(Box::new(schema(v, &format!("{}.items", self.path))?)))
            }
            Some(_) => Err(self.invalid("items", "a single schema")),
        }
    }

    fn sub(&self, keyword: &'static str) -> Result<Option<Box<Schema>>, SchemaError> {
        self.get(keyword)
            .map(|v| Ok(Box::new(schema(v, &format!("{}.{keyword}", self.path))?)))
            .transpose()
    }

    fn schemas(&self, keyword: &'static str) -> Result<Vec<Schema>, SchemaError> {
        let Some(items) = self.array(keyword)? else {
            return Ok(Vec::new());
        };
        items
            .iter()
            .enumerate()
            .map(|(i, v)| schema(v, &format!("{}.{keyword}[{i}]", self.path)))
            .collect()
    }

    fn pattern(&self) -> Result<Option<Pattern>, SchemaError> {
        let Some(source) = self.string("pattern")? else {
            return Ok(None);
        };
        let regex = Regex::new(source).map_err(|e| SchemaError::InvalidPattern {
            path: self.path.to_string(),
            pattern: source.to_string(),
            source: Box::new(e),
        })?;
        Ok(Some(Pattern {
            source: source.to_string(),
            regex,
        }))
    }
}
