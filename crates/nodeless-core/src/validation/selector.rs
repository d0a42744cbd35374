//! Label selectors as validation needs them: checking a `metav1.LabelSelector` and matching
//! it against a template's labels (matching itself is `crate::selector`'s).

use super::names;
use super::render::{invalid_rendered, label_selector};
use crate::field::{ErrorList, FieldError, Path};
use crate::selector::{LabelSelector, SelectorError};
use serde_json::Value;

/// Converts a selector the way `metav1.LabelSelectorAsSelector` does: absent matches nothing,
/// `{}` everything; `Err` when any part is malformed (the caller reports that in its own words).
pub(crate) fn as_selection(sel: Option<&Value>) -> Result<LabelSelector, SelectorError> {
    LabelSelector::from_json(sel.unwrap_or(&Value::Null))
}

/// `ValidateLabelSelector`: field errors for a selector's labels and expressions.
pub(crate) fn validate_label_selector(sel: Option<&Value>, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let Some(sel) = sel.filter(|v| v.is_object()) else {
        return errs;
    };
    errs.extend(super::meta::validate_labels(
        sel.get("matchLabels"),
        &path.child("matchLabels"),
    ));
    let exprs = sel
        .get("matchExpressions")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (i, e) in exprs.iter().enumerate() {
        errs.extend(validate_requirement(
            e,
            &path.child("matchExpressions").index(i),
        ));
    }
    errs
}

fn validate_requirement(e: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let values = e
        .get("values")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    match e.get("operator").and_then(Value::as_str).unwrap_or("") {
        "In" | "NotIn" if values.is_empty() => errs.push(FieldError::required(
            path.child("values"),
            "must be specified when `operator` is 'In' or 'NotIn'",
        )),
        "Exists" | "DoesNotExist" if !values.is_empty() => errs.push(FieldError::forbidden(
            path.child("values"),
            "may not be specified when `operator` is 'Exists' or 'DoesNotExist'",
        )),
        "In" | "NotIn" | "Exists" | "DoesNotExist" => {}
        other => errs.push(FieldError::invalid(
            path.child("operator"),
            other,
            "not a valid selector operator",
        )),
    }
    let key = e.get("key").and_then(Value::as_str).unwrap_or("");
    errs.extend(super::meta::validate_label_name(key, &path.child("key")));
    for (i, v) in values.iter().enumerate() {
        let v = v.as_str().unwrap_or("");
        for msg in names::is_valid_label_value(v) {
            errs.push(FieldError::invalid(path.child("values").index(i), v, msg));
        }
    }
    errs
}

/// The workload rule shared by Deployment, ReplicaSet and StatefulSet: selector required,
/// well formed, non-empty, and matching the template's labels.
pub(crate) fn validate_workload_selector(
    spec: &Value,
    spec_path: &Path,
    kind_word: &str,
    strict: bool,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let sel = spec.get("selector").filter(|v| !v.is_null());
    let sel_path = spec_path.child("selector");
    match sel {
        None if strict => errs.push(FieldError::required(&sel_path, "")),
        None => {}
        Some(s) => {
            errs.extend(validate_label_selector(Some(s), &sel_path));
            let n_labels = s
                .get("matchLabels")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len());
            let n_exprs = s
                .get("matchExpressions")
                .and_then(Value::as_array)
                .map_or(0, |a| a.len());
            if n_labels + n_exprs == 0 {
                errs.push(invalid_rendered(
                    &sel_path,
                    label_selector(Some(s)),
                    &format!("empty selector is invalid for {kind_word}"),
                ));
            }
        }
    }
    errs
}

/// `spec.template.metadata.labels: Invalid value: map[...]: `selector` does not match template `labels``.
pub(crate) fn template_mismatch(
    selection: &LabelSelector,
    template: Option<&Value>,
    template_path: &Path,
) -> Option<FieldError> {
    let labels = template
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"));
    if selection.is_empty() || selection.matches(&crate::meta::string_map(labels)) {
        return None;
    }
    Some(invalid_rendered(
        template_path.child("metadata").child("labels"),
        super::render::string_map(labels),
        "`selector` does not match template `labels`",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn absent_selector_matches_nothing_and_empty_matches_everything() {
        assert!(as_selection(None).expect("valid").matches_nothing());
        assert!(as_selection(Some(&json!({}))).expect("valid").is_empty());
    }

    #[test]
    fn expressions_match_labels() {
        let sel = json!({"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "NotIn", "values": ["db"]},
            {"key": "canary", "operator": "DoesNotExist"}
        ]});
        let s = as_selection(Some(&sel)).expect("valid");
        let labels = |v: Value| crate::meta::string_map(Some(&v));
        assert!(s.matches(&labels(json!({"app": "web", "tier": "fe"}))));
        assert!(!s.matches(&labels(json!({"app": "web", "tier": "db"}))));
        assert!(!s.matches(&labels(json!({"app": "web", "canary": "1"}))));
    }

    #[test]
    fn malformed_selectors_do_not_convert() {
        assert!(as_selection(Some(
            &json!({"matchExpressions": [{"key": "a", "operator": "Is"}]})
        ))
        .is_err());
        assert!(as_selection(Some(
            &json!({"matchExpressions": [{"key": "a", "operator": "In"}]})
        ))
        .is_err());
        assert!(as_selection(Some(&json!({"matchLabels": {"a": "bad value"}}))).is_err());
    }

    #[test]
    fn requirement_errors_carry_upstream_paths() {
        let sel =
            json!({"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]});
        let errs = validate_label_selector(Some(&sel), &Path::new("spec.selector"));
        assert_eq!(errs[0].field, "spec.selector.matchExpressions[0].values");
        assert_eq!(errs[0].kind, crate::field::ErrorType::Forbidden);
    }
}
