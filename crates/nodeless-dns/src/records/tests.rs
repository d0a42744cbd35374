use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;
use std::sync::Arc;

use hickory_proto::rr::{Name, RData, RecordType};
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use serde_json::{json, Value};

use super::*;

const DNS_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 96, 0, 10));

fn service(ns: &str, name: &str, spec: Value) -> Arc<Service> {
    Arc::new(
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": ns}, "spec": spec}))
            .expect("service"),
    )
}

fn slice(ns: &str, service: &str, endpoints: Value, ports: Value) -> Arc<EndpointSlice> {
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": format!("{service}-abc"), "namespace": ns,
                         "labels": {"kubernetes.io/service-name": service}},
            "addressType": "IPv4", "endpoints": endpoints, "ports": ports,
        }))
        .expect("endpointslice"),
    )
}

fn pod(ns: &str, name: &str, spec: Value, ip: &str, ready: bool) -> Arc<Pod> {
    let status = if ready { "True" } else { "False" };
    Arc::new(
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": ns},
            "spec": spec,
            "status": {"podIP": ip, "podIPs": [{"ip": ip}],
                       "conditions": [{"type": "Ready", "status": status}]},
        }))
        .expect("pod"),
    )
}

fn build(services: &[Arc<Service>], slices: &[Arc<EndpointSlice>], pods: &[Arc<Pod>]) -> Records {
    let objects = Objects {
        services,
        slices,
        pods,
    };
    Records::build("cluster.local", DNS_IP, 1, objects).expect("records")
}

fn name(s: &str) -> Name {
    Name::from_str(s).expect("name")
}

/// The answer's record data, or the negative answer's name.
fn data(records: &Records, qname: &str, qtype: RecordType) -> Result<Vec<RData>, Answer> {
    match records.lookup(&name(qname), qtype) {
        Answer::Found { answers, .. } => Ok(answers.into_iter().map(|r| r.data).collect()),
        other => Err(other),
    }
}

fn a(ip: &str) -> RData {
    RData::A(A(ip.parse().expect("ipv4")))
}

fn srv(port: u16, weight: u16, target: &str) -> RData {
    RData::SRV(SRV::new(0, weight, port, name(target)))
}

fn web() -> Arc<Service> {
    service(
        "shop",
        "web",
        json!({"clusterIP": "10.96.4.2", "clusterIPs": ["10.96.4.2"], "ports": [
            {"name": "http", "port": 80, "protocol": "TCP"},
            {"name": "dns", "port": 53, "protocol": "UDP"},
            {"port": 9000}]}),
    )
}

fn db_headless() -> (Arc<Service>, Arc<EndpointSlice>) {
    let svc = service(
        "shop",
        "db",
        json!({"clusterIP": "None", "clusterIPs": ["None"],
               "ports": [{"name": "pg", "port": 5432}]}),
    );
    let slice = slice(
        "shop",
        "db",
        json!([
            {"addresses": ["10.88.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
            {"addresses": ["10.88.0.6"], "conditions": {"ready": true}},
            {"addresses": ["10.88.0.7"], "hostname": "db-2", "conditions": {"ready": false}},
        ]),
        json!([{"name": "pg", "port": 5432, "protocol": "TCP"}]),
    );
    (svc, slice)
}

#[test]
fn a_cluster_ip_service_name_resolves_to_its_cluster_ip_with_a_five_second_ttl() {
    let records = build(&[web()], &[], &[]);
    let Answer::Found { answers, .. } =
        records.lookup(&name("web.shop.svc.cluster.local."), RecordType::A)
    else {
        panic!("no answer");
    };
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].data, a("10.96.4.2"));
    assert_eq!(answers[0].ttl, 5);
}

#[test]
fn names_match_case_insensitively_and_answers_keep_the_asked_case() {
    let records = build(&[web()], &[], &[]);
    // from_ascii keeps case, as names read off the wire do (from_str folds it).
    let asked = Name::from_ascii("WEB.Shop.SVC.cluster.LOCAL.").expect("name");
    let Answer::Found { answers, .. } = records.lookup(&asked, RecordType::A) else {
        panic!("no answer");
    };
    assert_eq!(answers[0].name.to_ascii(), "WEB.Shop.SVC.cluster.LOCAL.");
}

