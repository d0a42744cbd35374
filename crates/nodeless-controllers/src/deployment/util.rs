//! The Deployment controller's arithmetic and bookkeeping over ReplicaSets, as upstream's
//! deployment util: surge and unavailability fenceposts, the pod-template-hash, revisions and
//! the annotations a Deployment keeps on its ReplicaSets. Pure functions.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use serde_json::Value;

pub const HASH_LABEL: &str = "pod-template-hash";
pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const REVISION_HISTORY: &str = "deployment.kubernetes.io/revision-history";
pub const DESIRED_REPLICAS: &str = "deployment.kubernetes.io/desired-replicas";
pub const MAX_REPLICAS: &str = "deployment.kubernetes.io/max-replicas";
const ROLLBACK_TO: &str = "deprecated.deployment.rollback.to";
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Deployment annotations that are not copied onto its ReplicaSets.
const NOT_COPIED: [&str; 6] = [
    LAST_APPLIED,
    REVISION,
    REVISION_HISTORY,
    DESIRED_REPLICAS,
    MAX_REPLICAS,
    ROLLBACK_TO,
];

/// Upstream bounds the revision-history annotation; older entries are dropped.
const REVISION_HISTORY_LIMIT_CHARS: usize = 2000;

pub fn desired_replicas(d: &Deployment) -> i32 {
    d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_replicas(rs: &ReplicaSet) -> i32 {
    rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)
}

pub fn rs_status_replicas(rs: &ReplicaSet) -> i32 {
    rs.status.as_ref().map_or(0, |s| s.replicas)
}

pub fn rs_available(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.available_replicas)
        .unwrap_or(0)
}

pub fn rs_ready(rs: &ReplicaSet) -> i32 {
    rs.status
        .as_ref()
        .and_then(|s| s.ready_replicas)
        .unwrap_or(0)
}

pub fn is_recreate(d: &Deployment) -> bool {
    d.spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.type_.as_deref())
        == Some("Recreate")
}

/// `value` of `total` as an int or a percentage, rounding a percentage up or down.
pub fn scaled_value(value: Option<&IntOrString>, total: i32, round_up: bool) -> i32 {
    match value {
        None => 0,
        Some(IntOrString::Int(n)) => *n,
        Some(IntOrString::String(s)) => {
            let Some(percent) = s.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
                return 0;
            };
            let product = percent * i64::from(total);
            let scaled = if round_up {
                (product + 99).div_euclid(100)
            } else {
                product.div_euclid(100)
            };
            i32::try_from(scaled).unwrap_or(i32::MAX)
        }
    }
}

/// (maxSurge, maxUnavailable) for `desired` replicas: surge rounds up, unavailability down,
/// and when both come to 0 unavailability is 1 so a rollout can proceed.
pub fn fenceposts(d: &Deployment) -> (i32, i32) {
    let rolling = d
        .spec
        .as_ref()
        .and_then(|s| s.strategy.as_ref())
        .and_then(|s| s.rolling_update.as_ref());
    let desired = desired_replicas(d);
    // The API server defaults both to 25%; an object written without defaults gets the same.
    let default = IntOrString::String("25%".into());
    let surge_v = rolling.map_or(Some(&default), |r| r.max_surge.as_ref());
    let unavailable_v = rolling.map_or(Some(&default), |r| r.max_unavailable.as_ref());
    let surge = scaled_value(surge_v, desired, true);
    let unavailable = scaled_value(unavailable_v, desired, false);
    if surge == 0 && unavailable == 0 {
        return (0, 1);
    }
    (surge, unavailable)
}

pub fn max_surge(d: &Deployment) -> i32 {
    if is_recreate(d) {
        return 0;
    }
    fenceposts(d).0
}

pub fn max_unavailable(d: &Deployment) -> i32 {
    let desired = desired_replicas(d);
    if is_recreate(d) || desired == 0 {
        return 0;
    }
    fenceposts(d).1.min(desired)
}

/// How many replicas the new ReplicaSet may have now (upstream's NewRSNewReplicas).
pub fn new_rs_new_replicas(d: &Deployment, all: &[&ReplicaSet], new_rs: &ReplicaSet) -> i32 {
    let desired = desired_replicas(d);
    if is_recreate(d) {
        return desired;
    }
    let current: i32 = all.iter().map(|rs| rs_replicas(rs)).sum();
    let max_total = desired + max_surge(d);
    let new_size = rs_replicas(new_rs);
    if current >= max_total {
        return new_size;
    }
    let scale_up = (max_total - current).min(desired - new_size);
    new_size + scale_up.max(0)
}

/// Upstream's hash of a pod template: FNV-1a (32 bit) over its JSON and the collision
/// count, written with the same safe alphabet, so names look like `web-5d8f7b9c6`.
pub fn template_hash(template: &PodTemplateSpec, collision_count: Option<i32>) -> String {
    let mut hash: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u32::from(*b);
            hash = hash.wrapping_mul(0x0100_0193);
        }
    };
    feed(&serde_json::to_vec(template).unwrap_or_default());
    if let Some(c) = collision_count {
        feed(&c.to_le_bytes());
    }
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    hash.to_string()
        .bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

fn without_hash(template: Option<&PodTemplateSpec>) -> Value {
    let mut v = serde_json::to_value(template).unwrap_or(Value::Null);
    if let Some(labels) = v
        .pointer_mut("/metadata/labels")
        .and_then(Value::as_object_mut)
    {
        labels.remove(HASH_LABEL);
    }
    v
}

