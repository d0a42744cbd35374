//! Pod startup benchmark (issue 4): startup latency as upstream defines it — from the Pod's
//! creation to all its containers running, seen through a watch — for Pods created one at a
//! time at a fixed rate, and the time until a burst of Pods created at once are all Running.
//!
//! Run through `./x bench pods`, which starts `nodeless up` and passes its kubeconfig and pid:
//! `podbench KUBECONFIG PID SERIAL_PODS BURST_PODS`.
//!
//! The creation time is taken on the client just before the create call: creationTimestamp
//! has one-second resolution, too coarse for a sub-second bar, and the client's clock can only
//! make the figure larger (it includes the create round trip).

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams, WatchEvent, WatchParams};
use kube::{Client, Config};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

type Seen = Arc<Mutex<HashMap<String, Instant>>>;

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn pod(name: &str, run: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"bench": run}},
        "spec": {
            "terminationGracePeriodSeconds": 0,
            "containers": [{"name": "app", "image": "busybox", "command": ["sleep", "3600"],
                            "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}]}
    }))
    .expect("static pod")
}

fn all_running(p: &Pod) -> bool {
    let Some(statuses) = p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
    else {
        return false;
    };
    !statuses.is_empty()
        && statuses
            .iter()
            .all(|c| c.state.as_ref().and_then(|s| s.running.as_ref()).is_some())
}

/// Records, per Pod name, when the watch first showed all its containers running.
async fn watch_running(pods: Api<Pod>, run: String, seen: Seen) {
    let wp = WatchParams::default().labels(&format!("bench={run}"));
    let mut stream = match pods.watch(&wp, "0").await {
        Ok(s) => s.boxed(),
        Err(e) => panic!("watch: {e}"),
    };
    while let Some(ev) = stream.next().await {
        if let Ok(WatchEvent::Added(p) | WatchEvent::Modified(p)) = ev {
            if all_running(&p) {
                let name = p.metadata.name.unwrap_or_default();
                seen.lock()
                    .expect("lock")
                    .entry(name)
                    .or_insert_with(Instant::now);
            }
        }
    }
}

async fn wait_all(seen: &Seen, n: usize, limit: Duration) -> bool {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        if seen.lock().expect("lock").len() >= n {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// The machine's idle and total CPU time so far, in ticks of 1/100 s (/proc/stat).
fn machine_ticks() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait ...: idle and iowait are idle time.
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    (idle, fields.iter().sum())
}

/// CPU time (user + system) a process has used so far, in ticks of 1/100 s.
fn process_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces): state is the first, utime the 12th.
    let rest = stat.rsplit_once(") ").map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<u64> = rest
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse().ok())
        .collect();
    fields.iter().sum()
}

/// The share of the machine's CPU time that was idle over the last second.
async fn idle_share() -> f64 {
    let (idle0, total0) = machine_ticks();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (idle1, total1) = machine_ticks();
    (idle1 - idle0) as f64 / (total1 - total0).max(1) as f64
}

/// CPU seconds used between two samples: by the whole machine, and by the `nodeless up` process.
struct CpuUse {
    machine: f64,
    control_plane: f64,
}

fn cpu_since(pid: u32, machine0: (u64, u64), process0: u64) -> CpuUse {
    let (idle1, total1) = machine_ticks();
    let busy = (total1 - machine0.1).saturating_sub(idle1 - machine0.0);
    CpuUse {
        machine: busy as f64 / 100.0,
        control_plane: process_ticks(pid).saturating_sub(process0) as f64 / 100.0,
    }
}

/// Waits (at most a minute) until the machine is idle again: the API lists deleted Pods as
/// gone at once, while the host still tears their instances down (runtime and CNI DEL
/// processes). The burst is measured on its own, not on top of that.
async fn settle() {
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(60) {
        if idle_share().await >= 0.9 {
            break;
        }
    }
    eprintln!(
        "waited {:.1} s for the host to finish tearing down the serial Pods",
        started.elapsed().as_secs_f64()
    );
}

