//! Container environment: envFrom, env (literal, configMapKeyRef, secretKeyRef, fieldRef,
//! resourceFieldRef), and the `$(VAR)` expansion the kubelet applies to env values,
//! command and args.

use std::collections::HashMap;

use k8s_openapi::api::core::v1::{Container, EnvVar, ObjectFieldSelector, ResourceFieldSelector};
use nodeless_engine::instance::POD_IP_PLACEHOLDER;

use super::container::PodContext;
use super::{References, TranslateError};

/// The value of one variable: text, or the instance's IP (only known once it is created).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Text(String),
    PodIp,
}

/// A container's env in order, split into literal variables and those set to the Pod IP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Env {
    pub(super) vars: Vec<(String, String)>,
    pub(super) ip_vars: Vec<String>,
}

impl Env {
    /// The variables `$(VAR)` in command and args may name: every one. Those set to the Pod
    /// IP, which is known only once the instance is created, expand to the engine's
    /// placeholder, which it replaces with the IP.
    pub(super) fn lookup(&self) -> HashMap<&str, &str> {
        self.vars
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(
                self.ip_vars
                    .iter()
                    .map(|k| (k.as_str(), POD_IP_PLACEHOLDER)),
            )
            .collect()
    }
}

pub(super) fn references(c: &Container, refs: &mut References) {
    for from in c.env_from.iter().flatten() {
        if let Some(r) = &from.config_map_ref {
            refs.config_maps.insert(r.name.clone());
        }
        if let Some(r) = &from.secret_ref {
            refs.secrets.insert(r.name.clone());
        }
    }
    for e in c.env.iter().flatten() {
        let Some(from) = &e.value_from else { continue };
        if let Some(r) = &from.config_map_key_ref {
            refs.config_maps.insert(r.name.clone());
        }
        if let Some(r) = &from.secret_key_ref {
            refs.secrets.insert(r.name.clone());
        }
    }
}

/// Resolves a container's environment as the kubelet does: envFrom sources first (in
/// order, with their prefix, skipping keys that are not valid variable names), then env,
/// each value expanded against the variables defined before it.
pub(super) fn container_env(pc: &PodContext, c: &Container) -> Result<Env, TranslateError> {
    let mut entries: Vec<(String, Value)> = Vec::new();
    let set = |entries: &mut Vec<(String, Value)>, name: String, value: Value| {
        entries.retain(|(n, _)| *n != name);
        entries.push((name, value));
    };
    for from in c.env_from.iter().flatten() {
        let prefix = from.prefix.clone().unwrap_or_default();
        for (key, value) in env_from_source(pc, from)? {
            let name = format!("{prefix}{key}");
            if is_env_var_name(&name) {
                set(&mut entries, name, Value::Text(value));
            }
        }
    }
    for e in c.env.iter().flatten() {
        let value = match &e.value_from {
            None => {
                let known = text_lookup(&entries);
                Value::Text(expand(e.value.as_deref().unwrap_or(""), &known))
            }
            Some(_) => match env_var_value(pc, c, e)? {
                Some(v) => v,
                // An optional source that is missing leaves the variable unset.
                None => continue,
            },
        };
        set(&mut entries, e.name.clone(), value);
    }
    let mut env = Env::default();
    for (name, value) in entries {
        match value {
            Value::Text(t) => env.vars.push((name, t)),
            Value::PodIp => env.ip_vars.push(name),
        }
    }
    Ok(env)
}

/// The variables an env value may name: those defined before it.
fn text_lookup(entries: &[(String, Value)]) -> HashMap<&str, &str> {
    entries
        .iter()
        .map(|(k, v)| match v {
            Value::Text(t) => (k.as_str(), t.as_str()),
            Value::PodIp => (k.as_str(), POD_IP_PLACEHOLDER),
        })
        .collect()
}

/// The key/value pairs of one envFrom source; a missing optional source yields none.
fn env_from_source(
    pc: &PodContext,
    from: &k8s_openapi::api::core::v1::EnvFromSource,
) -> Result<Vec<(String, String)>, TranslateError> {
    if let Some(r) = &from.config_map_ref {
        return match pc.sources.config_maps.get(&r.name) {
            Some(cm) => Ok(super::volumes::config_map_entries(cm)
                .into_iter()
                .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                .collect()),
            None if r.optional == Some(true) => Ok(Vec::new()),
            None => Err(TranslateError::ConfigMapNotFound(r.name.clone())),
        };
    }
    if let Some(r) = &from.secret_ref {
        return match pc.sources.secrets.get(&r.name) {
            Some(s) => Ok(s
                .data
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), String::from_utf8_lossy(&v.0).into_owned()))
                .collect()),
            None if r.optional == Some(true) => Ok(Vec::new()),
            None => Err(TranslateError::SecretNotFound(r.name.clone())),
        };
    }
    Ok(Vec::new())
}

