//! Container environment: `env` (names and `valueFrom`) and `envFrom`.
//!
//! Names use the relaxed rule kube-apiserver 1.32 applies by default
//! (`RelaxedEnvironmentVariableValidation` is beta and on): printable ASCII except `=`.

use super::names;
use super::{field, text};
use crate::field::{ErrorList, FieldError, Path};
use serde_json::Value;

/// Downward API fields an env var may read (`validEnvDownwardAPIFieldPathExpressions`).
const ENV_FIELD_PATHS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Fields the v1 downward API knows at all; others fail conversion before validation.
const CONVERTIBLE_FIELD_PATHS: [&str; 5] = [
    "metadata.annotations",
    "metadata.labels",
    "spec.restartPolicy",
    "spec.schedulerName",
    "status.phase",
];

const RESOURCE_FIELD_PATHS: [&str; 6] = [
    "limits.cpu",
    "limits.ephemeral-storage",
    "limits.memory",
    "requests.cpu",
    "requests.ephemeral-storage",
    "requests.memory",
];

fn env_name_errors(name: &str) -> Vec<String> {
    names::is_relaxed_env_var_name(name)
}

pub(crate) fn validate_env(vars: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, var) in vars.iter().enumerate() {
        let p = path.index(i);
        let name = text(var, "name");
        if name.is_empty() {
            errs.push(FieldError::required(p.child("name"), ""));
        } else {
            errs.extend(
                env_name_errors(name)
                    .into_iter()
                    .map(|m| FieldError::invalid(p.child("name"), name, m)),
            );
        }
        if let Some(from) = field(var, "valueFrom") {
            errs.extend(validate_value_from(
                from,
                !text(var, "value").is_empty(),
                &p.child("valueFrom"),
            ));
        }
    }
    errs
}

fn validate_value_from(from: &Value, has_value: bool, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut sources = 0;
    if let Some(f) = field(from, "fieldRef") {
        sources += 1;
        errs.extend(validate_field_ref(f, &path.child("fieldRef")));
    }
    if let Some(r) = field(from, "resourceFieldRef") {
        sources += 1;
        errs.extend(validate_resource_field_ref(
            r,
            &path.child("resourceFieldRef"),
        ));
    }
    for key in ["configMapKeyRef", "secretKeyRef"] {
        if let Some(sel) = field(from, key) {
            sources += 1;
            errs.extend(validate_key_selector(sel, &path.child(key)));
        }
    }
    let problem = match sources {
        0 => Some("must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`"),
        _ if has_value => Some("may not be specified when `value` is not empty"),
        1 => None,
        _ => Some("may not have more than one field specified at a time"),
    };
    errs.extend(problem.map(|msg| FieldError::invalid(path, "", msg)));
    errs
}

fn validate_field_ref(f: &Value, path: &Path) -> ErrorList {
    let field_path = text(f, "fieldPath");
    if field_path.is_empty() {
        return vec![FieldError::required(path.child("fieldPath"), "")];
    }
    if let Some((base, subscript)) = subscripted(field_path) {
        return match base {
            "metadata.annotations" => label_key(&subscript.to_lowercase(), path),
            "metadata.labels" => label_key(subscript, path),
            _ => vec![FieldError::invalid(
                path,
                base,
                "does not support subscript",
            )],
        };
    }
    if ENV_FIELD_PATHS.contains(&field_path) {
        return ErrorList::new();
    }
    if CONVERTIBLE_FIELD_PATHS.contains(&field_path) {
        let mut valid = ENV_FIELD_PATHS.to_vec();
        valid.sort_unstable();
        return vec![FieldError::not_supported(
            path.child("fieldPath"),
            field_path,
            &valid,
        )];
    }
    vec![FieldError::invalid(
        path.child("fieldPath"),
        field_path,
        format!("error converting fieldPath: field label not supported: {field_path}"),
    )]
}

/// Splits `metadata.labels['key']` into the base path and the key.
fn subscripted(path: &str) -> Option<(&str, &str)> {
    let open = path.find("['")?;
    let inner = path.strip_suffix("']")?;
    Some((&path[..open], inner.get(open + 2..)?))
}

