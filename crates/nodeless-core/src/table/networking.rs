//! Printers of `networking.k8s.io` (ingresses, ingress classes, network policies) and
//! `discovery.k8s.io` (endpoint slices).

use super::cell::{self, arr, list_with_more, s};
use super::core::load_balancer_points;
use super::{col, docs, CellFn, Col, Ctx, Printer, AGE, NAME};
use serde_json::Value;

pub(crate) fn printer(kind: &str) -> Option<Printer> {
    let (columns, cells): (&'static [Col], CellFn) = match kind {
        "Ingress" => (INGRESS, ingress),
        "IngressClass" => (INGRESS_CLASS, ingress_class),
        "NetworkPolicy" => (NETWORK_POLICY, network_policy),
        "EndpointSlice" => (ENDPOINT_SLICE, endpoint_slice),
        _ => return None,
    };
    Some(Printer { columns, cells })
}

const INGRESS: &[Col] = &[
    NAME,
    col(
        "Class",
        "The name of the IngressClass resource that should be used for additional configuration",
    ),
    col(
        "Hosts",
        "Hosts that incoming requests are matched against before the ingress rule",
    ),
    col(
        "Address",
        "Address is a list containing ingress points for the load-balancer",
    ),
    col("Ports", "Ports of TLS configurations that open"),
    AGE,
];

/// Upstream's `formatHosts`: up to three hosts, `*` when no rule names one.
fn hosts(ing: &Value) -> String {
    let rules = arr(ing, "/spec/rules");
    let mut list = Vec::new();
    let mut more = false;
    for rule in rules {
        if list.len() == 3 {
            more = true;
        }
        let host = s(rule, "/host");
        if !more && !host.is_empty() {
            list.push(host);
        }
    }
    if list.is_empty() {
        return "*".into();
    }
    let shown = list.join(",");
    if more {
        format!("{shown} + {} more...", rules.len() - 3)
    } else {
        shown
    }
}

fn ingress(ing: &Value, ctx: &Ctx) -> Vec<Value> {
    let class = ing
        .pointer("/spec/ingressClassName")
        .and_then(Value::as_str)
        .unwrap_or("<none>");
    let ports = if arr(ing, "/spec/tls").is_empty() {
        "80"
    } else {
        "80, 443"
    };
    vec![
        s(ing, "/metadata/name").into(),
        class.into(),
        hosts(ing).into(),
        load_balancer_points(ing.pointer("/status/loadBalancer")).into(),
        ports.into(),
        ctx.age(ing),
    ]
}

const INGRESS_CLASS: &[Col] = &[
    NAME,
    col(
        "Controller",
        "Controller that is responsible for handling this class",
    ),
    col(
        "Parameters",
        "A reference to a resource with additional parameters",
    ),
    AGE,
];

fn ingress_class(ic: &Value, ctx: &Ctx) -> Vec<Value> {
    let parameters = match ic.pointer("/spec/parameters").filter(|p| p.is_object()) {
        None => "<none>".to_string(),
        Some(p) => {
            let mut kind = s(p, "/kind").to_string();
            if let Some(group) = p.get("apiGroup").and_then(Value::as_str) {
                kind = format!("{kind}.{group}");
            }
            format!("{kind}/{}", s(p, "/name"))
        }
    };
    vec![
        s(ic, "/metadata/name").into(),
        s(ic, "/spec/controller").into(),
        parameters.into(),
        ctx.age(ic),
    ]
}

const NETWORK_POLICY: &[Col] = &[NAME, col("Pod-Selector", docs::NETPOL_POD_SELECTOR), AGE];

fn network_policy(np: &Value, ctx: &Ctx) -> Vec<Value> {
    // podSelector is a required (non-pointer) field: absent means the empty selector.
    let selector = match np.pointer("/spec/podSelector") {
        Some(v) if !v.is_null() => cell::selector(np, "/spec/podSelector"),
        _ => "<none>".into(),
    };
    vec![s(np, "/metadata/name").into(), selector, ctx.age(np)]
}

const ENDPOINT_SLICE: &[Col] = &[
    NAME,
    col("AddressType", docs::SLICE_ADDRESS_TYPE),
    col("Ports", docs::SLICE_PORTS),
    col("Endpoints", docs::SLICE_ENDPOINTS),
    AGE,
];

fn endpoint_slice(es: &Value, ctx: &Ctx) -> Vec<Value> {
    let ports: Vec<String> = arr(es, "/ports")
        .iter()
        .map(|p| {
            match (
                p.get("port").and_then(Value::as_i64),
                p.get("name").and_then(Value::as_str),
            ) {
                (Some(n), _) => n.to_string(),
                (None, Some(name)) => name.to_string(),
                (None, None) => "*".to_string(),
            }
        })
        .collect();
    let addresses: Vec<String> = arr(es, "/endpoints")
        .iter()
        .flat_map(|e| {
            arr(e, "/addresses")
                .iter()
                .filter_map(|a| a.as_str().map(String::from))
        })
        .collect();
    vec![
        s(es, "/metadata/name").into(),
        s(es, "/addressType").into(),
        list_with_more(&ports, 3, "<unset>").into(),
        list_with_more(&addresses, 3, "<unset>").into(),
        ctx.age(es),
    ]
}