#[test]
fn an_existing_name_without_the_asked_type_is_nodata_and_an_unknown_one_nxdomain() {
    let records = build(&[web()], &[], &[]);
    let check = |q: &str, t| data(&records, q, t);
    assert_eq!(
        check("web.shop.svc.cluster.local.", RecordType::AAAA),
        Err(Answer::NoData)
    );
    assert_eq!(
        check("shop.svc.cluster.local.", RecordType::A),
        Err(Answer::NoData)
    );
    assert_eq!(
        check("svc.cluster.local.", RecordType::A),
        Err(Answer::NoData)
    );
    assert_eq!(check("cluster.local.", RecordType::A), Err(Answer::NoData));
    assert_eq!(
        check("api.shop.svc.cluster.local.", RecordType::A),
        Err(Answer::NxDomain)
    );
    assert_eq!(
        check("web.other.svc.cluster.local.", RecordType::A),
        Err(Answer::NxDomain)
    );
    assert_eq!(
        check("other.svc.cluster.local.", RecordType::A),
        Err(Answer::NxDomain)
    );
    // What a search path makes of an external name under ndots:5.
    assert_eq!(
        check("example.com.shop.svc.cluster.local.", RecordType::A),
        Err(Answer::NxDomain)
    );
}

#[test]
fn names_outside_the_cluster_domain_are_forwarded() {
    let records = build(&[web()], &[], &[]);
    assert_eq!(
        data(&records, "example.com.", RecordType::A),
        Err(Answer::NotOurs)
    );
    assert_eq!(
        data(&records, "local.", RecordType::A),
        Err(Answer::NotOurs)
    );
    assert_eq!(
        data(&records, "1.0.0.10.in-addr.arpa.", RecordType::PTR),
        Err(Answer::NotOurs)
    );
}

#[test]
fn the_zone_answers_its_soa_ns_and_schema_version() {
    let records = build(&[], &[], &[]);
    let soa = data(&records, "cluster.local.", RecordType::SOA).expect("soa");
    let RData::SOA(soa) = &soa[0] else {
        panic!("not an soa");
    };
    assert_eq!(soa.minimum, TTL);
    assert_eq!(records.soa().name, name("cluster.local."));
    assert_eq!(
        data(&records, "cluster.local.", RecordType::NS),
        Ok(vec![RData::NS(NS(name("ns.dns.cluster.local.")))])
    );
    assert_eq!(
        data(&records, "ns.dns.cluster.local.", RecordType::A),
        Ok(vec![a("10.96.0.10")])
    );
    assert_eq!(
        data(&records, "dns-version.cluster.local.", RecordType::TXT),
        Ok(vec![RData::TXT(TXT::new(vec!["1.1.0".into()]))])
    );
}

#[test]
fn named_ports_of_a_cluster_ip_service_get_srv_records_targeting_the_service() {
    let records = build(&[web()], &[], &[]);
    let target = "web.shop.svc.cluster.local.";
    assert_eq!(
        data(
            &records,
            "_http._tcp.web.shop.svc.cluster.local.",
            RecordType::SRV
        ),
        Ok(vec![srv(80, 100, target)])
    );
    assert_eq!(
        data(
            &records,
            "_dns._udp.web.shop.svc.cluster.local.",
            RecordType::SRV
        ),
        Ok(vec![srv(53, 100, target)])
    );
    assert_eq!(
        data(
            &records,
            "_http._udp.web.shop.svc.cluster.local.",
            RecordType::SRV
        ),
        Err(Answer::NxDomain)
    );
    // `_tcp.<svc>` exists as the parent of an SRV name.
    assert_eq!(
        data(
            &records,
            "_tcp.web.shop.svc.cluster.local.",
            RecordType::SRV
        ),
        Err(Answer::NoData)
    );
    let Answer::Found { additionals, .. } = records.lookup(
        &name("_http._tcp.web.shop.svc.cluster.local."),
        RecordType::SRV,
    ) else {
        panic!("no srv");
    };
    assert_eq!(additionals.len(), 1);
    assert_eq!(additionals[0].data, a("10.96.4.2"));
}

#[test]
fn a_cluster_ip_has_a_ptr_record_naming_its_service() {
    let records = build(&[web()], &[], &[]);
    assert_eq!(
        data(&records, "2.4.96.10.in-addr.arpa.", RecordType::PTR),
        Ok(vec![RData::PTR(PTR(name("web.shop.svc.cluster.local.")))])
    );
}

#[test]
fn a_headless_service_resolves_to_its_ready_endpoints_only() {
    let (svc, slice) = db_headless();
    let records = build(&[svc], &[slice], &[]);
    let mut ips = data(&records, "db.shop.svc.cluster.local.", RecordType::A).expect("a");
    ips.sort_by_key(|r| format!("{r:?}"));
    assert_eq!(ips, vec![a("10.88.0.5"), a("10.88.0.6")]);
}

