//! Value validation: kube-openapi's schema validator, reported the way apiextensions-apiserver
//! turns its results into field errors (`spec.replicas: Invalid value: "string": spec.replicas
//! in body must be of type integer: "string"`). Every failing field is reported.
//!
//! Where upstream reports a failure without a field path (`<nil>: Invalid value: ""`, for
//! allOf/anyOf/oneOf/not and the int32 range check) the field path is filled in here.

use super::{child, format, index, AdditionalProperties, Schema, SchemaType};
use crate::field::{ErrorList, ErrorType, FieldError};
use serde_json::{Map, Number, Value};

/// Validates a whole custom object against its schema. The root's `apiVersion`, `kind`
/// and `metadata` are the API server's to check; embedded resources below the root are
/// checked here.
pub fn validate(schema: &Schema, obj: &Value) -> ErrorList {
    let mut errors = ErrorList::new();
    value(schema, obj, "", &mut errors);
    errors
}

fn value(s: &Schema, data: &Value, path: &str, errs: &mut ErrorList) {
    if data.is_null() {
        let types = s.type_names();
        if !types.is_empty() && !s.nullable {
            errs.push(type_error(path, &types.join(","), "null"));
        }
        enumeration(s, data, path, errs);
        return;
    }
    check_type(s, data, path, errs);
    combinators(s, data, path, errs);
    match data {
        Value::String(text) => string(s, text, path, errs),
        Value::Number(n) => number(s, n, path, errs),
        Value::Array(items) => array(s, items, path, errs),
        _ => {}
    }
    enumeration(s, data, path, errs);
    if let Value::Object(map) = data {
        object(s, map, path, errs);
    }
}

fn in_body(path: &str, rest: std::fmt::Arguments) -> String {
    format!("{path} in body {rest}")
}

fn invalid(path: &str, value: impl Into<Value>, detail: String) -> FieldError {
    FieldError::invalid(path, value, detail)
}

fn type_error(path: &str, expected: &str, found: &str) -> FieldError {
    let detail = in_body(path, format_args!("must be of type {expected}: {found:?}"));
    FieldError::type_invalid(path, found, detail)
}

/// The JSON type and go-openapi format a decoded value has: Kubernetes decodes integers
/// that fit an int64 as int64, every other number as float64.
fn kind_of(data: &Value) -> (&'static str, &'static str) {
    match data {
        Value::Bool(_) => ("boolean", ""),
        Value::String(_) => ("string", ""),
        Value::Number(n) if n.is_i64() => ("integer", "int64"),
        Value::Number(_) => ("number", "float64"),
        Value::Array(_) => ("array", ""),
        Value::Object(_) => ("object", ""),
        Value::Null => ("null", ""),
    }
}

/// A float that holds an integer exactly, as go-openapi's `IsFloat64AJSONInteger`.
fn is_json_integer(f: f64) -> bool {
    f.is_finite() && f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0
}

fn check_type(s: &Schema, data: &Value, path: &str, errs: &mut ErrorList) {
    let types = s.type_names();
    let format = s.format.as_deref().unwrap_or("");
    if types.is_empty() && format.is_empty() {
        return;
    }
    let (found, found_format) = kind_of(data);
    let float_int = found == "number"
        && types.contains(&"integer")
        && data.as_f64().is_some_and(is_json_integer);
    let int_float = found == "integer" && types.contains(&"number");
    let textual = data.is_string() || data.is_array();
    let matches = types.contains(&found) || float_int || int_float;
    let format_matches = matches || found_format == format;
    if !textual && !format.is_empty() && !format_matches {
        errs.push(type_error(path, format, found_format));
        return;
    }
    let numeric = types.contains(&"number") || types.contains(&"integer");
    if !numeric && !format.is_empty() && textual {
        return;
    }
    if !matches {
        errs.push(type_error(path, &types.join(","), found));
    }
}

