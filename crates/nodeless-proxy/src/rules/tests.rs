use super::*;
use crate::fixtures::{service, slice, with_affinity, READY};
use crate::model::{service_ports, Endpoint, Protocol};

fn config() -> RulesConfig {
    RulesConfig {
        table: "nodeless".into(),
        pod_cidr: Some("10.88.0.0/16".parse().expect("cidr")),
        service_cidr: Some("10.96.0.0/12".parse().expect("cidr")),
        masquerade_mark: 0x4000,
    }
}

/// Service ns/web at 10.96.0.20:80 (TCP, unnamed) over the given endpoint IPs on 8080.
fn web(ips: &[&str], affinity: bool) -> Vec<ServicePort> {
    let mut svc = service("ns", "web", "10.96.0.20", &[("", "TCP", 80)]);
    if affinity {
        svc = with_affinity(svc, Some(60));
    }
    let eps: Vec<_> = ips.iter().map(|ip| (*ip, READY)).collect();
    let s = slice("ns", "web", "web-1", &eps, &[("", "TCP", 8080)]);
    service_ports([&svc], [&s])
}

fn lines_with<'a>(script: &'a str, needle: &str) -> Vec<&'a str> {
    script.lines().filter(|l| l.contains(needle)).collect()
}

#[test]
fn one_endpoint_service_renders_service_and_endpoint_chains_and_map_entry() {
    let ports = web(&["10.88.0.5"], false);
    let rs = build(&config(), &ports);
    let svc = service_chain(&ports[0]);
    let ep = endpoint_chain(&ports[0], &ports[0].endpoints[0]);
    assert!(
        svc.starts_with("service-") && svc.ends_with("-ns/web/tcp/"),
        "{svc}"
    );
    assert!(ep.ends_with("-ns/web/tcp/__10.88.0.5/8080"), "{ep}");
    assert_eq!(
        rs.chains[&svc],
        [
            "ip daddr 10.96.0.20 ip saddr != 10.88.0.0/16 jump mark-for-masquerade".to_string(),
            format!("numgen random mod 1 vmap {{ 0 : goto {ep} }}"),
        ]
    );
    assert_eq!(
        rs.chains[&ep],
        [
            "ip saddr 10.88.0.5 jump mark-for-masquerade",
            "meta l4proto tcp dnat to 10.88.0.5:8080",
        ]
    );
    assert_eq!(
        rs.service_ips,
        BTreeMap::from([("10.96.0.20 . tcp . 80".to_string(), format!("goto {svc}"))])
    );
    assert!(rs.no_endpoint.is_empty());
    let script = render_full(&rs);
    assert!(script.contains(&format!(
        "add element ip nodeless service-ips {{ 10.96.0.20 . tcp . 80 : goto {svc} }}\n"
    )));
    assert!(script.contains("add element ip nodeless cluster-ips { 10.96.0.20 }\n"));
}

#[test]
fn full_script_replaces_the_table_and_hooks_prerouting_output_and_postrouting() {
    let script = render_full(&build(&config(), &web(&["10.88.0.5"], false)));
    let mut lines = script.lines();
    assert_eq!(lines.next(), Some("add table ip nodeless"));
    assert_eq!(lines.next(), Some("delete table ip nodeless"));
    for hook in [
        "nat-prerouting { type nat hook prerouting priority -100 ; }",
        "nat-output { type nat hook output priority -100 ; }",
        "nat-postrouting { type nat hook postrouting priority 100 ; }",
        "filter-forward { type filter hook forward priority 0 ; }",
        "filter-output { type filter hook output priority 0 ; }",
    ] {
        assert!(
            script.contains(&format!("add chain ip nodeless {hook}\n")),
            "{hook}"
        );
    }
    assert!(script.contains("add rule ip nodeless nat-prerouting jump services\n"));
    assert!(script.contains("add rule ip nodeless nat-output jump services\n"));
    assert!(script.contains("add rule ip nodeless masquerading masquerade fully-random\n"));
    assert!(script.contains("add rule ip nodeless mark-for-masquerade mark set mark or 0x4000\n"));
    assert!(script.contains("add rule ip nodeless cluster-ips-check ip daddr 10.96.0.0/12 drop\n"));
    // Chains are declared before the map elements that jump to them.
    let chain_at = script
        .find("add chain ip nodeless service-")
        .expect("chain");
    let element_at = script
        .find("add element ip nodeless service-ips")
        .expect("element");
    assert!(chain_at < element_at);
}

