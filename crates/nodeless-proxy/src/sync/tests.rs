use std::sync::Mutex;

use futures::channel::mpsc;

use super::*;
use crate::fixtures::{service, slice, READY};
use crate::model::service_ports;
use crate::nft::FakeNft;

fn config() -> RulesConfig {
    RulesConfig {
        table: "nodeless".into(),
        pod_cidr: None,
        service_cidr: None,
        masquerade_mark: 0x4000,
    }
}

fn ports(ips: &[&str]) -> Vec<ServicePort> {
    let svc = service("ns", "web", "10.96.0.20", &[("", "TCP", 80)]);
    let eps: Vec<_> = ips.iter().map(|ip| (*ip, READY)).collect();
    let s = slice("ns", "web", "web-1", &eps, &[("", "TCP", 8080)]);
    service_ports([&svc], [&s])
}

#[tokio::test]
async fn the_first_sync_replaces_the_table_and_later_ones_update_it() {
    let nft = Arc::new(FakeNft::default());
    let mut syncer = Syncer::new(nft.clone(), config());
    assert_eq!(
        syncer.sync(&ports(&["10.88.0.5"])).await.expect("sync"),
        SyncOutcome::Replaced
    );
    assert_eq!(
        syncer.sync(&ports(&["10.88.0.5"])).await.expect("sync"),
        SyncOutcome::Unchanged
    );
    assert_eq!(
        syncer.sync(&ports(&["10.88.0.6"])).await.expect("sync"),
        SyncOutcome::Updated
    );
    let scripts = nft.scripts();
    assert_eq!(scripts.len(), 2);
    assert!(scripts[0].contains("delete table ip nodeless"));
    assert!(!scripts[1].contains("delete table"));
}

#[tokio::test]
async fn after_a_failed_apply_the_next_sync_replaces_the_table() {
    let nft = Arc::new(FakeNft::default());
    let mut syncer = Syncer::new(nft.clone(), config());
    syncer.sync(&ports(&["10.88.0.5"])).await.expect("sync");
    nft.fail_next(1);
    assert!(syncer.sync(&ports(&["10.88.0.6"])).await.is_err());
    assert_eq!(
        syncer.sync(&ports(&["10.88.0.6"])).await.expect("sync"),
        SyncOutcome::Replaced
    );
}