fn string(s: &Schema, text: &str, path: &str, errs: &mut ErrorList) {
    let len = text.chars().count() as u64;
    // Upstream stops at the first failing string keyword.
    if let Some(max) = s.max_length.filter(|max| len > *max) {
        let unit = if max == 1 { "byte" } else { "bytes" };
        errs.push(FieldError {
            kind: ErrorType::TooLong,
            field: path.to_string(),
            value: None,
            detail: format!("may not be more than {max} {unit}"),
        });
    } else if let Some(min) = s.min_length.filter(|min| len < *min) {
        errs.push(invalid(
            path,
            text,
            in_body(path, format_args!("should be at least {min} chars long")),
        ));
    } else if let Some(p) = s.pattern.as_ref().filter(|p| !p.is_match(text)) {
        errs.push(invalid(
            path,
            text,
            in_body(path, format_args!("should match '{}'", p.source)),
        ));
    }
    if let Some(f) = s.format.as_deref().filter(|f| !format::is_valid(f, text)) {
        let detail = in_body(path, format_args!("must be of type {f}: {text:?}"));
        errs.push(FieldError::type_invalid(path, text, detail));
    }
}

fn number(s: &Schema, n: &Number, path: &str, errs: &mut ErrorList) {
    let int = n.as_i64();
    let f = n.as_f64().unwrap_or(f64::NAN);
    range_of_format(s, int, f, path, errs);
    if let Some(factor) = s.multiple_of {
        if factor <= 0.0 {
            let detail = format!(
                "factor MultipleOf declared for {path} must be positive: {}",
                go_float(factor)
            );
            errs.push(invalid(path, factor, detail));
        } else if !is_multiple(int, f, factor) {
            let detail = in_body(
                path,
                format_args!("should be a multiple of {}", go_float(factor)),
            );
            errs.push(invalid(path, n.clone(), detail));
        }
    }
    if let Some(min) = s.minimum {
        let (below, shown) = compare(int, f, min);
        if below.is_lt() || (s.exclusive_minimum && below.is_eq()) {
            let op = if s.exclusive_minimum {
                "greater than"
            } else {
                "greater than or equal to"
            };
            errs.push(invalid(
                path,
                n.clone(),
                in_body(path, format_args!("should be {op} {shown}")),
            ));
        }
    }
    if let Some(max) = s.maximum {
        let (above, shown) = compare(int, f, max);
        if above.is_gt() || (s.exclusive_maximum && above.is_eq()) {
            let op = if s.exclusive_maximum {
                "less than"
            } else {
                "less than or equal to"
            };
            errs.push(invalid(
                path,
                n.clone(),
                in_body(path, format_args!("should be {op} {shown}")),
            ));
        }
    }
}

/// `format: int32` / `format: float` also bound the value's range.
fn range_of_format(s: &Schema, int: Option<i64>, f: f64, path: &str, errs: &mut ErrorList) {
    let (type_name, out_of_range) = match (s.schema_type, s.format.as_deref(), s.int_or_string) {
        (Some(SchemaType::Integer), Some("int32"), false) => (
            "integer",
            int.map_or(
                is_json_integer(f) && (f < i32::MIN as f64 || f > i32::MAX as f64),
                |i| i32::try_from(i).is_err(),
            ),
        ),
        (Some(SchemaType::Number), Some("float"), false) => {
            ("number", f.is_finite() && f.abs() > f32::MAX as f64)
        }
        _ => return,
    };
    if out_of_range {
        let format = s.format.as_deref().unwrap_or_default();
        let detail =
            format!("Checked value must be of type {type_name} with format {format} in {path}");
        errs.push(invalid(
            path,
            int.map_or(Value::from(f), Value::from),
            detail,
        ));
    }
}

/// Compares a value with a bound; integers against an integral bound compare exactly.
/// Returns the ordering of value to bound and the bound as upstream prints it.
fn compare(int: Option<i64>, f: f64, bound: f64) -> (std::cmp::Ordering, String) {
    match int {
        Some(i) if bound.fract() == 0.0 && bound.abs() < 9.2e18 => {
            (i.cmp(&(bound as i64)), (bound as i64).to_string())
        }
        _ => (
            f.partial_cmp(&bound).unwrap_or(std::cmp::Ordering::Equal),
            go_float(bound),
        ),
    }
}

