//! Services (`ValidateService`, `ValidateServiceUpdate`).

use super::container::{one_of, port_num_or_name};
use super::meta::validate_labels;
use super::names;
use super::render::{invalid_rendered, string_slice};
use super::{field, int, items, text};
use crate::field::{ErrorList, FieldError, Path};
use serde_json::{json, Value};
use std::collections::HashSet;

const KUBELET_PORT: i64 = 10250;
const IP_MSG: &str = "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)";

/// The effective cluster IPs: `clusterIPs`, or the legacy single `clusterIP`.
fn cluster_ips(spec: &Value) -> Vec<String> {
    let list: Vec<String> = items(spec, "clusterIPs")
        .iter()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    if !list.is_empty() {
        return list;
    }
    let single = text(spec, "clusterIP");
    if single.is_empty() {
        Vec::new()
    } else {
        vec![single.to_string()]
    }
}

pub(crate) fn validate_service(obj: &Value) -> ErrorList {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    let svc_type = field(spec, "type")
        .and_then(Value::as_str)
        .unwrap_or("ClusterIP");
    let ips = cluster_ips(spec);
    let headless = ips.first().is_some_and(|ip| ip == "None");
    let ports = items(spec, "ports");
    if ports.is_empty() && !headless && svc_type != "ExternalName" {
        errs.push(FieldError::required(path.child("ports"), ""));
    }
    errs.extend(type_rules(spec, svc_type, headless, &path));
    let mut port_names = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        errs.extend(validate_service_port(
            port,
            ports.len() > 1,
            &mut port_names,
            &path.child("ports").index(i),
        ));
    }
    errs.extend(validate_labels(
        field(spec, "selector"),
        &path.child("selector"),
    ));
    errs.extend(one_of(
        spec,
        "sessionAffinity",
        &["ClientIP", "None"],
        &path,
    ));
    errs.extend(validate_cluster_ips(spec, &ips, &path));
    for (i, ip) in items(spec, "externalIPs").iter().enumerate() {
        let ip = ip.as_str().unwrap_or("");
        if !names::is_valid_ip(ip) {
            errs.push(FieldError::invalid(
                path.child("externalIPs").index(i),
                ip,
                IP_MSG,
            ));
        }
    }
    errs.extend(one_of(
        spec,
        "type",
        &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        &path,
    ));
    errs.extend(port_collisions(ports, svc_type, &path.child("ports")));
    errs
}

fn type_rules(spec: &Value, svc_type: &str, headless: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let none_ip = || path.child("clusterIPs").index(0);
    match svc_type {
        "LoadBalancer" => {
            for (i, port) in items(spec, "ports").iter().enumerate() {
                if int(port, "port") == Some(KUBELET_PORT) {
                    errs.push(FieldError::invalid(
                        path.child("ports").index(i),
                        KUBELET_PORT,
                        format!("may not expose port {KUBELET_PORT} externally since it is used by kubelet"),
                    ));
                }
            }
            if headless {
                errs.push(FieldError::invalid(
                    none_ip(),
                    "None",
                    "may not be set to 'None' for LoadBalancer services",
                ));
            }
        }
        "NodePort" if headless => {
            errs.push(FieldError::invalid(
                none_ip(),
                "None",
                "may not be set to 'None' for NodePort services",
            ));
        }
        "ExternalName" => {
            if !cluster_ips(spec).is_empty() {
                errs.push(FieldError::forbidden(
                    path.child("clusterIPs"),
                    "may not be set for ExternalName services",
                ));
            }
            let cname = text(spec, "externalName").trim_end_matches('.');
            if cname.is_empty() {
                errs.push(FieldError::required(path.child("externalName"), ""));
            } else {
                for msg in names::is_dns1123_subdomain(cname) {
                    errs.push(FieldError::invalid(path.child("externalName"), cname, msg));
                }
            }
        }
        _ => {}
    }
    errs
}