#[test]
fn endpoints_of_a_headless_service_are_named_by_hostname_or_dashed_address() {
    let (svc, slice) = db_headless();
    let records = build(&[svc], &[slice], &[]);
    assert_eq!(
        data(&records, "db-0.db.shop.svc.cluster.local.", RecordType::A),
        Ok(vec![a("10.88.0.5")])
    );
    assert_eq!(
        data(
            &records,
            "10-88-0-6.db.shop.svc.cluster.local.",
            RecordType::A
        ),
        Ok(vec![a("10.88.0.6")])
    );
    // Not ready: no name.
    assert_eq!(
        data(&records, "db-2.db.shop.svc.cluster.local.", RecordType::A),
        Err(Answer::NxDomain)
    );
    assert_eq!(
        data(&records, "5.0.88.10.in-addr.arpa.", RecordType::PTR),
        Ok(vec![RData::PTR(PTR(name(
            "db-0.db.shop.svc.cluster.local."
        )))])
    );
}

#[test]
fn srv_records_of_a_headless_service_point_at_each_ready_endpoint_with_its_address() {
    let (svc, slice) = db_headless();
    let records = build(&[svc], &[slice], &[]);
    let Answer::Found {
        answers,
        additionals,
    } = records.lookup(
        &name("_pg._tcp.db.shop.svc.cluster.local."),
        RecordType::SRV,
    )
    else {
        panic!("no srv");
    };
    let rdatas: Vec<RData> = answers.into_iter().map(|r| r.data).collect();
    assert_eq!(
        rdatas,
        vec![
            srv(5432, 50, "db-0.db.shop.svc.cluster.local."),
            srv(5432, 50, "10-88-0-6.db.shop.svc.cluster.local."),
        ]
    );
    let extra: Vec<(String, RData)> = additionals
        .into_iter()
        .map(|r| (r.name.to_ascii(), r.data))
        .collect();
    assert_eq!(
        extra,
        vec![
            ("db-0.db.shop.svc.cluster.local.".into(), a("10.88.0.5")),
            (
                "10-88-0-6.db.shop.svc.cluster.local.".into(),
                a("10.88.0.6")
            ),
        ]
    );
}

#[test]
fn endpoints_without_a_ready_condition_count_as_ready() {
    let svc = service("ns", "h", json!({"clusterIP": "None"}));
    let s = slice("ns", "h", json!([{"addresses": ["10.88.1.1"]}]), json!([]));
    let records = build(&[svc], &[s], &[]);
    assert_eq!(
        data(&records, "h.ns.svc.cluster.local.", RecordType::A),
        Ok(vec![a("10.88.1.1")])
    );
}

#[test]
fn publish_not_ready_addresses_publishes_unready_endpoints() {
    let svc = service(
        "ns",
        "h",
        json!({"clusterIP": "None", "publishNotReadyAddresses": true}),
    );
    let s = slice(
        "ns",
        "h",
        json!([{"addresses": ["10.88.1.1"], "hostname": "h-0", "conditions": {"ready": false}}]),
        json!([]),
    );
    let records = build(&[svc], &[s], &[]);
    assert_eq!(
        data(&records, "h-0.h.ns.svc.cluster.local.", RecordType::A),
        Ok(vec![a("10.88.1.1")])
    );
}

#[test]
fn a_headless_service_without_ready_endpoints_exists_with_no_addresses() {
    let svc = service("ns", "h", json!({"clusterIP": "None"}));
    let records = build(&[svc], &[], &[]);
    assert_eq!(
        data(&records, "h.ns.svc.cluster.local.", RecordType::A),
        Err(Answer::NoData)
    );
}

#[test]
fn slices_of_other_services_and_namespaces_are_not_mixed_in() {
    let svc = service("ns", "h", json!({"clusterIP": "None"}));
    let other_ns = slice(
        "other",
        "h",
        json!([{"addresses": ["10.88.1.1"]}]),
        json!([]),
    );
    let other_svc = slice("ns", "g", json!([{"addresses": ["10.88.1.2"]}]), json!([]));
    let records = build(&[svc], &[other_ns, other_svc], &[]);
    assert_eq!(
        data(&records, "h.ns.svc.cluster.local.", RecordType::A),
        Err(Answer::NoData)
    );
}

