//! Network logic over the fake plugins and namespaces.

mod pool;

use std::collections::HashSet;
use std::sync::Arc;

use serde_json::json;

use super::cni::{Chain, CniCommand, CniResult};
use super::fake::{FakeNamespaces, FakePlugins};
use super::*;

pub(super) struct Fixture {
    pub(super) net: Network,
    pub(super) plugins: Arc<FakePlugins>,
    pub(super) dir: tempfile::TempDir,
}

impl Fixture {
    pub(super) fn new() -> Self {
        Self::with_pool(0)
    }

    /// Orphan cleanup reclaims namespaces and leases without records too.
    pub(super) fn reclaiming() -> Self {
        Self::build(0, true)
    }

    pub(super) fn with_pool(warm_pool: usize) -> Self {
        Self::build(warm_pool, false)
    }

    fn build(warm_pool: usize, reclaim_unrecorded: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut cfg = NetworkConfig::new(dir.path().join("state"));
        cfg.netns_dir = dir.path().join("netns");
        cfg.ipam_data_dir = dir.path().join("ipam");
        cfg.warm_pool = warm_pool;
        cfg.reclaim_unrecorded = reclaim_unrecorded;
        std::fs::create_dir_all(&cfg.netns_dir).expect("netns dir");
        let plugins = Arc::new(FakePlugins::default());
        let subnet = "10.88.0.0/16".parse().expect("subnet");
        let net = Network::with_parts(cfg, subnet, plugins.clone(), Arc::new(FakeNamespaces))
            .expect("network");
        Fixture { net, plugins, dir }
    }

    /// The same directories as a restarted engine opens them.
    pub(super) fn reopen(&self) -> Network {
        let cfg = self.net.config().clone();
        Network::with_parts(
            cfg,
            self.net.subnet(),
            self.plugins.clone(),
            Arc::new(FakeNamespaces),
        )
        .expect("reopen")
    }

    pub(super) fn netns_files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path().join("netns"))
            .expect("netns dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    pub(super) fn leases(&self) -> Vec<String> {
        let mut owners = record::lease_owners(&self.net.config().lease_dir()).expect("leases");
        owners.sort();
        owners
    }

    pub(super) fn calls(&self) -> Vec<(String, CniCommand)> {
        self.plugins
            .calls()
            .into_iter()
            .map(|c| (c.plugin, c.command))
            .collect()
    }
}

pub(super) fn call(plugin: &str, command: CniCommand) -> (String, CniCommand) {
    (plugin.to_string(), command)
}

#[tokio::test]
async fn attach_creates_the_namespace_and_returns_the_bridge_address() {
    let f = Fixture::new();
    let att = f.net.attach("web-1", &[]).await.expect("attach");
    assert_eq!(att.netns, f.dir.path().join("netns/nodeless-web-1"));
    assert!(att.netns.exists());
    assert_eq!(att.ip, "10.88.0.2".parse::<std::net::IpAddr>().expect("ip"));
    assert_eq!(att.prefix_len, 16);
    assert_eq!(
        att.gateway,
        "10.88.0.1".parse::<std::net::IpAddr>().expect("ip")
    );
    assert_eq!(att.interface, "eth0");
    assert_eq!(f.leases(), vec!["web-1"]);
}

#[tokio::test]
async fn each_instance_gets_its_own_reserved_address_through_static_ipam() {
    let f = Fixture::new();
    let a = f.net.attach("a", &[]).await.expect("attach a");
    let b = f.net.attach("b", &[]).await.expect("attach b");
    assert_ne!(a.ip, b.ip);
    assert_ne!(a.netns, b.netns);
    let adds: Vec<_> = f
        .plugins
        .calls()
        .into_iter()
        .filter(|c| c.plugin == "bridge" && c.command == CniCommand::Add)
        .collect();
    assert_eq!(adds.len(), 2);
    assert_eq!(adds[1].config["ipam"]["type"], "static");
    assert_eq!(
        adds[1].config["ipam"]["addresses"][0]["address"],
        format!("{}/16", b.ip)
    );
    let mut leases = f.leases();
    leases.sort();
    assert_eq!(leases, vec!["a", "b"]);
    f.net.detach("a").await.expect("detach");
    assert_eq!(f.leases(), vec!["b"]);
}

