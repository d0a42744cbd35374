//! Root-only: the real ruleset in the real kernel. Namespaces on a test bridge stand in for
//! instances; a test table (named per run) holds the rules; connections to a Service address
//! must reach its endpoints from another namespace, from the host, and from the endpoint
//! itself (hairpin), and must not once the table is gone.

mod support;

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use nodeless_proxy::rules::{self, RulesConfig};
use nodeless_proxy::{Endpoint, HostNft, NftApplier, Protocol, ServicePort, SyncOutcome, Syncer};
use support::{http_get, http_server, skip_reason, udp_ask, udp_echo, TestNet};

/// Test Service addresses: 198.18.0.0/15 is for benchmarking and never routed locally, so
/// only the test table can deliver them (and they collide with no real Service).
fn vip(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, (std::process::id() % 250) as u8, n)
}

fn port(
    name: &str,
    ip: Ipv4Addr,
    port: u16,
    protocol: Protocol,
    eps: &[(Ipv4Addr, u16)],
) -> ServicePort {
    ServicePort {
        namespace: "test".into(),
        name: name.into(),
        port_name: String::new(),
        protocol,
        cluster_ip: ip,
        port,
        affinity_timeout: None,
        endpoints: eps
            .iter()
            .map(|(ip, port)| Endpoint {
                ip: *ip,
                port: *port,
            })
            .collect(),
    }
}

struct Table {
    nft: Arc<HostNft>,
    name: String,
}

