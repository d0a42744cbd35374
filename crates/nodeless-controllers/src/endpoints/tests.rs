use super::compute::*;
use super::slices::*;
use k8s_openapi::api::core::v1::{Pod, Service};
use serde_json::{json, Value};

fn service(spec: Value) -> Service {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "svc-uid", "labels": {"team": "a"}},
        "spec": spec,
    }))
    .expect("service")
}

fn web() -> Service {
    service(json!({
        "selector": {"app": "web"},
        "clusterIP": "10.96.0.20",
        "ports": [
            {"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"},
            {"name": "metrics", "port": 9090, "targetPort": 9100, "protocol": "TCP"}
        ]
    }))
}

fn pod(name: &str, ip: &str, ready: bool, http_port: Option<i32>) -> Pod {
    let ports: Vec<Value> = http_port
        .map(|p| json!({"name": "http", "containerPort": p}))
        .into_iter()
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": name, "namespace": "ns", "uid": format!("uid-{name}"),
                     "labels": {"app": "web"}},
        "spec": {"nodeName": "nodeless", "containers": [{"name": "c", "image": "x", "ports": ports}]},
        "status": {"phase": "Running", "podIP": ip, "conditions": [
            {"type": "Ready", "status": if ready { "True" } else { "False" }}]}
    }))
    .expect("pod")
}

fn terminating(mut p: Pod) -> Pod {
    p.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        chrono::Utc::now(),
    ));
    p
}

#[test]
fn a_named_target_port_resolves_per_pod_and_a_pod_without_it_lacks_that_port() {
    let svc = web();
    let a = pod("a", "10.88.0.2", true, Some(8080));
    let b = pod("b", "10.88.0.3", true, None);
    let eps = pod_endpoints(&svc, [&a, &b]);
    let ports = |i: usize| -> Vec<(String, i32)> {
        eps[i]
            .ports
            .iter()
            .map(|p| (p.name.clone(), p.port))
            .collect()
    };
    assert_eq!(
        ports(0),
        vec![("http".into(), 8080), ("metrics".into(), 9100)]
    );
    assert_eq!(ports(1), vec![("metrics".into(), 9100)]);
}

#[test]
fn endpoints_split_ready_and_not_ready_addresses_and_group_by_ports() {
    let svc = web();
    let pods = [
        pod("a", "10.88.0.2", true, Some(8080)),
        pod("b", "10.88.0.3", false, Some(8080)),
        pod("c", "10.88.0.4", true, Some(8081)),
    ];
    let eps = endpoints_for(&svc, &pod_endpoints(&svc, &pods));
    let subsets = eps.subsets.expect("subsets");
    assert_eq!(subsets.len(), 2);
    let first = &subsets[0];
    let ips = |l: &Option<Vec<k8s_openapi::api::core::v1::EndpointAddress>>| -> Vec<String> {
        l.iter().flatten().map(|a| a.ip.clone()).collect()
    };
    assert_eq!(ips(&first.addresses), vec!["10.88.0.2"]);
    assert_eq!(ips(&first.not_ready_addresses), vec!["10.88.0.3"]);
    assert_eq!(ips(&subsets[1].addresses), vec!["10.88.0.4"]);
    let addr = &first.addresses.as_ref().expect("addresses")[0];
    assert_eq!(addr.node_name.as_deref(), Some("nodeless"));
    let target = addr.target_ref.as_ref().expect("targetRef");
    assert_eq!(target.kind.as_deref(), Some("Pod"));
    assert_eq!(target.uid.as_deref(), Some("uid-a"));
    let labels = eps.metadata.labels.expect("labels");
    assert_eq!(labels["team"], "a");
}

#[test]
fn a_terminating_pod_is_serving_but_not_ready_in_slices_and_absent_from_endpoints() {
    let svc = web();
    let pods = [terminating(pod("a", "10.88.0.2", true, Some(8080)))];
    let eps = pod_endpoints(&svc, &pods);
    assert!(eps[0].serving && eps[0].terminating && !eps[0].ready);
    assert!(endpoints_for(&svc, &eps).subsets.is_none());
}

#[test]
fn publish_not_ready_addresses_makes_every_pod_ready() {
    let svc = service(json!({
        "selector": {"app": "web"}, "clusterIP": "None", "publishNotReadyAddresses": true
    }));
    let pods = [pod("a", "10.88.0.2", false, None)];
    let eps = pod_endpoints(&svc, &pods);
    assert!(eps[0].ready);
    let e = endpoints_for(&svc, &eps);
    let subset = &e.subsets.expect("subsets")[0];
    assert_eq!(subset.addresses.as_ref().map(Vec::len), Some(1));
    assert!(subset.ports.is_none(), "a headless Service without ports");
    assert_eq!(e.metadata.labels.expect("labels")[HEADLESS_LABEL], "");
}

#[test]
fn pods_without_an_ip_or_finished_are_left_out() {
    let svc = web();
    let mut no_ip = pod("a", "", true, Some(80));
    no_ip.status.as_mut().expect("status").pod_ip = None;
    let mut done = pod("b", "10.88.0.3", true, Some(80));
    done.status.as_mut().expect("status").phase = Some("Succeeded".into());
    assert!(pod_endpoints(&svc, [&no_ip, &done]).is_empty());
}

#[test]
fn a_service_without_a_selector_selects_nothing() {
    let svc = service(json!({"ports": [{"port": 53}]}));
    assert!(!selects(&svc, &pod("a", "10.88.0.2", true, None)));
    assert!(selects(&web(), &pod("a", "10.88.0.2", true, None)));
}

