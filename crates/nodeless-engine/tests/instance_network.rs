//! Root-only: instances on real CNI networking — two instances reach each other, port-forward
//! and network probes reach into the namespace, detach leaves nothing behind.

mod instance_common;
mod support;

use std::sync::Arc;
use std::time::Duration;

use instance_common::*;
use nodeless_engine::instance::{Engine, InstanceSpec, Probe, ProbeAction};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn httpd(id: &str) -> InstanceSpec {
    let mut spec = InstanceSpec::single(id, id, "busybox");
    spec.containers[0].command = cmd(&["sh", "-c", "mkdir -p /www && echo hello from $(hostname) > /www/index.html && exec httpd -f -p 8080 -h /www"]);
    spec
}

#[tokio::test]
async fn two_instances_reach_each_other_and_port_forward_reaches_in() {
    require_root!();
    let net = support::network::TestNetwork::new(21, false);
    let root = TestRoot::new();
    let engine = engine_with(root.path(), Arc::new(net.net.clone()));
    let server = engine.create(httpd("t-srv")).await.expect("create server");
    let ip = server.ip.expect("server has an address");
    wait_for(&engine, "t-srv", Duration::from_secs(20), |s| {
        s.containers[0].status.state.is_running()
    })
    .await;
    let mut client = InstanceSpec::single("t-cli", "t-cli", "busybox");
    client.containers[0].command = cmd(&["sh", "-c", &format!("for i in $(seq 50); do wget -q -O - http://{ip}:8080/ && exit 0; sleep 0.1; done; exit 1")]);
    engine.create(client).await.expect("create client");
    let st = wait_for(&engine, "t-cli", Duration::from_secs(30), |s| {
        s.phase.is_finished()
    })
    .await;
    assert_eq!(exit_code(&st, 0), Some(0), "{st:#?}");
    assert_eq!(
        log_text(&engine, "t-cli", "t-cli", false).await,
        "hello from t-srv\n"
    );

    let mut stream = engine
        .port_forward("t-srv", 8080)
        .await
        .expect("port-forward");
    stream
        .write_all(b"GET / HTTP/1.0\r\n\r\n")
        .await
        .expect("write");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.expect("read");
    assert!(
        answer.starts_with("HTTP/1.") && answer.ends_with("hello from t-srv\n"),
        "{answer}"
    );
    drop(stream); // a socket keeps its namespace, and the veth in it, alive

    for id in ["t-srv", "t-cli"] {
        engine.remove(id).await.expect("remove");
    }
    assert_eq!(net.wait_veths(0).await, 0, "veths left on the bridge");
    assert!(net.leases().is_empty(), "leases left: {:?}", net.leases());
}

/// The nsfs mounts in a mount table under `dir`.
fn pins_in(mountinfo: &str, dir: &std::path::Path) -> Vec<String> {
    mountinfo
        .lines()
        .filter(|l| l.contains(" - nsfs "))
        .filter_map(|l| l.split(' ').nth(4))
        .filter(|point| point.starts_with(&*dir.to_string_lossy()))
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn each_shim_sees_only_its_own_instance_namespace_pin() {
    require_root!();
    let net = support::network::TestNetwork::new(23, false);
    let root = TestRoot::new();
    let engine = engine_with(root.path(), Arc::new(net.net.clone()));
    let mut netns = Vec::new();
    for id in ["t-pin-a", "t-pin-b"] {
        let mut spec = InstanceSpec::single(id, id, "busybox");
        spec.containers[0].command = cmd(&["sleep", "300"]);
        engine.create(spec).await.expect("create");
        netns.push(net.net.netns_path(id));
        wait_for(&engine, id, Duration::from_secs(20), |s| {
            s.containers[0].status.state.is_running()
        })
        .await;
    }
    let dir = netns[0].parent().expect("netns dir");
    let host = std::fs::read_to_string("/proc/self/mountinfo").expect("host mountinfo");
    for pin in &netns {
        assert!(
            pins_in(&host, dir).contains(&pin.display().to_string()),
            "{pin:?} on the host"
        );
    }
    for (id, pin) in ["t-pin-a", "t-pin-b"].iter().zip(&netns) {
        let record = nodeless_engine::instance::state::InstanceDir::new(root.path(), id).record();
        let record: serde_json::Value =
            serde_json::from_slice(&std::fs::read(record).expect("record")).expect("json");
        let shim = record["shim_pid"].as_u64().expect("shim pid");
        let seen =
            std::fs::read_to_string(format!("/proc/{shim}/mountinfo")).expect("shim mountinfo");
        assert_eq!(
            pins_in(&seen, dir),
            vec![pin.display().to_string()],
            "shim of {id}"
        );
    }
    for id in ["t-pin-a", "t-pin-b"] {
        engine.remove(id).await.expect("remove");
    }
    assert_eq!(net.wait_veths(0).await, 0, "veths left on the bridge");
}

#[tokio::test]
async fn http_and_tcp_probes_reach_the_instance_namespace() {
    require_root!();
    let net = support::network::TestNetwork::new(22, false);
    let root = TestRoot::new();
    let engine = engine_with(root.path(), Arc::new(net.net.clone()));
    let mut spec = httpd("t-http");
    let fast = |action| Probe {
        period: Duration::from_millis(100),
        ..Probe::new(action)
    };
    spec.containers[0].startup_probe = Some(fast(ProbeAction::TcpSocket { port: 8080 }));
    spec.containers[0].readiness_probe = Some(fast(ProbeAction::HttpGet {
        path: "/index.html".into(),
        port: 8080,
        host_header: None,
        headers: vec![],
    }));
    engine.create(spec).await.expect("create");
    let st = wait_for(&engine, "t-http", Duration::from_secs(20), |s| {
        s.containers[0].ready
    })
    .await;
    assert!(st.containers[0].started);
    engine.remove("t-http").await.expect("remove");
}
