//! Printers of the core group besides Pod: services, endpoints, namespaces, nodes, config,
//! accounts, quotas, claims and replication controllers.

use super::cell::{self, arr, containers, i, len_of, map, or, s};
use super::{col, docs, int, CellFn, Col, Ctx, Printer, AGE, NAME};
use crate::selector::label::format_labels;
use serde_json::Value;
use std::collections::BTreeSet;

pub(crate) fn printer(kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Col], CellFn) = match kind {
        "Service" => (SERVICE, service),
        "Endpoints" => (ENDPOINTS, endpoints),
        "Namespace" => (NAMESPACE, namespace),
        "Node" => (NODE, node),
        "ConfigMap" => (CONFIGMAP, configmap),
        "Secret" => (SECRET, secret),
        "ServiceAccount" => (SERVICE_ACCOUNT, service_account),
        "ResourceQuota" => (RESOURCE_QUOTA, resource_quota),
        "PersistentVolumeClaim" => (PVC, pvc),
        "ReplicationController" => (RC, replication_controller),
        "Event" => return Some(super::events::core_printer()),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

pub(crate) const CONTAINERS: &str = "Names of each container in the template.";
pub(crate) const IMAGES: &str = "Images referenced by each container in the template.";

const SERVICE: &[Col] = &[
    NAME,
    col("Type", docs::SVC_TYPE),
    col("Cluster-IP", docs::SVC_CLUSTER_IP),
    col("External-IP", docs::SVC_EXTERNAL_IPS),
    col("Port(s)", docs::SVC_PORTS),
    AGE,
    col("Selector", docs::SVC_SELECTOR).wide(),
];

fn strings(v: &Value, ptr: &str) -> Vec<String> {
    arr(v, ptr)
        .iter()
        .filter_map(|x| x.as_str().map(String::from))
        .collect()
}

/// Load-balancer ingress points (IP, else hostname), sorted and de-duplicated.
pub(crate) fn load_balancer_points(status: Option<&Value>) -> String {
    let Some(status) = status else {
        return String::new();
    };
    let points: BTreeSet<&str> = arr(status, "/ingress")
        .iter()
        .map(|i| or(s(i, "/ip"), s(i, "/hostname")))
        .filter(|p| !p.is_empty())
        .collect();
    points.into_iter().collect::<Vec<_>>().join(",")
}

fn external_ip(svc: &Value) -> String {
    let external = strings(svc, "/spec/externalIPs");
    match s(svc, "/spec/type") {
        "ClusterIP" | "NodePort" if !external.is_empty() => external.join(","),
        "ClusterIP" | "NodePort" => "<none>".into(),
        "LoadBalancer" => {
            let lb = load_balancer_points(svc.pointer("/status/loadBalancer"));
            let mut all: Vec<String> = lb
                .split(',')
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
            all.extend(external);
            if all.is_empty() {
                "<pending>".into()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => s(svc, "/spec/externalName").into(),
        _ => "<unknown>".into(),
    }
}

fn ports(svc: &Value) -> String {
    let pieces: Vec<String> = arr(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let (port, node_port, proto) = (i(p, "/port"), i(p, "/nodePort"), s(p, "/protocol"));
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    or(&pieces.join(","), "<none>").to_string()
}

fn service(svc: &Value, ctx: &Ctx) -> Vec<Value> {
    let cluster_ip = arr(svc, "/spec/clusterIPs")
        .first()
        .and_then(Value::as_str)
        .unwrap_or_else(|| or(s(svc, "/spec/clusterIP"), "<none>"));
    vec![
        s(svc, "/metadata/name").into(),
        s(svc, "/spec/type").into(),
        cluster_ip.into(),
        external_ip(svc).into(),
        ports(svc).into(),
        ctx.age(svc),
        format_labels(&map(svc, "/spec/selector")).into(),
    ]
}

const ENDPOINTS: &[Col] = &[NAME, col("Endpoints", docs::ENDPOINTS_SUBSETS), AGE];

/// Upstream's `formatEndpoints`: up to three `ip:port`, then `+ N more...`.
fn format_endpoints(ep: &Value) -> String {
    let subsets = arr(ep, "/subsets");
    if subsets.is_empty() {
        return "<none>".into();
    }
    let mut list = Vec::new();
    let mut count = 0;
    for ss in subsets {
        let addresses = arr(ss, "/addresses");
        let ports = arr(ss, "/ports");
        if ports.is_empty() {
            count += addresses.len();
            list.extend(addresses.iter().map(|a| s(a, "/ip").to_string()));
            continue;
        }
        for port in ports {
            count += addresses.len();
            let p = i(port, "/port");
            list.extend(addresses.iter().map(|a| join_host_port(s(a, "/ip"), p)));
        }
    }
    let shown = list.iter().take(3).cloned().collect::<Vec<_>>().join(",");
    if count > 3 {
        format!("{shown} + {} more...", count - 3)
    } else {
        shown
    }
}

fn join_host_port(host: &str, port: i64) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn endpoints(ep: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        s(ep, "/metadata/name").into(),
        format_endpoints(ep).into(),
        ctx.age(ep),
    ]
}

const NAMESPACE: &[Col] = &[NAME, col("Status", "The status of the namespace"), AGE];

fn namespace(ns: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        s(ns, "/metadata/name").into(),
        s(ns, "/status/phase").into(),
        ctx.age(ns),
    ]
}

const NODE: &[Col] = &[
    NAME,
    col("Status", "The status of the node"),
    col("Roles", "The roles of the node"),
    AGE,
    col("Version", docs::NODE_KUBELET_VERSION),
    col("Internal-IP", docs::NODE_ADDRESSES).wide(),
    col("External-IP", docs::NODE_ADDRESSES).wide(),
    col("OS-Image", docs::NODE_OS_IMAGE).wide(),
    col("Kernel-Version", docs::NODE_KERNEL_VERSION).wide(),
    col("Container-Runtime", docs::NODE_CONTAINER_RUNTIME).wide(),
];

fn node_status(node: &Value) -> String {
    let ready = arr(node, "/status/conditions")
        .iter()
        .rev()
        .find(|c| s(c, "/type") == "Ready");
    let mut status = vec![match ready {
        Some(c) if s(c, "/status") == "True" => "Ready".to_string(),
        Some(_) => "NotReady".to_string(),
        None => "Unknown".to_string(),
    }];
    if cell::opt_b(node, "/spec/unschedulable") == Some(true) {
        status.push("SchedulingDisabled".into());
    }
    status.join(",")
}

fn node_roles(node: &Value) -> String {
    let mut roles = BTreeSet::new();
    for (k, v) in map(node, "/metadata/labels") {
        if let Some(role) = k
            .strip_prefix("node-role.kubernetes.io/")
            .filter(|r| !r.is_empty())
        {
            roles.insert(role.to_string());
        } else if k == "kubernetes.io/role" && !v.is_empty() {
            roles.insert(v);
        }
    }
    or(&roles.into_iter().collect::<Vec<_>>().join(","), "<none>").to_string()
}

fn node_address(node: &Value, type_: &str) -> String {
    let found = arr(node, "/status/addresses")
        .iter()
        .find(|a| s(a, "/type") == type_);
    found
        .map(|a| s(a, "/address"))
        .unwrap_or("<none>")
        .to_string()
}

fn node(node: &Value, ctx: &Ctx) -> Vec<Value> {
    let info = |f: &str| or(s(node, &format!("/status/nodeInfo/{f}")), "<unknown>").to_string();
    vec![
        s(node, "/metadata/name").into(),
        node_status(node).into(),
        node_roles(node).into(),
        ctx.age(node),
        s(node, "/status/nodeInfo/kubeletVersion").into(),
        node_address(node, "InternalIP").into(),
        node_address(node, "ExternalIP").into(),
        info("osImage").into(),
        info("kernelVersion").into(),
        info("containerRuntimeVersion").into(),
    ]
}

const CONFIGMAP: &[Col] = &[NAME, col("Data", docs::CONFIGMAP_DATA), AGE];

fn configmap(cm: &Value, ctx: &Ctx) -> Vec<Value> {
    let n = len_of(cm, "/data") + len_of(cm, "/binaryData");
    vec![s(cm, "/metadata/name").into(), n.into(), ctx.age(cm)]
}

const SECRET: &[Col] = &[
    NAME,
    col("Type", docs::SECRET_TYPE),
    col("Data", docs::SECRET_DATA),
    AGE,
];

fn secret(sec: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        s(sec, "/metadata/name").into(),
        s(sec, "/type").into(),
        len_of(sec, "/data").into(),
        ctx.age(sec),
    ]
}

const SERVICE_ACCOUNT: &[Col] = &[NAME, col("Secrets", docs::SA_SECRETS), AGE];

fn service_account(sa: &Value, ctx: &Ctx) -> Vec<Value> {
    vec![
        s(sa, "/metadata/name").into(),
        len_of(sa, "/secrets").into(),
        ctx.age(sa),
    ]
}

const RESOURCE_QUOTA: &[Col] = &[
    NAME,
    col("Request", "Request represents a minimum amount of cpu/memory that a container may consume."),
    col(
        "Limit",
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.",
    ),
    AGE,
];

fn resource_quota(q: &Value, ctx: &Ctx) -> Vec<Value> {
    let hard = map(q, "/status/hard");
    let used = map(q, "/status/used");
    let (mut requests, mut limits) = (Vec::new(), Vec::new());
    for (resource, hard_qty) in &hard {
        let used_qty = used.get(resource).map(String::as_str).unwrap_or("0");
        let entry = format!("{resource}: {used_qty}/{hard_qty}");
        let mut pieces = resource.split('.');
        if pieces.next() == Some("limits") && pieces.next().is_some() {
            limits.push(entry);
        } else {
            requests.push(entry);
        }
    }
    vec![
        s(q, "/metadata/name").into(),
        requests.join(", ").into(),
        limits.join(", ").into(),
        ctx.age(q),
    ]
}

const PVC: &[Col] = &[
    NAME,
    col("Status", docs::PVC_PHASE),
    col("Volume", docs::PVC_VOLUME_NAME),
    col("Capacity", docs::PVC_CAPACITY),
    col("Access Modes", docs::PVC_ACCESS_MODES),
    col("StorageClass", "StorageClass of the pvc"),
    col("VolumeAttributesClass", "VolumeAttributesClass of the pvc"),
    AGE,
    col("VolumeMode", docs::PVC_VOLUME_MODE).wide(),
];

/// Upstream's `GetAccessModesAsString`: short names in a fixed order.
fn access_modes(pvc: &Value) -> String {
    let modes = strings(pvc, "/status/accessModes");
    let short = [
        ("ReadWriteOnce", "RWO"),
        ("ReadOnlyMany", "ROX"),
        ("ReadWriteMany", "RWX"),
        ("ReadWriteOncePod", "RWOP"),
    ];
    let found: Vec<&str> = short
        .iter()
        .filter(|(m, _)| modes.iter().any(|x| x == m))
        .map(|(_, s)| *s)
        .collect();
    found.join(",")
}

fn pvc(pvc: &Value, ctx: &Ctx) -> Vec<Value> {
    let deleting = pvc
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null());
    let phase = if deleting {
        "Terminating"
    } else {
        s(pvc, "/status/phase")
    };
    let volume = s(pvc, "/spec/volumeName");
    let (capacity, modes) = if volume.is_empty() {
        (String::new(), String::new())
    } else {
        (
            s(pvc, "/status/capacity/storage").to_string(),
            access_modes(pvc),
        )
    };
    // The beta annotation, when present, wins over the field (`GetPersistentVolumeClaimClass`).
    let class = pvc
        .pointer("/metadata/annotations/volume.beta.kubernetes.io~1storage-class")
        .and_then(Value::as_str)
        .unwrap_or_else(|| s(pvc, "/spec/storageClassName"));
    vec![
        s(pvc, "/metadata/name").into(),
        phase.into(),
        volume.into(),
        capacity.into(),
        modes.into(),
        class.into(),
        or(s(pvc, "/spec/volumeAttributesClassName"), "<unset>").into(),
        ctx.age(pvc),
        or(s(pvc, "/spec/volumeMode"), "<unset>").into(),
    ]
}

const RC: &[Col] = &[
    NAME,
    int("Desired", docs::RC_SPEC_REPLICAS),
    int("Current", docs::RC_STATUS_REPLICAS),
    int("Ready", docs::RC_STATUS_READY),
    AGE,
    col("Containers", CONTAINERS).wide(),
    col("Images", IMAGES).wide(),
    col("Selector", docs::RC_SPEC_SELECTOR).wide(),
];

fn replication_controller(rc: &Value, ctx: &Ctx) -> Vec<Value> {
    let (names, images) = containers(rc, "/spec/template/spec/containers");
    vec![
        s(rc, "/metadata/name").into(),
        cell::opt_i(rc, "/spec/replicas").unwrap_or(1).into(),
        i(rc, "/status/replicas").into(),
        i(rc, "/status/readyReplicas").into(),
        ctx.age(rc),
        names,
        images,
        format_labels(&map(rc, "/spec/selector")).into(),
    ]
}