fn validate_service_port(
    port: &Value,
    require_name: bool,
    seen: &mut HashSet<String>,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = text(port, "name");
    if require_name && name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else if !name.is_empty() {
        errs.extend(
            names::is_dns1123_label(name)
                .into_iter()
                .map(|m| FieldError::invalid(path.child("name"), name, m)),
        );
        if !seen.insert(name.to_string()) {
            errs.push(FieldError::duplicate(path.child("name"), name));
        }
    }
    let number = int(port, "port").unwrap_or(0);
    errs.extend(
        names::is_valid_port_num(number)
            .into_iter()
            .map(|m| FieldError::invalid(path.child("port"), number, m)),
    );
    errs.extend(one_of(port, "protocol", &["SCTP", "TCP", "UDP"], path));
    // An absent targetPort is defaulted to the port itself.
    if let Some(target) = field(port, "targetPort") {
        errs.extend(port_num_or_name(Some(target), &path.child("targetPort")));
    }
    if let Some(app) = field(port, "appProtocol").and_then(Value::as_str) {
        errs.extend(super::meta::validate_label_name(
            app,
            &path.child("appProtocol"),
        ));
    }
    errs
}

fn validate_cluster_ips(spec: &Value, ips: &[String], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let single = text(spec, "clusterIP");
    let listed = !items(spec, "clusterIPs").is_empty();
    if listed && !single.is_empty() && ips.first().map(String::as_str) != Some(single) {
        errs.push(invalid_rendered(
            path.child("clusterIPs"),
            string_slice(field(spec, "clusterIPs")),
            "first value must match `clusterIP`",
        ));
    }
    for (i, ip) in ips.iter().enumerate() {
        if (i == 0 && ip == "None") || names::is_valid_ip(ip) {
            continue;
        }
        errs.push(FieldError::invalid(
            path.child("clusterIPs").index(i),
            ip.as_str(),
            IP_MSG,
        ));
    }
    errs
}

/// Node ports unique per protocol, `(protocol, port)` pairs unique, no node ports on ClusterIP.
fn port_collisions(ports: &[Value], svc_type: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut node_ports = HashSet::new();
    let mut pairs = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let protocol = field(port, "protocol")
            .and_then(Value::as_str)
            .unwrap_or("TCP");
        if let Some(np) = int(port, "nodePort").filter(|n| *n != 0) {
            if svc_type == "ClusterIP" {
                errs.push(FieldError::forbidden(
                    path.index(i).child("nodePort"),
                    "may not be used when `type` is 'ClusterIP'",
                ));
            }
            if !node_ports.insert((protocol, np)) {
                errs.push(FieldError::duplicate(path.index(i).child("nodePort"), np));
            }
        }
        let number = int(port, "port").unwrap_or(0);
        if !pairs.insert((protocol, number)) {
            errs.push(FieldError::duplicate(
                path.index(i),
                json!({"port": number, "protocol": protocol}),
            ));
        }
    }
    errs
}

/// A Service's primary cluster IP cannot change once allocated (ExternalName aside).
pub(crate) fn validate_service_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = validate_service(new);
    let (spec, old_spec) = (
        new.get("spec").unwrap_or(&Value::Null),
        old.get("spec").unwrap_or(&Value::Null),
    );
    let is_external = |s: &Value| text(s, "type") == "ExternalName";
    if is_external(spec) || is_external(old_spec) {
        return errs;
    }
    let (new_ips, old_ips) = (cluster_ips(spec), cluster_ips(old_spec));
    // An omitted cluster IP is filled in from the stored Service, so only a change counts.
    if let (Some(n), Some(o)) = (new_ips.first(), old_ips.first()) {
        if n != o {
            let rendered = string_slice(Some(&Value::from(new_ips.clone())));
            errs.push(invalid_rendered(
                Path::new("spec").child("clusterIPs").index(0),
                rendered,
                "may not change once set",
            ));
        }
    }
    errs
}
