//! A budget's status computed from its Pods and their controllers' scale (no I/O).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::{PodDisruptionBudget, PodDisruptionBudgetStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, OwnerReference, Time};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::core::{Selector, SelectorExt};

use crate::pods;

/// How long an evicted Pod counts as disrupted while its deletion has not shown yet
/// (upstream's DeletionTimeout).
pub const DELETION_TIMEOUT: Duration = Duration::from_secs(120);
pub const CONDITION: &str = "DisruptionAllowed";

/// The scale of a Pod's controller, as the budget counts it: `uid` of the scaled object (a
/// Deployment for its ReplicaSets' Pods) and its `spec.replicas`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scale {
    pub uid: String,
    pub replicas: i32,
}

/// Scales of Pods' controllers, looked up in caches.
pub trait Scales {
    fn scale_of(&self, namespace: &str, owner: &OwnerReference) -> Option<Scale>;
}

/// The budget's selector; a null selector selects no Pods, an empty one every Pod (policy/v1).
fn selector(pdb: &PodDisruptionBudget) -> Option<Selector> {
    let s = pdb.spec.as_ref()?.selector.clone()?;
    Selector::try_from(s).ok()
}

pub fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    let Some(sel) = selector(pdb) else {
        return false;
    };
    let empty = BTreeMap::new();
    pod.metadata.namespace == pdb.metadata.namespace
        && sel.matches(pod.metadata.labels.as_ref().unwrap_or(&empty))
}

/// `value` of `total` (a count or a percentage), rounded up as upstream does for both
/// minAvailable and maxUnavailable.
pub fn scaled(value: &IntOrString, total: i32) -> Result<i32, String> {
    match value {
        IntOrString::Int(n) => Ok(*n),
        IntOrString::String(s) => {
            let pct: i64 = s
                .strip_suffix('%')
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| format!("invalid value for IntOrString: {s:?}"))?;
            let v = (pct * i64::from(total) + 99).div_euclid(100);
            i32::try_from(v).map_err(|_| format!("{s} of {total} is out of range"))
        }
    }
}

/// Expected Pods counting each controller at its scale; Pods with no controller whose scale
/// is known count for themselves.
fn expected_from_controllers(pods: &[&Pod], scales: &dyn Scales) -> i32 {
    let mut seen: HashMap<String, i32> = HashMap::new();
    let mut alone = 0;
    for pod in pods {
        let ns = pod.metadata.namespace.as_deref().unwrap_or_default();
        match pods::controller_of(&pod.metadata).and_then(|r| scales.scale_of(ns, r)) {
            Some(s) => {
                seen.insert(s.uid, s.replicas);
            }
            None => alone += 1,
        }
    }
    seen.values().sum::<i32>() + alone
}

/// (expectedPods, desiredHealthy) for the budget over `pods`.
pub fn expected_and_desired(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    scales: &dyn Scales,
) -> Result<(i32, i32), String> {
    let spec = pdb.spec.clone().unwrap_or_default();
    let count = i32::try_from(pods.len()).unwrap_or(i32::MAX);
    if let Some(max) = &spec.max_unavailable {
        let expected = expected_from_controllers(pods, scales);
        let unavailable = scaled(max, expected)?;
        return Ok((expected, (expected - unavailable).max(0)));
    }
    match &spec.min_available {
        Some(IntOrString::Int(n)) => Ok((count, *n)),
        Some(pct) => {
            let expected = expected_from_controllers(pods, scales);
            Ok((expected, scaled(pct, expected)?))
        }
        None => Ok((count, 0)),
    }
}

