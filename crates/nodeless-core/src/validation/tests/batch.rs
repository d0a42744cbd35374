use super::{assert_clean, assert_has, pod_spec};
use crate::field::ErrorType;
use crate::validation::{validate_create, validate_update};
use serde_json::{json, Value};

fn job() -> Value {
    let mut spec = pod_spec();
    spec["restartPolicy"] = json!("Never");
    json!({
        "metadata": {"name": "pi", "namespace": "default", "uid": "u1"},
        "spec": {
            "backoffLimit": 6, "completions": 1, "parallelism": 1,
            "selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "u1"}},
            "template": {"metadata": {"labels": {"batch.kubernetes.io/controller-uid": "u1", "job-name": "pi"}}, "spec": spec}
        }
    })
}

fn cron_job() -> Value {
    let mut spec = pod_spec();
    spec["restartPolicy"] = json!("OnFailure");
    json!({
        "metadata": {"name": "nightly", "namespace": "default"},
        "spec": {
            "schedule": "0 3 * * *", "concurrencyPolicy": "Allow",
            "jobTemplate": {"spec": {"template": {"spec": spec}}}
        }
    })
}

#[test]
fn a_valid_job_and_cron_job_pass() {
    assert_clean(&validate_create("batch", "Job", &job(), true));
    assert_clean(&validate_create("batch", "CronJob", &cron_job(), true));
}

#[test]
fn job_counts_are_non_negative_and_restart_policy_is_not_always() {
    let mut j = job();
    j["spec"]["parallelism"] = json!(-1);
    j["spec"]["backoffLimit"] = json!(-1);
    j["spec"]["template"]["spec"]["restartPolicy"] = json!("Always");
    let errs = validate_create("batch", "Job", &j, true);
    assert_has(&errs, "spec.parallelism", ErrorType::Invalid);
    assert_has(&errs, "spec.backoffLimit", ErrorType::Invalid);
    let policy = errs
        .iter()
        .find(|e| e.field == "spec.template.spec.restartPolicy")
        .expect("restart policy");
    assert_eq!(
        policy.body(),
        "Unsupported value: \"Always\": supported values: \"OnFailure\", \"Never\""
    );
}

#[test]
fn indexed_jobs_need_completions() {
    let mut j = job();
    j["spec"]["completionMode"] = json!("Indexed");
    j["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("completions");
    let errs = validate_create("batch", "Job", &j, true);
    assert_eq!(
        errs[0].to_string(),
        "spec.completions: Required value: when completion mode is Indexed"
    );
    j["spec"]["completionMode"] = json!("Sharded");
    assert_has(
        &validate_create("batch", "Job", &j, true),
        "spec.completionMode",
        ErrorType::NotSupported,
    );
}

#[test]
fn job_selector_and_template_are_immutable() {
    let old = job();
    let mut new = job();
    new["spec"]["template"]["spec"]["containers"][0]["image"] = json!("perl:5.40");
    let errs = validate_update("batch", "Job", &new, &old, true);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_has(&errs, "spec.template", ErrorType::Invalid);
    assert!(errs[0].detail.ends_with("field is immutable"));
    let mut new = job();
    new["spec"]["selector"]["matchLabels"]["extra"] = json!("x");
    new["spec"]["template"]["metadata"]["labels"]["extra"] = json!("x");
    assert_has(
        &validate_update("batch", "Job", &new, &old, true),
        "spec.selector",
        ErrorType::Invalid,
    );
}

#[test]
fn suspended_jobs_that_never_ran_may_change_scheduling() {
    let mut old = job();
    old["spec"]["suspend"] = json!(true);
    let mut new = old.clone();
    new["spec"]["template"]["spec"]["nodeSelector"] = json!({"zone": "a"});
    assert_clean(&validate_update("batch", "Job", &new, &old, true));
}

#[test]
fn cron_schedules_are_parsed_with_upstream_messages() {
    let mut c = cron_job();
    c["spec"]["schedule"] = json!("61 * * * *");
    let errs = validate_create("batch", "CronJob", &c, true);
    assert_eq!(
        errs[0].to_string(),
        "spec.schedule: Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61"
    );
    c["spec"]["schedule"] = json!("@daily");
    assert_clean(&validate_create("batch", "CronJob", &c, true));
    c["spec"]["schedule"] = json!("");
    assert_has(
        &validate_create("batch", "CronJob", &c, true),
        "spec.schedule",
        ErrorType::Required,
    );
    c["spec"]["schedule"] = json!("CRON_TZ=UTC 0 * * * *");
    assert_has(
        &validate_create("batch", "CronJob", &c, true),
        "spec.schedule",
        ErrorType::Invalid,
    );
}

#[test]
fn cron_job_time_zone_policy_name_and_template_are_checked() {
    let mut c = cron_job();
    c["metadata"]["name"] = json!("a".repeat(53));
    c["spec"]["timeZone"] = json!("Not a zone");
    c["spec"]["concurrencyPolicy"] = json!("Sometimes");
    c["spec"]["jobTemplate"]["spec"]["selector"] = json!({"matchLabels": {"a": "b"}});
    let errs = validate_create("batch", "CronJob", &c, true);
    let name = errs
        .iter()
        .find(|e| e.field == "metadata.name")
        .expect("name too long");
    assert!(name.detail.ends_with("must be no more than 52 characters"));
    assert_has(&errs, "spec.timeZone", ErrorType::Invalid);
    assert_has(&errs, "spec.concurrencyPolicy", ErrorType::NotSupported);
    assert_has(&errs, "spec.jobTemplate.spec.selector", ErrorType::Invalid);
    c["spec"]["timeZone"] = json!("Europe/Paris");
    c["metadata"]["name"] = json!("nightly");
    c["spec"]["concurrencyPolicy"] = json!("Forbid");
    c["spec"]["jobTemplate"]["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("selector");
    assert_clean(&validate_create("batch", "CronJob", &c, true));
}
