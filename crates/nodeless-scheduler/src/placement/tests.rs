use super::*;

const GIB: u64 = 1 << 30;

fn host(name: &str, cpu: u64, memory_gib: u64, runtimes: &[&str]) -> HostCapacity {
    HostCapacity {
        name: name.into(),
        cpu_millis: cpu * 1000,
        memory_bytes: memory_gib * GIB,
        runtimes: runtimes.iter().map(|r| r.to_string()).collect(),
    }
}

fn spec(s: &str) -> InstanceSpec {
    s.parse().expect("valid spec")
}

fn runc(spec: &InstanceSpec) -> Request<'_> {
    Request {
        spec,
        runtime: "runc",
    }
}

#[test]
fn an_empty_pool_says_no_host_is_live() {
    let pool = Pool::new(vec![]);
    let err = pool.choose(runc(&spec("2-4Gi"))).expect_err("no hosts");
    assert_eq!(err, Unschedulable::NoLiveHosts);
    assert!(err.to_string().starts_with("0/0 hosts"), "{err}");
}

#[test]
fn the_host_with_the_most_free_capacity_wins() {
    let mut pool = Pool::new(vec![
        host("a", 8, 16, &["runc"]),
        host("b", 8, 16, &["runc"]),
    ]);
    pool.count("a", &spec("2-4Gi"));
    assert_eq!(pool.choose(runc(&spec("1-2Gi"))), Ok("b".to_string()));
}

#[test]
fn ties_go_to_the_smallest_name_whatever_the_input_order() {
    let pool = Pool::new(vec![
        host("b", 8, 16, &["runc"]),
        host("a", 8, 16, &["runc"]),
    ]);
    assert_eq!(pool.choose(runc(&spec("1-2Gi"))), Ok("a".to_string()));
}

#[test]
fn placing_counts_the_instance_so_a_batch_spreads_and_never_oversubscribes() {
    let mut pool = Pool::new(vec![host("a", 4, 8, &["runc"]), host("b", 4, 8, &["runc"])]);
    let s = spec("1-2Gi");
    let placed: Vec<String> = (0..8)
        .map(|_| pool.place(runc(&s)).expect("room"))
        .collect();
    assert_eq!(placed.iter().filter(|h| *h == "a").count(), 4);
    assert_eq!(placed[..2], ["a".to_string(), "b".to_string()]);
    let err = pool.place(runc(&s)).expect_err("full");
    assert_eq!(
        err.to_string(),
        "0/2 hosts of the instance pool have room: insufficient cpu on 2 hosts (requested 1, most free 0 of 4), insufficient memory on 2 hosts (requested 2Gi, most free 0 of 8Gi)"
    );
}

#[test]
fn a_shortage_of_cpu_names_request_free_and_capacity() {
    let mut pool = Pool::new(vec![host("h1", 8, 64, &["runc"])]);
    pool.count("h1", &spec("4-8Gi"));
    pool.count("h1", &spec("2.5-4Gi"));
    let err = pool.choose(runc(&spec("2-4Gi"))).expect_err("short");
    assert_eq!(
        err.to_string(),
        "0/1 hosts of the instance pool have room: insufficient cpu (requested 2, free 1.5 of 8)"
    );
}

#[test]
fn a_shortage_of_memory_is_reported_in_gib() {
    let mut pool = Pool::new(vec![host("h1", 64, 16, &["runc"])]);
    pool.count("h1", &spec("2-14.5Gi"));
    let err = pool.choose(runc(&spec("2-4Gi"))).expect_err("short");
    assert_eq!(
        err.to_string(),
        "0/1 hosts of the instance pool have room: insufficient memory (requested 4Gi, free 1.5Gi of 16Gi)"
    );
}

#[test]
fn a_gvisor_instance_goes_only_where_runsc_is_installed() {
    let pool = Pool::new(vec![
        host("a", 64, 64, &["runc"]),
        host("b", 2, 4, &["runc", "runsc"]),
    ]);
    let s = spec("1-2Gi");
    let gvisor = Request {
        spec: &s,
        runtime: "runsc",
    };
    assert_eq!(pool.choose(gvisor), Ok("b".to_string()));
    let pool = Pool::new(vec![host("a", 64, 64, &["runc"])]);
    let err = pool.choose(gvisor).expect_err("no runsc");
    assert_eq!(
        err.to_string(),
        "0/1 hosts of the instance pool have room: runtime runsc not installed"
    );
}

#[test]
fn gpu_instances_are_unschedulable_until_hosts_offer_gpus() {
    let pool = Pool::new(vec![host("a", 64, 64, &["runc"])]);
    let mut s = spec("8-32Gi");
    s.gpu = 1;
    let err = pool.choose(runc(&s)).expect_err("no gpu");
    assert!(
        err.to_string()
            .contains("no GPUs (requested 1 nvidia.com/gpu)"),
        "{err}"
    );
}

#[test]
fn usage_on_hosts_outside_the_pool_takes_nothing() {
    let mut pool = Pool::new(vec![host("a", 2, 4, &["runc"])]);
    pool.count("gone", &spec("2-4Gi"));
    assert_eq!(pool.choose(runc(&spec("2-4Gi"))), Ok("a".to_string()));
}

#[test]
fn quantities_read_as_people_write_them() {
    assert_eq!(cpu_text(250), "0.25");
    assert_eq!(cpu_text(8000), "8");
    assert_eq!(memory_text(512 << 20), "512Mi");
    assert_eq!(memory_text(16 << 30), "16Gi");
    assert_eq!(memory_text(3 << 29), "1.5Gi");
    assert_eq!(memory_text(0), "0");
}
