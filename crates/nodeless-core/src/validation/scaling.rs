//! HorizontalPodAutoscaler and PodDisruptionBudget.

use super::names;
use super::quantity::parse_quantity;
use super::selector::validate_label_selector;
use super::{field, int, items, text};
use crate::field::{ErrorList, FieldError, Path};
use serde_json::Value;

const METRIC_TYPES: [&str; 5] = [
    "Object",
    "Pods",
    "Resource",
    "External",
    "ContainerResource",
];

pub(crate) fn validate_hpa(obj: &Value) -> ErrorList {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    let min = int(spec, "minReplicas");
    if let Some(m) = min.filter(|m| *m < 1) {
        errs.push(FieldError::invalid(
            path.child("minReplicas"),
            m,
            "must be greater than or equal to 1",
        ));
    }
    let max = int(spec, "maxReplicas").unwrap_or(0);
    if max < 1 {
        errs.push(FieldError::invalid(
            path.child("maxReplicas"),
            max,
            "must be greater than 0",
        ));
    }
    if min.is_some_and(|m| max < m) {
        errs.push(FieldError::invalid(
            path.child("maxReplicas"),
            max,
            "must be greater than or equal to `minReplicas`",
        ));
    }
    errs.extend(scale_target_ref(
        spec.get("scaleTargetRef").unwrap_or(&Value::Null),
        &path.child("scaleTargetRef"),
    ));
    if let Some(t) = int(spec, "targetCPUUtilizationPercentage").filter(|t| *t < 1) {
        errs.push(FieldError::invalid(
            path.child("targetCPUUtilizationPercentage"),
            t,
            "must be greater than 0",
        ));
    }
    for (i, m) in items(spec, "metrics").iter().enumerate() {
        errs.extend(validate_metric(m, &path.child("metrics").index(i)));
    }
    errs
}

/// `ValidateCrossVersionObjectReference`: kind and name are URL path segments.
fn scale_target_ref(r: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for key in ["kind", "name"] {
        let v = text(r, key);
        if v.is_empty() {
            errs.push(FieldError::required(path.child(key), ""));
        } else {
            errs.extend(
                names::is_valid_path_segment_name(v)
                    .into_iter()
                    .map(|m| FieldError::invalid(path.child(key), v, m)),
            );
        }
    }
    errs
}

fn metric_field_name(metric_type: &str) -> String {
    let mut chars = metric_type.chars();
    chars
        .next()
        .map(|c| c.to_lowercase().chain(chars).collect())
        .unwrap_or_default()
}

fn validate_metric(m: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let metric_type = text(m, "type");
    if metric_type.is_empty() {
        errs.push(FieldError::required(
            path.child("type"),
            "must specify a metric source type",
        ));
    }
    if !METRIC_TYPES.contains(&metric_type) {
        errs.push(FieldError::not_supported(
            path.child("type"),
            metric_type,
            &METRIC_TYPES,
        ));
        return errs;
    }
    let expected = metric_field_name(metric_type);
    for other in METRIC_TYPES
        .iter()
        .map(|t| metric_field_name(t))
        .filter(|f| *f != expected)
    {
        if field(m, &other).is_some() {
            errs.push(FieldError::forbidden(
                path.child(&other),
                "must populate the given metric source only",
            ));
        }
    }
    let Some(source) = field(m, &expected) else {
        errs.push(FieldError::required(
            path.child(&expected),
            "must populate information for the given metric source",
        ));
        return errs;
    };
    let sp = path.child(&expected);
    if matches!(metric_type, "Resource" | "ContainerResource") && text(source, "name").is_empty() {
        errs.push(FieldError::required(
            sp.child("name"),
            "must specify a resource name",
        ));
    }
    if let Some(target) = field(source, "target") {
        errs.extend(validate_target(target, &sp.child("target")));
    }
    errs
}

fn validate_target(t: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let target_type = text(t, "type");
    if target_type.is_empty() {
        errs.push(FieldError::required(
            path.child("type"),
            "must specify a metric target type",
        ));
    }
    if !matches!(target_type, "Utilization" | "Value" | "AverageValue") {
        errs.push(FieldError::invalid(
            path.child("type"),
            target_type,
            "must be either Utilization, Value, or AverageValue",
        ));
    }
    for key in ["value", "averageValue"] {
        let Some(raw) = field(t, key) else { continue };
        let text = raw
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| raw.to_string());
        if parse_quantity(&text).map_or(true, |q| q.nanos() <= 0) {
            errs.push(FieldError::invalid(
                path.child(key),
                raw.clone(),
                "must be positive",
            ));
        }
    }
    if let Some(u) = int(t, "averageUtilization").filter(|u| *u < 1) {
        errs.push(FieldError::invalid(
            path.child("averageUtilization"),
            u,
            "must be greater than 0",
        ));
    }
    errs
}

pub(crate) fn validate_pdb(obj: &Value) -> ErrorList {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    let (min, max) = (field(spec, "minAvailable"), field(spec, "maxUnavailable"));
    if min.is_some() && max.is_some() {
        errs.push(FieldError::invalid(
            &path,
            spec.clone(),
            "minAvailable and maxUnavailable cannot be both set",
        ));
    }
    for (key, v) in [("minAvailable", min), ("maxUnavailable", max)] {
        errs.extend(int_or_percent(v, &path.child(key)));
    }
    errs.extend(validate_label_selector(
        field(spec, "selector"),
        &path.child("selector"),
    ));
    if let Some(policy) = field(spec, "unhealthyPodEvictionPolicy").and_then(Value::as_str) {
        if policy != "AlwaysAllow" && policy != "IfHealthyBudget" {
            errs.push(FieldError::not_supported(
                path.child("unhealthyPodEvictionPolicy"),
                policy,
                &["AlwaysAllow", "IfHealthyBudget"],
            ));
        }
    }
    errs
}

/// A non-negative count or a percentage of at most 100%.
fn int_or_percent(v: Option<&Value>, path: &Path) -> ErrorList {
    let rendered = || super::render::int_or_string(v);
    match v {
        Some(Value::String(s)) => {
            let msgs = names::is_valid_percent(s);
            if !msgs.is_empty() {
                return msgs
                    .into_iter()
                    .map(|m| super::render::invalid_rendered(path, rendered(), &m))
                    .collect();
            }
            let pct: i64 = s.trim_end_matches('%').parse().unwrap_or(0);
            if pct > 100 {
                return vec![super::render::invalid_rendered(
                    path,
                    rendered(),
                    "must not be greater than 100%",
                )];
            }
            ErrorList::new()
        }
        Some(n) if n.as_i64().is_some_and(|n| n < 0) => {
            vec![FieldError::invalid(path, n.clone(), super::meta::NEGATIVE)]
        }
        _ => ErrorList::new(),
    }
}