#[test]
fn traffic_is_spread_over_every_endpoint_with_numgen() {
    let ports = web(&["10.88.0.5", "10.88.0.6", "10.88.0.7"], false);
    let rs = build(&config(), &ports);
    let rules = &rs.chains[&service_chain(&ports[0])];
    let numgen = rules.last().expect("numgen rule");
    assert!(
        numgen.starts_with("numgen random mod 3 vmap { 0 : goto endpoint-"),
        "{numgen}"
    );
    for (i, ep) in ports[0].endpoints.iter().enumerate() {
        assert!(numgen.contains(&format!("{i} : goto {}", endpoint_chain(&ports[0], ep))));
    }
    assert_eq!(rs.chains.len(), 4);
}

#[test]
fn a_service_without_endpoints_rejects_instead_of_getting_chains() {
    let rs = build(&config(), &web(&[], false));
    assert!(rs.chains.is_empty());
    assert!(rs.service_ips.is_empty());
    assert_eq!(
        rs.no_endpoint,
        BTreeMap::from([(
            "10.96.0.20 . tcp . 80".to_string(),
            "goto reject-chain".to_string()
        )])
    );
    assert!(rs.cluster_ips.contains(&Ipv4Addr::new(10, 96, 0, 20)));
    let script = render_full(&rs);
    assert!(script.contains(
        "add element ip nodeless no-endpoint-services { 10.96.0.20 . tcp . 80 : goto reject-chain }\n"
    ));
    assert!(script
        .contains("add rule ip nodeless reject-chain meta l4proto tcp reject with tcp reset\n"));
    assert!(script.contains(
        "add rule ip nodeless filter-forward ct state new jump service-endpoints-check\n"
    ));
    assert!(script.contains(
        "add rule ip nodeless filter-output ct state new jump service-endpoints-check\n"
    ));
}

#[test]
fn client_ip_affinity_looks_up_the_client_before_numgen_and_records_it_per_endpoint() {
    let ports = web(&["10.88.0.5", "10.88.0.6"], true);
    let rs = build(&config(), &ports);
    let sp = &ports[0];
    let rules = &rs.chains[&service_chain(sp)];
    assert_eq!(rules.len(), 4, "{rules:?}");
    for (i, ep) in sp.endpoints.iter().enumerate() {
        let set = affinity_set(sp, ep);
        assert_eq!(rs.affinity_sets[&set], 60);
        assert_eq!(
            rules[1 + i],
            format!("ip saddr @{set} goto {}", endpoint_chain(sp, ep))
        );
        let ep_rules = &rs.chains[&endpoint_chain(sp, ep)];
        assert_eq!(ep_rules[1], format!("update @{set} {{ ip saddr }}"));
    }
    assert!(rules[3].starts_with("numgen random mod 2"));
    let script = render_full(&rs);
    assert_eq!(
        lines_with(&script, "flags dynamic,timeout ; timeout 60s ;").len(),
        2
    );
}

#[test]
fn hairpin_traffic_is_marked_for_masquerade_in_the_endpoint_chain() {
    let ports = web(&["10.88.0.5"], false);
    let rs = build(&config(), &ports);
    let rules = &rs.chains[&endpoint_chain(&ports[0], &ports[0].endpoints[0])];
    assert_eq!(rules[0], "ip saddr 10.88.0.5 jump mark-for-masquerade");
}