#[tokio::test]
async fn instances_without_ports_run_only_the_bridge() {
    let f = Fixture::new();
    f.net.attach("a", &[]).await.expect("attach");
    // `lo` is set up as the namespace is made, not by the loopback plugin.
    assert_eq!(f.calls(), vec![call("bridge", CniCommand::Add)]);
}

#[tokio::test]
async fn port_mappings_reach_only_portmap_with_the_bridge_result_as_prev_result() {
    let f = Fixture::new();
    f.net
        .attach("a", &[PortMapping::tcp(8080, 80)])
        .await
        .expect("attach");
    let calls = f.plugins.calls();
    let bridge = calls.iter().find(|c| c.plugin == "bridge").expect("bridge");
    let portmap = calls
        .iter()
        .find(|c| c.plugin == "portmap")
        .expect("portmap");
    assert!(bridge.config.get("runtimeConfig").is_none());
    assert!(bridge.config.get("prevResult").is_none());
    assert_eq!(bridge.config["name"], "nodeless");
    assert_eq!(bridge.config["cniVersion"], "1.0.0");
    assert_eq!(
        portmap.config["runtimeConfig"]["portMappings"][0]["hostPort"],
        8080
    );
    assert_eq!(
        portmap.config["prevResult"]["ips"][0]["address"],
        "10.88.0.2/16"
    );
    assert_eq!(
        portmap.netns.as_deref(),
        Some(f.net.netns_path("a").as_path())
    );
}

#[tokio::test]
async fn detach_runs_del_in_reverse_with_the_cached_result_and_removes_everything() {
    let f = Fixture::new();
    f.net
        .attach("a", &[PortMapping::tcp(8080, 80)])
        .await
        .expect("attach");
    f.plugins.clear_calls();
    f.net.detach("a").await.expect("detach");
    assert_eq!(
        f.calls(),
        vec![
            call("portmap", CniCommand::Del),
            call("bridge", CniCommand::Del)
        ]
    );
    let calls = f.plugins.calls();
    assert_eq!(
        calls[1].config["prevResult"]["ips"][0]["address"],
        "10.88.0.2/16"
    );
    assert_eq!(
        calls[0].config["runtimeConfig"]["portMappings"][0]["containerPort"],
        80
    );
    assert!(!f.net.netns_path("a").exists());
    assert!(f.leases().is_empty());
    assert_eq!(f.net.inner.records.load("a").expect("load"), None);
}

#[tokio::test]
async fn detaching_twice_or_an_unknown_instance_succeeds() {
    let f = Fixture::new();
    f.net.attach("a", &[]).await.expect("attach");
    f.net.detach("a").await.expect("first detach");
    f.net.detach("a").await.expect("second detach");
    f.net
        .detach("never-attached")
        .await
        .expect("unknown detach");
}

#[tokio::test]
async fn detach_after_the_namespace_vanished_passes_an_empty_netns_and_releases_the_lease() {
    let f = Fixture::new();
    let att = f.net.attach("a", &[]).await.expect("attach");
    std::fs::remove_file(&att.netns).expect("remove netns behind our back");
    f.plugins.clear_calls();
    f.net.detach("a").await.expect("detach");
    let del = &f.plugins.calls()[0];
    assert_eq!((del.plugin.as_str(), del.netns.clone()), ("bridge", None));
    assert!(f.leases().is_empty());
}

#[tokio::test]
async fn a_failed_add_is_rolled_back() {
    let f = Fixture::new();
    f.plugins
        .fail("portmap", CniCommand::Add, "iptables exploded");
    let err = f
        .net
        .attach("a", &[PortMapping::tcp(8080, 80)])
        .await
        .expect_err("attach fails");
    assert!(err.to_string().contains("iptables exploded"), "{err}");
    assert!(!f.net.netns_path("a").exists());
    assert!(f.leases().is_empty(), "lease released by the rollback DEL");
    assert_eq!(f.net.inner.records.load("a").expect("load"), None);
}

#[tokio::test]
async fn a_failed_del_keeps_the_record_so_a_retry_finishes_the_job() {
    let f = Fixture::new();
    f.net
        .attach("a", &[PortMapping::tcp(8080, 80)])
        .await
        .expect("attach");
    f.plugins.fail("portmap", CniCommand::Del, "xtables lock");
    f.net.detach("a").await.expect_err("detach fails");
    // The address stays taken while the instance's veth may still hold it.
    assert_eq!(f.leases(), vec!["a"]);
    assert!(f.net.netns_path("a").exists());
    assert!(f.net.inner.records.load("a").expect("load").is_some());
    f.plugins.heal();
    f.net.detach("a").await.expect("retry");
    assert!(!f.net.netns_path("a").exists());
    assert!(f.leases().is_empty(), "released once DEL went through");
}

