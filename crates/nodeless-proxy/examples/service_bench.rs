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

const SEQUENTIAL: usize = 3_000;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let rounds: usize = args.get(1).map_or(Ok(3), |a| a.parse())?;
    let seconds: u32 = args.get(2).map_or(Ok(5), |a| a.parse())?;
    if let Some(why) = skip_reason() {
        return Err(format!("cannot run: {why}").into());
    }
    nodeless_proxy::sysctl::prepare_host("/proc/sys".as_ref())?;
    let net = TestNet::create(2);
    let (server, client) = (&net.namespaces[0], &net.namespaces[1]);
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
    let result = measure(client, server.ip, vip, rounds, seconds);
    let _ = Command::new("nft")
        .args(["delete", "table", "ip", &table])
        .output();
    result
}

fn measure(
    client: &Netns,
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
    for round in 1..=rounds {
        for (label, addr) in targets {
            let (close_p50, close_p99) = client
                .run(move || sequential(addr, true))
                .map_err(|e| format!("{label}: {e}"))?;
            let (keep_p50, keep_p99) = client
                .run(move || sequential(addr, false))
                .map_err(|e| format!("{label}: {e}"))?;
            let wrk_keep = wrk(client, addr, seconds, false)?;
            let wrk_close = wrk(client, addr, seconds, true)?;
            println!(
                "round {round} {label:9}: new connection per request p50 {close_p50:.1} µs p99 {close_p99:.1} µs | \
                 keep-alive p50 {keep_p50:.1} µs p99 {keep_p99:.1} µs | \
                 wrk keep-alive {wrk_keep} | wrk new connections {wrk_close}"
            );
        }
    }
    println!("load average at end: {}", load_average());
    Ok(())
}

/// `SEQUENTIAL` requests one after another: each on a new connection (`close`) or all on one;
/// p50 and p99 of the request time in µs (connect included with `close`).
fn sequential(addr: SocketAddr, close: bool) -> Result<(f64, f64), String> {
    let request: &[u8] = if close {
        b"GET / HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n"
    } else {
        b"GET / HTTP/1.1\r\nHost: b\r\n\r\n"
    };
    let mut times = Vec::with_capacity(SEQUENTIAL);
    let mut kept: Option<TcpStream> = None;
    let mut buf = [0u8; 512];
    for _ in 0..SEQUENTIAL + 100 {
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
        times.push(start.elapsed());
        if !close {
            kept = Some(conn);
        }
    }
    // The first 100 warm up (ARP, caches).
    let mut us: Vec<f64> = times[100..].iter().map(|d| d.as_secs_f64() * 1e6).collect();
    us.sort_by(f64::total_cmp);
    let at = |q: f64| us[((us.len() as f64 * q) as usize).min(us.len() - 1)];
    Ok((at(0.50), at(0.99)))
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
