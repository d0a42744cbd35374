//! Root-only, ignored by default: the latency of one warm instance start-to-removal through
//! the engine (busybox `true`, CNI network with its warm pool), next to bare `runc run` of an
//! equivalent prepared bundle. Run with
//! `cargo test --release -p nodeless-engine --test instance_bench -- --ignored --nocapture`.

mod instance_common;
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use instance_common::*;
use nodeless_engine::instance::{Engine, InstanceSpec};

fn percentiles(mut ms: Vec<f64>) -> String {
    ms.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    format!(
        "p50 {:6.1} ms  p90 {:6.1} ms  p99 {:6.1} ms  (n={})",
        at(0.5),
        at(0.9),
        at(0.99),
        ms.len()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn warm_start_to_removal_latency() {
    require_root!();
    if std::env::var_os("NODELESS_BENCH_TRACE").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter("nodeless_engine=debug")
            .with_writer(std::io::stderr)
            .try_init();
    }
    let net = support::network::TestNetwork::with_config(24, |c| {
        c.warm_pool = std::env::var("NODELESS_BENCH_POOL")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2)
    });
    let root = TestRoot::new();
    let engine = engine_with(root.path(), Arc::new(net.net.clone()));
    let runs = 25;
    let (mut total, mut start_exit, mut removal) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..runs + 2 {
        let id = format!("bench-{i}");
        let mut spec = InstanceSpec::single(&id, &id, "busybox");
        spec.containers[0].command = cmd(&["true"]);
        let t0 = Instant::now();
        engine.create(spec).await.expect("create");
        let st = wait_for(&engine, &id, Duration::from_secs(20), |s| {
            s.phase.is_finished()
        })
        .await;
        assert_eq!(exit_code(&st, 0), Some(0));
        let t1 = Instant::now();
        engine.remove(&id).await.expect("remove");
        let t2 = Instant::now();
        if i >= 2 {
            // the first runs warm the caches and the network's pool
            total.push((t2 - t0).as_secs_f64() * 1000.0);
            start_exit.push((t1 - t0).as_secs_f64() * 1000.0);
            removal.push((t2 - t1).as_secs_f64() * 1000.0);
        }
        tokio::time::sleep(Duration::from_millis(300)).await; // let the pool refill, as between CLI runs
    }
    println!("engine create..exit   {}", percentiles(start_exit));
    println!("engine remove         {}", percentiles(removal));
    println!("engine total          {}", percentiles(total));
    let _ = net.net.drain_warm_pool().await;
}

/// Busy and total jiffies of the whole machine, from /proc/stat's first line.
fn machine_cpu() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").expect("/proc/stat");
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .expect("cpu line")
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().expect("jiffies"))
        .collect();
    let idle = fields[3] + fields[4]; // idle + iowait
    let total: u64 = fields.iter().take(8).sum();
    (total - idle, total)
}

/// The floor under the Pod burst benchmark (`./x bench pods`): N instances (default 500,
/// `NODELESS_BENCH_BURST`) created at once through the engine alone — no API server,
/// scheduler or agent — each `sleep 3600` on the CNI network, until every one is Running.
/// Prints the time and the CPU the whole machine used. Run with
/// `cargo test --release -p nodeless-engine --test instance_bench -- --ignored --nocapture burst`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: run explicitly"]
async fn burst_of_instances_until_all_running() {
    require_root!();
    let n: usize = std::env::var("NODELESS_BENCH_BURST")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let net = support::network::TestNetwork::with_config(25, |c| {
        c.subnet = Some("10.232.0.0/21".parse().expect("subnet"));
        c.warm_pool = 2;
    });
    let root = TestRoot::new();
    let engine = Arc::new(engine_with(root.path(), Arc::new(net.net.clone())));
    // Warm the pool and the caches with one instance, as the Pod benchmark does.
    let mut warm = InstanceSpec::single("warm", "warm", "busybox");
    warm.containers[0].command = cmd(&["true"]);
    engine.create(warm).await.expect("create warm");
    wait_for(&engine, "warm", Duration::from_secs(20), |s| {
        s.phase.is_finished()
    })
    .await;
    engine.remove("warm").await.expect("remove warm");
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (busy0, total0) = machine_cpu();
    let t0 = Instant::now();
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..n {
        let engine = engine.clone();
        creates.spawn(async move {
            let id = format!("burst-{i}");
            let mut spec = InstanceSpec::single(&id, &id, "busybox");
            spec.containers[0].command = cmd(&["sleep", "3600"]);
            engine.create(spec).await.expect("create");
        });
    }
    while let Some(r) = creates.join_next().await {
        r.expect("create task");
    }
    let created = t0.elapsed();
    loop {
        let running = futures::future::join_all((0..n).map(|i| {
            let engine = engine.clone();
            async move {
                engine
                    .status(&format!("burst-{i}"))
                    .await
                    .map(|s| s.phase == nodeless_engine::instance::InstancePhase::Running)
                    .unwrap_or(false)
            }
        }))
        .await
        .into_iter()
        .filter(|r| *r)
        .count();
        if running == n {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(300),
            "{running} of {n} running after 300 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let all = t0.elapsed();
    let (busy1, total1) = machine_cpu();
    let hz = 100.0; // USER_HZ
    let busy_s = (busy1 - busy0) as f64 / hz;
    println!(
        "engine burst of {n}: creates returned {:.2} s, all Running {:.2} s; machine CPU {:.1} s ({:.0} ms per instance, {:.0}% of {} cores)",
        created.as_secs_f64(),
        all.as_secs_f64(),
        busy_s,
        1000.0 * busy_s / n as f64,
        100.0 * (busy1 - busy0) as f64 / (total1 - total0) as f64,
        std::thread::available_parallelism().map(|p| p.get()).unwrap_or(1),
    );
    let mut removes = tokio::task::JoinSet::new();
    for i in 0..n {
        let engine = engine.clone();
        removes.spawn(async move { engine.remove(&format!("burst-{i}")).await });
    }
    while let Some(r) = removes.join_next().await {
        r.expect("remove task").expect("remove");
    }
    let _ = net.net.drain_warm_pool().await;
}