#[test]
fn a_pod_hostname_is_published_for_the_service_of_its_subdomain() {
    let svc = service(json!({"selector": {"app": "web"}, "clusterIP": "None"}));
    let mut p = pod("web-0", "10.88.0.2", true, None);
    let spec = p.spec.as_mut().expect("spec");
    spec.hostname = Some("web-0".into());
    spec.subdomain = Some("web".into());
    assert_eq!(
        pod_endpoints(&svc, [&p])[0].hostname.as_deref(),
        Some("web-0")
    );
}

fn many(n: usize, ready: bool) -> Vec<Pod> {
    (0..n)
        .map(|i| {
            pod(
                &format!("p{i}"),
                &format!("10.88.{}.{}", i / 200, i % 200 + 2),
                ready,
                Some(8080),
            )
        })
        .collect()
}

fn named(
    mut s: k8s_openapi::api::discovery::v1::EndpointSlice,
    name: &str,
) -> k8s_openapi::api::discovery::v1::EndpointSlice {
    s.metadata.name = Some(name.into());
    s.metadata.generate_name = None;
    s
}

#[test]
fn slices_hold_at_most_a_hundred_endpoints_with_the_service_labels() {
    let svc = web();
    let pods = many(250, true);
    let plan = plan(&svc, &pod_endpoints(&svc, &pods), &[]);
    let sizes: Vec<usize> = plan.create.iter().map(|s| s.endpoints.len()).collect();
    assert_eq!(sizes, vec![100, 100, 50]);
    let s = &plan.create[0];
    assert_eq!(s.address_type, "IPv4");
    assert_eq!(s.metadata.generate_name.as_deref(), Some("web-"));
    let labels = s.metadata.labels.as_ref().expect("labels");
    assert_eq!(labels[SERVICE_NAME_LABEL], "web");
    assert_eq!(labels[MANAGED_BY_LABEL], MANAGER);
    let owner = &s.metadata.owner_references.as_ref().expect("owner")[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("Service", "svc-uid")
    );
    let names: Vec<_> = s
        .ports
        .iter()
        .flatten()
        .map(|p| p.name.clone().unwrap_or_default())
        .collect();
    assert_eq!(names, vec!["http", "metrics"]);
    let c = s.endpoints[0].conditions.as_ref().expect("conditions");
    assert_eq!(
        (c.ready, c.serving, c.terminating),
        (Some(true), Some(true), Some(false))
    );
}

#[test]
fn a_readiness_change_updates_the_slice_in_place_and_nothing_changes_when_settled() {
    let svc = web();
    let mut pods = many(3, true);
    let first = plan(&svc, &pod_endpoints(&svc, &pods), &[]);
    let existing = named(first.create[0].clone(), "web-abc");
    let again = plan(&svc, &pod_endpoints(&svc, &pods), &[&existing]);
    assert!(again.is_empty(), "{again:?}");
    pods[1] = terminating(pods[1].clone());
    let next = plan(&svc, &pod_endpoints(&svc, &pods), &[&existing]);
    assert!(next.create.is_empty() && next.delete.is_empty());
    let updated = &next.update[0];
    assert_eq!(updated.metadata.name.as_deref(), Some("web-abc"));
    let c = updated.endpoints[1]
        .conditions
        .as_ref()
        .expect("conditions");
    assert_eq!(
        (c.ready, c.serving, c.terminating),
        (Some(false), Some(true), Some(true))
    );
}

#[test]
fn new_endpoints_fill_existing_slices_before_new_ones_are_made() {
    let svc = web();
    let pods = many(150, true);
    let existing = named(
        plan(&svc, &pod_endpoints(&svc, &pods[..90]), &[]).create[0].clone(),
        "web-a",
    );
    let p = plan(&svc, &pod_endpoints(&svc, &pods), &[&existing]);
    assert_eq!(p.update[0].endpoints.len(), 100);
    // The 90 already there keep their places.
    assert_eq!(p.update[0].endpoints[..90], existing.endpoints[..]);
    assert_eq!(p.create.len(), 1);
    assert_eq!(p.create[0].endpoints.len(), 50);
}

#[test]
fn a_service_without_endpoints_keeps_one_empty_slice() {
    let svc = web();
    let p = plan(&svc, &[], &[]);
    assert_eq!(p.create.len(), 1);
    assert!(p.create[0].endpoints.is_empty());
    let pods = many(2, true);
    let a = named(
        plan(&svc, &pod_endpoints(&svc, &pods), &[]).create[0].clone(),
        "web-a",
    );
    let b = named(a.clone(), "web-b");
    let p = plan(&svc, &[], &[&a, &b]);
    assert_eq!(p.update.len(), 1);
    assert!(p.update[0].endpoints.is_empty());
    assert_eq!(p.delete, vec!["web-b".to_string()]);
}

#[test]
fn a_slice_whose_ports_no_pod_has_any_more_is_reused() {
    let svc = web();
    let old = named(
        plan(&svc, &pod_endpoints(&svc, &many(2, true)), &[]).create[0].clone(),
        "web-a",
    );
    // The Pods now name a different http port.
    let pods: Vec<Pod> = (0..2)
        .map(|i| pod(&format!("p{i}"), &format!("10.88.1.{i}"), true, Some(9000)))
        .collect();
    let p = plan(&svc, &pod_endpoints(&svc, &pods), &[&old]);
    assert!(p.create.is_empty() && p.delete.is_empty());
    let ports: Vec<_> = p.update[0]
        .ports
        .iter()
        .flatten()
        .filter_map(|p| p.port)
        .collect();
    assert_eq!(ports, vec![9000, 9100]);
}
