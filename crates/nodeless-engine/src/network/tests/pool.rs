//! The warm pool over the fake plugins and namespaces.

use std::collections::HashSet;

use super::super::cni::CniCommand;
use super::super::*;
use super::{call, Fixture};

#[tokio::test]
async fn an_instance_takes_a_warm_spare_without_running_the_bridge() {
    let f = Fixture::with_pool(1);
    f.net.warm_up().await.expect("warm up");
    assert_eq!(f.net.warm_spares(), 1);
    let spare_lease = f.leases();
    assert!(spare_lease[0].starts_with("spare-"), "{spare_lease:?}");
    f.plugins.clear_calls();
    let att = f.net.attach("web", &[]).await.expect("attach");
    assert!(
        !f.calls().contains(&call("bridge", CniCommand::Add)),
        "no ADD on the claim path"
    );
    assert_eq!(att.netns, f.net.netns_path("web"));
    assert_eq!(att.ip.to_string(), "10.88.0.2");
    assert!(f.netns_files().contains(&"nodeless-web".to_string()));
    let rec = f
        .net
        .inner
        .records
        .load("web")
        .expect("load")
        .expect("record");
    assert_eq!(rec.cni_id(), spare_lease[0]);
    assert_eq!(
        f.net.inner.records.load(&spare_lease[0]).expect("load"),
        None
    );
    f.net.warm_up().await.expect("refill");
    f.plugins.clear_calls();
    f.net.detach("web").await.expect("detach");
    let del = &f.plugins.calls()[0];
    assert_eq!(
        (del.plugin.as_str(), del.container_id.as_str()),
        ("bridge", spare_lease[0].as_str())
    );
    assert_eq!(f.leases().len(), 1, "only the new spare's lease is left");
    assert!(!f.netns_files().contains(&"nodeless-web".to_string()));
}

#[tokio::test]
async fn a_claimed_spare_gets_the_port_mappings_from_portmap_alone() {
    let f = Fixture::with_pool(1);
    f.net.warm_up().await.expect("warm up");
    f.plugins.clear_calls();
    f.net
        .attach("web", &[PortMapping::tcp(8080, 80)])
        .await
        .expect("attach");
    let calls = f.plugins.calls();
    let adds: Vec<&str> = calls
        .iter()
        .filter(|c| c.command == CniCommand::Add)
        .map(|c| c.plugin.as_str())
        .collect();
    assert!(adds.starts_with(&["portmap"]), "{adds:?}");
    let portmap = &calls[0];
    assert_eq!(
        portmap.config["prevResult"]["ips"][0]["address"],
        "10.88.0.2/16"
    );
    assert_eq!(
        portmap.netns.as_deref(),
        Some(f.net.netns_path("web").as_path())
    );
    assert!(portmap.container_id.starts_with("spare-"));
}

#[tokio::test]
async fn a_failed_port_mapping_on_a_claimed_spare_releases_everything() {
    let f = Fixture::with_pool(1);
    f.net.warm_up().await.expect("warm up");
    f.plugins.fail("portmap", CniCommand::Add, "port taken");
    let err = f
        .net
        .attach("web", &[PortMapping::tcp(8080, 80)])
        .await
        .expect_err("fails");
    assert!(err.to_string().contains("port taken"), "{err}");
    assert_eq!(f.net.inner.records.load("web").expect("load"), None);
    assert!(!f.netns_files().contains(&"nodeless-web".to_string()));
    let leases = f.leases();
    assert!(
        leases.iter().all(|l| l.starts_with("spare-")) && leases.len() <= 1,
        "{leases:?}"
    );
}

