//! Spot capacity as the scheduler sees it: a Pod's capacity choice, the spot instances
//! already placed (with what reclaiming needs to know of them), and the free room per host.
//!
//! The policy itself (prices, the market, victim choice) is pure and lives in
//! `nodeless-core`'s `billing`; this module only reads Pods and the pool.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Pod;
use nodeless_core::billing::{
    parse_money, spot_policy, victims_for, HostRoom, SpotInstance, SpotPolicy, SpotStrategy,
};
use nodeless_kube::billing::parse_time;
use nodeless_kube::names::{
    CAPACITY_SPOT, CAPACITY_TYPE_ANNOTATION, HOURLY_PRICE_ANNOTATION,
    SPOT_PROTECTED_UNTIL_ANNOTATION, SPOT_RELEASE_AT_ANNOTATION,
};

use crate::placement::Pool;
use crate::pods::placement_of;

/// The spot policy a waiting Pod asks for (`None`: on-demand), or why it cannot be read.
pub fn policy_of(pod: &Pod) -> Result<Option<SpotPolicy>, String> {
    // The policy reads only annotations: hand over those, not the whole Pod serialized
    // (a pass looks at every waiting Pod, and a burst makes hundreds of passes).
    let value = serde_json::json!({ "metadata": { "annotations": pod.metadata.annotations } });
    spot_policy(&value).map_err(|e| e.to_string())
}

fn annotation<'a>(pod: &'a Pod, key: &str) -> Option<&'a str> {
    pod.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

/// The hourly price a `SpotWithPriceLimit` Pod accepts at most.
pub fn hourly_limit(policy: &SpotPolicy) -> Option<u64> {
    match policy.strategy {
        SpotStrategy::AsPriceGo => None,
        SpotStrategy::WithPriceLimit { hourly_limit } => Some(hourly_limit),
    }
}

/// Whether a placed Pod runs on spot capacity.
pub fn is_spot(pod: &Pod) -> bool {
    annotation(pod, CAPACITY_TYPE_ANNOTATION) == Some(CAPACITY_SPOT)
}

/// When the Pod's spot instance is to be released, if a release was decided.
pub fn release_at(pod: &Pod) -> Option<DateTime<Utc>> {
    annotation(pod, SPOT_RELEASE_AT_ANNOTATION).and_then(parse_time)
}

