//! Containers inside a PodSpec: names, images, ports, environment, mounts, resources and
//! probes (`validateContainers`, `validateInitContainers`, `validateContainerCommon`).

use super::meta::NEGATIVE;
use super::names;
use super::quantity::parse_quantity;
use super::{field, int, items, text};
use crate::field::{ErrorList, FieldError, Path};
use serde_json::Value;
use std::collections::HashSet;

/// What container checks need to know about the enclosing pod.
pub(crate) struct PodContext {
    /// Names of the volumes that validated cleanly (mounts may only refer to these).
    pub volumes: HashSet<String>,
    pub grace_period: Option<i64>,
}

/// Regular containers: required, each valid, names unique, host ports not colliding.
pub(crate) fn validate_containers(
    containers: &[Value],
    ctx: &PodContext,
    path: &Path,
) -> ErrorList {
    if containers.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let mut errs = ErrorList::new();
    let mut seen = HashSet::new();
    for (i, c) in containers.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_common(c, ctx, &p));
        let name = text(c, "name");
        if !seen.insert(name) {
            errs.push(FieldError::duplicate(p.child("name"), name));
        }
        errs.extend(validate_lifecycle_and_probes(c, ctx, &p));
        if field(c, "restartPolicy").is_some() {
            errs.push(FieldError::forbidden(
                p.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
    errs.extend(host_port_conflicts(containers, path));
    errs
}

/// Init containers: like regular ones, but names must also differ from the regular
/// containers', and probes need `restartPolicy: Always` (sidecars).
pub(crate) fn validate_init_containers(
    init: &[Value],
    regular: &[Value],
    ctx: &PodContext,
    path: &Path,
) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen: HashSet<&str> = regular.iter().map(|c| text(c, "name")).collect();
    for (i, c) in init.iter().enumerate() {
        let p = path.index(i);
        errs.extend(validate_common(c, ctx, &p));
        let restart = field(c, "restartPolicy").and_then(Value::as_str);
        if let Some(policy) = restart.filter(|r| *r != "Always") {
            errs.push(FieldError::not_supported(
                p.child("restartPolicy"),
                policy,
                &["Always"],
            ));
        }
        let name = text(c, "name");
        if seen.contains(name) {
            errs.push(FieldError::duplicate(p.child("name"), name));
        } else if !name.is_empty() {
            seen.insert(name);
        }
        errs.extend(host_port_conflicts(std::slice::from_ref(c), path));
        if restart == Some("Always") {
            errs.extend(validate_lifecycle_and_probes(c, ctx, &p));
        } else {
            for key in [
                "lifecycle",
                "livenessProbe",
                "readinessProbe",
                "startupProbe",
            ] {
                if field(c, key).is_some() {
                    errs.push(FieldError::forbidden(
                        p.child(key),
                        "may not be set for init containers without restartPolicy=Always",
                    ));
                }
            }
        }
    }
    errs
}

fn validate_common(c: &Value, ctx: &PodContext, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = text(c, "name");
    if name.is_empty() {
        errs.push(FieldError::required(path.child("name"), ""));
    } else {
        for msg in names::is_dns1123_label(name) {
            errs.push(FieldError::invalid(path.child("name"), name, msg));
        }
    }
    if text(c, "image").is_empty() {
        errs.push(FieldError::required(path.child("image"), ""));
    }
    errs.extend(one_of(
        c,
        "terminationMessagePolicy",
        &["File", "FallbackToLogsOnError"],
        path,
    ));
    errs.extend(validate_ports(items(c, "ports"), &path.child("ports")));
    errs.extend(super::env::validate_env(
        items(c, "env"),
        &path.child("env"),
    ));
    errs.extend(super::env::validate_env_from(
        items(c, "envFrom"),
        &path.child("envFrom"),
    ));
    errs.extend(validate_volume_mounts(
        items(c, "volumeMounts"),
        ctx,
        &path.child("volumeMounts"),
    ));
    errs.extend(one_of(
        c,
        "imagePullPolicy",
        &["Always", "IfNotPresent", "Never"],
        path,
    ));
    if let Some(r) = field(c, "resources") {
        errs.extend(validate_resources(r, &path.child("resources")));
    }
    if let Some(sc) = field(c, "securityContext") {
        errs.extend(validate_ids(
            sc,
            &["runAsUser", "runAsGroup"],
            &path.child("securityContext"),
        ));
    }
    errs
}

/// A defaulted enum field: absent is fine, an unknown value is `Unsupported value`.
pub(crate) fn one_of(obj: &Value, key: &str, valid: &[&str], path: &Path) -> Option<FieldError> {
    let v = field(obj, key)?.as_str()?;
    (!valid.contains(&v)).then(|| FieldError::not_supported(path.child(key), v, valid))
}

/// User and group ids must fit in 32 bits.
pub(crate) fn validate_ids(sc: &Value, keys: &[&str], path: &Path) -> ErrorList {
    keys.iter()
        .filter_map(|k| int(sc, k).map(|id| (k, id)))
        .filter(|(_, id)| !(0..=i64::from(u32::MAX)).contains(id))
        .map(|(k, id)| {
            FieldError::invalid(
                path.child(k),
                id,
                names::inclusive_range_error(0, i64::from(u32::MAX)),
            )
        })
        .collect()
}

fn validate_ports(ports: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = HashSet::new();
    for (i, port) in ports.iter().enumerate() {
        let p = path.index(i);
        let name = text(port, "name");
        if !name.is_empty() {
            let msgs = names::is_valid_port_name(name);
            if !msgs.is_empty() {
                errs.extend(
                    msgs.into_iter()
                        .map(|m| FieldError::invalid(p.child("name"), name, m)),
                );
            } else if !seen.insert(name) {
                errs.push(FieldError::duplicate(p.child("name"), name));
            }
        }
        match int(port, "containerPort").unwrap_or(0) {
            0 => errs.push(FieldError::required(p.child("containerPort"), "")),
            n => errs.extend(
                names::is_valid_port_num(n)
                    .into_iter()
                    .map(|m| FieldError::invalid(p.child("containerPort"), n, m)),
            ),
        }
        if let Some(hp) = int(port, "hostPort").filter(|hp| *hp != 0) {
            errs.extend(
                names::is_valid_port_num(hp)
                    .into_iter()
                    .map(|m| FieldError::invalid(p.child("hostPort"), hp, m)),
            );
        }
        errs.extend(one_of(port, "protocol", &["SCTP", "TCP", "UDP"], &p));
    }
    errs
}

/// The same protocol/hostIP/hostPort may be claimed once across the given containers.
fn host_port_conflicts(containers: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut seen = HashSet::new();
    for (ci, c) in containers.iter().enumerate() {
        for (pi, port) in items(c, "ports").iter().enumerate() {
            let Some(hp) = int(port, "hostPort").filter(|hp| *hp != 0) else {
                continue;
            };
            let protocol = field(port, "protocol")
                .and_then(Value::as_str)
                .unwrap_or("TCP");
            let key = format!("{protocol}/{}/{hp}", text(port, "hostIP"));
            if !seen.insert(key.clone()) {
                errs.push(FieldError::duplicate(
                    path.index(ci).child("ports").index(pi).child("hostPort"),
                    key,
                ));
            }
        }
    }
    errs
}

fn validate_volume_mounts(mounts: &[Value], ctx: &PodContext, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut mount_points = HashSet::new();
    for (i, m) in mounts.iter().enumerate() {
        let p = path.index(i);
        let name = text(m, "name");
        if name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        }
        if !ctx.volumes.contains(name) {
            errs.push(FieldError::not_found(p.child("name"), name));
        }
        let mount_path = text(m, "mountPath");
        if mount_path.is_empty() {
            errs.push(FieldError::required(p.child("mountPath"), ""));
        }
        if !mount_points.insert(mount_path) {
            errs.push(FieldError::invalid(
                p.child("mountPath"),
                mount_path,
                "must be unique",
            ));
        }
        // Upstream reports sub-path problems on the list's path, not the item's.
        let sub_path = text(m, "subPath");
        if !sub_path.is_empty() {
            errs.extend(local_descending_path(sub_path, &path.child("subPath")));
        }
        let expr = text(m, "subPathExpr");
        if !expr.is_empty() {
            if !sub_path.is_empty() {
                errs.push(FieldError::invalid(
                    p.child("subPathExpr"),
                    expr,
                    "subPathExpr and subPath are mutually exclusive",
                ));
            }
            errs.extend(local_descending_path(expr, &path.child("subPathExpr")));
        }
    }
    errs
}