/// Whether two templates are the same but for the pod-template-hash label.
pub fn equal_ignore_hash(a: Option<&PodTemplateSpec>, b: Option<&PodTemplateSpec>) -> bool {
    without_hash(a) == without_hash(b)
}

fn template_of(d: &Deployment) -> Option<&PodTemplateSpec> {
    d.spec.as_ref().map(|s| &s.template)
}

fn rs_template(rs: &ReplicaSet) -> Option<&PodTemplateSpec> {
    rs.spec.as_ref().and_then(|s| s.template.as_ref())
}

fn created(rs: &ReplicaSet) -> Option<chrono::DateTime<chrono::Utc>> {
    rs.metadata.creation_timestamp.as_ref().map(|t| t.0)
}

/// Oldest first, then by name (upstream's ReplicaSetsByCreationTimestamp).
pub fn by_creation(a: &ReplicaSet, b: &ReplicaSet) -> std::cmp::Ordering {
    created(a)
        .cmp(&created(b))
        .then_with(|| a.metadata.name.cmp(&b.metadata.name))
}

/// The ReplicaSet running the Deployment's current template; the oldest if several do.
pub fn find_new<'a>(d: &Deployment, list: &'a [ReplicaSet]) -> Option<&'a ReplicaSet> {
    let mut matching: Vec<&ReplicaSet> = list
        .iter()
        .filter(|rs| equal_ignore_hash(rs_template(rs), template_of(d)))
        .collect();
    matching.sort_by(|a, b| by_creation(a, b));
    matching.first().copied()
}

pub fn annotation<'a>(rs: &'a ReplicaSet, key: &str) -> Option<&'a str> {
    rs.metadata
        .annotations
        .as_ref()?
        .get(key)
        .map(String::as_str)
}

pub fn revision(rs: &ReplicaSet) -> i64 {
    annotation(rs, REVISION)
        .and_then(|r| r.parse().ok())
        .unwrap_or(0)
}

pub fn max_revision<'a>(list: impl IntoIterator<Item = &'a ReplicaSet>) -> i64 {
    list.into_iter().map(revision).max().unwrap_or(0)
}

/// Records desired and maximum replicas on `rs` (used for proportional scaling).
pub fn set_replicas_annotations(rs: &mut ReplicaSet, desired: i32, max: i32) -> bool {
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    let mut changed = false;
    for (key, value) in [(DESIRED_REPLICAS, desired), (MAX_REPLICAS, max)] {
        let value = value.to_string();
        if annotations.get(key) != Some(&value) {
            annotations.insert(key.into(), value);
            changed = true;
        }
    }
    changed
}

/// Copies the Deployment's annotations (e.g. `kubernetes.io/change-cause`) to the new
/// ReplicaSet and raises its revision to `new_revision`, keeping earlier revisions in the
/// revision-history annotation, as upstream's SetNewReplicaSetAnnotations.
pub fn set_new_rs_annotations(
    d: &Deployment,
    rs: &mut ReplicaSet,
    new_revision: i64,
    exists: bool,
) -> bool {
    let mut changed = false;
    let annotations = rs.metadata.annotations.get_or_insert_with(BTreeMap::new);
    for (k, v) in d.metadata.annotations.iter().flatten() {
        if NOT_COPIED.contains(&k.as_str()) || annotations.get(k) == Some(v) {
            continue;
        }
        annotations.insert(k.clone(), v.clone());
        changed = true;
    }
    let old = annotations.get(REVISION).cloned().unwrap_or_default();
    let old_revision = if old.is_empty() {
        0
    } else {
        match old.parse::<i64>() {
            Ok(r) => r,
            Err(_) => return changed,
        }
    };
    if old_revision < new_revision {
        annotations.insert(REVISION.into(), new_revision.to_string());
        changed = true;
        if !old.is_empty() {
            let history = match annotations.get(REVISION_HISTORY) {
                Some(h) if !h.is_empty() => format!("{h},{old}"),
                _ => old,
            };
            annotations.insert(REVISION_HISTORY.into(), trim_history(history));
        }
    }
    if !exists {
        let desired = desired_replicas(d);
        set_replicas_annotations(rs, desired, desired + max_surge(d));
        changed = true;
    }
    changed
}

fn trim_history(mut history: String) -> String {
    while history.len() > REVISION_HISTORY_LIMIT_CHARS {
        match history.find(',') {
            Some(i) => history = history[i + 1..].to_string(),
            None => break,
        }
    }
    history
}

/// Scaling the Deployment shows as ReplicaSets whose desired-replicas annotation differs.
pub fn is_scaling_event(d: &Deployment, active: &[&ReplicaSet]) -> bool {
    let desired = desired_replicas(d);
    active.iter().any(|rs| {
        annotation(rs, DESIRED_REPLICAS)
            .and_then(|v| v.parse::<i32>().ok())
            .is_some_and(|v| v != desired)
    })
}

/// The new ReplicaSet has all replicas, all available, at the current desired count.
pub fn is_saturated(d: &Deployment, rs: Option<&ReplicaSet>) -> bool {
    let Some(rs) = rs else {
        return false;
    };
    let desired = desired_replicas(d);
    let annotated = annotation(rs, DESIRED_REPLICAS).and_then(|v| v.parse::<i32>().ok());
    rs_replicas(rs) == desired && annotated == Some(desired) && rs_available(rs) == desired
}

#[cfg(test)]
mod tests;
