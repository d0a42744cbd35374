//! Decoding built-in objects through their k8s-openapi structs, as kube-apiserver's decoder does.
//!
//! A request body is held as JSON; before it is defaulted, validated and stored it goes
//! through the typed struct of its kind and back. That round trip is what makes the server
//! refuse `containerPort: "80"` with a decode error naming the field, and drop fields the
//! type does not have. The dropped fields are listed so the API server can apply
//! `fieldValidation`: `Strict` turns them into a 400, `Warn` into `Warning` headers,
//! `Ignore` drops them silently.

mod de;
mod error;
mod kinds;

use crate::status::StatusError;
use de::{Ctx, Node};
use error::DeError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

pub use kinds::is_builtin;

/// A built-in object after its typed round trip.
#[derive(Debug, Clone, PartialEq)]
pub struct Decoded {
    /// The object as the typed struct serializes it, unknown fields dropped.
    pub object: Value,
    /// Fields present in the input that the type does not have, as dotted paths with list
    /// indexes (`spec.containers[0].imagee`), in input order.
    pub unknown_fields: Vec<String>,
}

impl Decoded {
    /// The `Warning` header texts of `fieldValidation=Warn`: `unknown field "spec.x"`.
    pub fn warnings(&self) -> Vec<String> {
        self.unknown_fields
            .iter()
            .map(|f| format!("unknown field \"{f}\""))
            .collect()
    }

