//! Jobs and CronJobs (`pkg/apis/batch/validation`).

use super::container::one_of;
use super::meta::IMMUTABLE;
use super::pod::validate_pod_template;
use super::render::{invalid_rendered, label_selector};
use super::selector::{as_selection, template_mismatch, validate_label_selector};
use super::{field, flag, int, nonnegative, semantic, text};
use crate::field::{ErrorList, FieldError, Path};
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

const MAX_PARALLELISM_FOR_INDEXED_JOB: i64 = 100_000;
/// CronJob names leave room for the 11-character suffix of the Jobs they create.
const MAX_CRONJOB_NAME_LENGTH: usize = 52;

static TIME_ZONE_PART: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[A-Za-z.\-_0-9+]{1,14}$").expect("the time zone regex is valid")
});

fn spec_of(obj: &Value) -> &Value {
    obj.get("spec").unwrap_or(&Value::Null)
}

pub(crate) fn validate_job(obj: &Value) -> ErrorList {
    let spec = spec_of(obj);
    let path = Path::new("spec");
    let mut errs = validate_job_spec(spec, &path);
    let selector = field(spec, "selector");
    match selector {
        // Without manualSelector the server generates the selector and template labels.
        None if flag(spec, "manualSelector") => {
            errs.push(FieldError::required(path.child("selector"), ""))
        }
        None => {}
        Some(sel) => {
            errs.extend(validate_label_selector(Some(sel), &path.child("selector")));
            if let Ok(selection) = as_selection(Some(sel)) {
                errs.extend(template_mismatch(
                    &selection,
                    field(spec, "template"),
                    &path.child("template"),
                ));
            }
        }
    }
    errs
}

/// `validateJobSpec`, shared by Jobs and CronJob job templates.
fn validate_job_spec(spec: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
        "backoffLimitPerIndex",
        "maxFailedIndexes",
    ] {
        errs.extend(nonnegative(spec, key, path));
    }
    errs.extend(one_of(
        spec,
        "completionMode",
        &["NonIndexed", "Indexed"],
        path,
    ));
    if text(spec, "completionMode") == "Indexed" {
        if field(spec, "completions").is_none() {
            errs.push(FieldError::required(
                path.child("completions"),
                "when completion mode is Indexed",
            ));
        }
        if let Some(p) = int(spec, "parallelism").filter(|p| *p > MAX_PARALLELISM_FOR_INDEXED_JOB) {
            errs.push(FieldError::invalid(
                path.child("parallelism"),
                p,
                format!("must be less than or equal to {MAX_PARALLELISM_FOR_INDEXED_JOB} when completion mode is Indexed"),
            ));
        }
    } else if field(spec, "backoffLimitPerIndex").is_some() {
        errs.push(FieldError::forbidden(
            path.child("backoffLimitPerIndex"),
            "requires indexed completion mode",
        ));
    }
    let tpl_path = path.child("template");
    errs.extend(validate_pod_template(field(spec, "template"), &tpl_path));
    // An unset policy is defaulted to Always for any pod template, which Jobs reject.
    let pod_spec = spec
        .get("template")
        .and_then(|t| t.get("spec"))
        .unwrap_or(&Value::Null);
    let policy = field(pod_spec, "restartPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Always");
    if policy != "OnFailure" && policy != "Never" {
        errs.push(FieldError::not_supported(
            tpl_path.child("spec").child("restartPolicy"),
            policy,
            &["OnFailure", "Never"],
        ));
    }
    errs
}

pub(crate) fn validate_job_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_job(new);
    let (spec, old_spec) = (spec_of(new), spec_of(old));
    let path = Path::new("spec");
    let indexed = text(spec, "completionMode") == "Indexed";
    let completions_changed = field(spec, "completions") != field(old_spec, "completions");
    if completions_changed && !indexed {
        errs.extend(super::meta::immutable(
            field(spec, "completions"),
            field(old_spec, "completions"),
            &path.child("completions"),
        ));
    } else if completions_changed && field(spec, "completions") != field(spec, "parallelism") {
        // Elastic Indexed Jobs scale completions and parallelism together.
        errs.push(FieldError::invalid(
            path.child("completions"),
            field(spec, "completions").cloned().unwrap_or(Value::Null),
            "can only be modified in tandem with spec.parallelism",
        ));
    }
    if field(spec, "selector").map(semantic) != field(old_spec, "selector").map(semantic) {
        errs.push(invalid_rendered(
            path.child("selector"),
            label_selector(field(spec, "selector")),
            IMMUTABLE,
        ));
    }
    errs.extend(template_update(new, old, &path));
    for key in [
        "completionMode",
        "podFailurePolicy",
        "backoffLimitPerIndex",
        "managedBy",
        "successPolicy",
    ] {
        let (n, o) = (field(spec, key), field(old_spec, key));
        if n.map(semantic) != o.map(semantic) {
            errs.extend(super::meta::immutable(n, o, &path.child(key)));
        }
    }
    errs
}

