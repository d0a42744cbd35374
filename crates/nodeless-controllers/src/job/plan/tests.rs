use super::*;
use chrono::TimeZone;
use serde_json::json;

fn shape(completions: Option<i32>, parallelism: i32) -> Shape {
    Shape {
        completions,
        parallelism,
        backoff_limit: 2,
        indexed: false,
        suspend: false,
        active_deadline_seconds: None,
    }
}

fn counts(succeeded: i32, failed: i32) -> Counts {
    Counts {
        succeeded,
        failed,
        ..Default::default()
    }
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0)
        .single()
        .expect("valid")
}

#[test]
fn parallelism_caps_the_pods_and_remaining_completions_cap_parallelism() {
    let s = shape(Some(3), 2);
    assert_eq!(want_active(&s, &counts(0, 0), 0), 2);
    assert_eq!(want_active(&s, &counts(2, 0), 1), 1);
    assert_eq!(want_active(&s, &counts(3, 0), 0), 0);
    assert_eq!(want_active(&s, &counts(5, 0), 0), 0);
}

#[test]
fn a_work_queue_starts_nothing_new_once_a_pod_succeeded_and_completes_when_all_stop() {
    let s = shape(None, 3);
    assert_eq!(want_active(&s, &counts(0, 0), 0), 3);
    assert_eq!(want_active(&s, &counts(1, 0), 2), 2);
    assert!(!succeeded(&s, &counts(1, 0), 2));
    assert!(succeeded(&s, &counts(1, 0), 0));
}

#[test]
fn completions_reached_means_success() {
    let s = shape(Some(3), 2);
    assert!(!succeeded(&s, &counts(2, 0), 1));
    let mut c = counts(2, 0);
    c.uncounted_succeeded.insert("u".into());
    assert!(succeeded(&s, &c, 0), "uncounted successes count too");
}

#[test]
fn failures_beyond_the_backoff_limit_fail_the_job() {
    let s = shape(Some(1), 1);
    assert_eq!(failure(&s, &counts(0, 2), None, t(0)), None);
    assert_eq!(
        failure(&s, &counts(0, 3), None, t(0)),
        Some(BACKOFF_LIMIT_EXCEEDED)
    );
}

#[test]
fn the_active_deadline_counts_from_the_start_time() {
    let mut s = shape(Some(1), 1);
    s.active_deadline_seconds = Some(30);
    assert_eq!(failure(&s, &counts(0, 0), Some(t(0)), t(29)), None);
    assert_eq!(
        failure(&s, &counts(0, 0), Some(t(0)), t(30)),
        Some(DEADLINE_EXCEEDED)
    );
    assert_eq!(
        failure(&s, &counts(0, 0), None, t(1000)),
        None,
        "a suspended Job has no start"
    );
}

#[test]
fn missing_indexes_start_lowest_first() {
    let completed = [0, 2].into();
    let running = [1].into();
    assert_eq!(indexes_to_start(6, &completed, &running, 2), vec![3, 4]);
    assert_eq!(
        indexes_to_start(3, &completed, &running, 2),
        Vec::<i32>::new()
    );
}

fn pod(name: &str, index: Option<i32>, created: i64, ready: bool) -> Pod {
    let mut v = json!({
        "metadata": {"name": name, "creationTimestamp": t(created).to_rfc3339(), "annotations": {}},
        "status": {"conditions": [{"type": "Ready", "status": if ready {"True"} else {"False"}}]}
    });
    if let Some(i) = index {
        v["metadata"]["annotations"][super::super::tracking::INDEX_KEY] = json!(i.to_string());
    }
    serde_json::from_value(v).expect("pod")
}

#[test]
fn surplus_pods_are_the_unready_then_the_newest() {
    let (a, b, c) = (
        pod("a", None, 0, true),
        pod("b", None, 1, false),
        pod("c", None, 2, true),
    );
    let names: Vec<_> = surplus(vec![&a, &b, &c], 1)
        .iter()
        .map(|p| p.metadata.name.clone().expect("name"))
        .collect();
    assert_eq!(names, ["b", "c"]);
    assert!(surplus(vec![&a], 1).is_empty());
}

#[test]
fn duplicate_completed_and_invalid_indexes_are_misplaced() {
    let pods = [
        pod("old", Some(1), 0, true),
        pod("dup", Some(1), 5, true),
        pod("done", Some(0), 1, true),
        pod("big", Some(9), 1, true),
        pod("none", None, 1, true),
        pod("ok", Some(2), 1, true),
    ];
    let refs: Vec<&Pod> = pods.iter().collect();
    let mut names: Vec<_> = misplaced_indexed(&refs, 3, &[0].into())
        .iter()
        .map(|p| p.metadata.name.clone().expect("name"))
        .collect();
    names.sort();
    assert_eq!(names, ["big", "done", "dup", "none"]);
}

#[test]
fn backoff_doubles_per_failure_up_to_six_minutes() {
    assert_eq!(
        backoff_remaining(1, Some(t(0)), t(4)),
        Some(Duration::from_secs(6))
    );
    assert_eq!(backoff_remaining(1, Some(t(0)), t(10)), None);
    assert_eq!(
        backoff_remaining(3, Some(t(0)), t(0)),
        Some(Duration::from_secs(40))
    );
    assert_eq!(backoff_remaining(30, Some(t(0)), t(0)), Some(BACKOFF_MAX));
    assert_eq!(backoff_remaining(0, Some(t(0)), t(0)), None);
}

#[test]
fn a_condition_keeps_its_transition_time_while_its_status_holds() {
    let mut conds = Vec::new();
    set_condition(
        &mut conds,
        "Suspended",
        "True",
        "JobSuspended",
        "Job suspended",
        t(0),
    );
    set_condition(
        &mut conds,
        "Suspended",
        "True",
        "JobSuspended",
        "Job suspended",
        t(5),
    );
    assert_eq!(conds.len(), 1);
    assert_eq!(conds[0].last_transition_time, Some(Time(t(0))));
    set_condition(
        &mut conds,
        "Suspended",
        "False",
        "JobResumed",
        "Job resumed",
        t(9),
    );
    assert_eq!(conds[0].last_transition_time, Some(Time(t(9))));
}

#[test]
fn a_finished_job_expires_ttl_seconds_after_it_finished() {
    let job: Job = serde_json::from_value(json!({
        "spec": {"ttlSecondsAfterFinished": 30, "template": {}},
        "status": {"completionTime": t(0).to_rfc3339()}
    }))
    .expect("job");
    assert_eq!(ttl_expiry(&job), Some(t(30)));
    let failed: Job = serde_json::from_value(json!({
        "spec": {"ttlSecondsAfterFinished": 0, "template": {}},
        "status": {"conditions": [{"type": "Failed", "status": "True", "lastTransitionTime": t(7).to_rfc3339()}]}
    }))
    .expect("job");
    assert_eq!(ttl_expiry(&failed), Some(t(7)));
}
