//! Workload controllers: Deployment, ReplicaSet, StatefulSet, DaemonSet and
//! ReplicationController (`pkg/apis/apps/validation`).

use super::container::one_of;
use super::meta::{validate_annotations, validate_labels, NEGATIVE};
use super::names;
use super::pod::validate_pod_template;
use super::render::{int_or_string, invalid_rendered, label_selector};
use super::selector::{as_selection, template_mismatch, validate_workload_selector};
use super::{field, int, nonnegative, semantic, text};
use crate::field::{ErrorList, FieldError, Path};
use serde_json::Value;

fn spec_of(obj: &Value) -> &Value {
    obj.get("spec").unwrap_or(&Value::Null)
}

pub(crate) fn validate_deployment(obj: &Value) -> ErrorList {
    let spec = spec_of(obj);
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    errs.extend(nonnegative(spec, "replicas", &path));
    errs.extend(replica_set_like(spec, &path, "ReplicaSet"));
    errs.extend(validate_deployment_strategy(spec, &path.child("strategy")));
    for key in [
        "minReadySeconds",
        "revisionHistoryLimit",
        "progressDeadlineSeconds",
    ] {
        errs.extend(nonnegative(spec, key, &path));
    }
    if let Some(pds) = int(spec, "progressDeadlineSeconds") {
        if pds <= int(spec, "minReadySeconds").unwrap_or(0) {
            errs.push(FieldError::invalid(
                path.child("progressDeadlineSeconds"),
                pds,
                "must be greater than minReadySeconds",
            ));
        }
    }
    errs
}

pub(crate) fn validate_replica_set(obj: &Value) -> ErrorList {
    let spec = spec_of(obj);
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    errs.extend(nonnegative(spec, "replicas", &path));
    errs.extend(nonnegative(spec, "minReadySeconds", &path));
    errs.extend(replica_set_like(spec, &path, "ReplicaSet"));
    errs
}

/// Selector and template rules shared by Deployment and ReplicaSet
/// (`ValidatePodTemplateSpecForReplicaSet`). `owner` names the kind in upstream's message.
fn replica_set_like(spec: &Value, path: &Path, owner: &str) -> ErrorList {
    // Upstream says "deployment" here for ReplicaSets too.
    let mut errs = validate_workload_selector(spec, path, "deployment", true);
    let sel_path = path.child("selector");
    let selection = match as_selection(field(spec, "selector")) {
        Ok(s) => s,
        Err(_) => {
            errs.push(invalid_rendered(
                &sel_path,
                label_selector(field(spec, "selector")),
                "invalid label selector",
            ));
            return errs;
        }
    };
    let tpl_path = path.child("template");
    errs.extend(template_mismatch(
        &selection,
        field(spec, "template"),
        &tpl_path,
    ));
    errs.extend(validate_pod_template(field(spec, "template"), &tpl_path));
    errs.extend(always_restarting_template(spec, &tpl_path, owner));
    errs
}

/// Controllers that keep pods running need `restartPolicy: Always` and no deadline.
fn always_restarting_template(spec: &Value, tpl_path: &Path, owner: &str) -> ErrorList {
    let mut errs = ErrorList::new();
    let pod_spec = spec
        .get("template")
        .and_then(|t| t.get("spec"))
        .unwrap_or(&Value::Null);
    let spec_path = tpl_path.child("spec");
    let policy = text(pod_spec, "restartPolicy");
    if !policy.is_empty() && policy != "Always" {
        errs.push(FieldError::not_supported(
            spec_path.child("restartPolicy"),
            policy,
            &["Always"],
        ));
    }
    if field(pod_spec, "activeDeadlineSeconds").is_some() {
        errs.push(FieldError::forbidden(
            spec_path.child("activeDeadlineSeconds"),
            format!("activeDeadlineSeconds in {owner} is not Supported"),
        ));
    }
    errs
}

