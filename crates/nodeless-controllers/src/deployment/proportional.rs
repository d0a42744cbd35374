//! Proportional scaling: when a Deployment is resized in the middle of a rollout (or while
//! paused), the extra or missing replicas are spread over its active ReplicaSets in
//! proportion to their size, as upstream's scale(), so a bad new template does not suddenly
//! get more of the traffic.

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};

use super::util::{annotation, desired_replicas, max_surge, rs_replicas, MAX_REPLICAS};

fn fraction(d: &Deployment, rs: &ReplicaSet) -> i32 {
    let desired = desired_replicas(d);
    if desired == 0 {
        return -rs_replicas(rs);
    }
    let deployment_replicas = desired + max_surge(d);
    let annotated = annotation(rs, MAX_REPLICAS)
        .and_then(|v| v.parse::<i32>().ok())
        .unwrap_or_else(|| d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0));
    if annotated <= 0 {
        return 0;
    }
    let new_size =
        f64::from(rs_replicas(rs)) * f64::from(deployment_replicas) / f64::from(annotated);
    // Saturating float-to-int: sizes are small and non-negative.
    new_size.round() as i32 - rs_replicas(rs)
}

fn proportion(d: &Deployment, rs: &ReplicaSet, to_add: i32, added: i32) -> i32 {
    if rs_replicas(rs) == 0 || to_add == 0 || to_add == added {
        return 0;
    }
    let allowed = to_add - added;
    let f = fraction(d, rs);
    if to_add > 0 {
        f.min(allowed)
    } else {
        f.max(allowed)
    }
}

/// New sizes for `active` (the ReplicaSets with replicas), by name: reordered the way
/// upstream walks them (largest first; newer first when growing, older first when
/// shrinking), the rounding leftover going to the first.
pub fn sizes(d: &Deployment, active: &[ReplicaSet]) -> Vec<(String, i32)> {
    let current: i32 = active.iter().map(rs_replicas).sum();
    let desired = desired_replicas(d);
    let allowed = if desired > 0 {
        desired + max_surge(d)
    } else {
        0
    };
    let to_add = allowed - current;
    let mut ordered: Vec<&ReplicaSet> = active.iter().collect();
    ordered.sort_by(|a, b| {
        let by_size = rs_replicas(b).cmp(&rs_replicas(a));
        let created = |rs: &ReplicaSet| rs.metadata.creation_timestamp.as_ref().map(|t| t.0);
        let by_age = if to_add > 0 {
            created(b).cmp(&created(a))
        } else {
            created(a).cmp(&created(b))
        };
        by_size
            .then(by_age)
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    let mut added = 0;
    let mut sizes: Vec<(String, i32)> = ordered
        .iter()
        .map(|rs| {
            let p = proportion(d, rs, to_add, added);
            added += p;
            (
                rs.metadata.name.clone().unwrap_or_default(),
                rs_replicas(rs) + p,
            )
        })
        .collect();
    if let Some(first) = sizes.first_mut() {
        if to_add != 0 {
            first.1 = (first.1 + to_add - added).max(0);
        }
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment(replicas: i32) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": "web"},
            "spec": {"replicas": replicas, "selector": {}, "template": {},
                     "strategy": {"type": "RollingUpdate",
                                  "rollingUpdate": {"maxSurge": 3, "maxUnavailable": 2}}}
        }))
        .expect("deployment")
    }

    fn rs(name: &str, replicas: i32, max: i32, created: &str) -> ReplicaSet {
        serde_json::from_value(json!({
            "metadata": {"name": name, "creationTimestamp": created,
                         "annotations": {MAX_REPLICAS: max.to_string()}},
            "spec": {"replicas": replicas, "selector": {}}
        }))
        .expect("rs")
    }

    #[test]
    fn scaling_up_mid_rollout_spreads_the_new_replicas_proportionally() {
        // Upstream's example: 10 replicas, maxSurge 3, 8 old + 5 new; scaled to 15.
        let old = rs("old", 8, 13, "2026-01-01T00:00:00Z");
        let new = rs("new", 5, 13, "2026-01-01T01:00:00Z");
        let sizes = sizes(&deployment(15), &[old, new]);
        let total: i32 = sizes.iter().map(|s| s.1).sum();
        assert_eq!(total, 18, "15 + maxSurge 3: {sizes:?}");
        let get = |n: &str| sizes.iter().find(|s| s.0 == n).expect("size").1;
        assert_eq!((get("old"), get("new")), (11, 7));
    }

    #[test]
    fn scaling_down_takes_from_every_replica_set_and_to_zero_removes_all() {
        let old = rs("old", 8, 13, "2026-01-01T00:00:00Z");
        let new = rs("new", 5, 13, "2026-01-01T01:00:00Z");
        let sizes_down = sizes(&deployment(5), &[old.clone(), new.clone()]);
        let total: i32 = sizes_down.iter().map(|s| s.1).sum();
        assert_eq!(total, 8, "5 + maxSurge 3: {sizes_down:?}");
        assert!(sizes_down.iter().all(|s| s.1 < 8));
        let zero = sizes(&deployment(0), &[old, new]);
        assert!(zero.iter().all(|s| s.1 == 0), "{zero:?}");
    }
}
