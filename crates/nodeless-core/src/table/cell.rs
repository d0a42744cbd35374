//! Small readers for cell values, tolerant of missing or mistyped fields (the printers must
//! never fail on what a client stored).

use serde_json::Value;
use std::collections::BTreeMap;

/// The string at a JSON pointer, or `""`.
pub fn s<'a>(v: &'a Value, ptr: &str) -> &'a str {
    v.pointer(ptr).and_then(Value::as_str).unwrap_or_default()
}

/// The integer at a JSON pointer, or 0.
pub fn i(v: &Value, ptr: &str) -> i64 {
    v.pointer(ptr).and_then(Value::as_i64).unwrap_or(0)
}

/// The integer at a JSON pointer, if set.
pub fn opt_i(v: &Value, ptr: &str) -> Option<i64> {
    v.pointer(ptr).and_then(Value::as_i64)
}

/// The boolean at a JSON pointer, if set.
pub fn opt_b(v: &Value, ptr: &str) -> Option<bool> {
    v.pointer(ptr).and_then(Value::as_bool)
}

/// The array at a JSON pointer, or an empty slice.
pub fn arr<'a>(v: &'a Value, ptr: &str) -> &'a [Value] {
    v.pointer(ptr)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

/// The number of entries of the object at a JSON pointer.
pub fn len_of(v: &Value, ptr: &str) -> usize {
    match v.pointer(ptr) {
        Some(Value::Object(m)) => m.len(),
        Some(Value::Array(a)) => a.len(),
        _ => 0,
    }
}

/// The string map at a JSON pointer.
pub fn map(v: &Value, ptr: &str) -> BTreeMap<String, String> {
    crate::meta::string_map(v.pointer(ptr))
}

/// `s` unless empty, else `fallback`.
pub fn or<'a>(s: &'a str, fallback: &'a str) -> &'a str {
    if s.is_empty() {
        fallback
    } else {
        s
    }
}

/// An int-or-string (`intstr.String()`): the number or the string as written.
pub fn int_or_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Container names and images joined by commas (`layoutContainerCells`).
pub fn containers(v: &Value, ptr: &str) -> (Value, Value) {
    let cs = arr(v, ptr);
    let names: Vec<&str> = cs.iter().map(|c| s(c, "/name")).collect();
    let images: Vec<&str> = cs.iter().map(|c| s(c, "/image")).collect();
    (names.join(",").into(), images.join(",").into())
}

/// The label selector at a JSON pointer, formatted as `metav1.FormatLabelSelector`.
pub fn selector(v: &Value, ptr: &str) -> Value {
    crate::selector::label::format_label_selector(v.pointer(ptr)).into()
}

/// Upstream's `listWithMoreString`: up to three items, then `+ N more...`.
pub fn list_with_more(items: &[String], max: usize, empty: &str) -> String {
    let shown = items
        .iter()
        .take(max)
        .cloned()
        .collect::<Vec<_>>()
        .join(",");
    if items.len() > max {
        return format!("{shown} + {} more...", items.len() - max);
    }
    if shown.is_empty() {
        empty.into()
    } else {
        shown
    }
}