fn validate_deployment_strategy(spec: &Value, path: &Path) -> ErrorList {
    let Some(strategy) = field(spec, "strategy") else {
        return ErrorList::new();
    };
    let rolling = field(strategy, "rollingUpdate");
    match text(strategy, "type") {
        "Recreate" => rolling
            .map(|_| {
                FieldError::forbidden(
                    path.child("rollingUpdate"),
                    "may not be specified when strategy `type` is 'Recreate'",
                )
            })
            .into_iter()
            .collect(),
        "RollingUpdate" | "" => rolling
            .map(|r| rolling_update_deployment(r, &path.child("rollingUpdate")))
            .unwrap_or_default(),
        _ => vec![FieldError::not_supported(
            path,
            strategy.clone(),
            &["Recreate", "RollingUpdate"],
        )],
    }
}

fn rolling_update_deployment(r: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let (unavailable, surge) = (field(r, "maxUnavailable"), field(r, "maxSurge"));
    errs.extend(positive_int_or_percent(
        unavailable,
        &path.child("maxUnavailable"),
    ));
    errs.extend(positive_int_or_percent(surge, &path.child("maxSurge")));
    // Absent values are defaulted to 25%, so only explicit zeros count.
    if unavailable.is_some_and(|v| int_or_percent_value(v) == 0)
        && surge.is_some_and(|v| int_or_percent_value(v) == 0)
    {
        errs.push(invalid_rendered(
            path.child("maxUnavailable"),
            int_or_string(unavailable),
            "may not be 0 when `maxSurge` is 0",
        ));
    }
    errs.extend(not_more_than_100_percent(
        unavailable,
        &path.child("maxUnavailable"),
    ));
    errs
}

/// `ValidatePositiveIntOrPercent`.
fn positive_int_or_percent(v: Option<&Value>, path: &Path) -> ErrorList {
    match v {
        Some(Value::String(s)) => names::is_valid_percent(s)
            .into_iter()
            .map(|m| invalid_rendered(path, int_or_string(v), &m))
            .collect(),
        Some(n) if n.as_i64().is_some_and(|n| n < 0) => {
            vec![FieldError::invalid(path, n.clone(), NEGATIVE)]
        }
        _ => ErrorList::new(),
    }
}

fn percent_value(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    if !names::is_valid_percent(s).is_empty() {
        return None;
    }
    s.trim_end_matches('%').parse().ok()
}

fn int_or_percent_value(v: &Value) -> i64 {
    percent_value(v).or_else(|| v.as_i64()).unwrap_or(0)
}

fn not_more_than_100_percent(v: Option<&Value>, path: &Path) -> Option<FieldError> {
    let pct = percent_value(v?)?;
    (pct > 100).then(|| invalid_rendered(path, int_or_string(v), "must not be greater than 100%"))
}

pub(crate) fn validate_stateful_set(obj: &Value) -> ErrorList {
    let spec = spec_of(obj);
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    let policy = text(spec, "podManagementPolicy");
    if !policy.is_empty() && policy != "OrderedReady" && policy != "Parallel" {
        errs.push(FieldError::invalid(
            path.child("podManagementPolicy"),
            policy,
            "must be 'OrderedReady' or 'Parallel'",
        ));
    }
    errs.extend(stateful_set_update_strategy(
        spec,
        &path.child("updateStrategy"),
    ));
    if let Some(retention) = field(spec, "persistentVolumeClaimRetentionPolicy") {
        let p = path.child("persistentVolumeClaimRetentionPolicy");
        for key in ["whenDeleted", "whenScaled"] {
            errs.extend(one_of(retention, key, &["Retain", "Delete"], &p));
        }
    }
    errs.extend(nonnegative(spec, "replicas", &path));
    errs.extend(nonnegative(spec, "minReadySeconds", &path));
    if let Some(start) = field(spec, "ordinals")
        .and_then(|o| int(o, "start"))
        .filter(|s| *s < 0)
    {
        errs.push(FieldError::invalid(
            path.child("ordinals.start"),
            start,
            NEGATIVE,
        ));
    }
    errs.extend(validate_workload_selector(spec, &path, "statefulset", true));
    match as_selection(field(spec, "selector")) {
        Err(_) => errs.push(invalid_rendered(
            path.child("selector"),
            label_selector(field(spec, "selector")),
            "",
        )),
        Ok(selection) => {
            // Upstream checks only the template's labels and annotations for StatefulSets.
            let tpl_path = path.child("template");
            let template = field(spec, "template");
            errs.extend(template_mismatch(&selection, template, &tpl_path));
            let meta = template
                .and_then(|t| t.get("metadata"))
                .unwrap_or(&Value::Null);
            errs.extend(validate_labels(
                field(meta, "labels"),
                &tpl_path.child("labels"),
            ));
            errs.extend(validate_annotations(
                field(meta, "annotations"),
                &tpl_path.child("annotations"),
            ));
        }
    }
    errs.extend(always_restarting_template(
        spec,
        &path.child("template"),
        "StatefulSet",
    ));
    errs
}