impl Drop for Table {
    fn drop(&mut self) {
        let _ = std::process::Command::new("nft")
            .args(["delete", "table", "ip", &self.name])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_ips_reach_endpoints_from_instances_the_host_and_the_endpoint_itself() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    nodeless_proxy::sysctl::prepare_host("/proc/sys".as_ref()).expect("sysctls");
    let net = TestNet::create(3);
    let (a, b, c) = (&net.namespaces[0], &net.namespaces[1], &net.namespaces[2]);
    for ns in [a, c] {
        let name = ns.name.clone();
        ns.run(move || {
            http_server(8080, name.clone());
            udp_echo(5353, name);
        });
    }
    // A listener on the host's bridge address, as the cluster DNS server has.
    let host_http = http_server(0, "host".into());
    let host_ep = (net.gateway, host_http.port());

    let table = Table {
        nft: Arc::new(HostNft::new("nft").await.expect("nft")),
        name: format!("nodeless_test_{}", std::process::id()),
    };
    let config = RulesConfig {
        table: table.name.clone(),
        pod_cidr: Some(net.subnet),
        service_cidr: None,
        masquerade_mark: 0x4000,
    };
    let mut web = port("web", vip(1), 80, Protocol::Tcp, &[(a.ip, 8080)]);
    let dns = port("dns", vip(2), 53, Protocol::Udp, &[(a.ip, 5353)]);
    let empty = port("empty", vip(3), 80, Protocol::Tcp, &[]);
    let on_host = port("on-host", vip(4), 80, Protocol::Tcp, &[host_ep]);
    let mut syncer = Syncer::new(table.nft.clone(), config.clone());
    let services = vec![web.clone(), dns.clone(), empty.clone(), on_host.clone()];
    assert_eq!(
        syncer.sync(&services).await.expect("apply"),
        SyncOutcome::Replaced
    );

    let web_addr = SocketAddr::from((vip(1), 80));
    assert_eq!(
        b.run(move || http_get(web_addr)),
        Ok(a.name.clone()),
        "from another instance"
    );
    assert_eq!(http_get(web_addr), Ok(a.name.clone()), "from the host");
    assert_eq!(
        a.run(move || http_get(web_addr)),
        Ok(a.name.clone()),
        "hairpin"
    );
    let dns_addr = SocketAddr::from((vip(2), 53));
    assert_eq!(
        b.run(move || udp_ask(dns_addr, "q")),
        Ok(format!("{}:q", a.name)),
        "udp"
    );
    let host_addr = SocketAddr::from((vip(4), 80));
    assert_eq!(
        b.run(move || http_get(host_addr)),
        Ok("host".into()),
        "instance to host endpoint"
    );
    assert_eq!(
        http_get(host_addr),
        Ok("host".into()),
        "host to host endpoint"
    );

    // No endpoints: refused at once, not left to time out.
    let empty_addr = SocketAddr::from((vip(3), 80));
    let refused = b
        .run(move || http_get(empty_addr))
        .expect_err("no endpoints");
    assert!(refused.contains("refused"), "{refused}");
    let refused = http_get(empty_addr).expect_err("no endpoints");
    assert!(refused.contains("refused"), "{refused}");
    // A port the Service does not have.
    let wrong_port = SocketAddr::from((vip(1), 81));
    let refused = b
        .run(move || http_get(wrong_port))
        .expect_err("no such port");
    assert!(refused.contains("refused"), "{refused}");

    // Two endpoints: both get traffic.
    web.endpoints.push(Endpoint {
        ip: c.ip,
        port: 8080,
    });
    let services = vec![web.clone(), dns.clone(), empty.clone(), on_host.clone()];
    assert_eq!(
        syncer.sync(&services).await.expect("apply"),
        SyncOutcome::Updated
    );
    let seen: BTreeSet<String> =
        b.run(move || (0..40).map(|_| http_get(web_addr).expect("get")).collect());
    assert_eq!(seen, BTreeSet::from([a.name.clone(), c.name.clone()]));

    // ClientIP affinity: one client sticks to one endpoint.
    web.affinity_timeout = Some(60);
    let services = vec![web.clone(), dns.clone(), empty.clone(), on_host.clone()];
    assert_eq!(
        syncer.sync(&services).await.expect("apply"),
        SyncOutcome::Updated
    );
    let seen: BTreeSet<String> =
        b.run(move || (0..20).map(|_| http_get(web_addr).expect("get")).collect());
    assert_eq!(seen.len(), 1, "{seen:?}");

    // The sticky endpoint goes: the client moves to the one left.
    let stuck = seen.into_iter().next().expect("one");
    let left = if stuck == a.name { c } else { a };
    web.endpoints.retain(|e| e.ip == left.ip);
    let services = vec![web.clone(), dns, empty, on_host];
    assert_eq!(
        syncer.sync(&services).await.expect("apply"),
        SyncOutcome::Updated
    );
    assert_eq!(b.run(move || http_get(web_addr)), Ok(left.name.clone()));

    // Without the table the address leads nowhere.
    table
        .nft
        .apply(&rules::render_delete(&table.name))
        .await
        .expect("delete table");
    assert!(b.run(move || http_get(web_addr)).is_err(), "table removed");
}

#[tokio::test]
async fn the_full_and_update_scripts_are_accepted_by_nft() {
    if let Some(why) = skip_reason() {
        eprintln!("skipping: {why}");
        return;
    }
    let nft = HostNft::new("nft").await.expect("nft");
    let table = format!("nodeless_check_{}", std::process::id());
    let config = RulesConfig {
        table: table.clone(),
        pod_cidr: Some("10.88.0.0/16".parse().expect("cidr")),
        service_cidr: Some("198.19.0.0/16".parse().expect("cidr")),
        masquerade_mark: 0x4000,
    };
    let ip = |n| Ipv4Addr::new(10, 88, 200, n);
    let mut web = port(
        "web",
        Ipv4Addr::new(198, 19, 0, 1),
        80,
        Protocol::Tcp,
        &[(ip(1), 80), (ip(2), 80)],
    );
    web.affinity_timeout = Some(10_800);
    let udp = port(
        "dns",
        Ipv4Addr::new(198, 19, 0, 2),
        53,
        Protocol::Udp,
        &[(ip(3), 53)],
    );
    let first = rules::build(&config, &[web.clone(), udp]);
    nft.apply(&rules::render_full(&first))
        .await
        .expect("full script");
    web.endpoints.remove(0);
    web.affinity_timeout = Some(60);
    let second = rules::build(&config, &[web]);
    let applied = nft.apply(&rules::render_update(&first, &second)).await;
    nft.apply(&rules::render_delete(&table))
        .await
        .expect("delete");
    applied.expect("update script");
}