/// The running spot instances, and the uids of those already being released.
pub fn spot_instances(pods: &[Arc<Pod>]) -> (Vec<SpotInstance>, HashSet<String>) {
    let mut instances = Vec::new();
    let mut releasing = HashSet::new();
    for pod in pods {
        if !is_spot(pod) {
            continue;
        }
        let Some((host, spec)) = placement_of(pod) else {
            continue;
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        if release_at(pod).is_some() || pod.metadata.deletion_timestamp.is_some() {
            releasing.insert(uid.clone());
        }
        let started = pod
            .status
            .as_ref()
            .and_then(|s| s.start_time.clone())
            .or_else(|| pod.metadata.creation_timestamp.clone())
            .map(|t| t.0)
            .unwrap_or_default();
        let protected_until = annotation(pod, SPOT_PROTECTED_UNTIL_ANNOTATION)
            .and_then(parse_time)
            .unwrap_or(started);
        let hourly_on_demand = annotation(pod, HOURLY_PRICE_ANNOTATION)
            .and_then(|p| parse_money(p, 9).ok())
            .unwrap_or(0);
        let hourly_limit = policy_of(pod).ok().flatten().and_then(|p| hourly_limit(&p));
        instances.push(SpotInstance {
            uid,
            host: host.to_string(),
            millicpu: spec.millicpu,
            memory_mib: spec.memory_mib,
            priority: pod.spec.as_ref().and_then(|s| s.priority).unwrap_or(0),
            started,
            protected_until,
            hourly_limit,
            hourly_on_demand,
        });
    }
    (instances, releasing)
}

/// The spot instances to reclaim so that an on-demand instance of `need` (millicpu, MiB)
/// fits on one host, and that host; `None` if reclaiming cannot make room anywhere.
///
/// `pool` counts everything placed, including instances being released and the room already
/// promised to on-demand Pods waiting for earlier releases, so a host can be over-promised:
/// its deficit is added to what must be freed there. Instances in `releasing` count as
/// freed already.
pub fn reclaim_for(
    need: (u64, u64),
    pool: &Pool,
    spots: &[SpotInstance],
    releasing: &HashSet<String>,
    now: DateTime<Utc>,
) -> Option<(String, Vec<String>)> {
    const MIB: u64 = 1024 * 1024;
    let mut best: Option<(String, Vec<String>)> = None;
    for h in pool.hosts() {
        let used = pool.usage(&h.name);
        let cpu_deficit = used.cpu_millis.saturating_sub(h.cpu_millis);
        let mem_deficit = used
            .memory_bytes
            .saturating_sub(h.memory_bytes)
            .div_ceil(MIB);
        let room = HostRoom {
            host: h.name.clone(),
            free_millicpu: h.cpu_millis.saturating_sub(used.cpu_millis),
            free_memory_mib: h.memory_bytes.saturating_sub(used.memory_bytes) / MIB,
        };
        let need_here = (need.0 + cpu_deficit, need.1 + mem_deficit);
        let on_host: Vec<SpotInstance> =
            spots.iter().filter(|s| s.host == h.name).cloned().collect();
        let Some(found) = victims_for(need_here, &[room], &on_host, releasing, now) else {
            continue;
        };
        if best.as_ref().is_none_or(|(_, v)| found.1.len() < v.len()) {
            best = Some(found);
        }
    }
    best
}

/// The pool's utilisation: everything placed over everything live, in parts per million.
pub fn utilisation(pool: &Pool) -> u32 {
    const MIB: u64 = 1024 * 1024;
    let (mut cap_cpu, mut cap_mem, mut used_cpu, mut used_mem) = (0u64, 0u64, 0u64, 0u64);
    for h in pool.hosts() {
        let used = pool.usage(&h.name);
        cap_cpu += h.cpu_millis;
        cap_mem += h.memory_bytes / MIB;
        used_cpu += used.cpu_millis.min(h.cpu_millis);
        used_mem += (used.memory_bytes / MIB).min(h.memory_bytes / MIB);
    }
    nodeless_core::billing::utilisation_ppm(used_cpu, cap_cpu, used_mem, cap_mem)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placement::HostCapacity;

    #[test]
    fn the_policy_comes_from_our_annotations_or_the_ask_aliases() {
        let pod = |annotations: serde_json::Value| -> Pod {
            serde_json::from_value(serde_json::json!({"metadata": {"annotations": annotations}}))
                .expect("pod")
        };
        assert_eq!(policy_of(&pod(serde_json::json!({}))), Ok(None));
        let ask = pod(serde_json::json!({"k8s.aliyun.com/eci-spot-strategy": "SpotAsPriceGo"}));
        assert!(matches!(policy_of(&ask), Ok(Some(_))));
        let bad = pod(serde_json::json!({"nodeless.dev/spot-strategy": "Cheap"}));
        assert!(policy_of(&bad).is_err());
    }
    use nodeless_core::instance_spec::InstanceSpec;

    const GIB: u64 = 1 << 30;

    fn spot(uid: &str, started_secs: i64) -> SpotInstance {
        let t = DateTime::from_timestamp(started_secs, 0).expect("valid");
        SpotInstance {
            uid: uid.into(),
            host: "h1".into(),
            millicpu: 1000,
            memory_mib: 2048,
            priority: 0,
            started: t,
            protected_until: t,
            hourly_limit: None,
            hourly_on_demand: 0,
        }
    }

    fn full_pool() -> Pool {
        let mut pool = Pool::new(vec![HostCapacity {
            name: "h1".into(),
            cpu_millis: 4000,
            memory_bytes: 16 * GIB,
            runtimes: vec!["runc".into()],
        }]);
        for _ in 0..4 {
            pool.count("h1", &InstanceSpec::new(1000, 2048));
        }
        pool
    }

    #[test]
    fn each_waiting_on_demand_pod_gets_its_own_victims() {
        let now = DateTime::from_timestamp(1000, 0).expect("valid");
        let spots: Vec<SpotInstance> = (0..4).map(|i| spot(&format!("s{i}"), i)).collect();
        let mut pool = full_pool();
        let mut releasing = HashSet::new();
        // The first on-demand Pod: the most recently started spot instance goes.
        let (host, victims) =
            reclaim_for((1000, 2048), &pool, &spots, &releasing, now).expect("room");
        assert_eq!(
            (host.as_str(), victims.clone()),
            ("h1", vec!["s3".to_string()])
        );
        releasing.extend(victims);
        pool.count(&host, &InstanceSpec::new(1000, 2048));
        // The second one must not count the room promised to the first: a second victim.
        let (_, victims) = reclaim_for((1000, 2048), &pool, &spots, &releasing, now).expect("room");
        assert_eq!(victims, vec!["s2".to_string()]);
    }

    #[test]
    fn protected_instances_are_not_reclaimed() {
        let now = DateTime::from_timestamp(1000, 0).expect("valid");
        let mut spots: Vec<SpotInstance> = (0..4).map(|i| spot(&format!("s{i}"), i)).collect();
        for s in &mut spots {
            s.protected_until = now + chrono::Duration::hours(1);
        }
        assert!(reclaim_for((1000, 2048), &full_pool(), &spots, &HashSet::new(), now).is_none());
    }
}