struct Harness {
    tx: mpsc::UnboundedSender<Signal>,
    nft: Arc<FakeNft>,
    state: Arc<Mutex<Vec<String>>>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

fn start() -> Harness {
    let (tx, rx) = mpsc::unbounded();
    let nft = Arc::new(FakeNft::default());
    let state = Arc::new(Mutex::new(vec!["10.88.0.5".to_string()]));
    let shutdown = CancellationToken::new();
    let (n, s, sd) = (nft.clone(), state.clone(), shutdown.clone());
    let task = tokio::spawn(async move {
        let mut syncer = Syncer::new(n, config());
        let snapshot = move || {
            let ips = s.lock().expect("state").clone();
            ports(&ips.iter().map(String::as_str).collect::<Vec<_>>())
        };
        drive(rx, snapshot, &mut syncer, Duration::from_millis(100), sd).await;
    });
    Harness {
        tx,
        nft,
        state,
        shutdown,
        task,
    }
}

async fn settle(ms: u64) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

#[tokio::test(start_paused = true)]
async fn nothing_is_applied_until_both_caches_are_listed() {
    let h = start();
    h.tx.unbounded_send(Signal::Listed(Kind::Services))
        .expect("send");
    h.tx.unbounded_send(Signal::Changed).expect("send");
    settle(1_000).await;
    assert!(h.nft.scripts().is_empty());
    h.tx.unbounded_send(Signal::Listed(Kind::EndpointSlices))
        .expect("send");
    settle(1).await;
    assert_eq!(h.nft.scripts().len(), 1);
    h.shutdown.cancel();
    h.task.await.expect("drive ends on shutdown");
}

#[tokio::test(start_paused = true)]
async fn a_burst_of_changes_is_applied_once_after_the_minimum_interval() {
    let h = start();
    h.tx.unbounded_send(Signal::Listed(Kind::Services))
        .expect("send");
    h.tx.unbounded_send(Signal::Listed(Kind::EndpointSlices))
        .expect("send");
    settle(1).await;
    assert_eq!(h.nft.scripts().len(), 1);
    for ip in ["10.88.0.6", "10.88.0.7", "10.88.0.8"] {
        h.state.lock().expect("state").push(ip.into());
        h.tx.unbounded_send(Signal::Changed).expect("send");
        settle(10).await;
    }
    assert_eq!(
        h.nft.scripts().len(),
        1,
        "coalesced until 100 ms after the last sync"
    );
    settle(100).await;
    let scripts = h.nft.scripts();
    assert_eq!(scripts.len(), 2);
    assert!(scripts[1].contains("10.88.0.8:8080"));
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_change_that_leaves_the_rules_as_they_are_applies_nothing() {
    let h = start();
    h.tx.unbounded_send(Signal::Listed(Kind::Services))
        .expect("send");
    h.tx.unbounded_send(Signal::Listed(Kind::EndpointSlices))
        .expect("send");
    settle(500).await;
    h.tx.unbounded_send(Signal::Changed).expect("send");
    settle(500).await;
    assert_eq!(h.nft.scripts().len(), 1);
    h.shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_failed_apply_is_retried_with_a_full_replacement() {
    let h = start();
    h.nft.fail_next(2);
    h.tx.unbounded_send(Signal::Listed(Kind::Services))
        .expect("send");
    h.tx.unbounded_send(Signal::Listed(Kind::EndpointSlices))
        .expect("send");
    settle(1).await;
    assert!(h.nft.scripts().is_empty());
    // Retries after 500 ms (fails again) then 1 s.
    settle(1_600).await;
    let scripts = h.nft.scripts();
    assert_eq!(scripts.len(), 1);
    assert!(scripts[0].contains("delete table"));
    h.shutdown.cancel();
}

fn udp_ports(ips: &[&str]) -> Vec<ServicePort> {
    let svc = service("ns", "dns", "10.96.0.10", &[("", "UDP", 53)]);
    let eps: Vec<_> = ips.iter().map(|ip| (*ip, READY)).collect();
    let s = slice("ns", "dns", "dns-1", &eps, &[("", "UDP", 5353)]);
    service_ports([&svc], [&s])
}

#[tokio::test]
async fn applied_syncs_forget_the_udp_flows_they_leave_stale_and_failed_ones_do_not() {
    let nft = Arc::new(FakeNft::default());
    let conntrack = Arc::new(crate::conntrack::FakeConntrack::default());
    let mut syncer = Syncer::new(nft.clone(), config()).with_conntrack(conntrack.clone());
    let forgotten = || -> Vec<String> {
        let mut f = conntrack.forgotten.lock().expect("lock");
        f.drain(..).map(|f| f.to_string()).collect()
    };
    syncer.sync(&udp_ports(&[])).await.expect("sync");
    assert!(forgotten().is_empty());
    syncer
        .sync(&udp_ports(&["10.88.0.5", "10.88.0.6"]))
        .await
        .expect("sync");
    assert_eq!(
        forgotten(),
        ["udp 10.96.0.10:53"],
        "first endpoints: all flows"
    );
    nft.fail_next(1);
    assert!(syncer.sync(&udp_ports(&["10.88.0.6"])).await.is_err());
    assert!(forgotten().is_empty(), "nothing changed in the kernel");
    syncer.sync(&udp_ports(&["10.88.0.6"])).await.expect("sync");
    assert_eq!(forgotten(), ["udp 10.96.0.10:53 to 10.88.0.5"]);
}