fn env_var_value(
    pc: &PodContext,
    c: &Container,
    e: &EnvVar,
) -> Result<Option<Value>, TranslateError> {
    let Some(from) = &e.value_from else {
        return Ok(None);
    };
    let namespace = pc.namespace();
    if let Some(r) = &from.config_map_key_ref {
        let optional = r.optional == Some(true);
        let Some(cm) = pc.sources.config_maps.get(&r.name) else {
            return if optional {
                Ok(None)
            } else {
                Err(TranslateError::ConfigMapNotFound(r.name.clone()))
            };
        };
        let entries = super::volumes::config_map_entries(cm);
        return match entries.into_iter().find(|(k, _)| *k == r.key) {
            Some((_, v)) => Ok(Some(Value::Text(String::from_utf8_lossy(&v).into_owned()))),
            None if optional => Ok(None),
            None => Err(TranslateError::ConfigMapKeyNotFound {
                namespace,
                name: r.name.clone(),
                key: r.key.clone(),
            }),
        };
    }
    if let Some(r) = &from.secret_key_ref {
        let optional = r.optional == Some(true);
        let Some(secret) = pc.sources.secrets.get(&r.name) else {
            return if optional {
                Ok(None)
            } else {
                Err(TranslateError::SecretNotFound(r.name.clone()))
            };
        };
        return match secret.data.as_ref().and_then(|d| d.get(&r.key)) {
            Some(v) => Ok(Some(Value::Text(
                String::from_utf8_lossy(&v.0).into_owned(),
            ))),
            None if optional => Ok(None),
            None => Err(TranslateError::SecretKeyNotFound {
                namespace,
                name: r.name.clone(),
                key: r.key.clone(),
            }),
        };
    }
    if let Some(f) = &from.field_ref {
        return field_value(pc, f).map(Some);
    }
    if let Some(r) = &from.resource_field_ref {
        return resource_value(pc, Some(c), r).map(|v| Some(Value::Text(v)));
    }
    Err(TranslateError::Invalid(format!(
        "env {}: valueFrom names no source",
        e.name
    )))
}

fn field_value(pc: &PodContext, f: &ObjectFieldSelector) -> Result<Value, TranslateError> {
    match f.field_path.as_str() {
        "status.podIP" | "status.podIPs" => Ok(Value::PodIp),
        path => super::volumes::metadata_field(pc, path, false).map(Value::Text),
    }
}

/// A container resource as the downward API reports it: `ceil(quantity / divisor)`, with
/// the instance's size standing in for a missing limit (the kubelet uses node allocatable).
pub(super) fn resource_value(
    pc: &PodContext,
    c: Option<&Container>,
    r: &ResourceFieldSelector,
) -> Result<String, TranslateError> {
    use nodeless_core::validation::quantity::parse_quantity;
    let invalid = |m: String| TranslateError::Invalid(m);
    let (kind, resource) = r
        .resource
        .split_once('.')
        .ok_or_else(|| invalid(format!("unsupported resource {:?}", r.resource)))?;
    let resources = c.and_then(|c| c.resources.as_ref());
    let read = |which: Option<
        &std::collections::BTreeMap<
            String,
            k8s_openapi::apimachinery::pkg::api::resource::Quantity,
        >,
    >| { which.and_then(|m| m.get(resource)).map(|q| q.0.clone()) };
    let limits = read(resources.and_then(|r| r.limits.as_ref()));
    let requests = read(resources.and_then(|r| r.requests.as_ref()));
    let given = match kind {
        "limits" => limits,
        "requests" => requests.or(limits),
        _ => return Err(invalid(format!("unsupported resource {:?}", r.resource))),
    };
    let divisor = r.divisor.as_ref().map(|q| q.0.as_str()).unwrap_or("1");
    let divisor = parse_quantity(divisor).map_err(|e| invalid(format!("divisor: {e}")))?;
    match resource {
        "cpu" => {
            let millis = match given {
                Some(q) => parse_quantity(&q)
                    .map_err(|e| invalid(format!("{}: {e}", r.resource)))?
                    .milli_value(),
                None => i128::from(pc.cpu_millis),
            };
            Ok(ceil_div(millis, divisor.milli_value()).to_string())
        }
        "memory" | "ephemeral-storage" => {
            let bytes = match given {
                Some(q) => parse_quantity(&q)
                    .map_err(|e| invalid(format!("{}: {e}", r.resource)))?
                    .value(),
                None => i128::from(pc.memory_bytes),
            };
            Ok(ceil_div(bytes, divisor.value()).to_string())
        }
        _ => Err(invalid(format!("unsupported resource {:?}", r.resource))),
    }
}

fn ceil_div(n: i128, d: i128) -> i128 {
    if d <= 0 {
        return n;
    }
    (n + d - 1).div_euclid(d)
}

/// C_IDENTIFIER-like names the kubelet accepts from envFrom: anything printable without
/// `=`, not starting with a digit.
fn is_env_var_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_graphic() && c != '=')
}

/// Expands `$(VAR)` references from `vars` as Kubernetes does: `$$` is an escaped `$`,
/// an unknown `$(VAR)` stays as written, and a `$` before anything else is kept.
pub(super) fn expand(input: &str, vars: &HashMap<&str, &str>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(tail) = after.strip_prefix('(') {
            match tail.find(')') {
                Some(end) => {
                    let name = &tail[..end];
                    match vars.get(name) {
                        Some(v) => out.push_str(v),
                        None => {
                            out.push_str("$(");
                            out.push_str(name);
                            out.push(')');
                        }
                    }
                    rest = &tail[end + 1..];
                }
                None => {
                    out.push_str("$(");
                    rest = tail;
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}