fn is_multiple(int: Option<i64>, f: f64, factor: f64) -> bool {
    match int {
        Some(i) if factor.fract() == 0.0 && factor < 9.2e18 => i % (factor as i64) == 0,
        _ => is_json_integer(if factor < 1.0 {
            1.0 / factor * f
        } else {
            f / factor
        }),
    }
}

/// Formats a float as Go's `%v` does: shortest digits, exponent outside [1e-4, 1e21).
fn go_float(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && a.is_finite() && !(1e-4..1e21).contains(&a) {
        let s = format!("{f:e}");
        if let Some((mantissa, exp)) = s.split_once('e') {
            let exp: i32 = exp.parse().unwrap_or(0);
            let sign = if exp < 0 { '-' } else { '+' };
            return format!("{mantissa}e{sign}{:02}", exp.abs());
        }
    }
    format!("{f}")
}

fn array(s: &Schema, items: &[Value], path: &str, errs: &mut ErrorList) {
    if let Some(item) = &s.items {
        for (i, v) in items.iter().enumerate() {
            value(item, v, &index(path, i), errs);
        }
    }
    let len = items.len() as u64;
    if let Some(min) = s.min_items.filter(|min| len < *min) {
        errs.push(invalid(
            path,
            len,
            in_body(path, format_args!("should have at least {min} items")),
        ));
    }
    if let Some(max) = s.max_items.filter(|max| len > *max) {
        errs.push(too_many(path, len, max));
    }
    if s.unique_items && has_duplicates(items) {
        errs.push(invalid(
            path,
            "",
            in_body(path, format_args!("shouldn't contain duplicates")),
        ));
    }
    list_type(s, items, path, errs);
}

fn too_many(path: &str, actual: u64, max: u64) -> FieldError {
    let unit = if max == 1 { "item" } else { "items" };
    FieldError {
        kind: ErrorType::TooMany,
        field: path.to_string(),
        value: Some(actual.into()),
        detail: format!("must have at most {max} {unit}"),
    }
}

fn has_duplicates(items: &[Value]) -> bool {
    items
        .iter()
        .enumerate()
        .any(|(i, a)| items[..i].iter().any(|b| json_eq(a, b)))
}

/// `x-kubernetes-list-type: set|map`: items (or their map keys) must be unique.
fn list_type(s: &Schema, items: &[Value], path: &str, errs: &mut ErrorList) {
    let key_of = |v: &Value| -> Value {
        match s.list_type.as_deref() {
            Some("map") => {
                let keys: Map<String, Value> = s
                    .list_map_keys
                    .iter()
                    .filter_map(|k| Some((k.clone(), v.get(k)?.clone())))
                    .collect();
                Value::Object(keys)
            }
            _ => v.clone(),
        }
    };
    if !matches!(s.list_type.as_deref(), Some("set") | Some("map")) {
        return;
    }
    let keys: Vec<Value> = items.iter().map(key_of).collect();
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].iter().any(|earlier| json_eq(earlier, k)) {
            errs.push(FieldError::duplicate(index(path, i), k.clone()));
        }
    }
}

/// JSON equality where `1` equals `1.0`, as Go's conversion before comparing allows.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn enumeration(s: &Schema, data: &Value, path: &str, errs: &mut ErrorList) {
    let Some(allowed) = s.enumeration.as_ref().filter(|e| !e.is_empty()) else {
        return;
    };
    if allowed.iter().any(|a| json_eq(a, data)) {
        return;
    }
    let shown: Vec<String> = allowed
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
    let refs: Vec<&str> = shown.iter().map(String::as_str).collect();
    errs.push(FieldError::not_supported(path, data.clone(), &refs));
}

