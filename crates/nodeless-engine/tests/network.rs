//! Instance networking against the real CNI plugins (root only): addresses, reachability,
//! published ports, detach and orphan cleanup, and attach/detach latency.
//! Each test has its own [`TestNetwork`] (tags 1-19 are this file's).

mod support;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nodeless_engine::network::{connect_in_netns, masquerade, run_in_netns, Network, PortMapping};
use support::network::{netns_name, ping_from, TestNetwork};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A listener inside `netns` (sockets stay in the namespace they were made in).
async fn listen_in(netns: &Path, addr: &str) -> TcpListener {
    let addr = addr.to_string();
    run_in_netns(netns, move || TcpListener::bind(addr))
        .await
        .expect("enter netns")
        .expect("bind in netns")
}

/// Connects from inside `netns`, sends `msg`, returns what the peer answers.
async fn exchange_from(
    netns: &Path,
    to: SocketAddr,
    msg: &'static [u8],
) -> std::io::Result<Vec<u8>> {
    run_in_netns(netns, move || {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))?;
        s.set_read_timeout(Some(Duration::from_secs(3)))?;
        s.write_all(msg)?;
        s.shutdown(std::net::Shutdown::Write)?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer)?;
        Ok(answer)
    })
    .await
    .expect("enter netns")
}

