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