    /// The error of `fieldValidation=Strict`, when any field is unknown.
    pub fn strict_error(&self, version: &str, kind: &str) -> Option<TypedError> {
        if self.unknown_fields.is_empty() {
            return None;
        }
        Some(TypedError::UnknownFields {
            kind: kind.into(),
            version: version.into(),
            fields: self.unknown_fields.clone(),
        })
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TypedError {
    /// The body does not fit the type; `field` is the failing path with list indexes.
    #[error("{kind} in version \"{version}\" cannot be handled as a {kind}: {message}")]
    Decode {
        kind: String,
        version: String,
        field: String,
        message: String,
    },
    /// `fieldValidation=Strict` found fields the type does not have.
    #[error("{kind} in version \"{version}\" cannot be handled as a {kind}: strict decoding error: {}", render_unknown(.fields))]
    UnknownFields {
        kind: String,
        version: String,
        fields: Vec<String>,
    },
    /// The body names another apiVersion or kind than the endpoint it was sent to.
    #[error("the {what} in the data ({found}) does not match the expected {what} ({expected})")]
    Mismatch {
        what: &'static str,
        found: String,
        expected: String,
    },
    #[error("no kind \"{kind}\" is registered for version \"{}\"", api_version(.group, .version))]
    NotBuiltin {
        group: String,
        version: String,
        kind: String,
    },
    /// Serializing a decoded struct failed; cannot happen for k8s-openapi types.
    #[error("encoding {kind}: {message}")]
    Encode { kind: String, message: String },
}

impl From<TypedError> for StatusError {
    fn from(e: TypedError) -> Self {
        match e {
            TypedError::Encode { .. } => StatusError::internal(e.to_string()),
            other => StatusError::bad_request(other.to_string()),
        }
    }
}

fn render_unknown(fields: &[String]) -> String {
    let parts: Vec<String> = fields
        .iter()
        .map(|f| format!("unknown field \"{f}\""))
        .collect();
    parts.join(", ")
}

fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Decodes `obj` through the k8s-openapi struct of `group/version, kind` and serializes it
/// back. A missing `apiVersion`/`kind` is taken from the arguments, as upstream fills them
/// from the request's path.
pub fn decode(group: &str, version: &str, kind: &str, obj: &Value) -> Result<Decoded, TypedError> {
    if !is_builtin(group, version, kind) {
        return Err(TypedError::NotBuiltin {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
        });
    }
    let expected_api_version = api_version(group, version);
    check_type_meta(obj, "apiVersion", "API version", &expected_api_version)?;
    check_type_meta(obj, "kind", "kind", kind)?;
    let mut input = obj.clone();
    if let Value::Object(map) = &mut input {
        for (field, value) in [
            ("apiVersion", expected_api_version.as_str()),
            ("kind", kind),
        ] {
            if map
                .get(field)
                .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
            {
                map.insert(field.into(), Value::String(value.into()));
            }
        }
    }
    let cx = Ctx::default();
    let result =
        kinds::round_trip(group, version, kind, Node::root(&input, &cx)).ok_or_else(|| {
            TypedError::NotBuiltin {
                group: group.into(),
                version: version.into(),
                kind: kind.into(),
            }
        })?;
    let mut object = result.map_err(|e| match e {
        RoundTripError::Decode(e) => decode_error(version, kind, e),
        RoundTripError::Encode(message) => TypedError::Encode {
            kind: kind.into(),
            message,
        },
    })?;
    restore_numbers(&mut object, &input);
    drop_materialized(&mut object, &input);
    Ok(Decoded {
        object,
        unknown_fields: cx.into_unknown(),
    })
}

/// Removes what the typed structs made up: a required field the client left out comes back
/// from k8s-openapi as an empty value (`selector: {}`), where Go keeps it absent and
/// validation reports it as missing.
fn drop_materialized(out: &mut Value, input: &Value) {
    match (out, input) {
        (Value::Object(o), Value::Object(i)) => {
            o.retain(|k, _| i.contains_key(k));
            for (k, v) in o.iter_mut() {
                if let Some(iv) = i.get(k) {
                    drop_materialized(v, iv);
                }
            }
        }
        (Value::Array(o), Value::Array(i)) if o.len() == i.len() => {
            for (v, iv) in o.iter_mut().zip(i) {
                drop_materialized(v, iv);
            }
        }
        _ => {}
    }
}

/// A present, string `apiVersion`/`kind` must match; other shapes are left to the decoder.
fn check_type_meta(
    obj: &Value,
    field: &str,
    what: &'static str,
    expected: &str,
) -> Result<(), TypedError> {
    match obj.get(field).and_then(Value::as_str) {
        Some(found) if !found.is_empty() && found != expected => Err(TypedError::Mismatch {
            what,
            found: found.into(),
            expected: expected.into(),
        }),
        _ => Ok(()),
    }
}

fn decode_error(version: &str, kind: &str, e: DeError) -> TypedError {
    TypedError::Decode {
        kind: kind.into(),
        version: version.into(),
        field: e
            .location
            .as_ref()
            .map(|l| l.path.clone())
            .unwrap_or_default(),
        message: e.message(),
    }
}

enum RoundTripError {
    Decode(DeError),
    Encode(String),
}

/// Decodes into `T` and serializes back: the typed round trip itself.
fn through<T: DeserializeOwned + Serialize>(node: Node<'_, '_>) -> Result<Value, RoundTripError> {
    let typed = T::deserialize(node).map_err(RoundTripError::Decode)?;
    serde_json::to_value(&typed).map_err(|e| RoundTripError::Encode(e.to_string()))
}

/// Puts back the user's spelling of numbers the round trip respelled (a `float64` field
/// given `5` comes back as `5.0`), where the value is unchanged.
fn restore_numbers(out: &mut Value, input: &Value) {
    match (out, input) {
        (Value::Number(o), Value::Number(i)) if o != i && o.as_f64() == i.as_f64() => {
            *o = i.clone();
        }
        (Value::Object(o), Value::Object(i)) => {
            for (key, value) in o.iter_mut() {
                if let Some(iv) = i.get(key) {
                    restore_numbers(value, iv);
                }
            }
        }
        (Value::Array(o), Value::Array(i)) if o.len() == i.len() => {
            for (value, iv) in o.iter_mut().zip(i) {
                restore_numbers(value, iv);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod materialized_tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_required_field_stays_missing() {
        let d = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"},
                       "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "x"}]}}}});
        let out = decode("apps", "v1", "Deployment", &d)
            .expect("decodes")
            .object;
        assert!(out["spec"].get("selector").is_none(), "{out}");
    }
}
