//! A Deployment's status and conditions, as upstream's calculateStatus and progress.go:
//! counts summed over its ReplicaSets, Available by the unavailability budget, Progressing
//! refreshed on every step forward and timed out after progressDeadlineSeconds.

use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::util::{
    self, desired_replicas, rs_available, rs_ready, rs_replicas, rs_status_replicas,
};

pub const PROGRESSING: &str = "Progressing";
pub const AVAILABLE: &str = "Available";
pub const REPLICA_FAILURE: &str = "ReplicaFailure";

pub const NEW_RS_CREATED: &str = "NewReplicaSetCreated";
pub const FOUND_NEW_RS: &str = "FoundNewReplicaSet";
pub const RS_UPDATED: &str = "ReplicaSetUpdated";
pub const NEW_RS_AVAILABLE: &str = "NewReplicaSetAvailable";
pub const TIMED_OUT: &str = "ProgressDeadlineExceeded";
pub const FAILED_RS_CREATE: &str = "ReplicaSetCreateError";
pub const PAUSED: &str = "DeploymentPaused";
pub const RESUMED: &str = "DeploymentResumed";
pub const MIN_AVAILABLE: &str = "MinimumReplicasAvailable";
pub const MIN_UNAVAILABLE: &str = "MinimumReplicasUnavailable";

pub fn condition(
    type_: &str,
    status: &str,
    reason: &str,
    message: String,
    now: DateTime<Utc>,
) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(Time(now)),
        last_transition_time: Some(Time(now)),
    }
}

pub fn get<'a>(status: &'a DeploymentStatus, type_: &str) -> Option<&'a DeploymentCondition> {
    status
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
}

/// Sets `cond`, unless one of its type with the same status and reason is there already;
/// the transition time survives when only the reason changes.
pub fn set(status: &mut DeploymentStatus, mut cond: DeploymentCondition) {
    if let Some(current) = get(status, &cond.type_) {
        if current.status == cond.status && current.reason == cond.reason {
            return;
        }
        if current.status == cond.status {
            cond.last_transition_time = current.last_transition_time.clone();
        }
    }
    remove(status, &cond.type_);
    status.conditions.get_or_insert_with(Vec::new).push(cond);
}

pub fn remove(status: &mut DeploymentStatus, type_: &str) {
    if let Some(conds) = status.conditions.as_mut() {
        conds.retain(|c| c.type_ != type_);
        if conds.is_empty() {
            status.conditions = None;
        }
    }
}

pub fn has_progress_deadline(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.progress_deadline_seconds)
        .is_some_and(|s| s != i32::MAX)
}

fn deadline_seconds(d: &Deployment) -> i64 {
    i64::from(
        d.spec
            .as_ref()
            .and_then(|s| s.progress_deadline_seconds)
            .unwrap_or(600),
    )
}

/// The status the ReplicaSets add up to (conditions carried over, Available recomputed).
pub fn calculate(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    now: DateTime<Utc>,
) -> DeploymentStatus {
    let old = d.status.clone().unwrap_or_default();
    let available: i32 = all.iter().map(|rs| rs_available(rs)).sum();
    let total: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let mut status = DeploymentStatus {
        observed_generation: d.metadata.generation,
        replicas: Some(all.iter().map(|rs| rs_status_replicas(rs)).sum()),
        updated_replicas: Some(new_rs.map_or(0, rs_status_replicas)),
        ready_replicas: Some(all.iter().map(|rs| rs_ready(rs)).sum()),
        available_replicas: Some(available),
        unavailable_replicas: Some((total - available).max(0)),
        collision_count: old.collision_count,
        conditions: old.conditions.clone(),
    };
    let cond = if available >= desired_replicas(d) - util::max_unavailable(d) {
        condition(
            AVAILABLE,
            "True",
            MIN_AVAILABLE,
            "Deployment has minimum availability.".into(),
            now,
        )
    } else {
        condition(
            AVAILABLE,
            "False",
            MIN_UNAVAILABLE,
            "Deployment does not have minimum availability.".into(),
            now,
        )
    };
    set(&mut status, cond);
    status
}

fn n(v: Option<i32>) -> i32 {
    v.unwrap_or(0)
}