#[test]
fn without_a_pod_cidr_only_hairpin_traffic_is_masqueraded() {
    let mut cfg = config();
    cfg.pod_cidr = None;
    cfg.service_cidr = None;
    let ports = web(&["10.88.0.5"], false);
    let rs = build(&cfg, &ports);
    assert_eq!(rs.chains[&service_chain(&ports[0])].len(), 1);
    assert!(!render_full(&rs).contains(" drop\n"));
}

#[test]
fn udp_ports_dnat_udp() {
    let svc = service(
        "kube-system",
        "kube-dns",
        "10.96.0.10",
        &[("dns", "UDP", 53)],
    );
    let s = slice(
        "kube-system",
        "kube-dns",
        "d",
        &[("10.88.0.1", READY)],
        &[("dns", "UDP", 53)],
    );
    let ports = service_ports([&svc], [&s]);
    assert_eq!(ports[0].protocol, Protocol::Udp);
    let rs = build(&config(), &ports);
    let ep = &rs.chains[&endpoint_chain(&ports[0], &ports[0].endpoints[0])];
    assert_eq!(ep[1], "meta l4proto udp dnat to 10.88.0.1:53");
    assert!(rs.service_ips["10.96.0.10 . udp . 53"].starts_with("goto service-"));
}

#[test]
fn unchanged_services_build_an_equal_ruleset() {
    let a = build(&config(), &web(&["10.88.0.5", "10.88.0.6"], true));
    let b = build(&config(), &web(&["10.88.0.6", "10.88.0.5"], true));
    assert_eq!(a, b);
}

#[test]
fn an_update_touches_only_chains_that_changed_and_deletes_the_ones_that_went() {
    let prev = build(&config(), &web(&["10.88.0.5", "10.88.0.6"], false));
    let ports = web(&["10.88.0.6", "10.88.0.7"], false);
    let next = build(&config(), &ports);
    let script = render_update(&prev, &next);
    let sp = &ports[0];
    let chain_of = |ip: &str| {
        let ep = prev_endpoint(ip);
        endpoint_chain(sp, &ep)
    };
    assert_eq!(
        lines_with(&script, "flush chain"),
        [
            format!("flush chain ip nodeless {}", service_chain(sp)),
            format!("flush chain ip nodeless {}", chain_of("10.88.0.5")),
        ],
        "{script}"
    );
    assert_eq!(
        lines_with(&script, "delete chain"),
        [format!(
            "delete chain ip nodeless {}",
            chain_of("10.88.0.5")
        )]
    );
    assert_eq!(
        lines_with(&script, "add chain"),
        [format!("add chain ip nodeless {}", chain_of("10.88.0.7"))]
    );
    // The endpoint that stays is not touched at all.
    assert!(lines_with(&script, &chain_of("10.88.0.6"))
        .iter()
        .all(|l| l.contains("numgen")));
    // Removals before additions: nothing is deleted while still referenced.
    let last_removal = ["flush ", "delete "]
        .iter()
        .filter_map(|w| script.rfind(w))
        .max()
        .expect("removals");
    let first_add = script.find("add ").expect("additions");
    assert!(last_removal < first_add, "{script}");
    assert!(!script.contains("delete table"));
    // The service's map entry still points at the same chain: left alone.
    assert!(!script.contains("service-ips"), "{script}");
    assert!(script.contains("10.88.0.7:8080"));
}

fn prev_endpoint(ip: &str) -> Endpoint {
    Endpoint {
        ip: ip.parse().expect("test ip"),
        port: 8080,
    }
}