/// `validateLocalDescendingPath`: relative, and never stepping up with `..`.
pub(crate) fn local_descending_path(target: &str, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if target.starts_with('/') {
        errs.push(FieldError::invalid(path, target, "must be a relative path"));
    }
    if target.split('/').any(|part| part == "..") {
        errs.push(FieldError::invalid(path, target, "must not contain '..'"));
    }
    errs
}

fn validate_lifecycle_and_probes(c: &Value, ctx: &PodContext, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    if let Some(lc) = field(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(h) = field(lc, hook) {
                errs.extend(validate_handler(
                    h,
                    &LIFECYCLE_HANDLERS,
                    ctx,
                    &path.child("lifecycle").child(hook),
                ));
            }
        }
    }
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        let Some(probe) = field(c, key) else { continue };
        let p = path.child(key);
        errs.extend(validate_probe(probe, ctx, &p));
        let success = int(probe, "successThreshold");
        if key != "readinessProbe" && success.is_some_and(|s| s != 1) {
            errs.push(FieldError::invalid(
                p.child("successThreshold"),
                success.unwrap_or_default(),
                "must be 1",
            ));
        }
        if key == "readinessProbe" {
            if let Some(t) = field(probe, "terminationGracePeriodSeconds") {
                errs.push(FieldError::invalid(
                    p.child("terminationGracePeriodSeconds"),
                    t.clone(),
                    "must not be set for readinessProbes",
                ));
            }
        }
    }
    errs
}