/// Accepts one connection and echoes what it reads, upper-cased.
fn serve_one(listener: TcpListener) -> std::thread::JoinHandle<std::io::Result<SocketAddr>> {
    std::thread::spawn(move || {
        let (mut s, peer) = listener.accept()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf)?;
        s.write_all(&buf.to_ascii_uppercase())?;
        Ok(peer)
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

#[tokio::test]
async fn two_instances_get_distinct_ips_and_reach_each_other_and_the_host() {
    if support::skip_unless_root("two_instances_get_distinct_ips_and_reach_each_other_and_the_host")
    {
        return;
    }
    let t = TestNetwork::new(1, true);
    let a = t.net.attach("a", &[]).await.expect("attach a");
    let b = t.net.attach("b", &[]).await.expect("attach b");
    assert_ne!(a.ip, b.ip);
    assert_eq!(a.gateway, t.net.gateway());
    assert!(t.net.subnet().contains(&match a.ip {
        IpAddr::V4(v4) => v4,
        IpAddr::V6(_) => panic!("ipv4 expected"),
    }));

    assert!(ping_from(&a.netns, b.ip), "a pings b");
    assert!(
        ping_from(&b.netns, a.gateway),
        "b pings the host's bridge address"
    );

    // a -> b over TCP
    let server = serve_one(listen_in(&b.netns, "0.0.0.0:7001").await);
    let answer = exchange_from(&a.netns, SocketAddr::new(b.ip, 7001), b"hello b")
        .await
        .expect("a to b");
    assert_eq!(answer, b"HELLO B");
    assert_eq!(
        server.join().expect("server thread").expect("served").ip(),
        a.ip
    );

    // a -> host (a listener on the gateway address, in the host's namespace)
    let host_listener = TcpListener::bind(SocketAddr::new(a.gateway, 0)).expect("bind on gateway");
    let host_addr = host_listener.local_addr().expect("addr");
    let server = serve_one(host_listener);
    let answer = exchange_from(&a.netns, host_addr, b"hello host")
        .await
        .expect("a to host");
    assert_eq!(answer, b"HELLO HOST");
    server.join().expect("server thread").expect("served");

    // host -> b
    let server = serve_one(listen_in(&b.netns, "0.0.0.0:7002").await);
    let mut s = TcpStream::connect_timeout(&SocketAddr::new(b.ip, 7002), Duration::from_secs(3))
        .expect("host to b");
    s.write_all(b"from host").expect("write");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("read");
    assert_eq!(answer, b"FROM HOST");
    server.join().expect("server thread").expect("served");

    t.net.detach("a").await.expect("detach a");
    t.net.detach("b").await.expect("detach b");
}

#[tokio::test]
async fn detach_removes_the_veth_the_lease_and_the_namespace() {
    if support::skip_unless_root("detach_removes_the_veth_the_lease_and_the_namespace") {
        return;
    }
    let t = TestNetwork::new(2, true);
    let a = t.net.attach("a", &[]).await.expect("attach");
    assert_eq!(t.veths(), 1);
    assert_eq!(t.leases(), vec![a.ip.to_string()]);
    assert!(a.netns.exists());
    t.net.detach("a").await.expect("detach");
    assert!(t.leases().is_empty());
    assert!(!a.netns.exists());
    assert_eq!(t.wait_veths(0).await, 0);
    t.net.detach("a").await.expect("detach again is fine");
}

#[tokio::test]
async fn detach_after_the_namespace_was_deleted_still_releases_the_lease() {
    if support::skip_unless_root("detach_after_the_namespace_was_deleted_still_releases_the_lease")
    {
        return;
    }
    let t = TestNetwork::new(5, false);
    let a = t.net.attach("a", &[]).await.expect("attach");
    let status = Command::new("ip")
        .args(["netns", "del", &netns_name(&a.netns)])
        .status()
        .expect("ip netns del");
    assert!(status.success());
    t.net.detach("a").await.expect("detach without a namespace");
    assert!(t.leases().is_empty());
    assert_eq!(t.wait_veths(0).await, 0);
}

#[tokio::test]
async fn a_published_host_port_reaches_the_instance_until_detach() {
    if support::skip_unless_root("a_published_host_port_reaches_the_instance_until_detach") {
        return;
    }
    let t = TestNetwork::new(3, true);
    let host_port = free_port();
    let a = t
        .net
        .attach("web", &[PortMapping::tcp(host_port, 8080)])
        .await
        .expect("attach");
    let listener = listen_in(&a.netns, "0.0.0.0:8080").await;
    listener.set_nonblocking(false).expect("blocking");
    for target in [IpAddr::from([127, 0, 0, 1]), a.gateway] {
        let server = serve_one(listener.try_clone().expect("clone listener"));
        let addr = SocketAddr::new(target, host_port);
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
            .expect("connect to the published port");
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        s.write_all(b"published").expect("write");
        s.shutdown(std::net::Shutdown::Write).expect("shutdown");
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).expect("read");
        assert_eq!(answer, b"PUBLISHED", "via {addr}");
        server.join().expect("server thread").expect("served");
    }
    t.net.detach("web").await.expect("detach");
    let after = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], host_port)),
        Duration::from_millis(500),
    );
    assert!(after.is_err(), "the mapping is gone after detach");
}

