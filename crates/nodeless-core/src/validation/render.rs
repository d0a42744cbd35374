//! Values printed the way upstream's messages print them.
//!
//! kube-apiserver formats a field error's value with Go's `%#v`, so the messages users
//! paste into searches look like `map[string]string{"app":"web"}` or
//! `v1.LabelSelector{MatchLabels:...}`. For the few values users see most we reproduce that
//! text; other values fall back to JSON.

use crate::field::{ErrorType, FieldError};
use serde_json::Value;

/// An `Invalid value` error whose value is already rendered (Go syntax, not JSON).
pub(crate) fn invalid_rendered(
    field: impl Into<String>,
    rendered: String,
    detail: &str,
) -> FieldError {
    // `FieldError::body` prints `Invalid value: <detail>` when there is no value, so the
    // rendered value travels at the front of the detail.
    let detail = if detail.is_empty() {
        rendered
    } else {
        format!("{rendered}: {detail}")
    };
    FieldError {
        kind: ErrorType::Invalid,
        field: field.into(),
        value: None,
        detail,
    }
}

/// An `intstr.IntOrString` as `%#v` prints it (how upstream shows maxSurge and friends).
pub(crate) fn int_or_string(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            quote(s)
        ),
        Some(v) => format!(
            "intstr.IntOrString{{Type:0, IntVal:{}, StrVal:\"\"}}",
            v.as_i64().unwrap_or(0)
        ),
        None => "null".to_string(),
    }
}

fn quote(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| format!("\"{s}\""))
}

/// `map[string]string{"a":"1", "b":"2"}` (keys sorted, as Go prints maps), or
/// `map[string]string(nil)` when absent.
pub(crate) fn string_map(v: Option<&Value>) -> String {
    let Some(map) = v.and_then(Value::as_object) else {
        return "map[string]string(nil)".to_string();
    };
    let mut entries: Vec<(&String, String)> = map
        .iter()
        .map(|(k, v)| (k, v.as_str().map(quote).unwrap_or_else(|| v.to_string())))
        .collect();
    entries.sort_by(|a, b| a.0.cmp(b.0));
    let body: Vec<String> = entries
        .iter()
        .map(|(k, v)| format!("{}:{v}", quote(k)))
        .collect();
    format!("map[string]string{{{}}}", body.join(", "))
}

/// `[]string{"a", "b"}`, or `[]string(nil)` when absent.
pub(crate) fn string_slice(v: Option<&Value>) -> String {
    let Some(items) = v.and_then(Value::as_array) else {
        return "[]string(nil)".to_string();
    };
    let body: Vec<String> = items
        .iter()
        .map(|i| i.as_str().map(quote).unwrap_or_else(|| i.to_string()))
        .collect();
    format!("[]string{{{}}}", body.join(", "))
}

/// A `metav1.LabelSelector` as `%#v` prints it.
pub(crate) fn label_selector(v: Option<&Value>) -> String {
    let Some(sel) = v.filter(|s| s.is_object()) else {
        return "null".to_string();
    };
    let expressions = match sel.get("matchExpressions").and_then(Value::as_array) {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(exprs) => {
            let items: Vec<String> = exprs.iter().map(requirement).collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{expressions}}}",
        string_map(sel.get("matchLabels"))
    )
}

fn requirement(r: &Value) -> String {
    let text = |k: &str| quote(r.get(k).and_then(Value::as_str).unwrap_or(""));
    format!(
        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
        text("key"),
        text("operator"),
        string_slice(r.get("values"))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_print_sorted_like_go() {
        let v = json!({"tier": "web", "app": "x"});
        assert_eq!(
            string_map(Some(&v)),
            r#"map[string]string{"app":"x", "tier":"web"}"#
        );
        assert_eq!(string_map(None), "map[string]string(nil)");
    }

    #[test]
    fn selectors_print_like_go() {
        let v = json!({"matchLabels": {"app": "nginx2"}});
        assert_eq!(
            label_selector(Some(&v)),
            r#"v1.LabelSelector{MatchLabels:map[string]string{"app":"nginx2"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}"#
        );
        let v = json!({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]});
        assert!(label_selector(Some(&v)).contains(
            r#"[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"a", Operator:"In", Values:[]string{"b"}}}"#
        ));
    }

    #[test]
    fn rendered_errors_read_like_upstream() {
        let e = invalid_rendered(
            "spec.x",
            string_slice(Some(&json!(["a"]))),
            "may not change once set",
        );
        assert_eq!(
            e.to_string(),
            r#"spec.x: Invalid value: []string{"a"}: may not change once set"#
        );
    }
}
