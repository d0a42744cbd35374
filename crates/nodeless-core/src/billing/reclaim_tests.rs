use super::*;
use chrono::TimeZone;

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_700_000_000 + secs, 0)
        .single()
        .expect("valid time")
}

/// A 1 vCPU / 1 GiB instance on `host` started at `started`, protected for 100 s.
fn spot(uid: &str, host: &str, priority: i32, started: i64) -> SpotInstance {
    SpotInstance {
        uid: uid.into(),
        host: host.into(),
        millicpu: 1000,
        memory_mib: 1024,
        priority,
        started: t(started),
        protected_until: t(started + 100),
        hourly_limit: None,
        hourly_on_demand: 100_000_000,
    }
}

fn room(host: &str, free_millicpu: u64, free_memory_mib: u64) -> HostRoom {
    HostRoom {
        host: host.into(),
        free_millicpu,
        free_memory_mib,
    }
}

fn none() -> HashSet<String> {
    HashSet::new()
}

fn pick(
    need: (u64, u64),
    hosts: &[HostRoom],
    instances: &[SpotInstance],
    already: &HashSet<String>,
) -> Option<(String, Vec<String>)> {
    victims_for(need, hosts, instances, already, t(1000))
}

fn answer(host: &str, uids: &[&str]) -> Option<(String, Vec<String>)> {
    Some((
        host.to_string(),
        uids.iter().map(|u| u.to_string()).collect(),
    ))
}

#[test]
fn instances_over_their_limit_are_reclaimed_past_protection() {
    let mut cheap = spot("cheap", "h1", 0, 0);
    cheap.hourly_limit = Some(40_000_000);
    let mut generous = spot("generous", "h1", 0, 0);
    generous.hourly_limit = Some(60_000_000);
    let market = spot("market", "h1", 0, 0);
    let mut young = spot("young", "h1", 0, 950);
    young.hourly_limit = Some(1);
    let all = [cheap, generous, market, young];
    // At 50% the price is 0.05: over 0.04, under 0.06; no limit never; protected never.
    assert_eq!(over_limit(&all, 500_000, t(1000)), ["cheap"]);
    assert_eq!(
        over_limit(&all, 400_000, t(1000)),
        Vec::<String>::new(),
        "equal is not over"
    );
    assert_eq!(over_limit(&all, 700_000, t(1000)), ["cheap", "generous"]);
    assert_eq!(
        over_limit(&all, 700_000, t(1050)),
        ["young", "cheap", "generous"]
    );
}

#[test]
fn protection_ends_exactly_at_protected_until() {
    let mut i = spot("a", "h1", 0, 0);
    i.hourly_limit = Some(1);
    assert!(over_limit(std::slice::from_ref(&i), 1_000_000, t(99)).is_empty());
    assert_eq!(over_limit(&[i], 1_000_000, t(100)), ["a"]);
}

#[test]
fn victims_are_lowest_priority_first_then_most_recent_then_uid() {
    let instances = [
        spot("old-low", "h1", 0, 0),
        spot("new-low", "h1", 0, 10),
        spot("high", "h1", 5, 20),
        spot("b-tie", "h1", 1, 30),
        spot("a-tie", "h1", 1, 30),
    ];
    let hosts = [room("h1", 0, 0)];
    let mut order = Vec::new();
    for n in 1..=5u64 {
        let (_, victims) = pick((n * 1000, n * 1024), &hosts, &instances, &none()).expect("room");
        order = victims;
    }
    assert_eq!(order.len(), 5);
    assert_eq!(
        pick((1000, 1024), &hosts, &instances, &none()),
        answer("h1", &["new-low"])
    );
    assert_eq!(
        pick((2000, 2048), &hosts, &instances, &none()),
        answer("h1", &["new-low", "old-low"])
    );
    assert_eq!(
        pick((3000, 3072), &hosts, &instances, &none()),
        answer("h1", &["new-low", "old-low", "a-tie"])
    );
}

#[test]
fn protected_instances_are_never_victims() {
    let instances = [spot("young", "h1", 0, 950), spot("old", "h1", 9, 0)];
    let hosts = [room("h1", 0, 0)];
    assert_eq!(
        pick((1000, 1024), &hosts, &instances, &none()),
        answer("h1", &["old"])
    );
    assert_eq!(pick((2000, 2048), &hosts, &instances, &none()), None);
}

#[test]
fn existing_free_room_counts_toward_the_need() {
    let instances = [spot("a", "h1", 0, 0)];
    let hosts = [room("h1", 500, 4096)];
    assert_eq!(
        pick((1500, 1024), &hosts, &instances, &none()),
        answer("h1", &["a"])
    );
    assert_eq!(pick((1600, 1024), &hosts, &instances, &none()), None);
}

#[test]
fn victims_not_needed_after_all_are_spared() {
    // The low-priority instance is too small to matter once the big one must go.
    let mut big = spot("big", "h1", 5, 0);
    big.millicpu = 4000;
    big.memory_mib = 8192;
    let instances = [spot("small", "h1", 0, 0), big];
    let hosts = [room("h1", 0, 0)];
    assert_eq!(
        pick((4000, 8192), &hosts, &instances, &none()),
        answer("h1", &["big"])
    );
}

#[test]
fn the_host_needing_fewest_victims_is_chosen() {
    let instances = [
        spot("a1", "a", 0, 0),
        spot("a2", "a", 0, 0),
        spot("b1", "b", 9, 0),
    ];
    let hosts = [room("a", 1000, 1024), room("b", 0, 0)];
    assert_eq!(
        pick((2000, 2048), &hosts, &instances, &none()),
        answer("a", &["a1"])
    );
    let hosts = [room("a", 0, 0), room("b", 1000, 1024)];
    assert_eq!(
        pick((2000, 2048), &hosts, &instances, &none()),
        answer("b", &["b1"])
    );
}

#[test]
fn ties_go_to_the_least_victim_priority_then_the_host_name() {
    let instances = [
        spot("a1", "a", 3, 0),
        spot("b1", "b", 2, 0),
        spot("c1", "c", 2, 0),
    ];
    let hosts = [room("a", 0, 0), room("c", 0, 0), room("b", 0, 0)];
    assert_eq!(
        pick((1000, 1024), &hosts, &instances, &none()),
        answer("b", &["b1"])
    );
}

#[test]
fn instances_already_being_released_count_as_freed_and_are_not_chosen_again() {
    let instances = [spot("a1", "a", 0, 0), spot("a2", "a", 0, 10)];
    let hosts = [room("a", 0, 0)];
    let already: HashSet<String> = ["a2".to_string()].into();
    assert_eq!(
        pick((1000, 1024), &hosts, &instances, &already),
        answer("a", &[])
    );
    assert_eq!(
        pick((2000, 2048), &hosts, &instances, &already),
        answer("a", &["a1"])
    );
    assert_eq!(pick((3000, 3072), &hosts, &instances, &already), None);
}

#[test]
fn no_host_means_no_victims() {
    assert_eq!(pick((1, 1), &[], &[spot("a", "a", 0, 0)], &none()), None);
    // An instance on a host not listed cannot help.
    assert_eq!(
        pick(
            (1000, 1024),
            &[room("b", 0, 0)],
            &[spot("a", "a", 0, 0)],
            &none()
        ),
        None
    );
}

#[test]
fn both_cpu_and_memory_must_fit() {
    let instances = [spot("a", "h1", 0, 0)];
    let hosts = [room("h1", 0, 0)];
    assert_eq!(pick((1000, 2048), &hosts, &instances, &none()), None);
    assert_eq!(pick((2000, 1024), &hosts, &instances, &none()), None);
}
