//! The RollingUpdate strategy, as upstream's rolling.go: grow the new ReplicaSet within
//! maxSurge, shrink old ones within maxUnavailable (unhealthy replicas first), repeat as
//! replicas become available.

use k8s_openapi::api::apps::v1::ReplicaSet;

use super::sync::Sync;
use super::util::{
    by_creation, desired_replicas, max_unavailable, new_rs_new_replicas, rs_available, rs_replicas,
};
use super::{status, DeploymentError};

/// Replica counts of one ReplicaSet, for planning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    pub replicas: i32,
    pub available: i32,
}

fn size(rs: &ReplicaSet) -> Size {
    Size {
        replicas: rs_replicas(rs),
        available: rs_available(rs),
    }
}

/// How many old replicas may go now: all replicas minus the minimum available minus the new
/// ReplicaSet's not-yet-available ones (they may never become available).
pub fn max_scaled_down(desired: i32, max_unavailable: i32, old_total: i32, new: Size) -> i32 {
    let all = old_total + new.replicas;
    let min_available = desired - max_unavailable;
    all - min_available - (new.replicas - new.available)
}

/// New sizes of the old ReplicaSets (oldest first) after dropping up to `max` of their
/// unavailable replicas: they cost no availability.
pub fn cleanup_unhealthy(old: &[Size], max: i32) -> Vec<i32> {
    let mut total = 0;
    old.iter()
        .map(|s| {
            if total >= max || s.replicas == 0 || s.replicas == s.available {
                return s.replicas;
            }
            let n = (max - total).min(s.replicas - s.available).max(0);
            total += n;
            s.replicas - n
        })
        .collect()
}

/// New sizes of the old ReplicaSets (oldest first) after scaling down as far as the
/// available replicas (`available`, across all ReplicaSets) allow above `min_available`.
pub fn scale_down_old(old: &[Size], available: i32, min_available: i32) -> Vec<i32> {
    if available <= min_available {
        return old.iter().map(|s| s.replicas).collect();
    }
    let allowed = available - min_available;
    let mut total = 0;
    old.iter()
        .map(|s| {
            if total >= allowed || s.replicas == 0 {
                return s.replicas;
            }
            let n = s.replicas.min(allowed - total);
            total += n;
            s.replicas - n
        })
        .collect()
}

pub(super) async fn rollout(
    sync: &mut Sync<'_>,
    new: Option<ReplicaSet>,
    mut old: Vec<ReplicaSet>,
) -> Result<(), DeploymentError> {
    let mut new = match new {
        Some(rs) => rs,
        None => sync.create_new_rs(&old).await?,
    };
    let desired = desired_replicas(&sync.d);
    let scaled_up = if rs_replicas(&new) == desired {
        false
    } else if rs_replicas(&new) > desired {
        sync.scale_rs(&mut new, desired).await?
    } else {
        let all: Vec<&ReplicaSet> = old.iter().chain(std::iter::once(&new)).collect();
        let target = new_rs_new_replicas(&sync.d, &all, &new);
        sync.scale_rs(&mut new, target).await?
    };
    if !scaled_up && scale_down_old_replica_sets(sync, &mut old, &new).await? {
        return sync.sync_rollout_status(&old, Some(&new)).await;
    }
    if !scaled_up {
        let current = sync.d.status.clone().unwrap_or_default();
        if status::complete(&sync.d, &current) {
            sync.cleanup(&old).await?;
        }
    }
    sync.sync_rollout_status(&old, Some(&new)).await
}

async fn scale_down_old_replica_sets(
    sync: &mut Sync<'_>,
    old: &mut [ReplicaSet],
    new: &ReplicaSet,
) -> Result<bool, DeploymentError> {
    old.sort_by(by_creation);
    let old_total: i32 = old.iter().map(rs_replicas).sum();
    if old_total == 0 {
        return Ok(false);
    }
    let desired = desired_replicas(&sync.d);
    let unavailable = max_unavailable(&sync.d);
    let max = max_scaled_down(desired, unavailable, old_total, size(new));
    if max <= 0 {
        return Ok(false);
    }
    let mut scaled = false;
    let sizes: Vec<Size> = old.iter().map(size).collect();
    for (rs, target) in old.iter_mut().zip(cleanup_unhealthy(&sizes, max)) {
        scaled |= sync.scale_rs(rs, target).await?;
    }
    let sizes: Vec<Size> = old.iter().map(size).collect();
    let available = sizes.iter().map(|s| s.available).sum::<i32>() + rs_available(new);
    for (rs, target) in old
        .iter_mut()
        .zip(scale_down_old(&sizes, available, desired - unavailable))
    {
        scaled |= sync.scale_rs(rs, target).await?;
    }
    Ok(scaled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(replicas: i32, available: i32) -> Size {
        Size {
            replicas,
            available,
        }
    }

    #[test]
    fn with_max_unavailable_zero_old_pods_go_only_as_new_ones_become_available() {
        // 3 desired, maxUnavailable 0, maxSurge 1: the new RS has 1 replica, not available.
        assert_eq!(max_scaled_down(3, 0, 3, s(1, 0)), 0);
        // Once it is available, one old replica may go.
        assert_eq!(max_scaled_down(3, 0, 3, s(1, 1)), 1);
        assert_eq!(scale_down_old(&[s(3, 3)], 4, 3), [2]);
        // Never below the minimum available.
        assert_eq!(scale_down_old(&[s(3, 3)], 3, 3), [3]);
    }

    #[test]
    fn unhealthy_old_replicas_are_removed_first_oldest_replica_set_first() {
        assert_eq!(cleanup_unhealthy(&[s(3, 1), s(2, 0)], 3), [1, 1]);
        assert_eq!(cleanup_unhealthy(&[s(3, 3), s(2, 0)], 1), [3, 1]);
        assert_eq!(cleanup_unhealthy(&[s(0, 0), s(2, 2)], 5), [0, 2]);
    }

    #[test]
    fn scaling_down_walks_old_replica_sets_oldest_first() {
        assert_eq!(scale_down_old(&[s(2, 2), s(3, 3)], 10, 6), [0, 1]);
    }
}