#[tokio::test]
async fn cleanup_keeps_the_pool_and_instances_holding_a_spare_lease() {
    let f = Fixture::with_pool(2);
    f.net.warm_up().await.expect("warm up");
    f.net.attach("web", &[]).await.expect("attach");
    f.net.warm_up().await.expect("refill");
    let before = f.leases();
    let live: HashSet<String> = ["web".to_string()].into();
    let cleaned = f.net.cleanup_orphans(&live).await.expect("cleanup");
    assert!(cleaned.is_empty(), "{cleaned:?}");
    assert_eq!(f.leases(), before);
    assert_eq!(f.net.warm_spares(), 2);
    let cleaned = f
        .net
        .cleanup_orphans(&HashSet::new())
        .await
        .expect("cleanup");
    assert_eq!(cleaned, vec!["web".to_string()]);
    assert_eq!(f.leases().len(), 2, "the spares stay");
}

#[tokio::test]
async fn a_restarted_network_adopts_complete_spares_and_cleans_the_rest() {
    let f = Fixture::with_pool(1);
    f.net.warm_up().await.expect("warm up");
    let spare = f.leases()[0].clone();
    // A spare the crash left half made: its record and namespace, no result, no maker.
    let half = f.net.netns_path("spare-half");
    std::fs::write(&half, b"").expect("half spare netns");
    let record = serde_json::json!({
        "id": "spare-half", "netns": half, "port_mappings": [], "result": null,
        "chain": {"name": "nodeless", "cniVersion": "1.0.0", "plugins": []},
    });
    let records = f.dir.path().join("state/instances");
    std::fs::write(records.join("spare-half.json"), record.to_string()).expect("half spare record");
    let restarted = f.reopen();
    assert_eq!(restarted.warm_spares(), 1);
    let cleaned = restarted
        .cleanup_orphans(&HashSet::new())
        .await
        .expect("cleanup");
    assert_eq!(cleaned, vec!["spare-half".to_string()]);
    assert!(!half.exists());
    f.plugins.clear_calls();
    restarted.attach("web", &[]).await.expect("attach");
    assert!(!f.calls().contains(&call("bridge", CniCommand::Add)));
    let rec = restarted
        .inner
        .records
        .load("web")
        .expect("load")
        .expect("record");
    assert_eq!(rec.cni_id(), spare);
}

#[tokio::test]
async fn callers_cannot_use_or_remove_spare_ids() {
    let f = Fixture::with_pool(1);
    f.net.warm_up().await.expect("warm up");
    let spare = f.leases()[0].clone();
    assert!(matches!(
        f.net.detach(&spare).await,
        Err(NetworkError::InvalidId(_))
    ));
    assert!(matches!(
        f.net.attach("spare-mine", &[]).await,
        Err(NetworkError::InvalidId(_))
    ));
    assert_eq!(f.net.warm_spares(), 1);
}

#[tokio::test]
async fn a_spare_another_process_is_making_is_neither_claimed_nor_cleaned_until_its_maker_dies() {
    use rustix::fs::{flock, FlockOperation};
    let f = Fixture::with_pool(1);
    let records = f.dir.path().join("state/instances");
    std::fs::write(records.join("spare-other.json"), br#"{"id":"spare-other","netns":"/nowhere","chain":{"name":"nodeless","cniVersion":"1.0.0","plugins":[]},"port_mappings":[],"result":null}"#)
        .expect("record");
    let making = std::fs::File::create(records.join("spare-other.making")).expect("making");
    flock(&making, FlockOperation::NonBlockingLockExclusive).expect("lock");
    let cleaned = f
        .net
        .cleanup_orphans(&HashSet::new())
        .await
        .expect("cleanup");
    assert!(cleaned.is_empty(), "{cleaned:?}");
    f.plugins.clear_calls();
    f.net.attach("web", &[]).await.expect("attach");
    assert!(
        f.calls().contains(&call("bridge", CniCommand::Add)),
        "no ready spare: attached afresh"
    );
    drop(making); // the other process died
    let cleaned = f
        .net
        .cleanup_orphans(&["web".to_string()].into())
        .await
        .expect("cleanup");
    assert_eq!(cleaned, vec!["spare-other".to_string()]);
    assert!(!records.join("spare-other.making").exists());
    f.net.drain_warm_pool().await.expect("drain");
}
