//! Printers of the `batch` group: jobs (STATUS, COMPLETIONS, DURATION) and cron jobs.

use super::cell::{self, arr, containers, i, s};
use super::core::{CONTAINERS, IMAGES};
use super::duration::{human_duration, parse_time};
use super::{boolean, col, docs, int, Col, Ctx, Printer, AGE, NAME};
use serde_json::Value;

pub(crate) fn printer(kind: &str) -> Option<Printer> {
    match kind {
        "Job" => Some(Printer {
            columns: JOB,
            cells: job,
        }),
        "CronJob" => Some(Printer {
            columns: CRON_JOB,
            cells: cron_job,
        }),
        _ => None,
    }
}

const JOB: &[Col] = &[
    NAME,
    col("Status", "Status of the job."),
    col("Completions", docs::JOB_SUCCEEDED),
    col("Duration", "Time required to complete the job."),
    AGE,
    col("Containers", CONTAINERS).wide(),
    col("Images", IMAGES).wide(),
    col("Selector", docs::JOB_SELECTOR).wide(),
];

/// Upstream's `hasJobCondition`: the first condition of the type decides.
fn has_condition(job: &Value, type_: &str) -> bool {
    arr(job, "/status/conditions")
        .iter()
        .find(|c| s(c, "/type") == type_)
        .is_some_and(|c| s(c, "/status") == "True")
}

fn job_status(job: &Value) -> &'static str {
    if has_condition(job, "Complete") {
        "Complete"
    } else if has_condition(job, "Failed") {
        "Failed"
    } else if job
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null())
    {
        "Terminating"
    } else if has_condition(job, "Suspended") {
        "Suspended"
    } else if has_condition(job, "FailureTarget") {
        "FailureTarget"
    } else {
        "Running"
    }
}

fn completions(job: &Value) -> String {
    let succeeded = i(job, "/status/succeeded");
    if let Some(completions) = cell::opt_i(job, "/spec/completions") {
        return format!("{succeeded}/{completions}");
    }
    match cell::opt_i(job, "/spec/parallelism").unwrap_or(0) {
        p if p > 1 => format!("{succeeded}/1 of {p}"),
        _ => format!("{succeeded}/1"),
    }
}

fn job_duration(job: &Value, ctx: &Ctx) -> String {
    let Some(start) = parse_time(s(job, "/status/startTime")) else {
        return String::new();
    };
    match parse_time(s(job, "/status/completionTime")) {
        Some(done) => human_duration(done - start),
        None => human_duration(ctx.now - start),
    }
}

fn job(job: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = containers(job, "/spec/template/spec/containers");
    vec![
        s(job, "/metadata/name").into(),
        job_status(job).into(),
        completions(job).into(),
        job_duration(job, ctx).into(),
        ctx.age(job),
        names,
        images,
        cell::selector(job, "/spec/selector"),
    ]
}

const CRON_JOB: &[Col] = &[
    NAME,
    col("Schedule", docs::CRON_SCHEDULE),
    col("Timezone", docs::CRON_TIME_ZONE),
    boolean("Suspend", docs::CRON_SUSPEND),
    int("Active", docs::CRON_ACTIVE),
    col("Last Schedule", docs::CRON_LAST_SCHEDULE),
    AGE,
    col("Containers", CONTAINERS).wide(),
    col("Images", IMAGES).wide(),
    col("Selector", docs::JOB_SELECTOR).wide(),
];

/// Upstream's `printBoolPtr`: `True`, `False` or `<unset>`.
pub(crate) fn bool_ptr(v: Option<bool>) -> &'static str {
    match v {
        Some(true) => "True",
        Some(false) => "False",
        None => "<unset>",
    }
}

fn cron_job(cj: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = containers(cj, "/spec/jobTemplate/spec/template/spec/containers");
    let last = match s(cj, "/status/lastScheduleTime") {
        "" => "<none>".to_string(),
        t => ctx.since(t),
    };
    let time_zone = cj
        .pointer("/spec/timeZone")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    vec![
        s(cj, "/metadata/name").into(),
        s(cj, "/spec/schedule").into(),
        time_zone.into(),
        bool_ptr(cell::opt_b(cj, "/spec/suspend")).into(),
        arr(cj, "/status/active").len().into(),
        last.into(),
        ctx.age(cj),
        names,
        images,
        cell::selector(cj, "/spec/jobTemplate/spec/selector"),
    ]
}
