//! ClusterIP vs Pod IP: request latency and throughput from one network namespace to an
//! HTTP server in another, directly and through a Service address programmed by the real
//! ruleset (`nodeless-proxy`'s rules in a table of their own). Root only; see
//! bench/service.sh.
//!
//! Usage: service_bench [ROUNDS] [SECONDS]   (default 3 rounds, 5 s per wrk run)

#[path = "../tests/support/mod.rs"]
mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nodeless_proxy::rules::RulesConfig;
use nodeless_proxy::{Endpoint, HostNft, Protocol, ServicePort, Syncer};
use support::{http_server, skip_reason, Netns, TestNet};

/// Sequential requests: CHUNKS chunks of CHUNK per path, each after WARMUP untimed ones.
const CHUNKS: usize = 20;
const CHUNK: usize = 500;
const WARMUP: usize = 20;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).map_or(Ok(3), |a| a.parse())?;
    let seconds: u32 = args.get(2).map_or(Ok(5), |a| a.parse())?;
    if let Some(why) = skip_reason() {
        return Err(format!("cannot run: {why}").into());
    }
    nodeless_proxy::sysctl::prepare_host("/proc/sys".as_ref())?;
    // Separate clients for the two paths: a client reusing a source port for the Pod IP that
    // a ClusterIP connection of it still holds in conntrack (TIME_WAIT lasts 120 s) clashes
    // with that connection's reply direction, and the SYN is lost.
    let net = TestNet::create(3);
    let server = &net.namespaces[0];
    let clients = [&net.namespaces[1], &net.namespaces[2]];
    server.run(|| http_server(8080, "ok".into()));
    let vip = Ipv4Addr::new(198, 18, (std::process::id() % 250) as u8, 1);
    let table = format!("nodeless_bench_{}", std::process::id());
    let nft = Arc::new(HostNft::new("nft").await?);
    let mut syncer = Syncer::new(
        nft.clone(),
        RulesConfig {
            table: table.clone(),
            pod_cidr: Some(net.subnet),
            service_cidr: None,
            masquerade_mark: 0x4000,
        },
    );
    syncer
        .sync(&[ServicePort {
            namespace: "bench".into(),
            name: "web".into(),
            port_name: String::new(),
            protocol: Protocol::Tcp,
            cluster_ip: vip,
            port: 80,
            affinity_timeout: None,
            endpoints: vec![Endpoint {
                ip: server.ip,
                port: 8080,
            }],
        }])
        .await?;
    let result = measure(clients, server.ip, vip, rounds, seconds);
    let result = match result {
        Ok(()) => sync_cost(&format!("{table}_sync")).await,
        err => err,
    };
    let _ = Command::new("nft")
        .args(["delete", "table", "ip", &table])
        .output();
    result
}

fn measure(
    clients: [&Netns; 2],
    pod_ip: Ipv4Addr,
    vip: Ipv4Addr,
    rounds: usize,
    seconds: u32,
) -> Result<(), Box<dyn std::error::Error>> {
    let targets = [
        ("Pod IP", SocketAddr::from((pod_ip, 8080))),
        ("ClusterIP", SocketAddr::from((vip, 80))),
    ];
    println!("load average at start: {}", load_average());
    // Sequential requests, the two paths alternating in chunks so both see the same load
    // from whatever else runs on the machine.
    for close in [true, false] {
        let mut times: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for _ in 0..CHUNKS {
            for (i, ((label, addr), client)) in targets.iter().zip(clients).enumerate() {
                let addr = *addr;
                let chunk = client
                    .run(move || sequential(addr, close))
                    .map_err(|e| format!("{label}: {e}"))?;
                times[i].extend(chunk);
            }
        }
        let what = if close {
            "new connection per request"
        } else {
            "keep-alive"
        };
        let [direct, service] = times.map(percentiles);
        println!(
            "{what}: Pod IP p50 {:.1} µs p99 {:.1} µs | ClusterIP p50 {:.1} µs p99 {:.1} µs | \
             ClusterIP/Pod IP p50 {:.3} p99 {:.3} ({} requests each)",
            direct.0,
            direct.1,
            service.0,
            service.1,
            service.0 / direct.0,
            service.1 / direct.1,
            CHUNKS * CHUNK
        );
    }
    for round in 1..=rounds {
        for ((label, addr), client) in targets.into_iter().zip(clients) {
            let wrk_keep = wrk(client, addr, seconds, false)?;
            let wrk_close = wrk(client, addr, seconds, true)?;
            println!(
                "wrk round {round} {label:9}: keep-alive {wrk_keep} | new connection per request {wrk_close}"
            );
        }
    }
    println!("load average at end: {}", load_average());
    Ok(())
}