fn nat_rules() -> String {
    let out = Command::new("iptables")
        .args(["-w", "-t", "nat", "-S"])
        .output()
        .expect("iptables -S");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn masquerade_is_one_subnet_rule_that_goes_away_when_disabled() {
    if support::skip_unless_root("masquerade_is_one_subnet_rule_that_goes_away_when_disabled") {
        return;
    }
    let t = TestNetwork::new(9, true);
    let chain = masquerade::chain_name(&t.net.config().name);
    let rules = nat_rules();
    assert!(rules.contains(&format!("-A POSTROUTING -s 10.231.9.0/24 -m comment --comment nodeless-network-nlt-net9 -j {chain}")), "{rules}");
    assert!(
        rules.contains(&format!("-A {chain} -j MASQUERADE")),
        "{rules}"
    );
    let forward = Command::new("iptables")
        .args(["-w", "-S", "FORWARD"])
        .output()
        .expect("iptables -S FORWARD");
    let forward = String::from_utf8_lossy(&forward.stdout).into_owned();
    assert!(
        forward.contains(
            "-A FORWARD -i nlt9 -m comment --comment nodeless-network-nlt-net9 -j ACCEPT"
        ),
        "{forward}"
    );
    assert!(forward.contains("-A FORWARD -o nlt9 "), "{forward}");
    t.net.attach("a", &[]).await.expect("attach");
    t.net.detach("a").await.expect("detach");
    let mut cfg = t.net.config().clone();
    cfg.masquerade = false;
    Network::new(cfg).expect("reopen without masquerade");
    assert!(!nat_rules().contains(&chain), "rules removed");
}

#[tokio::test]
async fn connect_in_netns_reaches_a_listener_on_the_instance_loopback() {
    if support::skip_unless_root("connect_in_netns_reaches_a_listener_on_the_instance_loopback") {
        return;
    }
    let t = TestNetwork::new(6, false);
    let a = t.net.attach("a", &[]).await.expect("attach");
    let server = serve_one(listen_in(&a.netns, "127.0.0.1:9000").await);
    let started = Instant::now();
    let mut stream = connect_in_netns(&a.netns, 9000)
        .await
        .expect("connect in netns");
    eprintln!("connect_in_netns took {:?}", started.elapsed());
    stream.write_all(b"port-forward").await.expect("write");
    stream.shutdown().await.expect("shutdown");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("read");
    assert_eq!(answer, b"PORT-FORWARD");
    server.join().expect("server thread").expect("served");
    assert!(
        connect_in_netns(&a.netns, 9001).await.is_err(),
        "nothing listens on 9001"
    );
    t.net.detach("a").await.expect("detach");
}

#[tokio::test]
async fn orphans_are_cleaned_up_by_a_restarted_engine() {
    if support::skip_unless_root("orphans_are_cleaned_up_by_a_restarted_engine") {
        return;
    }
    let t = TestNetwork::new(4, true);
    let keep = t.net.attach("keep", &[]).await.expect("attach keep");
    let orphan = t
        .net
        .attach("orphan", &[PortMapping::tcp(free_port(), 80)])
        .await
        .expect("attach orphan");
    assert_eq!(t.veths(), 2);
    let restarted = t.reopen();
    assert_eq!(restarted.subnet(), t.net.subnet());
    let live: HashSet<String> = ["keep".to_string()].into();
    let cleaned = restarted.cleanup_orphans(&live).await.expect("cleanup");
    assert_eq!(cleaned, vec!["orphan".to_string()]);
    assert_eq!(t.wait_veths(1).await, 1);
    assert_eq!(t.leases(), vec![keep.ip.to_string()]);
    assert!(!orphan.netns.exists());
    assert!(keep.netns.exists());
    assert!(
        ping_from(&keep.netns, keep.gateway),
        "the live instance still works"
    );
    restarted.detach("keep").await.expect("detach keep");
}

#[tokio::test]
async fn instances_from_the_warm_pool_work_like_fresh_ones() {
    if support::skip_unless_root("instances_from_the_warm_pool_work_like_fresh_ones") {
        return;
    }
    let t = TestNetwork::with_config(10, |cfg| cfg.warm_pool = 2);
    t.net.warm_up().await.expect("warm up");
    assert_eq!(t.net.warm_spares(), 2);
    let started = Instant::now();
    let a = t.net.attach("a", &[]).await.expect("attach a");
    let claim = started.elapsed();
    let host_port = free_port();
    let b = t
        .net
        .attach("b", &[PortMapping::tcp(host_port, 8080)])
        .await
        .expect("attach b");
    eprintln!("attach from the warm pool: {claim:?}");
    assert_eq!(a.netns, t.net.netns_path("a"));
    assert!(ping_from(&a.netns, b.ip), "a pings b");
    assert!(ping_from(&b.netns, b.gateway), "b pings the host");

    let listener = listen_in(&b.netns, "0.0.0.0:8080").await;
    let server = serve_one(listener);
    let mut s = TcpStream::connect_timeout(
        &SocketAddr::from(([127, 0, 0, 1], host_port)),
        Duration::from_secs(3),
    )
    .expect("published port of a claimed spare");
    s.write_all(b"pool").expect("write");
    s.shutdown(std::net::Shutdown::Write).expect("shutdown");
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).expect("read");
    assert_eq!(answer, b"POOL");
    server.join().expect("server thread").expect("served");

    t.net.detach("a").await.expect("detach a");
    t.net.detach("b").await.expect("detach b");
    t.net.warm_up().await.expect("refill");
    assert_eq!(
        t.leases().len(),
        2,
        "only the refilled spares hold addresses"
    );
    t.net.drain_warm_pool().await.expect("drain");
    assert!(t.leases().is_empty());
    assert_eq!(t.wait_veths(0).await, 0);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

async fn measure(t: &TestNetwork, label: &str, ports: &[PortMapping], rounds: usize) {
    let (mut attach, mut detach) = (Vec::new(), Vec::new());
    for i in 0..rounds {
        let id = format!("lat{i}");
        t.net.warm_up().await.expect("warm pool"); // no-op without a pool
        let started = Instant::now();
        t.net.attach(&id, ports).await.expect("attach");
        attach.push(started.elapsed());
        let started = Instant::now();
        t.net.detach(&id).await.expect("detach");
        detach.push(started.elapsed());
    }
    attach.sort();
    detach.sort();
    eprintln!(
        "{label}: attach p50 {:?} p90 {:?} max {:?}; detach p50 {:?} p90 {:?} max {:?} ({rounds} rounds)",
        percentile(&attach, 0.5),
        percentile(&attach, 0.9),
        attach[rounds - 1],
        percentile(&detach, 0.5),
        percentile(&detach, 0.9),
        detach[rounds - 1],
    );
}

#[tokio::test]
async fn attach_and_detach_latency_is_reported() {
    if support::skip_unless_root("attach_and_detach_latency_is_reported") {
        return;
    }
    let masq = TestNetwork::new(7, true);
    let plain = TestNetwork::new(8, false);
    let started = Instant::now();
    masq.reopen();
    eprintln!(
        "opening an existing network (every nodeless process start): {:?}",
        started.elapsed()
    );
    // The first attach creates the bridge; leave it out of the figures.
    masq.net.attach("warm", &[]).await.expect("warm up");
    plain.net.attach("warm", &[]).await.expect("warm up");
    measure(&plain, "no masquerade", &[], 20).await;
    measure(&masq, "masquerade", &[], 20).await;
    measure(
        &masq,
        "masquerade + 1 published port",
        &[PortMapping::tcp(free_port(), 80)],
        10,
    )
    .await;
    let pooled = TestNetwork::with_config(11, |cfg| cfg.warm_pool = 4);
    measure(&pooled, "warm pool (refilled between rounds)", &[], 10).await;
    pooled.net.drain_warm_pool().await.expect("drain");

    let started = Instant::now();
    let ids: Vec<String> = (0..20).map(|i| format!("par{i}")).collect();
    let attached = futures::future::join_all(ids.iter().map(|id| masq.net.attach(id, &[]))).await;
    let attach_all = started.elapsed();
    let ips: HashSet<IpAddr> = attached
        .into_iter()
        .map(|r| r.expect("parallel attach").ip)
        .collect();
    assert_eq!(ips.len(), 20, "distinct addresses under concurrency");
    let started = Instant::now();
    for r in futures::future::join_all(ids.iter().map(|id| masq.net.detach(id))).await {
        r.expect("parallel detach");
    }
    eprintln!(
        "20 concurrent attaches: {attach_all:?}; 20 concurrent detaches: {:?}",
        started.elapsed()
    );
    masq.net.detach("warm").await.expect("detach");
    plain.net.detach("warm").await.expect("detach");
    assert_eq!(masq.wait_veths(0).await, 0);
}
