//! Choosing spot instances to reclaim: those whose price has passed their limit, and those
//! whose capacity an on-demand instance needs. Instances inside their protection period are
//! never chosen.

use super::catalog::spot_hourly;
use chrono::{DateTime, Utc};
use std::cmp::Ordering;
use std::collections::HashSet;

/// A running spot instance, as the scheduler sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpotInstance {
    pub uid: String,
    pub host: String,
    pub millicpu: u64,
    pub memory_mib: u64,
    /// The Pod's priority; lower is reclaimed first.
    pub priority: i32,
    pub started: DateTime<Utc>,
    pub protected_until: DateTime<Utc>,
    /// Nanos per hour; None for `SpotAsPriceGo`.
    pub hourly_limit: Option<u64>,
    /// Nanos per hour, locked at creation.
    pub hourly_on_demand: u64,
}

impl SpotInstance {
    fn reclaimable(&self, now: DateTime<Utc>) -> bool {
        now >= self.protected_until
    }
}

/// Free room on one host: its capacity less all usage, spot included (may be 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoom {
    pub host: String,
    pub free_millicpu: u64,
    pub free_memory_mib: u64,
}

/// The order victims are taken in: lowest priority, then most recently started (it has lost
/// the least work), then uid so the choice is deterministic.
fn victim_order(a: &SpotInstance, b: &SpotInstance) -> Ordering {
    a.priority
        .cmp(&b.priority)
        .then(b.started.cmp(&a.started))
        .then(a.uid.cmp(&b.uid))
}

/// Spot instances past protection whose spot price at `ratio_ppm` exceeds their limit, in
/// the order they should be reclaimed.
pub fn over_limit(instances: &[SpotInstance], ratio_ppm: u32, now: DateTime<Utc>) -> Vec<String> {
    let mut over: Vec<&SpotInstance> = instances
        .iter()
        .filter(|i| i.reclaimable(now))
        .filter(|i| {
            i.hourly_limit
                .is_some_and(|limit| spot_hourly(i.hourly_on_demand, ratio_ppm) > limit)
        })
        .collect();
    over.sort_by(|a, b| victim_order(a, b));
    over.into_iter().map(|i| i.uid.clone()).collect()
}

/// The victims on one host whose release makes room for `need` (millicpu, memory MiB), or
/// None if no host can. Instances in `already` (being released) count as freed without being
/// chosen again, so a host they already make room on needs no new victims.
///
/// On each host, victims are taken in order (lowest priority first, then most recently
/// started, then uid) until there is room; then any of them, highest in that order first,
/// whose release turns out not to be needed is spared, as Kubernetes preemption does. The
/// host chosen needs the fewest new victims; ties go to the least total victim priority,
/// then to the host name.
pub fn victims_for(
    need: (u64, u64),
    hosts: &[HostRoom],
    instances: &[SpotInstance],
    already: &HashSet<String>,
    now: DateTime<Utc>,
) -> Option<(String, Vec<String>)> {
    hosts
        .iter()
        .filter_map(|host| victims_on(host, need, instances, already, now))
        .min_by(|(a_host, a), (b_host, b)| {
            a.len()
                .cmp(&b.len())
                .then(priority_sum(a).cmp(&priority_sum(b)))
                .then(a_host.host.cmp(&b_host.host))
        })
        .map(|(host, victims)| {
            let uids = victims.iter().map(|v| v.uid.clone()).collect();
            (host.host.clone(), uids)
        })
}

fn priority_sum(victims: &[&SpotInstance]) -> i64 {
    victims.iter().map(|v| i64::from(v.priority)).sum()
}

/// Free room on a host after its instances in `already` are gone.
fn room_after_release(
    host: &HostRoom,
    on_host: &[&SpotInstance],
    already: &HashSet<String>,
) -> (u64, u64) {
    on_host.iter().filter(|i| already.contains(&i.uid)).fold(
        (host.free_millicpu, host.free_memory_mib),
        |(cpu, mem), i| {
            (
                cpu.saturating_add(i.millicpu),
                mem.saturating_add(i.memory_mib),
            )
        },
    )
}

fn victims_on<'a>(
    host: &'a HostRoom,
    need: (u64, u64),
    instances: &'a [SpotInstance],
    already: &HashSet<String>,
    now: DateTime<Utc>,
) -> Option<(&'a HostRoom, Vec<&'a SpotInstance>)> {
    let on_host: Vec<&SpotInstance> = instances.iter().filter(|i| i.host == host.host).collect();
    let base = room_after_release(host, &on_host, already);
    let fits = |victims: &[&SpotInstance]| {
        let (cpu, mem) = victims.iter().fold(base, |(cpu, mem), v| {
            (
                cpu.saturating_add(v.millicpu),
                mem.saturating_add(v.memory_mib),
            )
        });
        cpu >= need.0 && mem >= need.1
    };
    let mut candidates: Vec<&SpotInstance> = on_host
        .into_iter()
        .filter(|i| !already.contains(&i.uid) && i.reclaimable(now))
        .collect();
    candidates.sort_by(|a, b| victim_order(a, b));
    let mut victims = Vec::new();
    for candidate in candidates {
        if fits(&victims) {
            break;
        }
        victims.push(candidate);
    }
    if !fits(&victims) {
        return None;
    }
    // Spare victims from the most valuable down while the rest still make room.
    for i in (0..victims.len()).rev() {
        let mut without = victims.clone();
        without.remove(i);
        if fits(&without) {
            victims = without;
        }
    }
    Some((host, victims))
}

#[cfg(test)]
#[path = "reclaim_tests.rs"]
mod tests;
