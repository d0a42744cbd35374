//! The Recreate strategy, as upstream's recreate.go: scale every old ReplicaSet to zero,
//! wait until none of their Pods runs, then bring the new ReplicaSet up to full size.

use std::collections::HashSet;
use std::sync::Arc;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::Pod;

use super::sync::Sync;
use super::util::{desired_replicas, rs_replicas, rs_status_replicas};
use super::{status, DeploymentError};
use crate::pods::controller_of;

/// Whether any Pod of an old ReplicaSet may still run (anything not Succeeded or Failed,
/// including terminating Pods and Pods in an unknown state).
pub fn old_pods_running(old: &[ReplicaSet], pods: &[Arc<Pod>]) -> bool {
    if old.iter().map(rs_status_replicas).sum::<i32>() > 0 {
        return true;
    }
    let old_uids: HashSet<&str> = old
        .iter()
        .filter_map(|rs| rs.metadata.uid.as_deref())
        .collect();
    pods.iter()
        .filter(|p| controller_of(&p.metadata).is_some_and(|r| old_uids.contains(r.uid.as_str())))
        .any(|p| {
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            !matches!(phase, Some("Succeeded" | "Failed"))
        })
}

pub(super) async fn rollout(
    sync: &mut Sync<'_>,
    new: Option<ReplicaSet>,
    mut old: Vec<ReplicaSet>,
    pods: &[Arc<Pod>],
) -> Result<(), DeploymentError> {
    let mut scaled_down = false;
    for rs in old.iter_mut().filter(|rs| rs_replicas(rs) > 0) {
        scaled_down |= sync.scale_rs(rs, 0).await?;
    }
    if scaled_down || old_pods_running(&old, pods) {
        return sync.sync_rollout_status(&old, new.as_ref()).await;
    }
    let mut new = match new {
        Some(rs) => rs,
        None => sync.create_new_rs(&old).await?,
    };
    let desired = desired_replicas(&sync.d);
    sync.scale_rs(&mut new, desired).await?;
    let current = sync.d.status.clone().unwrap_or_default();
    if status::complete(&sync.d, &current) {
        sync.cleanup(&old).await?;
    }
    sync.sync_rollout_status(&old, Some(&new)).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn old_pods_count_as_running_until_they_are_gone_or_finished() {
        let old: ReplicaSet = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "uid": "old"},
            "spec": {"replicas": 0, "selector": {}},
            "status": {"replicas": 0}
        }))
        .expect("rs");
        let pod = |phase: &str| {
            Arc::new(
                serde_json::from_value::<Pod>(json!({
                    "metadata": {"name": "p", "ownerReferences": [{"apiVersion": "apps/v1",
                        "kind": "ReplicaSet", "name": "web-1", "uid": "old", "controller": true}]},
                    "status": {"phase": phase}
                }))
                .expect("pod"),
            )
        };
        assert!(old_pods_running(
            std::slice::from_ref(&old),
            &[pod("Running")]
        ));
        assert!(old_pods_running(
            std::slice::from_ref(&old),
            &[pod("Unknown")]
        ));
        assert!(!old_pods_running(
            std::slice::from_ref(&old),
            &[pod("Succeeded")]
        ));
        assert!(!old_pods_running(&[old], &[]));
    }
}
