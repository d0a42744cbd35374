use super::*;
use crate::fixtures::{service, slice, with_affinity, NOT_READY, READY, TERMINATING};

fn ep(ip: &str, port: u16) -> Endpoint {
    Endpoint {
        ip: ip.parse().expect("test ip"),
        port,
    }
}

#[test]
fn each_service_port_gets_the_endpoints_of_the_slice_port_with_its_name() {
    let svc = service(
        "default",
        "web",
        "10.96.0.20",
        &[("http", "TCP", 80), ("dns", "UDP", 53)],
    );
    let s = slice(
        "default",
        "web",
        "web-abc",
        &[("10.88.0.5", READY), ("10.88.0.6", None)],
        &[("http", "TCP", 8080), ("dns", "UDP", 5353)],
    );
    let ports = service_ports([&svc], [&s]);
    assert_eq!(ports.len(), 2);
    // Sorted by port name: dns before http.
    assert_eq!(ports[0].port_name, "dns");
    assert_eq!(ports[0].protocol, Protocol::Udp);
    assert_eq!(
        ports[0].endpoints,
        [ep("10.88.0.5", 5353), ep("10.88.0.6", 5353)]
    );
    assert_eq!(ports[1].port, 80);
    assert_eq!(ports[1].cluster_ip, Ipv4Addr::new(10, 96, 0, 20));
    assert_eq!(
        ports[1].endpoints,
        [ep("10.88.0.5", 8080), ep("10.88.0.6", 8080)]
    );
    assert_eq!(ports[1].id(), "default/web/tcp/http");
}

#[test]
fn endpoints_from_several_slices_are_merged_and_deduplicated() {
    let svc = service("ns", "s", "10.96.0.1", &[("", "TCP", 80)]);
    let a = slice(
        "ns",
        "s",
        "s-1",
        &[("10.88.0.9", READY)],
        &[("", "TCP", 80)],
    );
    let b = slice(
        "ns",
        "s",
        "s-2",
        &[("10.88.0.2", READY), ("10.88.0.9", READY)],
        &[("", "TCP", 80)],
    );
    let ports = service_ports([&svc], [&a, &b]);
    assert_eq!(
        ports[0].endpoints,
        [ep("10.88.0.2", 80), ep("10.88.0.9", 80)]
    );
}

#[test]
fn slices_of_other_services_or_namespaces_are_ignored() {
    let svc = service("ns", "s", "10.96.0.1", &[("", "TCP", 80)]);
    let other_name = slice(
        "ns",
        "t",
        "t-1",
        &[("10.88.0.3", READY)],
        &[("", "TCP", 80)],
    );
    let other_ns = slice(
        "ns2",
        "s",
        "s-1",
        &[("10.88.0.4", READY)],
        &[("", "TCP", 80)],
    );
    let ports = service_ports([&svc], [&other_name, &other_ns]);
    assert!(ports[0].endpoints.is_empty());
}

#[test]
fn only_ready_endpoints_are_used_while_any_is_ready() {
    let svc = service("ns", "s", "10.96.0.1", &[("", "TCP", 80)]);
    let s = slice(
        "ns",
        "s",
        "s-1",
        &[
            ("10.88.0.2", READY),
            ("10.88.0.3", TERMINATING),
            ("10.88.0.4", NOT_READY),
        ],
        &[("", "TCP", 80)],
    );
    assert_eq!(
        service_ports([&svc], [&s])[0].endpoints,
        [ep("10.88.0.2", 80)]
    );
}

#[test]
fn serving_terminating_endpoints_are_the_fallback_when_none_is_ready() {
    let svc = service("ns", "s", "10.96.0.1", &[("", "TCP", 80)]);
    let s = slice(
        "ns",
        "s",
        "s-1",
        &[("10.88.0.3", TERMINATING), ("10.88.0.4", NOT_READY)],
        &[("", "TCP", 80)],
    );
    assert_eq!(
        service_ports([&svc], [&s])[0].endpoints,
        [ep("10.88.0.3", 80)]
    );
}

#[test]
fn a_slice_port_of_another_protocol_does_not_match() {
    let svc = service("ns", "s", "10.96.0.1", &[("dns", "UDP", 53)]);
    let s = slice(
        "ns",
        "s",
        "s-1",
        &[("10.88.0.3", READY)],
        &[("dns", "TCP", 53)],
    );
    assert!(service_ports([&svc], [&s])[0].endpoints.is_empty());
}

#[test]
fn headless_external_name_and_sctp_services_have_no_ports() {
    let headless = service("ns", "h", "None", &[("", "TCP", 80)]);
    let mut external = service("ns", "e", "10.96.0.9", &[("", "TCP", 80)]);
    external.spec.as_mut().expect("spec").type_ = Some("ExternalName".into());
    let sctp = service("ns", "x", "10.96.0.8", &[("", "SCTP", 80)]);
    let ipv6 = service("ns", "v6", "fd00::1", &[("", "TCP", 80)]);
    assert!(service_ports([&headless, &external, &sctp, &ipv6], []).is_empty());
}

#[test]
fn malformed_addresses_and_ports_are_skipped_without_failing_the_rest() {
    let svc = service(
        "ns",
        "s",
        "10.96.0.1",
        &[("", "TCP", 80), ("big", "TCP", 70000)],
    );
    let s = slice(
        "ns",
        "s",
        "s-1",
        &[("not-an-ip", READY), ("10.88.0.7", READY)],
        &[("", "TCP", 80)],
    );
    let ports = service_ports([&svc], [&s]);
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].endpoints, [ep("10.88.0.7", 80)]);
}

#[test]
fn client_ip_affinity_defaults_to_three_hours() {
    let plain = service("ns", "a", "10.96.0.1", &[("", "TCP", 80)]);
    let default = with_affinity(service("ns", "b", "10.96.0.2", &[("", "TCP", 80)]), None);
    let custom = with_affinity(
        service("ns", "c", "10.96.0.3", &[("", "TCP", 80)]),
        Some(60),
    );
    let ports = service_ports([&plain, &default, &custom], []);
    let timeouts: Vec<Option<u32>> = ports.iter().map(|p| p.affinity_timeout).collect();
    assert_eq!(timeouts, [None, Some(10_800), Some(60)]);
}
