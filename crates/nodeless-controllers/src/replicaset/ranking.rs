//! Which Pods a ReplicaSet deletes first when it scales down: upstream's ActivePods order,
//! without the same-node ranking (every nodeless Pod is on the one virtual node) and with
//! exact rather than logarithmic ready and creation times.

use std::cmp::Ordering;

use k8s_openapi::api::core::v1::Pod;

use crate::pods;

fn phase_rank(pod: &Pod) -> u8 {
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

fn restarts(pod: &Pod) -> i32 {
    pod.status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|cs| cs.iter().map(|c| c.restart_count).max())
        .unwrap_or(0)
}

fn scheduled(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.node_name.as_deref())
        .is_some_and(|n| !n.is_empty())
}

/// Orders `a` before `b` when `a` should be deleted first: unscheduled before scheduled,
/// Pending before Unknown before Running, not ready before ready, ready for less time first,
/// more restarts first, newer first.
pub fn deletion_order(a: &Pod, b: &Pod) -> Ordering {
    scheduled(a)
        .cmp(&scheduled(b))
        .then_with(|| phase_rank(a).cmp(&phase_rank(b)))
        .then_with(|| pods::is_ready(a).cmp(&pods::is_ready(b)))
        // Ready for a shorter time (a later transition) first.
        .then_with(|| pods::ready_since(b).cmp(&pods::ready_since(a)))
        .then_with(|| restarts(b).cmp(&restarts(a)))
        // Newer first; a Pod without a creation time first of all.
        .then_with(|| {
            let created = |p: &Pod| p.metadata.creation_timestamp.as_ref().map(|t| t.0);
            match (created(a), created(b)) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => y.cmp(&x),
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, v: serde_json::Value) -> Pod {
        let mut p: Pod = serde_json::from_value(v).expect("pod");
        p.metadata.name = Some(name.into());
        p
    }

    fn ready(since: &str) -> serde_json::Value {
        json!([{"type": "Ready", "status": "True", "lastTransitionTime": since}])
    }

    fn order(mut pods: Vec<Pod>) -> Vec<String> {
        pods.sort_by(deletion_order);
        pods.into_iter()
            .map(|p| p.metadata.name.unwrap_or_default())
            .collect()
    }

    #[test]
    fn unscheduled_pending_and_unready_pods_go_before_running_ready_ones() {
        let t = "2026-01-01T00:00:00Z";
        let running_ready = pod(
            "running-ready",
            json!({"spec": {"containers": [], "nodeName": "nodeless"},
                   "status": {"phase": "Running", "conditions": ready(t)}}),
        );
        let running_unready = pod(
            "running-unready",
            json!({"spec": {"containers": [], "nodeName": "nodeless"}, "status": {"phase": "Running"}}),
        );
        let pending = pod(
            "pending",
            json!({"spec": {"containers": [], "nodeName": "nodeless"}, "status": {"phase": "Pending"}}),
        );
        let unscheduled = pod(
            "unscheduled",
            json!({"spec": {"containers": []}, "status": {"phase": "Running"}}),
        );
        assert_eq!(
            order(vec![running_ready, pending, running_unready, unscheduled]),
            ["unscheduled", "pending", "running-unready", "running-ready"]
        );
    }

    #[test]
    fn among_ready_pods_the_most_recently_ready_and_then_the_newest_go_first() {
        let base = json!({"spec": {"containers": [], "nodeName": "n"}});
        let mk = |name: &str, since: &str, created: &str| {
            let mut v = base.clone();
            v["status"] = json!({"phase": "Running", "conditions": ready(since)});
            v["metadata"] = json!({"creationTimestamp": created});
            pod(name, v)
        };
        let old = mk("old", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z");
        let recent = mk("recent", "2026-01-01T01:00:00Z", "2026-01-01T00:00:00Z");
        let same_newer = mk("same-newer", "2026-01-01T00:00:00Z", "2026-01-01T00:30:00Z");
        assert_eq!(
            order(vec![old, same_newer, recent]),
            ["recent", "same-newer", "old"]
        );
    }

    #[test]
    fn pods_that_restarted_more_go_first() {
        let mk = |name: &str, restarts: i32| {
            pod(
                name,
                json!({"spec": {"containers": [], "nodeName": "n"},
                       "status": {"phase": "Running", "containerStatuses": [{
                           "name": "c", "image": "i", "imageID": "", "ready": false,
                           "restartCount": restarts}]}}),
            )
        };
        assert_eq!(
            order(vec![mk("calm", 0), mk("flappy", 4)]),
            ["flappy", "calm"]
        );
    }
}
