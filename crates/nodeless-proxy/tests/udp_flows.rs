//! Root-only: a UDP client that keeps its source port follows a Service to its new endpoint
//! once the old one is gone. The kernel keeps a UDP flow's NAT decision in its conntrack
//! entry, so without the sync forgetting the entry the client would keep reaching the old
//! endpoint (here still alive, so the mistake shows) until the entry idles out.

mod support;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use nodeless_proxy::rules::RulesConfig;
use nodeless_proxy::{Endpoint, HostConntrack, HostNft, Protocol, ServicePort, Syncer};
use support::{skip_reason, udp_ask_from, udp_echo, TestNet};

struct Table(String);

impl Drop for Table {
    fn drop(&mut self) {
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "ip", &self.0])
            .output();
    }
}

fn dns(ip: Ipv4Addr, endpoint: Ipv4Addr) -> ServicePort {
    ServicePort {
        namespace: "test".into(),
        name: "dns".into(),
        port_name: String::new(),
        protocol: Protocol::Udp,
        cluster_ip: ip,
        port: 53,
        affinity_timeout: None,
        endpoints: vec![Endpoint {
            ip: endpoint,
            port: 5353,
        }],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_udp_client_keeping_its_port_follows_the_service_to_its_new_endpoint() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    assert!(
        std::process::Command::new("conntrack")
            .arg("--version")
            .output()
            .is_ok(),
        "conntrack is not installed (scripts/engine-deps.sh installs it)"
    );
    nodeless_proxy::sysctl::prepare_host("/proc/sys".as_ref()).expect("sysctls");
    let net = TestNet::create(3);
    let (old, client, new) = (&net.namespaces[0], &net.namespaces[1], &net.namespaces[2]);
    for ns in [old, new] {
        let name = ns.name.clone();
        ns.run(move || udp_echo(5353, name));
    }
    // 198.18.0.0/15 is never routed locally: only the test table delivers it.
    let vip = Ipv4Addr::new(198, 19, (std::process::id() % 250) as u8, 53);
    let table = Table(format!("nodeless_udp_{}", std::process::id()));
    let config = RulesConfig {
        table: table.0.clone(),
        pod_cidr: Some(net.subnet),
        service_cidr: None,
        masquerade_mark: 0x4000,
    };
    let nft = Arc::new(HostNft::new("nft").await.expect("nft"));
    let mut syncer = Syncer::new(nft, config).with_conntrack(Arc::new(HostConntrack::default()));
    syncer.sync(&[dns(vip, old.ip)]).await.expect("apply");

    let addr = SocketAddr::from((vip, 53));
    let ask = move || udp_ask_from(40053, addr, "q");
    assert_eq!(client.run(ask), Ok(format!("{}:q", old.name)));
    assert_eq!(
        client.run(ask),
        Ok(format!("{}:q", old.name)),
        "the flow stays"
    );

    syncer.sync(&[dns(vip, new.ip)]).await.expect("apply");
    assert_eq!(
        client.run(ask),
        Ok(format!("{}:q", new.name)),
        "the same client port reaches the new endpoint"
    );
    drop(table);
}