async fn delete_run(pods: &Api<Pod>, run: &str) {
    let lp = ListParams::default().labels(&format!("bench={run}"));
    let dp = DeleteParams::default().grace_period(0);
    let _ = pods.delete_collection(&dp, &lp).await;
    for _ in 0..600 {
        match pods.list(&lp).await {
            Ok(l) if l.items.is_empty() => return,
            _ => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    eprintln!("warning: pods of {run} still listed after 5 minutes");
}

async fn serial(pods: &Api<Pod>, n: usize) -> Vec<Duration> {
    let run = format!("serial-{}", std::process::id());
    let seen: Seen = Arc::default();
    let watcher = tokio::spawn(watch_running(pods.clone(), run.clone(), seen.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut created = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_millis(200)); // 5 Pods per second
    for i in 0..n {
        tick.tick().await;
        let name = format!("s-{i}");
        created.insert(name.clone(), Instant::now());
        pods.create(&PostParams::default(), &pod(&name, &run))
            .await
            .expect("create");
    }
    let ok = wait_all(&seen, n, Duration::from_secs(120)).await;
    watcher.abort();
    if !ok {
        eprintln!("warning: not every serial Pod started within 2 minutes");
    }
    let seen = seen.lock().expect("lock").clone();
    let mut lat: Vec<Duration> = created
        .iter()
        .filter_map(|(name, t0)| seen.get(name).map(|t| t.duration_since(*t0)))
        .collect();
    lat.sort();
    delete_run(pods, &run).await;
    lat
}

async fn burst(pods: &Api<Pod>, n: usize, pid: u32) -> (Duration, usize, f64, CpuUse) {
    let run = format!("burst-{}", std::process::id());
    let seen: Seen = Arc::default();
    let watcher = tokio::spawn(watch_running(pods.clone(), run.clone(), seen.clone()));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (machine0, process0) = (machine_ticks(), process_ticks(pid));
    let t0 = Instant::now();
    let creates = futures::stream::iter(0..n)
        .map(|i| {
            let (pods, run) = (pods.clone(), run.clone());
            async move {
                pods.create(&PostParams::default(), &pod(&format!("b-{i}"), &run))
                    .await
                    .expect("create")
            }
        })
        .buffer_unordered(32)
        .count();
    let mut peak_rss = 0f64;
    let sampler = async {
        loop {
            peak_rss = peak_rss.max(rss_mib(pid));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    let all = async {
        creates.await;
        wait_all(&seen, n, Duration::from_secs(300)).await
    };
    let ok = tokio::select! {
        ok = all => ok,
        _ = sampler => unreachable!("the sampler loops forever"),
    };
    let took = t0.elapsed();
    let cpu = cpu_since(pid, machine0, process0);
    let running = seen.lock().expect("lock").len();
    watcher.abort();
    if !ok {
        eprintln!("warning: only {running}/{n} burst Pods started within 5 minutes");
    }
    let rss = peak_rss.max(rss_mib(pid));
    // What the control plane costs while the instances just run (status scans, heartbeats).
    let (machine0, process0) = (machine_ticks(), process_ticks(pid));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let at_rest = cpu_since(pid, machine0, process0);
    eprintln!(
        "at rest with {running} instances: the `nodeless up` process used {:.1}% of one core",
        10.0 * at_rest.control_plane
    );
    let t_del = Instant::now();
    delete_run(pods, &run).await;
    eprintln!(
        "deleting {n} Pods took {:.1} s",
        t_del.elapsed().as_secs_f64()
    );
    (took, running, rss, cpu)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 5 {
        eprintln!("usage: podbench KUBECONFIG PID SERIAL_PODS BURST_PODS");
        std::process::exit(2);
    }
    let kc = kube::config::Kubeconfig::read_from(&args[1])?;
    let pid: u32 = args[2].parse()?;
    let (n_serial, n_burst): (usize, usize) = (args[3].parse()?, args[4].parse()?);
    let client = Client::try_from(Config::from_custom_kubeconfig(kc, &Default::default()).await?)?;
    let pods: Api<Pod> = Api::namespaced(client, "default");

    let idle = rss_mib(pid);
    let lat = serial(&pods, n_serial).await;
    println!(
        "| {n_serial} Pods one at a time at 5/s: startup p50 / p99 / max | {:.0} ms / {:.0} ms / {:.0} ms ({} started) |",
        pct(&lat, 0.5),
        pct(&lat, 0.99),
        pct(&lat, 1.0),
        lat.len()
    );
    settle().await;
    let (took, running, rss, cpu) = burst(&pods, n_burst, pid).await;
    println!(
        "| {n_burst} Pods created at once: all Running | {:.2} s ({running} running) |",
        took.as_secs_f64()
    );
    let per_pod = |secs: f64| 1000.0 * secs / n_burst.max(1) as f64;
    println!(
        "| CPU used during the burst: whole machine / `nodeless up` process | {:.1} s ({:.0} ms per Pod) / {:.1} s ({:.0} ms per Pod) |",
        cpu.machine,
        per_pod(cpu.machine),
        cpu.control_plane,
        per_pod(cpu.control_plane)
    );
    println!("| control plane (`nodeless up` process) RSS: idle / peak during the burst | {idle:.0} MiB / {rss:.0} MiB |");
    Ok(())
}
