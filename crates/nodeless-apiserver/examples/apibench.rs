//! API server benchmark: pod creates at 1, 16 and 64 concurrent clients, get and list
//! latency over 10,000 stored pods, watch delivery latency, and the server's memory.
//!
//! Run through `./x bench api`, which starts `nodeless apiserver` and passes its kubeconfig
//! and pid here: `apibench KUBECONFIG PID`.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};
use kube::{Client, Config};
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"app": "bench", "tier": "web"}},
        "spec": {"containers": [{"name": "app", "image": "registry.local/app:1.0",
                 "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                 "ports": [{"containerPort": 8080}], "env": [{"name": "MODE", "value": "bench"}]}]}
    }))
    .expect("valid pod")
}

/// Creates `count` pods from `clients` concurrent tasks; returns (creates/s, sorted latencies).
async fn create_phase(
    pods: &Api<Pod>,
    prefix: &str,
    count: usize,
    clients: usize,
) -> (f64, Vec<Duration>) {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let pods = pods.clone();
            let next = next.clone();
            let prefix = prefix.to_string();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= count {
                        return lat;
                    }
                    let t = Instant::now();
                    pods.create(&PostParams::default(), &pod(&format!("{prefix}-{i}")))
                        .await
                        .expect("create");
                    lat.push(t.elapsed());
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("task"));
    }
    let rate = count as f64 / start.elapsed().as_secs_f64();
    all.sort();
    (rate, all)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let kubeconfig = kube::config::Kubeconfig::read_from(&args[1])?;
    let pid: u32 = args[2].parse()?;
    let total: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let cfg = Config::from_custom_kubeconfig(kubeconfig, &Default::default()).await?;
    let client = Client::try_from(cfg)?;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = rss_mib(pid);
    println!("| measure | result |\n|---|---|");
    println!("| resident memory, idle | {idle:.1} MiB |");

    let phases = [
        (1usize, total / 20),
        (16, total / 5),
        (64, total - total / 20 - total / 5),
    ];
    let mut create_lat = Vec::new();
    for (clients, count) in phases {
        let (rate, lat) = create_phase(&pods, &format!("c{clients}"), count, clients).await;
        println!(
            "| pod creates, {clients} client(s), {count} pods | {rate:.0}/s (p50 {:.1} ms, p99 {:.1} ms) |",
            pct(&lat, 0.5),
            pct(&lat, 0.99)
        );
        create_lat.extend(lat);
    }
    create_lat.sort();
    println!(
        "| create latency, all phases | p50 {:.1} ms, p99 {:.1} ms |",
        pct(&create_lat, 0.5),
        pct(&create_lat, 0.99)
    );

    let mut gets = Vec::new();
    for i in 0..2000 {
        let name = format!("c64-{}", (i * 7919) % (total - total / 20 - total / 5));
        let t = Instant::now();
        pods.get(&name).await?;
        gets.push(t.elapsed());
    }
    gets.sort();
    println!(
        "| get latency (2,000 gets) | p50 {:.2} ms, p99 {:.2} ms |",
        pct(&gets, 0.5),
        pct(&gets, 0.99)
    );

    let mut lists = Vec::new();
    let mut n = 0;
    for _ in 0..10 {
        let t = Instant::now();
        n = pods.list(&ListParams::default()).await?.items.len();
        lists.push(t.elapsed());
    }
    lists.sort();
    println!(
        "| list of {n} pods (10 lists, decoded by the client) | p50 {:.0} ms, p99 {:.0} ms |",
        pct(&lists, 0.5),
        pct(&lists, 0.99)
    );

    let with_pods = rss_mib(pid);
    println!(
        "| resident memory with {n} pods | {with_pods:.1} MiB (+{:.1} MiB per 1,000 pods) |",
        (with_pods - idle) / (n as f64 / 1000.0)
    );

    // Watch latency: time from sending a create to receiving its ADDED event.
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let rv = cms
        .list(&ListParams::default().limit(1))
        .await?
        .metadata
        .resource_version
        .unwrap_or_default();
    let mut stream = cms.watch(&WatchParams::default(), &rv).await?.boxed();
    let sent: Arc<parking_lot::Mutex<HashMap<String, Instant>>> = Arc::default();
    let sender = {
        let sent = sent.clone();
        let cms = cms.clone();
        tokio::spawn(async move {
            for i in 0..1000 {
                let name = format!("w{i}");
                sent.lock().insert(name.clone(), Instant::now());
                let cm: ConfigMap =
                    serde_json::from_value(json!({"metadata": {"name": name}})).expect("cm");
                cms.create(&PostParams::default(), &cm)
                    .await
                    .expect("create");
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let mut watch_lat = Vec::new();
    while watch_lat.len() < 1000 {
        match tokio::time::timeout(Duration::from_secs(10), stream.next()).await {
            Ok(Some(Ok(WatchEvent::Added(cm)))) => {
                let name = cm.metadata.name.unwrap_or_default();
                if let Some(t) = sent.lock().get(&name) {
                    watch_lat.push(t.elapsed());
                }
            }
            Ok(Some(Ok(_))) => {}
            other => anyhow::bail!("watch ended: {other:?}"),
        }
    }
    sender.await?;
    watch_lat.sort();
    println!("| watch delivery (create sent → event received, 1,000 events) | p50 {:.2} ms, p99 {:.2} ms |", pct(&watch_lat, 0.5), pct(&watch_lat, 0.99));
    Ok(())
}