/// All replicas updated and available, and the status is of the current generation.
pub fn complete(d: &Deployment, s: &DeploymentStatus) -> bool {
    let desired = desired_replicas(d);
    n(s.updated_replicas) == desired
        && n(s.replicas) == desired
        && n(s.available_replicas) == desired
        && s.observed_generation >= d.metadata.generation
}

/// Some step forward since the recorded status: more updated, fewer old, more ready or
/// more available replicas.
pub fn progressing(d: &Deployment, new: &DeploymentStatus) -> bool {
    let old = d.status.clone().unwrap_or_default();
    let old_old = n(old.replicas) - n(old.updated_replicas);
    let new_old = n(new.replicas) - n(new.updated_replicas);
    n(new.updated_replicas) > n(old.updated_replicas)
        || new_old < old_old
        || n(new.ready_replicas) > n(old.ready_replicas)
        || n(new.available_replicas) > n(old.available_replicas)
}

/// The last progress is older than the deadline.
pub fn timed_out(d: &Deployment, s: &DeploymentStatus, now: DateTime<Utc>) -> bool {
    if !has_progress_deadline(d) {
        return false;
    }
    let Some(cond) = get(s, PROGRESSING) else {
        return false;
    };
    match cond.reason.as_deref() {
        Some(NEW_RS_AVAILABLE) => false,
        Some(TIMED_OUT) => true,
        _ => {
            let from = cond.last_update_time.as_ref().map_or(now, |t| t.0);
            from + chrono::Duration::seconds(deadline_seconds(d)) < now
        }
    }
}

/// Upstream's syncRolloutStatus without the write: the Progressing condition moved along.
pub fn rollout(
    d: &Deployment,
    all: &[&ReplicaSet],
    new_rs: Option<&ReplicaSet>,
    failure: Option<DeploymentCondition>,
    now: DateTime<Utc>,
) -> DeploymentStatus {
    let mut s = calculate(d, all, new_rs, now);
    if !has_progress_deadline(d) {
        remove(&mut s, PROGRESSING);
    }
    let current = get(&s, PROGRESSING).cloned();
    let done = n(s.replicas) == n(s.updated_replicas)
        && current
            .as_ref()
            .is_some_and(|c| c.reason.as_deref() == Some(NEW_RS_AVAILABLE));
    let rs_name = new_rs
        .and_then(|rs| rs.metadata.name.clone())
        .unwrap_or_default();
    if has_progress_deadline(d) && !done {
        if complete(d, &s) {
            let msg = format!("ReplicaSet \"{rs_name}\" has successfully progressed.");
            set(
                &mut s,
                condition(PROGRESSING, "True", NEW_RS_AVAILABLE, msg, now),
            );
        } else if progressing(d, &s) {
            let msg = format!("ReplicaSet \"{rs_name}\" is progressing.");
            let mut cond = condition(PROGRESSING, "True", RS_UPDATED, msg, now);
            // Every step forward refreshes lastUpdateTime (the deadline restarts); the
            // transition time stays while the condition stays True.
            if let Some(cur) = current.as_ref().filter(|c| c.status == "True") {
                cond.last_transition_time = cur.last_transition_time.clone();
            }
            remove(&mut s, PROGRESSING);
            set(&mut s, cond);
        } else if timed_out(d, &s, now) {
            let msg = format!("ReplicaSet \"{rs_name}\" has timed out progressing.");
            set(&mut s, condition(PROGRESSING, "False", TIMED_OUT, msg, now));
        }
    }
    match failure {
        Some(cond) => set(&mut s, cond),
        None => remove(&mut s, REPLICA_FAILURE),
    }
    s
}

/// When to look again at a rollout that has not progressed, so the deadline is noticed.
pub fn recheck_stuck_in(
    d: &Deployment,
    s: &DeploymentStatus,
    now: DateTime<Utc>,
) -> Option<std::time::Duration> {
    if !has_progress_deadline(d) || complete(d, s) {
        return None;
    }
    let cond = get(s, PROGRESSING)?;
    if matches!(cond.reason.as_deref(), Some(NEW_RS_AVAILABLE | TIMED_OUT)) {
        return None;
    }
    let from = cond.last_update_time.as_ref()?.0;
    let after = from + chrono::Duration::seconds(deadline_seconds(d)) - now;
    Some(
        after
            .to_std()
            .unwrap_or_default()
            .max(std::time::Duration::from_secs(1)),
    )
}

#[cfg(test)]
mod tests;