fn label_key(key: &str, path: &Path) -> ErrorList {
    names::is_qualified_name(key)
        .into_iter()
        .map(|m| FieldError::invalid(path, key, m))
        .collect()
}

fn validate_resource_field_ref(r: &Value, path: &Path) -> ErrorList {
    let resource = text(r, "resource");
    if resource.is_empty() {
        return vec![FieldError::required(path.child("resource"), "")];
    }
    let hugepages =
        resource.starts_with("requests.hugepages-") || resource.starts_with("limits.hugepages-");
    if RESOURCE_FIELD_PATHS.contains(&resource) || hugepages {
        return ErrorList::new();
    }
    vec![FieldError::not_supported(
        path.child("resource"),
        resource,
        &RESOURCE_FIELD_PATHS,
    )]
}

/// `configMapKeyRef` / `secretKeyRef`: a valid object name and a valid key.
fn validate_key_selector(sel: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let name = text(sel, "name");
    for msg in names::is_dns1123_subdomain(name) {
        errs.push(FieldError::invalid(path.child("name"), name, msg));
    }
    let key = text(sel, "key");
    if key.is_empty() {
        errs.push(FieldError::required(path.child("key"), ""));
    } else {
        errs.extend(
            names::is_config_map_key(key)
                .into_iter()
                .map(|m| FieldError::invalid(path.child("key"), key, m)),
        );
    }
    errs
}

pub(crate) fn validate_env_from(sources: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, src) in sources.iter().enumerate() {
        let p = path.index(i);
        let prefix = text(src, "prefix");
        if !prefix.is_empty() {
            errs.extend(
                env_name_errors(prefix)
                    .into_iter()
                    .map(|m| FieldError::invalid(p.child("prefix"), prefix, m)),
            );
        }
        let mut count = 0;
        for key in ["configMapRef", "secretRef"] {
            if let Some(r) = field(src, key) {
                count += 1;
                errs.extend(validate_ref_name(
                    text(r, "name"),
                    &p.child(key).child("name"),
                ));
            }
        }
        // Upstream reports these on the list's path, not the item's.
        match count {
            0 => errs.push(FieldError::invalid(
                path,
                "",
                "must specify one of: `configMapRef` or `secretRef`",
            )),
            1 => {}
            _ => errs.push(FieldError::invalid(
                path,
                "",
                "may not have more than one field specified at a time",
            )),
        }
    }
    errs
}

/// A referenced object's name, checked as a generate-name prefix (a trailing `-` is fine).
fn validate_ref_name(name: &str, path: &Path) -> ErrorList {
    if name.is_empty() {
        return vec![FieldError::required(path, "")];
    }
    let masked = match name.strip_suffix('-') {
        Some(stem) => format!("{stem}a"),
        None => name.to_string(),
    };
    names::is_dns1123_subdomain(&masked)
        .into_iter()
        .map(|m| FieldError::invalid(path, name, m))
        .collect()
}

/// Volume item lists (`secret.items`, `configMap.items`) share the key/path rules.
pub(crate) fn validate_key_to_paths(list: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, item) in list.iter().enumerate() {
        let p = path.index(i);
        if text(item, "key").is_empty() {
            errs.push(FieldError::required(p.child("key"), ""));
        }
        let target = text(item, "path");
        if target.is_empty() {
            errs.push(FieldError::required(p.child("path"), ""));
        } else {
            errs.extend(super::container::local_descending_path(
                target,
                &p.child("path"),
            ));
            if target.starts_with("..") {
                errs.push(FieldError::invalid(
                    p.child("path"),
                    target,
                    "must not start with '..'",
                ));
            }
        }
        if let Some(mode) = super::int(item, "mode") {
            errs.extend(file_mode(mode, &p.child("mode")));
        }
    }
    errs
}

/// File modes are limited to 0..=0777.
pub(crate) fn file_mode(mode: i64, path: &Path) -> Option<FieldError> {
    (!(0..=0o777).contains(&mode)).then(|| {
        FieldError::invalid(
            path,
            mode,
            "must be a number between 0 and 0777 (octal), both inclusive",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscripts_are_split_from_field_paths() {
        assert_eq!(
            subscripted("metadata.labels['app']"),
            Some(("metadata.labels", "app"))
        );
        assert_eq!(subscripted("metadata.name"), None);
    }
}
