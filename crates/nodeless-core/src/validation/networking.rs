//! Ingress (`pkg/apis/networking/validation`): rules, paths and backends.

use super::names;
use super::{field, int, items, text};
use crate::field::{ErrorList, FieldError, Path};
use serde_json::Value;

const INVALID_PATH_SEQUENCES: [&str; 5] = ["//", "/./", "/../", "%2f", "%2F"];
const INVALID_PATH_SUFFIXES: [&str; 2] = ["/..", "/."];

pub(crate) fn validate_ingress(obj: &Value) -> ErrorList {
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let path = Path::new("spec");
    let mut errs = ErrorList::new();
    let rules = items(spec, "rules");
    let default_backend = field(spec, "defaultBackend");
    if rules.is_empty() && default_backend.is_none() {
        errs.push(FieldError::invalid(
            &path,
            Value::Null,
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    if let Some(b) = default_backend {
        errs.extend(validate_backend(b, &path.child("defaultBackend")));
    }
    for (i, rule) in rules.iter().enumerate() {
        errs.extend(validate_rule(rule, &path.child("rules").index(i)));
    }
    for (i, tls) in items(spec, "tls").iter().enumerate() {
        let p = path.child("tls").index(i);
        for (j, host) in items(tls, "hosts").iter().enumerate() {
            let host = host.as_str().unwrap_or("");
            let masked = host.replacen('*', "x", 1);
            for msg in names::is_dns1123_subdomain(&masked) {
                errs.push(FieldError::invalid(p.child("hosts").index(j), host, msg));
            }
        }
        let secret = text(tls, "secretName");
        if !secret.is_empty() {
            for msg in names::is_dns1123_subdomain(secret) {
                errs.push(FieldError::invalid(p.child("secretName"), secret, msg));
            }
        }
    }
    if let Some(class) = field(spec, "ingressClassName").and_then(Value::as_str) {
        for msg in names::is_dns1123_subdomain(class) {
            errs.push(FieldError::invalid(
                path.child("ingressClassName"),
                class,
                msg,
            ));
        }
    }
    errs
}

fn validate_rule(rule: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let host = text(rule, "host");
    if !host.is_empty() {
        let host_path = path.child("host");
        if names::is_valid_ip(host) {
            errs.push(FieldError::invalid(
                &host_path,
                host,
                "must be a DNS name, not an IP address",
            ));
        }
        let msgs = if host.contains('*') {
            names::is_wildcard_dns1123_subdomain(host)
        } else {
            names::is_dns1123_subdomain(host)
        };
        errs.extend(
            msgs.into_iter()
                .map(|m| FieldError::invalid(&host_path, host, m)),
        );
    }
    if let Some(http) = field(rule, "http") {
        let http_path = path.child("http");
        let paths = items(http, "paths");
        if paths.is_empty() {
            errs.push(FieldError::required(http_path.child("paths"), ""));
        }
        for (i, p) in paths.iter().enumerate() {
            errs.extend(validate_http_path(p, &http_path.child("paths").index(i)));
        }
    }
    errs
}

fn validate_http_path(p: &Value, path: &Path) -> ErrorList {
    let Some(path_type) = field(p, "pathType").and_then(Value::as_str) else {
        return vec![FieldError::required(
            path.child("pathType"),
            "pathType must be specified",
        )];
    };
    let mut errs = ErrorList::new();
    let url_path = text(p, "path");
    let path_path = path.child("path");
    match path_type {
        "Exact" | "Prefix" => {
            if !url_path.starts_with('/') {
                errs.push(FieldError::invalid(
                    &path_path,
                    url_path,
                    "must be an absolute path",
                ));
            }
            for seq in INVALID_PATH_SEQUENCES
                .iter()
                .filter(|s| url_path.contains(*s))
            {
                errs.push(FieldError::invalid(
                    &path_path,
                    url_path,
                    format!("must not contain '{seq}'"),
                ));
            }
            for suffix in INVALID_PATH_SUFFIXES
                .iter()
                .filter(|s| url_path.ends_with(*s))
            {
                errs.push(FieldError::invalid(
                    &path_path,
                    url_path,
                    format!("cannot end with '{suffix}'"),
                ));
            }
        }
        "ImplementationSpecific" => {
            if !url_path.is_empty() && !url_path.starts_with('/') {
                errs.push(FieldError::invalid(
                    &path_path,
                    url_path,
                    "must be an absolute path",
                ));
            }
        }
        other => errs.push(FieldError::not_supported(
            path.child("pathType"),
            other,
            &["Exact", "ImplementationSpecific", "Prefix"],
        )),
    }
    let backend = field(p, "backend").unwrap_or(&Value::Null);
    errs.extend(validate_backend(backend, &path.child("backend")));
    errs
}

/// `validateIngressBackend`: exactly one of a Service (with a port) or a resource.
fn validate_backend(b: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    match (field(b, "service"), field(b, "resource")) {
        (Some(_), Some(_)) => errs.push(FieldError::invalid(
            path,
            "",
            "cannot set both resource and service backends",
        )),
        (None, Some(r)) => {
            let rp = path.child("resource");
            for key in ["kind", "name"] {
                if text(r, key).is_empty() {
                    errs.push(FieldError::required(rp.child(key), ""));
                }
            }
        }
        (Some(svc), None) => {
            let sp = path.child("service");
            let name = text(svc, "name");
            if name.is_empty() {
                errs.push(FieldError::required(sp.child("name"), ""));
            } else {
                errs.extend(
                    names::is_dns1035_label(name)
                        .into_iter()
                        .map(|m| FieldError::invalid(sp.child("name"), name, m)),
                );
            }
            let port = svc.get("port").unwrap_or(&Value::Null);
            let (port_name, number) = (text(port, "name"), int(port, "number").unwrap_or(0));
            let pp = sp.child("port");
            match (port_name.is_empty(), number == 0) {
                (false, false) => errs.push(FieldError::invalid(
                    path,
                    "",
                    "cannot set both port name & port number",
                )),
                (false, true) => errs.extend(
                    names::is_valid_port_name(port_name)
                        .into_iter()
                        .map(|m| FieldError::invalid(pp.child("name"), port_name, m)),
                ),
                (true, false) => errs.extend(
                    names::is_valid_port_num(number)
                        .into_iter()
                        .map(|m| FieldError::invalid(pp.child("number"), number, m)),
                ),
                (true, true) => errs.push(FieldError::required(
                    path,
                    "port name or number is required",
                )),
            }
        }
        (None, None) => errs.push(FieldError::invalid(
            path,
            "",
            "resource or service backend is required",
        )),
    }
    errs
}