#[tokio::test]
async fn attaching_again_with_the_same_ports_returns_the_same_attachment_without_plugins() {
    let f = Fixture::new();
    let first = f.net.attach("a", &[]).await.expect("attach");
    f.plugins.clear_calls();
    let again = f.net.attach("a", &[]).await.expect("attach again");
    assert_eq!(first, again);
    assert!(f.plugins.calls().is_empty());
}

#[tokio::test]
async fn attaching_again_with_other_ports_starts_over() {
    let f = Fixture::new();
    f.net.attach("a", &[]).await.expect("attach");
    f.plugins.clear_calls();
    f.net
        .attach("a", &[PortMapping::tcp(8080, 80)])
        .await
        .expect("attach with ports");
    let calls = f.calls();
    assert_eq!(calls[0], call("bridge", CniCommand::Del));
    assert!(calls.contains(&call("portmap", CniCommand::Add)));
    assert_eq!(f.leases(), vec!["a"]);
}

#[tokio::test]
async fn a_crash_between_reserving_an_address_and_recording_it_leaves_nothing_held() {
    // Without reclaiming unrecorded leases: the record alone must lead cleanup to the lease.
    let f = Fixture::new();
    f.net.attach("crashed", &[]).await.expect("attach");
    // What a crash right after the reservation leaves: the first record (host-local's
    // chain, no address, no result) and the lease file.
    let mut rec = f
        .net
        .inner
        .records
        .load("crashed")
        .expect("load")
        .expect("record");
    rec.chain = f.net.chain_for(&[], None);
    rec.result = None;
    f.net.inner.records.save(&rec).expect("save");
    assert_eq!(f.leases(), vec!["crashed"]);
    let cleaned = f
        .net
        .cleanup_orphans(&HashSet::new())
        .await
        .expect("cleanup");
    assert_eq!(cleaned, vec!["crashed"]);
    assert!(f.leases().is_empty(), "host-local DEL released it by id");
    assert_eq!(f.net.inner.records.load("crashed").expect("load"), None);
}

#[tokio::test]
async fn cleanup_orphans_detaches_records_namespaces_and_leases_that_are_not_live() {
    let f = Fixture::reclaiming();
    f.net.attach("keep", &[]).await.expect("attach keep");
    f.net.attach("gone", &[]).await.expect("attach gone");
    // A namespace without a record (crash between netns creation and the record)...
    std::fs::write(f.net.netns_path("netns-only"), b"").expect("stray netns");
    // ...and a lease without either (the namespace died with a reboot).
    let leases = f.net.config().lease_dir();
    std::fs::write(leases.join("10.88.9.9"), "lease-only\r\neth0").expect("stray lease");
    // Someone else's namespace in the same directory is left alone.
    std::fs::write(f.dir.path().join("netns/other-ns"), b"").expect("foreign netns");
    let live: HashSet<String> = ["keep".to_string()].into();
    let mut cleaned = f.net.cleanup_orphans(&live).await.expect("cleanup");
    cleaned.sort();
    assert_eq!(cleaned, vec!["gone", "lease-only", "netns-only"]);
    assert_eq!(f.leases(), vec!["keep"]);
    assert!(f.net.netns_path("keep").exists());
    assert!(!f.net.netns_path("gone").exists() && !f.net.netns_path("netns-only").exists());
    assert!(f.dir.path().join("netns/other-ns").exists());
}

#[tokio::test]
async fn hostile_instance_ids_and_zero_ports_are_refused_before_touching_the_host() {
    let f = Fixture::new();
    for id in ["", "../etc", "a/b", ".hidden", &"x".repeat(65)] {
        assert!(
            matches!(f.net.attach(id, &[]).await, Err(NetworkError::InvalidId(_))),
            "{id:?}"
        );
        assert!(f.net.detach(id).await.is_err());
    }
    let zero = f.net.attach("a", &[PortMapping::tcp(0, 80)]).await;
    assert!(matches!(zero, Err(NetworkError::InvalidPorts { .. })));
    assert!(f.plugins.calls().is_empty());
}