fn stateful_set_update_strategy(spec: &Value, path: &Path) -> ErrorList {
    let Some(strategy) = field(spec, "updateStrategy") else {
        return ErrorList::new();
    };
    let rolling = field(strategy, "rollingUpdate");
    match text(strategy, "type") {
        "OnDelete" => rolling
            .map(|r| {
                FieldError::invalid(
                    path.child("rollingUpdate"),
                    r.clone(),
                    "only allowed for updateStrategy 'RollingUpdate'",
                )
            })
            .into_iter()
            .collect(),
        "RollingUpdate" | "" => {
            let Some(r) = rolling else {
                return ErrorList::new();
            };
            let p = path.child("rollingUpdate");
            let mut errs: ErrorList = nonnegative(r, "partition", &p).into_iter().collect();
            if let Some(mu) = field(r, "maxUnavailable") {
                let mu_path = p.child("maxUnavailable");
                errs.extend(positive_int_or_percent(Some(mu), &mu_path));
                if int_or_percent_value(mu) == 0 {
                    errs.push(invalid_rendered(
                        &mu_path,
                        int_or_string(Some(mu)),
                        "cannot be 0",
                    ));
                }
                errs.extend(not_more_than_100_percent(Some(mu), &mu_path));
            }
            errs
        }
        _ => vec![FieldError::invalid(
            path,
            strategy.clone(),
            "must be 'RollingUpdate' or 'OnDelete'",
        )],
    }
}

/// StatefulSet updates may only touch a few spec fields.
pub(crate) fn validate_stateful_set_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_stateful_set(new);
    const MUTABLE: [&str; 6] = [
        "replicas",
        "template",
        "updateStrategy",
        "minReadySeconds",
        "ordinals",
        "persistentVolumeClaimRetentionPolicy",
    ];
    let strip = |spec: &Value| {
        let mut s = semantic(spec);
        if let Some(m) = s.as_object_mut() {
            MUTABLE.iter().for_each(|k| {
                m.remove(*k);
            });
        }
        s
    };
    if strip(spec_of(new)) != strip(spec_of(old)) {
        errs.push(FieldError::forbidden(
            "spec",
            "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden",
        ));
    }
    errs
}

pub(crate) fn validate_daemon_set(obj: &Value) -> ErrorList {
    let spec = spec_of(obj);
    let path = Path::new("spec");
    let mut errs = validate_workload_selector(spec, &path, "daemonset", false);
    // Even an absent selector (which matches nothing) reports the mismatch here.
    if let Ok(selection) = as_selection(field(spec, "selector")) {
        errs.extend(template_mismatch(
            &selection,
            field(spec, "template"),
            &path.child("template"),
        ));
    }
    errs.extend(validate_pod_template(
        field(spec, "template"),
        &path.child("template"),
    ));
    errs.extend(always_restarting_template(
        spec,
        &path.child("template"),
        "DaemonSet",
    ));
    for key in [
        "minReadySeconds",
        "templateGeneration",
        "revisionHistoryLimit",
    ] {
        errs.extend(nonnegative(spec, key, &path));
    }
    errs.extend(daemon_set_update_strategy(
        spec,
        &path.child("updateStrategy"),
    ));
    errs
}

