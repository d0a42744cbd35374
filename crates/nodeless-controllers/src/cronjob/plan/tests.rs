use super::*;

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("time")
        .with_timezone(&Utc)
}

struct Case {
    schedule: Schedule,
    last: Option<DateTime<Utc>>,
    deadline: Option<i64>,
    concurrency: Concurrency,
    active: Vec<String>,
}

impl Case {
    fn new(spec: &str) -> Case {
        Case {
            schedule: Schedule::parse(spec).expect("schedule"),
            last: None,
            deadline: None,
            concurrency: Concurrency::Allow,
            active: Vec::new(),
        }
    }

    fn at(&self, now: &str) -> Plan {
        let inputs = Inputs {
            schedule: &self.schedule,
            tz: Tz::UTC,
            created: utc("2024-05-01T10:00:10Z"),
            last_schedule: self.last,
            starting_deadline_seconds: self.deadline,
            concurrency: self.concurrency,
            active: &self.active,
            cronjob: "hello",
        };
        plan(&inputs, utc(now))
    }
}

#[test]
fn nothing_starts_before_the_first_start_time_and_the_next_one_is_named() {
    let p = Case::new("* * * * *").at("2024-05-01T10:00:40Z");
    assert_eq!(p.decision, Decision::Idle);
    assert_eq!(p.next, Some(utc("2024-05-01T10:01:00Z")));
}

#[test]
fn a_due_start_time_starts_a_job_once() {
    let mut c = Case::new("* * * * *");
    let p = c.at("2024-05-01T10:01:02Z");
    let scheduled = utc("2024-05-01T10:01:00Z");
    assert_eq!(
        p.decision,
        Decision::Start {
            scheduled,
            replace: false
        }
    );
    assert_eq!(p.next, Some(utc("2024-05-01T10:02:00Z")));
    c.last = Some(scheduled);
    assert_eq!(c.at("2024-05-01T10:01:30Z").decision, Decision::Idle);
    c.last = None;
    c.active = vec![job_name("hello", scheduled)];
    assert_eq!(
        c.at("2024-05-01T10:01:30Z").decision,
        Decision::AlreadyStarted
    );
}

#[test]
fn only_the_most_recent_missed_start_time_runs() {
    let mut c = Case::new("*/5 * * * *");
    c.last = Some(utc("2024-05-01T10:05:00Z"));
    let p = c.at("2024-05-01T10:21:00Z");
    assert_eq!(
        p.decision,
        Decision::Start {
            scheduled: utc("2024-05-01T10:20:00Z"),
            replace: false
        }
    );
    assert!(!p.too_many_missed);
}

#[test]
fn a_start_later_than_the_starting_deadline_is_skipped() {
    let mut c = Case::new("0 * * * *");
    c.last = Some(utc("2024-05-01T10:00:00Z"));
    c.deadline = Some(300);
    // 11:00 passed 10 minutes ago, beyond 5 minutes: it is outside the window, so idle.
    assert_eq!(c.at("2024-05-01T11:10:00Z").decision, Decision::Idle);
    // Within the deadline it starts.
    assert!(matches!(
        c.at("2024-05-01T11:04:00Z").decision,
        Decision::Start { .. }
    ));
    let mut late = Case::new("0 * * * *");
    late.deadline = Some(30);
    late.last = Some(utc("2024-05-01T11:00:00Z"));
    assert_eq!(late.at("2024-05-01T11:30:00Z").decision, Decision::Idle);
}

#[test]
fn forbid_skips_while_a_job_runs_and_replace_replaces_it() {
    let mut c = Case::new("* * * * *");
    c.active = vec!["hello-28578000".into()];
    c.concurrency = Concurrency::Forbid;
    let scheduled = utc("2024-05-01T10:01:00Z");
    assert_eq!(
        c.at("2024-05-01T10:01:05Z").decision,
        Decision::Forbidden { scheduled }
    );
    c.concurrency = Concurrency::Replace;
    assert_eq!(
        c.at("2024-05-01T10:01:05Z").decision,
        Decision::Start {
            scheduled,
            replace: true
        }
    );
    c.concurrency = Concurrency::Allow;
    assert_eq!(
        c.at("2024-05-01T10:01:05Z").decision,
        Decision::Start {
            scheduled,
            replace: false
        }
    );
}

#[test]
fn too_many_missed_start_times_are_flagged_but_the_latest_still_runs() {
    let mut c = Case::new("* * * * *");
    c.last = Some(utc("2024-05-01T10:00:00Z"));
    let p = c.at("2024-05-02T10:00:30Z");
    assert!(p.too_many_missed);
    assert_eq!(
        p.decision,
        Decision::Start {
            scheduled: utc("2024-05-02T10:00:00Z"),
            replace: false
        }
    );
}

#[test]
fn job_names_count_minutes_since_the_epoch() {
    assert_eq!(
        job_name("hello", utc("2024-05-01T10:01:00Z")),
        "hello-28575961"
    );
}

#[test]
fn history_keeps_the_newest_finished_jobs() {
    let jobs = vec![
        (Some(utc("2024-05-01T10:03:00Z")), "c"),
        (Some(utc("2024-05-01T10:01:00Z")), "a"),
        (Some(utc("2024-05-01T10:02:00Z")), "b"),
    ];
    assert_eq!(beyond_history(jobs.clone(), 1), vec!["a", "b"]);
    assert!(beyond_history(jobs.clone(), 3).is_empty());
    assert_eq!(beyond_history(jobs, 0).len(), 3);
}
