//! Decode errors in the words of Go's `encoding/json`, with the field they happened at.

use serde::de;
use serde_json::Value;
use std::fmt;

/// Where a decode error happened.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Location {
    /// The Go struct that holds the failing field, e.g. `ContainerPort`.
    pub go_struct: &'static str,
    /// The field path without list indexes, as Go prints it.
    pub go_path: String,
    /// The field path with list indexes, e.g. `spec.containers[0].ports[0].containerPort`.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Problem {
    /// A JSON value of the wrong kind: `found` is Go's name for it, `want` the Go type.
    Type { found: String, want: String },
    /// Anything a visitor reported (a bad timestamp, bad base64, ...).
    Custom(String),
}

/// A decode failure, located by the innermost list or object that saw it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct DeError {
    pub problem: Problem,
    pub location: Option<Location>,
}

impl DeError {
    pub(super) fn mismatch(found: impl Into<String>, want: impl Into<String>) -> Self {
        Self {
            problem: Problem::Type {
                found: found.into(),
                want: want.into(),
            },
            location: None,
        }
    }

    /// Records where the error happened, unless a deeper level already did.
    pub(super) fn located(mut self, at: impl FnOnce() -> Location) -> Self {
        if self.location.is_none() {
            self.location = Some(at());
        }
        self
    }

    /// The message in the words of Go's `json.UnmarshalTypeError` where possible.
    pub(super) fn message(&self) -> String {
        match (&self.problem, &self.location) {
            (Problem::Type { found, want }, Some(at)) => format!(
                "json: cannot unmarshal {found} into Go struct field {}.{} of type {want}",
                at.go_struct, at.go_path
            ),
            (Problem::Type { found, want }, None) => {
                format!("json: cannot unmarshal {found} into Go value of type {want}")
            }
            (Problem::Custom(msg), Some(at)) => {
                format!(
                    "json: error decoding Go struct field {}.{}: {msg}",
                    at.go_struct, at.go_path
                )
            }
            (Problem::Custom(msg), None) => format!("json: {msg}"),
        }
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Self {
            problem: Problem::Custom(msg.to_string()),
            location: None,
        }
    }

    fn invalid_type(unexp: de::Unexpected<'_>, exp: &dyn de::Expected) -> Self {
        Self::mismatch(
            go_kind_of_unexpected(&unexp),
            go_type_of_expected(&exp.to_string()),
        )
    }
}

/// Go's name for a JSON value's kind, as in `cannot unmarshal string into ...`.
pub(super) fn go_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn go_kind_of_unexpected(u: &de::Unexpected<'_>) -> String {
    use de::Unexpected as U;
    match u {
        U::Bool(_) => "bool".into(),
        U::Unsigned(_) | U::Signed(_) => "number".into(),
        U::Float(f) => format!("number {f}"),
        U::Str(_) | U::Char(_) => "string".into(),
        U::Seq => "array".into(),
        U::Map => "object".into(),
        U::Unit | U::Option => "null".into(),
        other => other.to_string(),
    }
}

/// Maps serde's "expected ..." phrases and k8s-openapi's type names to Go type names.
fn go_type_of_expected(exp: &str) -> String {
    match exp {
        "IntOrString" => "intstr.IntOrString".into(),
        "Quantity" => "resource.Quantity".into(),
        "a string" => "string".into(),
        "a boolean" => "bool".into(),
        "i32" | "a 32-bit integer" => "int32".into(),
        "i64" => "int64".into(),
        "f64" => "float64".into(),
        "a sequence" => "[]interface {}".into(),
        "a map" => "map[string]interface {}".into(),
        other => other.to_string(),
    }
}