/// The status the budget should have at `now`, and when to look again (an entry of
/// `disruptedPods` expiring).
pub fn compute_status(
    pdb: &PodDisruptionBudget,
    pods: &[&Pod],
    scales: &dyn Scales,
    now: DateTime<Utc>,
) -> (PodDisruptionBudgetStatus, Option<Duration>) {
    let old = pdb.status.clone().unwrap_or_default();
    let timeout = chrono::Duration::from_std(DELETION_TIMEOUT).unwrap_or_default();
    let mut recheck: Option<Duration> = None;
    let mut disrupted: BTreeMap<String, Time> = BTreeMap::new();
    for pod in pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
    {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let Some(at) = old.disrupted_pods.as_ref().and_then(|m| m.get(&name)) else {
            continue;
        };
        let expires = at.0 + timeout;
        if expires <= now {
            continue;
        }
        let left = (expires - now).to_std().unwrap_or_default();
        recheck = Some(recheck.map_or(left, |r| r.min(left)));
        disrupted.insert(name, at.clone());
    }
    let healthy = pods
        .iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter(|p| !disrupted.contains_key(p.metadata.name.as_deref().unwrap_or_default()))
        .filter(|p| pods::is_ready(p))
        .count();
    let current_healthy = i32::try_from(healthy).unwrap_or(i32::MAX);
    let generation = pdb.metadata.generation;
    let mut status = PodDisruptionBudgetStatus {
        current_healthy,
        disrupted_pods: (!disrupted.is_empty()).then_some(disrupted),
        observed_generation: generation,
        ..Default::default()
    };
    let (allowed, reason, message) = match expected_and_desired(pdb, pods, scales) {
        Ok((expected, desired)) => {
            status.expected_pods = expected;
            status.desired_healthy = desired;
            let allowed = if expected <= 0 {
                0
            } else {
                (current_healthy - desired).max(0)
            };
            let reason = if allowed > 0 {
                "SufficientPods"
            } else {
                "InsufficientPods"
            };
            (allowed, reason, String::new())
        }
        // Fail safe: no disruptions while the budget cannot be computed.
        Err(why) => (0, "SyncFailed", why),
    };
    status.disruptions_allowed = allowed;
    let cond = Condition {
        type_: CONDITION.into(),
        status: if allowed > 0 { "True" } else { "False" }.into(),
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: Time(now),
    };
    status.conditions = Some(vec![keep_transition_time(&old, cond)]);
    (status, recheck)
}