#[test]
fn an_update_of_one_service_among_many_leaves_the_others_alone() {
    let svcs: Vec<_> = (1..=50)
        .map(|i| {
            service(
                "ns",
                &format!("s{i}"),
                &format!("10.96.1.{i}"),
                &[("", "TCP", 80)],
            )
        })
        .collect();
    let slices: Vec<_> = (1..=50)
        .map(|i| {
            let ip = if i == 7 {
                "10.88.9.9".to_string()
            } else {
                format!("10.88.1.{i}")
            };
            (i, ip)
        })
        .map(|(i, ip)| {
            slice(
                "ns",
                &format!("s{i}"),
                "x",
                &[(ip.as_str(), READY)],
                &[("", "TCP", 80)],
            )
        })
        .collect();
    let before: Vec<_> = (1..=50)
        .map(|i| {
            let ip = format!("10.88.1.{i}");
            slice(
                "ns",
                &format!("s{i}"),
                "x",
                &[(ip.as_str(), READY)],
                &[("", "TCP", 80)],
            )
        })
        .collect();
    let prev = build(&config(), &service_ports(&svcs, &before));
    let next = build(&config(), &service_ports(&svcs, &slices));
    let script = render_update(&prev, &next);
    // s7's service chain rewritten, its old endpoint chain gone, a new one added.
    assert_eq!(script.lines().count(), 8, "{script}");
    assert!(script.lines().all(|l| l.contains("ns/s7/")), "{script}");
}

#[test]
fn a_service_losing_its_endpoints_moves_from_service_ips_to_no_endpoint_services() {
    let prev = build(&config(), &web(&["10.88.0.5"], false));
    let next = build(&config(), &web(&[], false));
    let script = render_update(&prev, &next);
    assert!(script.contains("delete element ip nodeless service-ips { 10.96.0.20 . tcp . 80 }\n"));
    assert!(script.contains(
        "add element ip nodeless no-endpoint-services { 10.96.0.20 . tcp . 80 : goto reject-chain }\n"
    ));
    assert_eq!(lines_with(&script, "delete chain").len(), 2);
    // The ClusterIP stays allocated.
    assert!(!script.contains("cluster-ips"));
}

#[test]
fn an_update_keeps_the_affinity_sets_of_endpoints_that_stay() {
    let prev = build(&config(), &web(&["10.88.0.5", "10.88.0.6"], true));
    let next = build(&config(), &web(&["10.88.0.6"], true));
    let script = render_update(&prev, &next);
    assert_eq!(lines_with(&script, "add set").len(), 0, "{script}");
    let deleted = lines_with(&script, "delete set");
    assert_eq!(deleted.len(), 1);
    assert!(deleted[0].ends_with("__10.88.0.5/8080"), "{}", deleted[0]);
}

#[test]
fn a_changed_affinity_timeout_recreates_the_set() {
    let prev = build(&config(), &web(&["10.88.0.5"], true));
    let mut svc = service("ns", "web", "10.96.0.20", &[("", "TCP", 80)]);
    svc = with_affinity(svc, Some(90));
    let s = slice(
        "ns",
        "web",
        "web-1",
        &[("10.88.0.5", READY)],
        &[("", "TCP", 8080)],
    );
    let next = build(&config(), &service_ports([&svc], [&s]));
    let script = render_update(&prev, &next);
    assert_eq!(lines_with(&script, "delete set").len(), 1);
    assert_eq!(lines_with(&script, "timeout 90s").len(), 1);
}

#[test]
fn names_are_cleaned_to_nft_identifier_characters_and_stay_distinct() {
    let a = object_name("service", "ns/a b/tcp/x");
    let b = object_name("service", "ns/a_b/tcp/x");
    assert!(a.ends_with("-ns/a_b/tcp/x"), "{a}");
    assert_ne!(a, b);
    let long = object_name("endpoint", &"x".repeat(500));
    assert!(long.len() < 256);
}

#[test]
fn deleting_the_table_tolerates_a_missing_one() {
    assert_eq!(
        render_delete("nodeless"),
        "add table ip nodeless\ndelete table ip nodeless\n"
    );
}
