//! What a Job should do next, decided from its spec, its counts and its Pods at a given
//! instant (no I/O, so every rule is tested with a fixed clock).

use std::collections::BTreeSet;
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::{Job, JobCondition, JobSpec};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::tracking::{completion_index, Counts};

/// Upstream's pod failure back-off: 10 s doubling per failure, at most 6 minutes.
const BACKOFF_BASE: Duration = Duration::from_secs(10);
const BACKOFF_MAX: Duration = Duration::from_secs(360);

/// The parts of a JobSpec the controller acts on, with the API's defaults filled in.
#[derive(Debug, Clone)]
pub struct Shape {
    pub completions: Option<i32>,
    pub parallelism: i32,
    pub backoff_limit: i32,
    pub indexed: bool,
    pub suspend: bool,
    pub active_deadline_seconds: Option<i64>,
}

impl Shape {
    pub fn of(spec: &JobSpec) -> Shape {
        Shape {
            completions: spec.completions,
            parallelism: spec.parallelism.unwrap_or(1).max(0),
            backoff_limit: spec.backoff_limit.unwrap_or(6),
            indexed: spec.completion_mode.as_deref() == Some("Indexed"),
            suspend: spec.suspend.unwrap_or(false),
            active_deadline_seconds: spec.active_deadline_seconds,
        }
    }

    /// `Some(completions)` for an Indexed Job (validation requires completions there).
    pub fn indexed_completions(&self) -> Option<i32> {
        self.indexed.then(|| self.completions.unwrap_or(0))
    }
}

/// Why a Job fails: its condition reason, message and event type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub reason: &'static str,
    pub message: &'static str,
}

pub const BACKOFF_LIMIT_EXCEEDED: Failure = Failure {
    reason: "BackoffLimitExceeded",
    message: "Job has reached the specified backoff limit",
};
pub const DEADLINE_EXCEEDED: Failure = Failure {
    reason: "DeadlineExceeded",
    message: "Job was active longer than specified deadline",
};

pub fn failure(
    shape: &Shape,
    counts: &Counts,
    start: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Failure> {
    if counts.failed + count(counts.uncounted_failed.len()) > shape.backoff_limit {
        return Some(BACKOFF_LIMIT_EXCEEDED);
    }
    deadline(shape, start)
        .filter(|d| *d <= now)
        .map(|_| DEADLINE_EXCEEDED)
}

/// When activeDeadlineSeconds runs out, if it applies.
pub fn deadline(shape: &Shape, start: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let secs = shape.active_deadline_seconds?;
    Some(start? + chrono::Duration::seconds(secs))
}

/// Whether the Job has met its success criteria. A Job without completions (a work queue)
/// succeeds once one Pod has and none is still running.
pub fn succeeded(shape: &Shape, counts: &Counts, active: usize) -> bool {
    let done = counts.succeeded + count(counts.uncounted_succeeded.len());
    match (shape.indexed, shape.completions) {
        (true, Some(c)) => count(counts.completed.len()) >= c,
        (false, Some(c)) => done >= c,
        (_, None) => done > 0 && active == 0,
    }
}

/// How many Pods a NonIndexed Job wants running.
pub fn want_active(shape: &Shape, counts: &Counts, active: usize) -> usize {
    let done = counts.succeeded + count(counts.uncounted_succeeded.len());
    let want = match shape.completions {
        Some(c) => (c - done).min(shape.parallelism),
        // A work queue: once any Pod succeeded, no new ones start.
        None if done > 0 => count(active).min(shape.parallelism),
        None => shape.parallelism,
    };
    usize::try_from(want.max(0)).unwrap_or(0)
}

/// The lowest indexes neither completed nor running, at most `room` of them.
pub fn indexes_to_start(
    completions: i32,
    completed: &BTreeSet<i32>,
    running: &BTreeSet<i32>,
    room: usize,
) -> Vec<i32> {
    (0..completions)
        .filter(|i| !completed.contains(i) && !running.contains(i))
        .take(room)
        .collect()
}

/// The active Pods to delete to get down to `keep`, the least useful first: not yet
/// scheduled, then not ready, then the newest.
pub fn surplus(mut active: Vec<&Pod>, keep: usize) -> Vec<&Pod> {
    if active.len() <= keep {
        return Vec::new();
    }
    active.sort_by_key(|p| {
        let scheduled = p.spec.as_ref().and_then(|s| s.node_name.as_ref()).is_some();
        let ready = crate::pods::is_ready(p);
        let created = p.metadata.creation_timestamp.as_ref().map(|t| t.0);
        (scheduled, ready, std::cmp::Reverse(created))
    });
    let n = active.len() - keep;
    active.into_iter().take(n).collect()
}

/// For an Indexed Job: active Pods whose index is invalid, already completed, or held by an
/// older Pod too.
pub fn misplaced_indexed<'p>(
    active: &[&'p Pod],
    completions: i32,
    completed: &BTreeSet<i32>,
) -> Vec<&'p Pod> {
    let mut sorted: Vec<&'p Pod> = active.to_vec();
    sorted.sort_by_key(|p| p.metadata.creation_timestamp.as_ref().map(|t| t.0));
    let mut seen = BTreeSet::new();
    sorted
        .into_iter()
        .filter(|p| match completion_index(p) {
            Some(i) if i < completions && !completed.contains(&i) => !seen.insert(i),
            _ => true,
        })
        .collect()
}

/// How long new Pods must still wait after the last failure.
pub fn backoff_remaining(
    failures: i32,
    last_failure: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<Duration> {
    let last = last_failure?;
    if failures <= 0 {
        return None;
    }
    let shift = u32::try_from(failures - 1).unwrap_or(u32::MAX).min(16);
    let delay = BACKOFF_BASE.saturating_mul(1 << shift).min(BACKOFF_MAX);
    let elapsed = (now - last).to_std().unwrap_or(Duration::ZERO);
    delay.checked_sub(elapsed).filter(|d| !d.is_zero())
}

/// When a finished Job's TTL runs out.
pub fn ttl_expiry(job: &Job) -> Option<DateTime<Utc>> {
    let ttl = job.spec.as_ref()?.ttl_seconds_after_finished?;
    let status = job.status.as_ref()?;
    let finished = status.completion_time.as_ref().map(|t| t.0).or_else(|| {
        condition(job, "Failed")
            .filter(|c| c.status == "True")
            .and_then(|c| c.last_transition_time.as_ref().map(|t| t.0))
    })?;
    Some(finished + chrono::Duration::seconds(i64::from(ttl)))
}

pub fn condition<'j>(job: &'j Job, type_: &str) -> Option<&'j JobCondition> {
    job.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

pub fn is_true(job: &Job, type_: &str) -> bool {
    condition(job, type_).is_some_and(|c| c.status == "True")
}

/// Sets a condition, keeping its transition time when the status does not change.
pub fn set_condition(
    conditions: &mut Vec<JobCondition>,
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    now: DateTime<Utc>,
) {
    if let Some(c) = conditions.iter_mut().find(|c| c.type_ == type_) {
        if c.status != status {
            c.last_transition_time = Some(Time(now));
        }
        if c.status != status || c.reason.as_deref() != Some(reason) {
            c.last_probe_time = Some(Time(now));
        }
        c.status = status.into();
        c.reason = Some(reason.into());
        c.message = Some(message.into());
        return;
    }
    conditions.push(JobCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message.into()),
        last_probe_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    });
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

#[cfg(test)]
mod tests;
