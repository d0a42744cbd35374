//! batch/v1 defaults: Job and CronJob, and the selector the Job registry generates on create.

use super::{
    child, child_or_new, is_empty, is_unset, items, set_unset, set_zero, template_spec, Obj,
};
use serde_json::Value;

/// The label selecting a Job's Pods, and its pre-1.27 spelling still written for old clients.
const CONTROLLER_UID_LABELS: [&str; 2] = ["controller-uid", "batch.kubernetes.io/controller-uid"];
const JOB_NAME_LABELS: [&str; 2] = ["job-name", "batch.kubernetes.io/job-name"];

pub(super) fn job(obj: &mut Obj) {
    let template_labels = obj
        .get("spec")
        .and_then(|s| s.get("template"))
        .and_then(|t| t.get("metadata"))
        .and_then(|m| m.get("labels"))
        .filter(|l| !is_empty(Some(l)))
        .cloned();
    if let Some(labels) = template_labels {
        if let Some(metadata) = child_or_new(obj, "metadata") {
            if is_empty(metadata.get("labels")) {
                metadata.insert("labels".into(), labels);
            }
        }
    }
    let Some(spec) = child_or_new(obj, "spec") else {
        return;
    };
    // A Job with neither set is one pod run to completion once.
    if is_unset(spec.get("completions")) && is_unset(spec.get("parallelism")) {
        spec.insert("completions".into(), 1.into());
    }
    set_unset(spec, "parallelism", 1);
    // With a per-index limit the global one would only get in the way: upstream makes it
    // effectively infinite.
    let backoff_limit = if is_unset(spec.get("backoffLimitPerIndex")) {
        6
    } else {
        i32::MAX
    };
    set_unset(spec, "backoffLimit", backoff_limit);
    set_unset(spec, "completionMode", "NonIndexed");
    set_unset(spec, "suspend", false);
    let replacement = if is_unset(spec.get("podFailurePolicy")) {
        "TerminatingOrFailed"
    } else {
        "Failed"
    };
    set_unset(spec, "podReplacementPolicy", replacement);
    set_unset(spec, "manualSelector", false);
    job_spec(spec);
}

/// What a Job's spec and a CronJob's job template share.
fn job_spec(spec: &mut Obj) {
    if let Some(policy) = child(spec, "podFailurePolicy") {
        for pattern in items(policy, "rules").flat_map(|r| items(r, "onPodConditions")) {
            set_zero(pattern, "status", "True");
        }
    }
    template_spec(spec);
}

pub(super) fn cron_job(obj: &mut Obj) {
    let Some(spec) = child_or_new(obj, "spec") else {
        return;
    };
    set_zero(spec, "concurrencyPolicy", "Allow");
    set_unset(spec, "suspend", false);
    set_unset(spec, "successfulJobsHistoryLimit", 3);
    set_unset(spec, "failedJobsHistoryLimit", 1);
    // The template's JobSpec gets no Job defaults upstream: only its pod template's.
    if let Some(job) = child_or_new(spec, "jobTemplate").and_then(|t| child_or_new(t, "spec")) {
        job_spec(job);
    }
}

/// What the Job registry does on create unless `spec.manualSelector` is true: labels the pod
/// template with the Job's name and `uid`, and selects the Pods by that uid. Labels and a
/// selector entry the user wrote are kept (validation rejects a conflicting one). Run it
/// after `apply_defaults`, which copies the template's labels onto the Job first.
pub fn job_selector_on_create(obj: &mut Value, uid: &str) {
    let Some(obj) = obj.as_object_mut() else {
        return;
    };
    let name = obj
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let Some(spec) = child_or_new(obj, "spec") else {
        return;
    };
    if spec.get("manualSelector").and_then(Value::as_bool) == Some(true) {
        return;
    }
    let labels = child_or_new(spec, "template")
        .and_then(|t| child_or_new(t, "metadata"))
        .and_then(|m| child_or_new(m, "labels"));
    if let Some(labels) = labels {
        for key in JOB_NAME_LABELS {
            labels.entry(key).or_insert_with(|| name.clone().into());
        }
        for key in CONTROLLER_UID_LABELS {
            labels.entry(key).or_insert_with(|| uid.into());
        }
    }
    let match_labels = child_or_new(spec, "selector").and_then(|s| child_or_new(s, "matchLabels"));
    if let Some(match_labels) = match_labels {
        match_labels
            .entry(CONTROLLER_UID_LABELS[1])
            .or_insert_with(|| uid.into());
    }
}