fn keep_transition_time(old: &PodDisruptionBudgetStatus, mut cond: Condition) -> Condition {
    let prev = old
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == cond.type_);
    if let Some(prev) = prev.filter(|p| p.status == cond.status) {
        cond.last_transition_time = prev.last_transition_time.clone();
    }
    cond
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    struct FixedScales(Vec<(&'static str, Scale)>);

    impl Scales for FixedScales {
        fn scale_of(&self, _ns: &str, owner: &OwnerReference) -> Option<Scale> {
            self.0
                .iter()
                .find(|(n, _)| *n == owner.name)
                .map(|(_, s)| s.clone())
        }
    }

    fn budget(spec: Value, status: Value) -> PodDisruptionBudget {
        serde_json::from_value(json!({
            "metadata": {"name": "b", "namespace": "ns", "generation": 3},
            "spec": spec, "status": status,
        }))
        .expect("budget")
    }

    fn pod(name: &str, ready: bool, owner: Option<&str>) -> Pod {
        let owners: Vec<Value> = owner
            .map(|o| {
                json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": o,
                            "uid": format!("uid-{o}"), "controller": true})
            })
            .into_iter()
            .collect();
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": "ns", "labels": {"app": "web"},
                         "ownerReferences": owners},
            "status": {"conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }}]}
        }))
        .expect("pod")
    }

    fn scales() -> FixedScales {
        FixedScales(vec![(
            "web-1",
            Scale {
                uid: "deploy".into(),
                replicas: 4,
            },
        )])
    }

    fn status_of(pdb: &PodDisruptionBudget, pods: &[Pod]) -> PodDisruptionBudgetStatus {
        let refs: Vec<&Pod> = pods.iter().collect();
        compute_status(pdb, &refs, &scales(), Utc::now()).0
    }

    #[test]
    fn percentages_round_up() {
        assert_eq!(scaled(&IntOrString::String("50%".into()), 3), Ok(2));
        assert_eq!(scaled(&IntOrString::String("34%".into()), 3), Ok(2));
        assert_eq!(scaled(&IntOrString::String("0%".into()), 3), Ok(0));
        assert_eq!(scaled(&IntOrString::Int(2), 10), Ok(2));
        assert!(scaled(&IntOrString::String("half".into()), 3).is_err());
    }

    #[test]
    fn a_percentage_min_available_counts_against_the_controllers_scale() {
        let pdb = budget(
            json!({"minAvailable": "50%", "selector": {"matchLabels": {"app": "web"}}}),
            json!({}),
        );
        // Four replicas wanted, three exist, two ready.
        let pods = [
            pod("a", true, Some("web-1")),
            pod("b", true, Some("web-1")),
            pod("c", false, Some("web-1")),
        ];
        let s = status_of(&pdb, &pods);
        assert_eq!(
            (s.expected_pods, s.desired_healthy, s.current_healthy),
            (4, 2, 2)
        );
        assert_eq!(s.disruptions_allowed, 0);
        assert_eq!(s.observed_generation, Some(3));
        let cond = &s.conditions.expect("conditions")[0];
        assert_eq!(
            (cond.status.as_str(), cond.reason.as_str()),
            ("False", "InsufficientPods")
        );
    }

    #[test]
    fn max_unavailable_leaves_room_for_that_many_disruptions() {
        let pdb = budget(
            json!({"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}),
            json!({}),
        );
        let pods: Vec<Pod> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| pod(n, true, Some("web-1")))
            .collect();
        let s = status_of(&pdb, &pods);
        assert_eq!(
            (s.expected_pods, s.desired_healthy, s.disruptions_allowed),
            (4, 3, 1)
        );
        let cond = &s.conditions.expect("conditions")[0];
        assert_eq!(
            (cond.status.as_str(), cond.reason.as_str()),
            ("True", "SufficientPods")
        );
    }

    #[test]
    fn an_integer_min_available_counts_matching_pods_and_uncontrolled_pods_count_for_themselves() {
        let pdb = budget(
            json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}),
            json!({}),
        );
        let pods = [pod("a", true, None), pod("b", true, None)];
        let s = status_of(&pdb, &pods);
        assert_eq!(
            (s.expected_pods, s.desired_healthy, s.disruptions_allowed),
            (2, 1, 1)
        );
        let pct = budget(json!({"maxUnavailable": "50%", "selector": {}}), json!({}));
        let s = status_of(&pct, &pods);
        assert_eq!((s.expected_pods, s.desired_healthy), (2, 1));
    }

    #[test]
    fn a_recently_evicted_pod_stays_disrupted_and_unhealthy_until_it_goes_or_the_entry_expires() {
        let now = Utc::now();
        let recent = (now - chrono::Duration::seconds(10)).to_rfc3339();
        let old = (now - chrono::Duration::seconds(300)).to_rfc3339();
        let pdb = budget(
            json!({"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}),
            json!({"disruptedPods": {"a": recent, "b": old, "gone": recent}}),
        );
        let pods = [
            pod("a", true, None),
            pod("b", true, None),
            pod("c", true, None),
        ];
        let refs: Vec<&Pod> = pods.iter().collect();
        let (s, recheck) = compute_status(&pdb, &refs, &scales(), now);
        let disrupted: Vec<&String> = s.disrupted_pods.iter().flatten().map(|(k, _)| k).collect();
        assert_eq!(disrupted, vec!["a"]);
        assert_eq!(s.current_healthy, 2);
        assert_eq!(s.disruptions_allowed, 1);
        let recheck = recheck.expect("recheck when a's entry expires");
        assert!(recheck > Duration::from_secs(100) && recheck <= Duration::from_secs(110));
    }

    #[test]
    fn a_null_selector_selects_nothing_and_an_empty_one_everything() {
        let none = budget(json!({"minAvailable": 1}), json!({}));
        let all = budget(json!({"minAvailable": 1, "selector": {}}), json!({}));
        let p = pod("a", true, None);
        assert!(!selects(&none, &p));
        assert!(selects(&all, &p));
    }

    #[test]
    fn an_unchanged_condition_keeps_its_transition_time() {
        let pdb = budget(json!({"minAvailable": 5, "selector": {}}), json!({}));
        let first = status_of(&pdb, &[pod("a", true, None)]);
        let mut again = pdb.clone();
        again.status = Some(first.clone());
        let later = status_of(&again, &[pod("a", true, None)]);
        assert_eq!(later, first);
    }
}
