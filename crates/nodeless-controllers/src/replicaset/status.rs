//! A ReplicaSet's status, computed from the Pods it owns, as upstream's calculateStatus.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetCondition, ReplicaSetStatus};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use crate::pods;

pub const REPLICA_FAILURE: &str = "ReplicaFailure";

/// Why the last attempt to reach the desired count failed (reason, message).
pub struct Failure {
    pub reason: &'static str,
    pub message: String,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn fully_labeled(rs: &ReplicaSet, pod: &Pod) -> bool {
    let template_labels = rs
        .spec
        .as_ref()
        .and_then(|s| s.template.as_ref())
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.labels.as_ref());
    let Some(want) = template_labels else {
        return true;
    };
    let have = pod.metadata.labels.as_ref();
    want.iter()
        .all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
}

pub fn min_ready_seconds(rs: &ReplicaSet) -> i32 {
    rs.spec
        .as_ref()
        .and_then(|s| s.min_ready_seconds)
        .unwrap_or(0)
}

/// The status `rs` should have with `owned` (its active Pods) and the last failure.
pub fn calculate(
    rs: &ReplicaSet,
    owned: &[Arc<Pod>],
    failure: Option<Failure>,
    now: DateTime<Utc>,
) -> ReplicaSetStatus {
    let min_ready = min_ready_seconds(rs);
    let mut conditions: Vec<ReplicaSetCondition> = rs
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let has_failure = conditions.iter().any(|c| c.type_ == REPLICA_FAILURE);
    match failure {
        Some(f) if !has_failure => conditions.push(ReplicaSetCondition {
            type_: REPLICA_FAILURE.into(),
            status: "True".into(),
            reason: Some(f.reason.into()),
            message: Some(f.message),
            last_transition_time: Some(Time(now)),
        }),
        Some(_) => {}
        None => conditions.retain(|c| c.type_ != REPLICA_FAILURE),
    }
    ReplicaSetStatus {
        replicas: count(owned.len()),
        fully_labeled_replicas: Some(count(owned.iter().filter(|p| fully_labeled(rs, p)).count())),
        ready_replicas: Some(count(owned.iter().filter(|p| pods::is_ready(p)).count())),
        available_replicas: Some(count(
            owned
                .iter()
                .filter(|p| pods::is_available(p, min_ready, now))
                .count(),
        )),
        observed_generation: rs.metadata.generation,
        conditions: (!conditions.is_empty()).then_some(conditions),
    }
}

/// When the next ready Pod becomes available (minReadySeconds after it became ready).
pub fn next_available_in(
    owned: &[Arc<Pod>],
    min_ready: i32,
    now: DateTime<Utc>,
) -> Option<std::time::Duration> {
    if min_ready <= 0 {
        return None;
    }
    owned
        .iter()
        .filter(|p| !pods::is_available(p, min_ready, now))
        .filter_map(|p| pods::ready_since(p))
        .map(|since| since + chrono::Duration::seconds(i64::from(min_ready)) - now)
        .min()
        .map(|d| d.to_std().unwrap_or_default() + std::time::Duration::from_millis(100))
}

/// Whether `new` differs from what `rs` shows (zero and unset counts are the same).
pub fn changed(rs: &ReplicaSet, new: &ReplicaSetStatus) -> bool {
    let old = rs.status.clone().unwrap_or_default();
    let n = |v: Option<i32>| v.unwrap_or(0);
    old.replicas != new.replicas
        || n(old.fully_labeled_replicas) != n(new.fully_labeled_replicas)
        || n(old.ready_replicas) != n(new.ready_replicas)
        || n(old.available_replicas) != n(new.available_replicas)
        || old.observed_generation != new.observed_generation
        || old.conditions.unwrap_or_default() != new.conditions.clone().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rs(v: serde_json::Value) -> ReplicaSet {
        serde_json::from_value(v).expect("rs")
    }

    fn pod(v: serde_json::Value) -> Arc<Pod> {
        Arc::new(serde_json::from_value(v).expect("pod"))
    }

    #[test]
    fn status_counts_labeled_ready_and_available_pods() {
        let now = Utc::now();
        let rs = rs(json!({
            "metadata": {"name": "web", "generation": 3},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "minReadySeconds": 10,
                     "template": {"metadata": {"labels": {"app": "web", "tier": "fe"}}}}
        }));
        let long_ago = (now - chrono::Duration::seconds(60)).to_rfc3339();
        let just_now = now.to_rfc3339();
        let owned = vec![
            pod(json!({"metadata": {"labels": {"app": "web", "tier": "fe"}},
                "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": long_ago}]}})),
            pod(json!({"metadata": {"labels": {"app": "web"}},
                "status": {"conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": just_now}]}})),
            pod(json!({"metadata": {"labels": {"app": "web", "tier": "fe"}}})),
        ];
        let s = calculate(&rs, &owned, None, now);
        assert_eq!(s.replicas, 3);
        assert_eq!(s.fully_labeled_replicas, Some(2));
        assert_eq!(s.ready_replicas, Some(2));
        assert_eq!(s.available_replicas, Some(1));
        assert_eq!(s.observed_generation, Some(3));
        let wait = next_available_in(&owned, 10, now).expect("one pod becomes available");
        assert!(wait <= std::time::Duration::from_millis(10_100));
        assert!(wait >= std::time::Duration::from_secs(9));
    }

    #[test]
    fn a_create_failure_sets_replica_failure_until_a_sync_succeeds() {
        let now = Utc::now();
        let mut rs = rs(json!({"metadata": {"name": "web"}, "spec": {"selector": {}}}));
        let failure = Failure {
            reason: "FailedCreate",
            message: "pods \"web-\" is forbidden: exceeded quota".into(),
        };
        let s = calculate(&rs, &[], Some(failure), now);
        let conds = s.conditions.clone().expect("conditions");
        assert_eq!(conds[0].type_, REPLICA_FAILURE);
        assert_eq!(conds[0].reason.as_deref(), Some("FailedCreate"));
        assert!(changed(&rs, &s));
        rs.status = Some(s);
        let cleared = calculate(&rs, &[], None, now);
        assert_eq!(cleared.conditions, None);
        assert!(changed(&rs, &cleared));
    }
}