const PROBE_HANDLERS: [&str; 4] = ["exec", "httpGet", "tcpSocket", "grpc"];
const LIFECYCLE_HANDLERS: [&str; 4] = ["exec", "httpGet", "tcpSocket", "sleep"];

fn validate_probe(probe: &Value, ctx: &PodContext, path: &Path) -> ErrorList {
    let mut errs = validate_handler(probe, &PROBE_HANDLERS, ctx, path);
    for key in [
        "initialDelaySeconds",
        "timeoutSeconds",
        "periodSeconds",
        "successThreshold",
        "failureThreshold",
    ] {
        errs.extend(super::nonnegative(probe, key, path));
    }
    if let Some(t) = int(probe, "terminationGracePeriodSeconds").filter(|t| *t <= 0) {
        errs.push(FieldError::invalid(
            path.child("terminationGracePeriodSeconds"),
            t,
            "must be greater than 0",
        ));
    }
    errs
}

/// Exactly one handler (exec, httpGet, ...) must be given.
fn validate_handler(h: &Value, kinds: &[&str], ctx: &PodContext, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut found = 0;
    for kind in kinds {
        let Some(action) = field(h, kind) else {
            continue;
        };
        let p = path.child(kind);
        if found > 0 {
            errs.push(FieldError::forbidden(
                p,
                "may not specify more than 1 handler type",
            ));
            continue;
        }
        found += 1;
        errs.extend(validate_action(kind, action, ctx, &p));
    }
    if found == 0 {
        errs.push(FieldError::required(path, "must specify a handler type"));
    }
    errs
}

fn validate_action(kind: &str, action: &Value, ctx: &PodContext, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    match kind {
        "exec" if items(action, "command").is_empty() => {
            errs.push(FieldError::required(path.child("command"), ""))
        }
        "httpGet" => {
            errs.extend(port_num_or_name(action.get("port"), &path.child("port")));
            errs.extend(one_of(action, "scheme", &["HTTP", "HTTPS"], path));
            for header in items(action, "httpHeaders") {
                let name = text(header, "name");
                for msg in names::is_http_header_name(name) {
                    errs.push(FieldError::invalid(path.child("httpHeaders"), name, msg));
                }
            }
        }
        "tcpSocket" | "grpc" => {
            errs.extend(port_num_or_name(action.get("port"), &path.child("port")))
        }
        "sleep" => {
            let secs = int(action, "seconds").unwrap_or(0);
            let grace = ctx.grace_period.unwrap_or(30);
            if secs <= 0 || secs > grace {
                let msg = format!(
                    "must be greater than 0 and less than terminationGracePeriodSeconds ({grace})"
                );
                errs.push(FieldError::invalid(path, secs, msg));
            }
        }
        _ => {}
    }
    errs
}

