//! ConfigMaps and Secrets: keys, sizes, typed Secrets' required keys, and `immutable`.

use super::names;
use super::{field, flag, text};
use crate::field::{ErrorList, FieldError, Path};
use base64::Engine;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Upstream's `MaxSecretSize`, which also bounds ConfigMaps.
const MAX_SIZE: usize = 1024 * 1024;
const IMMUTABLE_SET: &str = "field is immutable when `immutable` is set";

fn map<'a>(obj: &'a Value, key: &str) -> Option<&'a Map<String, Value>> {
    field(obj, key).and_then(Value::as_object)
}

fn key_errors(key: &str, path: &Path) -> ErrorList {
    names::is_config_map_key(key)
        .into_iter()
        .map(|m| FieldError::invalid(path.key(key), key, m))
        .collect()
}

pub(crate) fn validate_config_map(obj: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    let binary = map(obj, "binaryData");
    let mut total = 0;
    for (k, v) in map(obj, "data").into_iter().flatten() {
        errs.extend(key_errors(k, &Path::new("data")));
        if binary.is_some_and(|b| b.contains_key(k)) {
            errs.push(FieldError::invalid(
                Path::new("data").key(k),
                k.as_str(),
                "duplicate of key present in binaryData",
            ));
        }
        total += v.as_str().map_or(0, str::len);
    }
    for (k, v) in binary.into_iter().flatten() {
        errs.extend(key_errors(k, &Path::new("binaryData")));
        total += decoded_len(v);
    }
    if total > MAX_SIZE {
        errs.push(FieldError::too_long("", MAX_SIZE));
    }
    errs
}

fn decoded_len(v: &Value) -> usize {
    v.as_str().map_or(0, |s| {
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_or(s.len(), |b| b.len())
    })
}

/// A Secret's content as upstream sees it after `stringData` is merged into `data`.
fn secret_data(obj: &Value) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for (k, v) in map(obj, "data").into_iter().flatten() {
        let s = v.as_str().unwrap_or("");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_else(|_| s.as_bytes().to_vec());
        out.insert(k.clone(), bytes);
    }
    for (k, v) in map(obj, "stringData").into_iter().flatten() {
        out.insert(k.clone(), v.as_str().unwrap_or("").as_bytes().to_vec());
    }
    out
}

pub(crate) fn validate_secret(obj: &Value) -> ErrorList {
    let data_path = Path::new("data");
    let data = secret_data(obj);
    let mut errs = ErrorList::new();
    for k in data.keys() {
        errs.extend(key_errors(k, &data_path));
    }
    if data.values().map(Vec::len).sum::<usize>() > MAX_SIZE {
        errs.push(FieldError::too_long(&data_path, MAX_SIZE));
    }
    let required = |key: &str| FieldError::required(data_path.key(key), "");
    match text(obj, "type") {
        "kubernetes.io/service-account-token" => {
            let annotation = "kubernetes.io/service-account.name";
            if crate::meta::annotations(obj)
                .get(annotation)
                .is_none_or(String::is_empty)
            {
                errs.push(FieldError::required(
                    Path::new("metadata").child("annotations").key(annotation),
                    "",
                ));
            }
        }
        "kubernetes.io/dockercfg" => errs.extend(json_key(&data, ".dockercfg", &data_path)),
        "kubernetes.io/dockerconfigjson" => {
            errs.extend(json_key(&data, ".dockerconfigjson", &data_path))
        }
        "kubernetes.io/basic-auth"
            if !data.contains_key("username") && !data.contains_key("password") =>
        {
            errs.push(required("username"));
            errs.push(required("password"));
        }
        "kubernetes.io/ssh-auth" if data.get("ssh-privatekey").is_none_or(Vec::is_empty) => {
            errs.push(required("ssh-privatekey"));
        }
        "kubernetes.io/tls" => {
            for key in ["tls.crt", "tls.key"] {
                if !data.contains_key(key) {
                    errs.push(required(key));
                }
            }
        }
        _ => {}
    }
    errs
}

/// Docker config secrets need their key, holding a JSON object.
fn json_key(data: &BTreeMap<String, Vec<u8>>, key: &str, path: &Path) -> Option<FieldError> {
    let Some(bytes) = data.get(key) else {
        return Some(FieldError::required(path.key(key), ""));
    };
    match serde_json::from_slice::<Map<String, Value>>(bytes) {
        Ok(_) => None,
        Err(e) => Some(FieldError::invalid(
            path.key(key),
            "<secret contents redacted>",
            e.to_string(),
        )),
    }
}

/// Once `immutable: true` is stored, neither the flag nor the content may change.
fn immutable_content(new: &Value, old: &Value, keys: &[&str], same: bool) -> ErrorList {
    let mut errs = ErrorList::new();
    if !flag(old, "immutable") {
        return errs;
    }
    if !flag(new, "immutable") {
        errs.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
    }
    if !same {
        errs.extend(
            keys.iter()
                .map(|k| FieldError::forbidden(*k, IMMUTABLE_SET)),
        );
    }
    errs
}

pub(crate) fn validate_config_map_update(new: &Value, old: &Value) -> ErrorList {
    let mut errs = ErrorList::new();
    if flag(old, "immutable") {
        if !flag(new, "immutable") {
            errs.push(FieldError::forbidden("immutable", IMMUTABLE_SET));
        }
        for key in ["data", "binaryData"] {
            if map(new, key) != map(old, key) {
                errs.push(FieldError::forbidden(key, IMMUTABLE_SET));
            }
        }
    }
    errs.extend(validate_config_map(new));
    errs
}

pub(crate) fn validate_secret_update(new: &Value, old: &Value) -> ErrorList {
    let secret_type = |o: &Value| {
        field(o, "type")
            .and_then(Value::as_str)
            .unwrap_or("Opaque")
            .to_string()
    };
    let mut errs = ErrorList::new();
    if secret_type(new) != secret_type(old) {
        errs.push(FieldError::invalid(
            "type",
            secret_type(new),
            super::meta::IMMUTABLE,
        ));
    }
    errs.extend(immutable_content(
        new,
        old,
        &["data"],
        secret_data(new) == secret_data(old),
    ));
    errs.extend(validate_secret(new));
    errs
}