#[tokio::test]
async fn check_hands_the_cached_result_to_every_plugin() {
    let f = Fixture::new();
    f.net
        .attach("a", &[PortMapping::tcp(8080, 80)])
        .await
        .expect("attach");
    f.plugins.clear_calls();
    f.net.check("a").await.expect("check");
    let calls = f.plugins.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls
        .iter()
        .all(|c| c.command == CniCommand::Check && c.config["prevResult"]["ips"].is_array()));
    assert!(f.net.check("unknown").await.is_err());
}

#[tokio::test]
async fn the_written_conflist_names_the_bridge_subnet_and_plugins() {
    let f = Fixture::new();
    let bytes = std::fs::read(f.net.config().conflist_path()).expect("conflist written");
    let conflist: serde_json::Value = serde_json::from_slice(&bytes).expect("json");
    let types: Vec<&str> = conflist["plugins"]
        .as_array()
        .expect("plugins")
        .iter()
        .filter_map(|p| p["type"].as_str())
        .collect();
    assert_eq!(types, vec!["bridge", "portmap"]);
    assert_eq!(conflist["plugins"][0]["ipam"]["type"], "host-local");
    assert_eq!(config::subnet_of_conflist(&conflist), Some(f.net.subnet()));
}

#[test]
fn cni_results_yield_the_sandbox_interface_address() {
    let result = json!({
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "nodeless0"}, {"name": "veth1"}, {"name": "eth0", "sandbox": "/run/netns/x"}],
        "ips": [
            {"address": "fd00::5/64", "interface": 2},
            {"address": "10.88.0.7/16", "gateway": "10.88.0.1", "interface": 2},
        ],
    });
    let parsed = CniResult::from_value(&result)
        .expect("parse")
        .primary("eth0")
        .expect("address");
    assert_eq!(parsed.ip.to_string(), "10.88.0.7");
    assert_eq!(
        parsed.gateway.map(|g| g.to_string()).as_deref(),
        Some("10.88.0.1")
    );
}

#[test]
fn plugin_error_answers_become_messages() {
    let (code, msg) = cni::parse_plugin_error(
        br#"{"code":11,"msg":"failed to allocate","details":"range full"}"#,
        b"",
    );
    assert_eq!((code, msg.as_str()), (11, "failed to allocate: range full"));
    let (code, msg) = cni::parse_plugin_error(b"", b"panic: boom\n");
    assert_eq!((code, msg.as_str()), (0, "panic: boom"));
}

#[tokio::test]
async fn a_chain_without_plugins_or_with_a_path_as_type_is_refused() {
    let plugins = FakePlugins::default();
    let inv = Invocation {
        command: CniCommand::Add,
        container_id: "a",
        netns: None,
        ifname: "eth0",
    };
    let empty = Chain {
        name: "n".into(),
        cni_version: "1.0.0".into(),
        plugins: vec![],
    };
    assert!(empty.add(&plugins, &inv, &json!({})).await.is_err());
    let sneaky = Chain {
        plugins: vec![json!({"type": "../../bin/sh"})],
        ..empty
    };
    assert!(sneaky.add(&plugins, &inv, &json!({})).await.is_err());
    assert!(plugins.calls().is_empty());
}

#[tokio::test]
async fn by_default_cleanup_leaves_namespaces_and_leases_of_other_state_dirs_alone() {
    let f = Fixture::new();
    f.net.attach("gone", &[]).await.expect("attach gone");
    // Another engine's instance on the same bridge, prefix and lease dir.
    std::fs::write(f.net.netns_path("theirs"), b"").expect("their netns");
    let leases = f.net.config().lease_dir();
    std::fs::write(leases.join("10.88.9.9"), "theirs\r\neth0").expect("their lease");
    let cleaned = f
        .net
        .cleanup_orphans(&HashSet::new())
        .await
        .expect("cleanup");
    assert_eq!(cleaned, vec!["gone".to_string()]);
    assert_eq!(f.leases(), vec!["theirs"]);
    assert!(f.net.netns_path("theirs").exists());
}

#[tokio::test]
async fn detaching_an_instance_without_a_record_touches_nothing_another_engine_may_own() {
    let f = Fixture::new();
    std::fs::write(f.net.netns_path("theirs"), b"").expect("their netns");
    f.net.detach("theirs").await.expect("detach");
    assert!(f.plugins.calls().is_empty());
    assert!(f.net.netns_path("theirs").exists());
}