/// A Job's template is immutable, except that a suspended Job that never started may
/// change scheduling directives (so queueing systems can place it).
fn template_update(new: &Value, old: &Value, path: &Path) -> Option<FieldError> {
    let (spec, old_spec) = (spec_of(new), spec_of(old));
    let never_started = old
        .get("status")
        .and_then(|s| field(s, "startTime"))
        .is_none();
    let mutable_scheduling = flag(spec, "suspend") && never_started;
    let normalize = |tpl: Option<&Value>| {
        let mut t = semantic(tpl.unwrap_or(&Value::Null));
        if mutable_scheduling {
            if let Some(m) = t.as_object_mut() {
                m.remove("metadata");
            }
            if let Some(s) = t.get_mut("spec").and_then(Value::as_object_mut) {
                for key in ["nodeSelector", "tolerations", "affinity", "schedulingGates"] {
                    s.remove(key);
                }
            }
        }
        t
    };
    let (n, o) = (field(spec, "template"), field(old_spec, "template"));
    (normalize(n) != normalize(o)).then(|| {
        FieldError::invalid(
            path.child("template"),
            n.cloned().unwrap_or(Value::Null),
            IMMUTABLE,
        )
    })
}

pub(crate) fn validate_cron_job(obj: &Value, old: Option<&Value>) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = crate::meta::name(obj).unwrap_or("");
    if old.is_none() && name.len() > MAX_CRONJOB_NAME_LENGTH {
        errs.push(FieldError::invalid(
            "metadata.name",
            name,
            format!("must be no more than {MAX_CRONJOB_NAME_LENGTH} characters"),
        ));
    }
    let spec = spec_of(obj);
    let old_spec = old.map(spec_of);
    let path = Path::new("spec");
    let schedule = text(spec, "schedule");
    if schedule.is_empty() {
        errs.push(FieldError::required(path.child("schedule"), ""));
    } else {
        let tz_allowed = old_spec.is_some_and(|o| text(o, "schedule").contains("TZ"));
        errs.extend(schedule_errors(
            schedule,
            tz_allowed,
            field(spec, "timeZone").is_some(),
            &path.child("schedule"),
        ));
    }
    errs.extend(nonnegative(spec, "startingDeadlineSeconds", &path));
    if old_spec.is_none_or(|o| field(o, "timeZone") != field(spec, "timeZone")) {
        errs.extend(time_zone(field(spec, "timeZone"), &path.child("timeZone")));
    }
    errs.extend(one_of(
        spec,
        "concurrencyPolicy",
        &["Allow", "Forbid", "Replace"],
        &path,
    ));
    errs.extend(job_template(
        field(spec, "jobTemplate").unwrap_or(&Value::Null),
        &path.child("jobTemplate"),
    ));
    for key in ["successfulJobsHistoryLimit", "failedJobsHistoryLimit"] {
        errs.extend(nonnegative(spec, key, &path));
    }
    errs
}

fn schedule_errors(
    schedule: &str,
    tz_allowed: bool,
    has_time_zone: bool,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Err(msg) = super::cron::parse_standard(schedule) {
        errs.push(FieldError::invalid(path, schedule, msg));
    }
    if tz_allowed && schedule.contains("TZ") && has_time_zone {
        errs.push(FieldError::invalid(
            path,
            schedule,
            "cannot use both timeZone field and TZ or CRON_TZ in schedule",
        ));
    } else if !tz_allowed && schedule.contains("TZ") {
        errs.push(FieldError::invalid(
            path,
            schedule,
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        ));
    }
    errs
}

/// An IANA zone name by its shape; the zone database itself is not consulted here.
fn time_zone(tz: Option<&Value>, path: &Path) -> Option<FieldError> {
    let tz = tz?.as_str()?;
    if tz.is_empty() {
        return Some(FieldError::invalid(
            path,
            tz,
            "timeZone must be nil or non-empty string",
        ));
    }
    let malformed = tz
        .split('/')
        .any(|p| p == "." || p == ".." || p.starts_with('-') || !TIME_ZONE_PART.is_match(p));
    if malformed {
        return Some(FieldError::invalid(
            path,
            tz,
            format!("unknown time zone {tz}"),
        ));
    }
    tz.eq_ignore_ascii_case("Local").then(|| {
        FieldError::invalid(
            path,
            tz,
            "timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones",
        )
    })
}

/// `ValidateJobTemplateSpec`: a job spec whose selector the controller will generate.
fn job_template(tpl: &Value, path: &Path) -> ErrorList {
    let spec = tpl.get("spec").unwrap_or(&Value::Null);
    let spec_path = path.child("spec");
    let mut errs = validate_job_spec(spec, &spec_path);
    if let Some(sel) = field(spec, "selector") {
        errs.push(invalid_rendered(
            spec_path.child("selector"),
            label_selector(Some(sel)),
            "`selector` will be auto-generated",
        ));
    }
    if flag(spec, "manualSelector") {
        errs.push(FieldError::not_supported(
            spec_path.child("manualSelector"),
            true,
            &["nil", "false"],
        ));
    }
    errs
}