/// `CHUNK` requests one after another (after a few to warm up): each on a new connection
/// (`close`) or all on one; the request times in µs, connect included with `close`.
fn sequential(addr: SocketAddr, close: bool) -> Result<Vec<f64>, String> {
    let request: &[u8] = if close {
        b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
    } else {
        b"GET / HTTP/1.1\r\nHost: b\r\n\r\n"
    };
    let mut times = Vec::with_capacity(CHUNK);
    let mut kept: Option<TcpStream> = None;
    let mut buf = [0u8; 512];
    for n in 0..CHUNK + WARMUP {
        let start = Instant::now();
        let mut conn = match kept.take() {
            Some(c) => c,
            None => {
                let c = TcpStream::connect_timeout(&addr, Duration::from_secs(1))
                    .map_err(|e| e.to_string())?;
                c.set_nodelay(true).map_err(|e| e.to_string())?;
                c
            }
        };
        conn.write_all(request).map_err(|e| e.to_string())?;
        // The response is small and arrives whole: headers end, then "ok".
        let mut got = 0;
        while !buf[..got].ends_with(b"\r\n\r\nok") {
            let n = conn.read(&mut buf[got..]).map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("server closed early".into());
            }
            got += n;
        }
        if n >= WARMUP {
            times.push(start.elapsed().as_secs_f64() * 1e6);
        }
        if !close {
            kept = Some(conn);
        }
    }
    Ok(times)
}

/// (p50, p99)
fn percentiles(mut us: Vec<f64>) -> (f64, f64) {
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() as f64 * q) as usize).min(us.len() - 1)];
    (at(0.50), at(0.99))
}

/// `wrk -t1 -c8` for `seconds` from the client namespace: "N req/s (p50 X, p99 Y)".
fn wrk(client: &Netns, addr: SocketAddr, seconds: u32, close: bool) -> Result<String, String> {
    let url = format!("http://{addr}/");
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        &client.name,
        "wrk",
        "-t1",
        "-c8",
        "--latency",
    ]);
    cmd.arg(format!("-d{seconds}s"));
    if close {
        cmd.args(["-H", "Connection: close"]);
    }
    let out = cmd
        .arg(&url)
        .output()
        .map_err(|e| format!("run wrk: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(|v| v.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    Ok(format!(
        "{} req/s (p50 {}, p99 {})",
        field("Requests/sec:"),
        field("50%"),
        field("99%")
    ))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// How long applying rules takes at scale: 1,000 Services of 3 endpoints each replaced in a
/// scratch table, then one endpoint changed (an in-place update of the whole ruleset).
async fn sync_cost(table: &str) -> Result<(), Box<dyn std::error::Error>> {
    let nft = Arc::new(HostNft::new("nft").await?);
    let config = RulesConfig {
        table: table.into(),
        pod_cidr: Some("10.88.0.0/16".parse()?),
        service_cidr: None,
        masquerade_mark: 0x4000,
    };
    let mut ports: Vec<ServicePort> = (0..1_000u32)
        .map(|i| ServicePort {
            namespace: "bench".into(),
            name: format!("svc-{i}"),
            port_name: "http".into(),
            protocol: Protocol::Tcp,
            cluster_ip: Ipv4Addr::new(198, 19, (i / 250) as u8, (i % 250) as u8 + 1),
            port: 80,
            affinity_timeout: None,
            endpoints: (0..3u32)
                .map(|e| Endpoint {
                    ip: Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 88, 100, 0)) + i * 3 + e),
                    port: 8080,
                })
                .collect(),
        })
        .collect();
    let mut syncer = Syncer::new(nft, config);
    let start = Instant::now();
    syncer.sync(&ports).await?;
    let full = start.elapsed();
    ports[0].endpoints[0].port = 9090;
    let start = Instant::now();
    syncer.sync(&ports).await?;
    let update = start.elapsed();
    let _ = Command::new("nft")
        .args(["delete", "table", "ip", table])
        .output();
    println!(
        "applying 1000 Services x 3 endpoints: full {:.0} ms, update after one change {:.0} ms",
        full.as_secs_f64() * 1e3,
        update.as_secs_f64() * 1e3
    );
    Ok(())
}
