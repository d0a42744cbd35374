//! When a CronJob starts its next Job, decided as upstream's `syncCronJob` does from the
//! schedule, the last start, startingDeadlineSeconds, the concurrency policy and the clock
//! (passed in, so every decision is tested in virtual time).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::schedule::{Schedule, MAX_MISSED};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Concurrency {
    Allow,
    Forbid,
    Replace,
}

impl Concurrency {
    pub fn of(policy: Option<&str>) -> Concurrency {
        match policy {
            Some("Forbid") => Concurrency::Forbid,
            Some("Replace") => Concurrency::Replace,
            _ => Concurrency::Allow,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Inputs<'a> {
    pub schedule: &'a Schedule,
    pub tz: Tz,
    pub created: DateTime<Utc>,
    pub last_schedule: Option<DateTime<Utc>>,
    pub starting_deadline_seconds: Option<i64>,
    pub concurrency: Concurrency,
    /// Names of the Jobs in status.active.
    pub active: &'a [String],
    pub cronjob: &'a str,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No start time is due.
    Idle,
    /// The due start time was already handled.
    AlreadyStarted,
    /// The start time passed longer than startingDeadlineSeconds ago.
    TooLate { scheduled: DateTime<Utc> },
    /// Forbid and a Job is still running.
    Forbidden { scheduled: DateTime<Utc> },
    /// Start the Job for `scheduled`, deleting the active ones first if `replace`.
    Start {
        scheduled: DateTime<Utc>,
        replace: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub decision: Decision,
    /// More than [`MAX_MISSED`] start times were missed (upstream warns).
    pub too_many_missed: bool,
    /// When to look again: the next start time after `now`.
    pub next: Option<DateTime<Utc>>,
}

pub fn plan(i: &Inputs<'_>, now: DateTime<Utc>) -> Plan {
    let next = i.schedule.next_after(now, i.tz);
    let mut earliest = i.last_schedule.unwrap_or(i.created);
    if let Some(secs) = i.starting_deadline_seconds {
        earliest = earliest.max(now - chrono::Duration::seconds(secs));
    }
    let (scheduled, missed) = if earliest > now {
        (None, 0)
    } else {
        i.schedule.most_recent(earliest, now, i.tz)
    };
    let too_many_missed = missed > MAX_MISSED;
    let decision = match scheduled {
        None => Decision::Idle,
        Some(s)
            if i.last_schedule == Some(s)
                || i.active.iter().any(|a| *a == job_name(i.cronjob, s)) =>
        {
            Decision::AlreadyStarted
        }
        Some(s)
            if i.starting_deadline_seconds
                .is_some_and(|d| s + chrono::Duration::seconds(d) < now) =>
        {
            Decision::TooLate { scheduled: s }
        }
        Some(s) if i.concurrency == Concurrency::Forbid && !i.active.is_empty() => {
            Decision::Forbidden { scheduled: s }
        }
        Some(s) => Decision::Start {
            scheduled: s,
            replace: i.concurrency == Concurrency::Replace && !i.active.is_empty(),
        },
    };
    Plan {
        decision,
        too_many_missed,
        next,
    }
}

/// `<cronjob>-<minutes since the epoch of the start time>`, deterministic so a start is
/// never made twice.
pub fn job_name(cronjob: &str, scheduled: DateTime<Utc>) -> String {
    format!("{cronjob}-{}", scheduled.timestamp().div_euclid(60))
}

/// The finished Jobs to delete so at most `keep` remain, oldest first.
pub fn beyond_history<T: Clone>(
    mut finished: Vec<(Option<DateTime<Utc>>, T)>,
    keep: i32,
) -> Vec<T> {
    let keep = usize::try_from(keep.max(0)).unwrap_or(0);
    if finished.len() <= keep {
        return Vec::new();
    }
    finished.sort_by_key(|(t, _)| *t);
    let n = finished.len() - keep;
    finished.into_iter().take(n).map(|(_, v)| v).collect()
}

#[cfg(test)]
mod tests;