fn daemon_set_update_strategy(spec: &Value, path: &Path) -> ErrorList {
    let Some(strategy) = field(spec, "updateStrategy") else {
        return ErrorList::new();
    };
    match text(strategy, "type") {
        "OnDelete" => ErrorList::new(),
        "RollingUpdate" | "" => {
            let Some(r) = field(strategy, "rollingUpdate") else {
                return ErrorList::new();
            };
            let p = path.child("rollingUpdate");
            let (unavailable, surge) = (field(r, "maxUnavailable"), field(r, "maxSurge"));
            let mut errs = positive_int_or_percent(unavailable, &p.child("maxUnavailable"));
            errs.extend(positive_int_or_percent(surge, &p.child("maxSurge")));
            errs.extend(not_more_than_100_percent(
                unavailable,
                &p.child("maxUnavailable"),
            ));
            errs.extend(not_more_than_100_percent(surge, &p.child("maxSurge")));
            // Defaults: maxUnavailable 1, maxSurge 0.
            let has_unavailable = unavailable.map_or(1, int_or_percent_value) != 0;
            let has_surge = surge.map_or(0, int_or_percent_value) != 0;
            if has_unavailable && has_surge {
                errs.push(invalid_rendered(
                    p.child("maxSurge"),
                    int_or_string(surge),
                    "may not be set when maxUnavailable is non-zero",
                ));
            } else if !has_unavailable && !has_surge {
                errs.push(FieldError::required(
                    p.child("maxUnavailable"),
                    "cannot be 0 when maxSurge is 0",
                ));
            }
            errs
        }
        _ => vec![FieldError::not_supported(
            path,
            strategy.clone(),
            &["RollingUpdate", "OnDelete"],
        )],
    }
}

/// In apps/v1 the selector of Deployments, ReplicaSets and DaemonSets cannot change.
pub(crate) fn selector_immutable(new: &Value, old: &Value) -> Option<FieldError> {
    let (n, o) = (
        field(spec_of(new), "selector"),
        field(spec_of(old), "selector"),
    );
    if n.map(semantic) == o.map(semantic) {
        return None;
    }
    Some(invalid_rendered(
        "spec.selector",
        label_selector(n),
        super::meta::IMMUTABLE,
    ))
}

/// ReplicationController: a plain label map as selector.
pub(crate) fn validate_replication_controller(obj: &Value) -> ErrorList {
    let spec = spec_of(obj);
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    errs.extend(nonnegative(spec, "minReadySeconds", &path));
    let selector = field(spec, "selector");
    if selector
        .and_then(Value::as_object)
        .is_none_or(|m| m.is_empty())
    {
        errs.push(FieldError::required(path.child("selector"), ""));
    }
    errs.extend(nonnegative(spec, "replicas", &path));
    let tpl_path = path.child("template");
    let Some(template) = field(spec, "template") else {
        errs.push(FieldError::required(&tpl_path, ""));
        return errs;
    };
    let labels = template.get("metadata").and_then(|m| m.get("labels"));
    let matches = selector.and_then(Value::as_object).is_none_or(|sel| {
        sel.iter()
            .all(|(k, v)| labels.and_then(|l| l.get(k)) == Some(v))
    });
    if !matches {
        errs.push(invalid_rendered(
            tpl_path.child("metadata").child("labels"),
            super::render::string_map(labels),
            "`selector` does not match template `labels`",
        ));
    }
    errs.extend(validate_pod_template(Some(template), &tpl_path));
    errs.extend(always_restarting_template(
        spec,
        &tpl_path,
        "ReplicationController",
    ));
    errs
}