#[test]
fn a_service_without_a_cluster_ip_yet_has_no_name() {
    let svc = service("ns", "new", json!({"ports": [{"port": 80}]}));
    let records = build(&[svc], &[], &[]);
    assert_eq!(
        data(&records, "new.ns.svc.cluster.local.", RecordType::A),
        Err(Answer::NxDomain)
    );
}

#[test]
fn an_external_name_service_is_a_cname_for_every_type() {
    let svc = service(
        "ns",
        "ext",
        json!({"type": "ExternalName", "externalName": "db.example.com"}),
    );
    let records = build(&[svc], &[], &[]);
    let cname = RData::CNAME(CNAME(name("db.example.com.")));
    assert_eq!(
        data(&records, "ext.ns.svc.cluster.local.", RecordType::A),
        Ok(vec![cname.clone()])
    );
    assert_eq!(
        data(&records, "ext.ns.svc.cluster.local.", RecordType::AAAA),
        Ok(vec![cname])
    );
}

#[test]
fn every_pod_address_has_a_dashed_name_in_its_namespace() {
    let p = pod(
        "shop",
        "web-1",
        json!({"containers": []}),
        "10.88.0.9",
        false,
    );
    let records = build(&[], &[], &[p]);
    assert_eq!(
        data(&records, "10-88-0-9.shop.pod.cluster.local.", RecordType::A),
        Ok(vec![a("10.88.0.9")])
    );
    assert_eq!(
        data(
            &records,
            "10-88-0-9.other.pod.cluster.local.",
            RecordType::A
        ),
        Err(Answer::NxDomain)
    );
    assert_eq!(
        data(&records, "10-88-0-8.shop.pod.cluster.local.", RecordType::A),
        Err(Answer::NxDomain)
    );
}

#[test]
fn a_ready_pod_with_hostname_and_subdomain_of_a_headless_service_gets_a_name() {
    let svc = service("ns", "sub", json!({"clusterIP": "None"}));
    let spec = json!({"hostname": "box-1", "subdomain": "sub", "containers": []});
    let ready = pod("ns", "box-1", spec.clone(), "10.88.2.1", true);
    let unready = pod(
        "ns",
        "box-2",
        json!({"hostname": "box-2", "subdomain": "sub",
        "containers": []}),
        "10.88.2.2",
        false,
    );
    let records = build(&[svc], &[], &[ready, unready]);
    assert_eq!(
        data(&records, "box-1.sub.ns.svc.cluster.local.", RecordType::A),
        Ok(vec![a("10.88.2.1")])
    );
    assert_eq!(
        data(&records, "box-2.sub.ns.svc.cluster.local.", RecordType::A),
        Err(Answer::NxDomain)
    );
    // Without the headless Service there is no such name.
    let alone = pod("ns", "box-1", spec, "10.88.2.1", true);
    let records = build(&[], &[], &[alone]);
    assert_eq!(
        data(&records, "box-1.sub.ns.svc.cluster.local.", RecordType::A),
        Err(Answer::NxDomain)
    );
}

#[test]
fn invalid_names_from_objects_are_skipped_without_failing() {
    let long = "x".repeat(70);
    let svc = service("ns", "h", json!({"clusterIP": "None"}));
    let s = slice(
        "ns",
        "h",
        json!([{"addresses": ["10.88.1.1"], "hostname": long},
               {"addresses": ["not-an-ip"]},
               {"addresses": ["10.88.1.3"]}]),
        json!([{"name": long, "port": 1}]),
    );
    let ext = service(
        "ns",
        "ext",
        json!({"type": "ExternalName", "externalName": "a..b"}),
    );
    let records = build(&[svc, ext], &[s], &[]);
    assert_eq!(
        data(&records, "10-88-1-3.h.ns.svc.cluster.local.", RecordType::A),
        Ok(vec![a("10.88.1.3")])
    );
    assert_eq!(
        data(&records, "ext.ns.svc.cluster.local.", RecordType::A),
        Err(Answer::NxDomain)
    );
}

#[test]
fn an_invalid_cluster_domain_is_an_error() {
    assert!(Records::empty("bad..domain", DNS_IP, 1).is_err());
}

#[test]
fn ipv6_addresses_get_aaaa_and_dashed_names() {
    let p = pod("ns", "v6", json!({"containers": []}), "fd00::5", false);
    let records = build(&[], &[], &[p]);
    assert_eq!(
        data(&records, "fd00--5.ns.pod.cluster.local.", RecordType::AAAA),
        Ok(vec![RData::AAAA(AAAA("fd00::5".parse().expect("ipv6")))])
    );
}
