use super::*;
use serde_json::json;

fn deployment(replicas: i32, status: serde_json::Value) -> Deployment {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "generation": 2},
        "spec": {"replicas": replicas, "selector": {}, "template": {}, "progressDeadlineSeconds": 600,
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}},
        "status": status
    }))
    .expect("deployment")
}

fn rs(name: &str, replicas: i32, ready: i32, available: i32) -> ReplicaSet {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"replicas": replicas, "selector": {}},
        "status": {"replicas": replicas, "readyReplicas": ready, "availableReplicas": available}
    }))
    .expect("rs")
}

#[test]
fn counts_add_up_over_replica_sets_and_available_follows_the_budget() {
    let d = deployment(3, json!({}));
    let old = rs("old", 2, 2, 2);
    let new = rs("new", 2, 1, 1);
    let s = calculate(&d, &[&old, &new], Some(&new), Utc::now());
    assert_eq!(
        (
            s.replicas,
            s.updated_replicas,
            s.ready_replicas,
            s.available_replicas,
            s.unavailable_replicas
        ),
        (Some(4), Some(2), Some(3), Some(3), Some(1))
    );
    assert_eq!(s.observed_generation, Some(2));
    let avail = get(&s, AVAILABLE).expect("available");
    assert_eq!(
        (avail.status.as_str(), avail.reason.as_deref()),
        ("True", Some(MIN_AVAILABLE))
    );
    let short = rs("new", 3, 1, 1);
    let s = calculate(&d, &[&short], Some(&short), Utc::now());
    assert_eq!(
        get(&s, AVAILABLE).expect("available").reason.as_deref(),
        Some(MIN_UNAVAILABLE)
    );
}

#[test]
fn a_finished_rollout_is_new_replica_set_available() {
    let d = deployment(3, json!({"observedGeneration": 2}));
    let new = rs("web-abc", 3, 3, 3);
    let s = rollout(&d, &[&new], Some(&new), None, Utc::now());
    let p = get(&s, PROGRESSING).expect("progressing");
    assert_eq!(p.reason.as_deref(), Some(NEW_RS_AVAILABLE));
    assert_eq!(
        p.message.as_deref(),
        Some("ReplicaSet \"web-abc\" has successfully progressed.")
    );
    assert!(complete(&d, &s));
    assert_eq!(recheck_stuck_in(&d, &s, Utc::now()), None);
}

#[test]
fn progress_refreshes_the_update_time_but_keeps_the_transition_time() {
    let then = Utc::now() - chrono::Duration::seconds(100);
    let t = Time(then);
    let d = deployment(
        3,
        json!({"replicas": 3, "updatedReplicas": 0, "conditions": [{
        "type": "Progressing", "status": "True", "reason": NEW_RS_CREATED,
        "lastUpdateTime": t, "lastTransitionTime": t}]}),
    );
    let old = rs("old", 3, 3, 3);
    let new = rs("new", 1, 0, 0);
    let now = Utc::now();
    let s = rollout(&d, &[&old, &new], Some(&new), None, now);
    let p = get(&s, PROGRESSING).expect("progressing");
    assert_eq!(p.reason.as_deref(), Some(RS_UPDATED));
    // Times travel at second precision.
    assert_eq!(
        p.last_transition_time.as_ref().map(|t| t.0.timestamp()),
        Some(then.timestamp())
    );
    assert_eq!(p.last_update_time.as_ref().map(|t| t.0), Some(now));
    let wait = recheck_stuck_in(&d, &s, now).expect("deadline watched");
    assert!(wait > std::time::Duration::from_secs(590));
}

#[test]
fn no_progress_past_the_deadline_is_progress_deadline_exceeded() {
    let then = Time(Utc::now() - chrono::Duration::seconds(601));
    let status = json!({"replicas": 4, "updatedReplicas": 1, "readyReplicas": 3, "availableReplicas": 3,
        "conditions": [{"type": "Progressing", "status": "True", "reason": RS_UPDATED,
                        "lastUpdateTime": then, "lastTransitionTime": then}]});
    let d = deployment(3, status);
    let old = rs("old", 3, 3, 3);
    let new = rs("new", 1, 0, 0);
    let s = rollout(&d, &[&old, &new], Some(&new), None, Utc::now());
    let p = get(&s, PROGRESSING).expect("progressing");
    assert_eq!(
        (p.status.as_str(), p.reason.as_deref()),
        ("False", Some(TIMED_OUT))
    );
    assert_eq!(
        p.message.as_deref(),
        Some("ReplicaSet \"new\" has timed out progressing.")
    );
}

#[test]
fn setting_the_same_status_and_reason_changes_nothing() {
    let mut s = DeploymentStatus::default();
    let first = condition(
        AVAILABLE,
        "True",
        MIN_AVAILABLE,
        "a".into(),
        Utc::now() - chrono::Duration::seconds(5),
    );
    set(&mut s, first.clone());
    set(
        &mut s,
        condition(AVAILABLE, "True", MIN_AVAILABLE, "b".into(), Utc::now()),
    );
    assert_eq!(get(&s, AVAILABLE), Some(&first));
}