/// `ValidatePortNumOrName` for an int-or-string port.
pub(crate) fn port_num_or_name(port: Option<&Value>, path: &Path) -> ErrorList {
    match port {
        Some(Value::String(s)) => names::is_valid_port_name(s)
            .into_iter()
            .map(|m| FieldError::invalid(path, s.as_str(), m))
            .collect(),
        Some(v) => {
            let n = v.as_i64().unwrap_or(0);
            names::is_valid_port_num(n)
                .into_iter()
                .map(|m| FieldError::invalid(path, n, m))
                .collect()
        }
        None => names::is_valid_port_num(0)
            .into_iter()
            .map(|m| FieldError::invalid(path, 0, m))
            .collect(),
    }
}

const STANDARD_CONTAINER_RESOURCES: [&str; 3] = ["cpu", "memory", "ephemeral-storage"];

/// A "native" resource is unprefixed or in the kubernetes.io domain; others are extended.
fn is_native(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn overcommit_allowed(name: &str) -> bool {
    is_native(name) && !name.starts_with("hugepages-")
}

/// `ValidateResourceRequirements`: names, quantities, and requests within limits.
pub(crate) fn validate_resources(r: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let limits = field(r, "limits").and_then(Value::as_object);
    for (name, q) in limits.into_iter().flatten() {
        errs.extend(resource_entry(name, q, &lim_path.key(name)).1);
    }
    for (name, q) in field(r, "requests")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        let (request, entry_errs) = resource_entry(name, q, &req_path.key(name));
        errs.extend(entry_errs);
        let limit = limits.and_then(|l| l.get(name)).and_then(quantity_of);
        match (request, limit) {
            (Some(req), Some(lim)) if req != lim && !overcommit_allowed(name) => {
                errs.push(FieldError::invalid(
                    &req_path,
                    req.to_string(),
                    format!("must be equal to {name} limit of {lim}"),
                ))
            }
            (Some(req), Some(lim)) if req > lim => errs.push(FieldError::invalid(
                &req_path,
                req.to_string(),
                format!("must be less than or equal to {name} limit of {lim}"),
            )),
            (_, None) if !overcommit_allowed(name) => errs.push(FieldError::required(
                &lim_path,
                "Limit must be set for non overcommitable resources",
            )),
            _ => {}
        }
    }
    errs
}

fn quantity_of(v: &Value) -> Option<super::quantity::Quantity> {
    match v {
        Value::String(s) => parse_quantity(s).ok(),
        Value::Number(n) => parse_quantity(&n.to_string()).ok(),
        _ => None,
    }
}

/// One `limits`/`requests` entry: its name and quantity.
fn resource_entry(
    name: &str,
    q: &Value,
    path: &Path,
) -> (Option<super::quantity::Quantity>, ErrorList) {
    let mut errs = ErrorList::new();
    let qualified = names::is_qualified_name(name);
    if !qualified.is_empty() {
        errs.extend(
            qualified
                .into_iter()
                .map(|m| FieldError::invalid(path, name, m)),
        );
    } else if !name.contains('/')
        && !STANDARD_CONTAINER_RESOURCES.contains(&name)
        && !name.starts_with("hugepages-")
    {
        errs.push(FieldError::invalid(
            path,
            name,
            "must be a standard resource for containers",
        ));
    } else if !is_native(name) && !names::is_qualified_name(&format!("requests.{name}")).is_empty()
    {
        errs.push(FieldError::invalid(
            path,
            name,
            "doesn't follow extended resource name standard",
        ));
    }
    let raw = match q {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let parsed = match parse_quantity(&raw) {
        Ok(parsed) => parsed,
        Err(e) => {
            errs.push(FieldError::invalid(path, raw, e.to_string()));
            return (None, errs);
        }
    };
    if parsed.is_negative() {
        errs.push(FieldError::invalid(path, parsed.to_string(), NEGATIVE));
    }
    if !is_native(name) && parsed.nanos() % 1_000_000_000 != 0 {
        errs.push(FieldError::invalid(
            path,
            parsed.to_string(),
            "must be an integer",
        ));
    }
    (Some(parsed), errs)
}