fn object(s: &Schema, map: &Map<String, Value>, path: &str, errs: &mut ErrorList) {
    let count = map.len() as u64;
    if let Some(min) = s.min_properties.filter(|min| count < *min) {
        errs.push(invalid(
            path,
            count,
            in_body(path, format_args!("should have at least {min} properties")),
        ));
    }
    if let Some(max) = s.max_properties.filter(|max| count > *max) {
        errs.push(too_many(path, count, max));
    }
    for (key, v) in map.iter().filter(|(k, _)| s.property(k).is_none()) {
        match &s.additional_properties {
            AdditionalProperties::Allowed(false) => {
                let detail = format!("{} in body is a forbidden property", child(path, key));
                errs.push(invalid(path, key.as_str(), detail));
            }
            AdditionalProperties::Schema(extra) => value(extra, v, &child(path, key), errs),
            _ => {}
        }
    }
    for (name, prop) in &s.properties {
        if let Some(v) = map.get(name) {
            value(prop, v, &child(path, name), errs);
        }
    }
    for name in s.required.iter().filter(|r| !map.contains_key(r.as_str())) {
        errs.push(FieldError::required(child(path, name), ""));
    }
    if s.embedded_resource && !path.is_empty() {
        embedded_type_meta(map, path, errs);
    }
}

/// An embedded resource must name its `apiVersion` and `kind` as strings.
fn embedded_type_meta(map: &Map<String, Value>, path: &str, errs: &mut ErrorList) {
    for field in ["apiVersion", "kind"] {
        let at = child(path, field);
        match map.get(field) {
            None => errs.push(FieldError::required(at, "")),
            Some(Value::String(v)) if v.is_empty() => errs.push(FieldError::required(at, "")),
            Some(Value::String(_)) => {}
            Some(other) => errs.push(invalid(&at, other.clone(), "must be a string".into())),
        }
    }
}

fn combinators(s: &Schema, data: &Value, path: &str, errs: &mut ErrorList) {
    let run = |alt: &Schema| {
        let mut e = ErrorList::new();
        value(alt, data, path, &mut e);
        e
    };
    let failure = |msg: String| FieldError::invalid(path, "", msg);
    if !s.any_of.is_empty() {
        let results: Vec<ErrorList> = s.any_of.iter().map(run).collect();
        if results.iter().all(|r| !r.is_empty()) {
            errs.push(failure(format!(
                "{path:?} must validate at least one schema (anyOf)"
            )));
            errs.extend(results.into_iter().min_by_key(Vec::len).unwrap_or_default());
        }
    }
    if !s.one_of.is_empty() {
        let results: Vec<ErrorList> = s.one_of.iter().map(run).collect();
        let valid = results.iter().filter(|r| r.is_empty()).count();
        if valid != 1 {
            let found = if valid == 0 {
                "Found none valid".to_string()
            } else {
                format!("Found {valid} valid alternatives")
            };
            errs.push(failure(format!(
                "{path:?} must validate one and only one schema (oneOf). {found}"
            )));
            if valid == 0 {
                errs.extend(results.into_iter().min_by_key(Vec::len).unwrap_or_default());
            }
        }
    }
    if !s.all_of.is_empty() {
        let results: Vec<ErrorList> = s.all_of.iter().map(run).collect();
        let valid = results.iter().filter(|r| r.is_empty()).count();
        errs.extend(results.into_iter().flatten());
        if valid != s.all_of.len() {
            let none = if valid == 0 { ". None validated" } else { "" };
            errs.push(failure(format!(
                "{path:?} must validate all the schemas (allOf){none}"
            )));
        }
    }
    if let Some(not) = &s.not {
        if run(not).is_empty() {
            errs.push(failure(format!(
                "{path:?} must not validate the schema (not)"
            )));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::go_float;

    #[test]
    fn floats_print_like_go() {
        assert_eq!(go_float(10.0), "10");
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(0.00001), "1e-05");
    }
}
