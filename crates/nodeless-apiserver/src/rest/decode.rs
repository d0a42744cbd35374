//! From a client's body to a defaulted, validated object of the addressed type.

use super::{Api, FieldValidation};
use crate::strategy;
use nodeless_core::resource::ResourceType;
use nodeless_core::{defaults, schema, typed, validation, ErrorList, StatusError};
use serde_json::Value;

impl Api {
    /// Drops unknown fields (or refuses them, per `fieldValidation`) and applies defaults.
    pub(crate) fn normalize(
        &self,
        rt: &ResourceType,
        obj: Value,
        fv: FieldValidation,
    ) -> Result<(Value, Vec<String>), StatusError> {
        let (mut obj, unknown) = if rt.custom {
            let mut obj = obj;
            match self.custom_schema(rt)? {
                Some(s) => {
                    let unknown = schema::prune(&s, &mut obj);
                    schema::apply_defaults(&s, &mut obj);
                    (obj, unknown)
                }
                None => (obj, Vec::new()),
            }
        } else if typed::is_builtin(&rt.group, &rt.version, &rt.kind) {
            let decoded = typed::decode(&rt.group, &rt.version, &rt.kind, &obj)?;
            (decoded.object, decoded.unknown_fields)
        } else {
            (obj, Vec::new())
        };
        let mut warnings = Vec::new();
        if !unknown.is_empty() {
            let listed: Vec<String> = unknown
                .iter()
                .map(|f| format!("unknown field \"{f}\""))
                .collect();
            match fv {
                FieldValidation::Strict => {
                    return Err(StatusError::bad_request(format!(
                        "strict decoding error: {}",
                        listed.join(", ")
                    )))
                }
                FieldValidation::Warn => warnings = listed,
                FieldValidation::Ignore => {}
            }
        }
        if !rt.custom {
            defaults::apply_defaults(&rt.group, &rt.version, &rt.kind, &mut obj);
        }
        Ok((obj, warnings))
    }

    fn custom_schema(&self, rt: &ResourceType) -> Result<Option<schema::Schema>, StatusError> {
        let Some(info) = self.registry.custom_info(rt) else {
            return Ok(None);
        };
        if info.schema_json.is_null() {
            return Ok(None);
        }
        schema::Schema::from_json(&info.schema_json)
            .map(Some)
            .map_err(|e| {
                StatusError::internal(format!(
                    "the schema of {} is unusable: {e}",
                    rt.group_resource()
                ))
            })
    }

    /// Validates a new object, or an update against the stored one.
    pub(crate) fn validate(
        &self,
        rt: &ResourceType,
        obj: &Value,
        old: Option<&Value>,
    ) -> Result<(), StatusError> {
        let mut errs: ErrorList = strategy::validate_scope(rt, obj);
        if rt.custom {
            if let Some(s) = self.custom_schema(rt)? {
                let mut body = obj.clone();
                if let Some(o) = body.as_object_mut() {
                    o.remove("metadata");
                }
                errs.extend(schema::validate(&s, &body));
            }
            let name = nodeless_core::meta::name(obj).unwrap_or_default();
            for msg in validation::names::is_dns1123_subdomain(name) {
                errs.push(nodeless_core::FieldError::invalid(
                    "metadata.name",
                    name,
                    msg,
                ));
            }
        } else {
            errs.extend(match old {
                None => validation::validate_create(&rt.group, &rt.kind, obj, rt.namespaced),
                Some(old) => {
                    validation::validate_update(&rt.group, &rt.kind, obj, old, rt.namespaced)
                }
            });
        }
        if errs.is_empty() {
            return Ok(());
        }
        let name = nodeless_core::meta::name(obj).unwrap_or("");
        Err(StatusError::invalid(&rt.group, &rt.kind, name, &errs))
    }
}

/// The body's apiVersion and kind must name the addressed type (or be left out).
pub(crate) fn check_type(rt: &ResourceType, obj: &Value) -> Result<(), StatusError> {
    if !obj.is_object() {
        return Err(StatusError::bad_request(
            "the body of the request must be a JSON or YAML object",
        ));
    }
    let kind = obj.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = obj.get("apiVersion").and_then(Value::as_str).unwrap_or("");
    if (!kind.is_empty() && kind != rt.kind)
        || (!api_version.is_empty() && api_version != rt.api_version())
    {
        return Err(StatusError::bad_request(format!(
            "the API version in the data ({api_version}) does not match the expected API version ({})",
            rt.api_version()
        ))
        .with_kind_message(kind, &rt.kind));
    }
    Ok(())
}

trait KindMessage {
    fn with_kind_message(self, got: &str, want: &str) -> Self;
}

impl KindMessage for StatusError {
    fn with_kind_message(mut self, got: &str, want: &str) -> Self {
        if !got.is_empty() && got != want {
            self.message =
                format!("the kind in the data ({got}) does not match the expected kind ({want})");
        }
        self
    }
}
