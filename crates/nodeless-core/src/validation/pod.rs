//! Pods, pod templates and the PodSpec they share (`ValidatePodSpec`, `ValidateVolumes`,
//! `ValidatePodTemplateSpec`, `ValidatePodCreate`).

use super::container::{
    one_of, validate_containers, validate_ids, validate_init_containers, PodContext,
};
use super::env::{file_mode, validate_key_to_paths};
use super::meta::{validate_annotations, validate_labels};
use super::names;
use super::quantity::parse_quantity;
use super::{field, int, items, text};
use crate::field::{ErrorList, FieldError, Path};
use serde_json::Value;
use std::collections::HashSet;

/// Volume source keys in upstream's order, with the name upstream uses in its
/// "more than 1 volume type" error (two are misspelled there, and kept so).
const VOLUME_SOURCES: [(&str, &str); 30] = [
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

/// A Pod on create: its spec, plus the checks upstream applies only to real pods.
pub(crate) fn validate_pod(obj: &Value) -> ErrorList {
    let spec_path = Path::new("spec");
    let spec = obj.get("spec").unwrap_or(&Value::Null);
    let mut errs = validate_pod_spec(spec, &spec_path);
    errs.extend(pod_only(spec, &spec_path));
    // Spot annotations steer scheduling and billing, so a bad one is refused at create.
    errs.extend(crate::billing::validate_spot_annotations(obj));
    if !items(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            spec_path.child("ephemeralContainers"),
            "cannot be set on create",
        ));
    }
    if !text(spec, "nodeName").is_empty() && !items(spec, "schedulingGates").is_empty() {
        errs.push(FieldError::forbidden(
            spec_path.child("nodeName"),
            "cannot be set until all schedulingGates have been cleared",
        ));
    }
    errs
}

/// Checks upstream runs for pods but not for templates (kept apart for compatibility).
pub(crate) fn pod_only(spec: &Value, spec_path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for list in ["containers", "initContainers"] {
        for (i, c) in items(spec, list).iter().enumerate() {
            let image = text(c, "image");
            if image.trim() != image {
                errs.push(FieldError::invalid(
                    spec_path.child(list).index(i).child("image"),
                    image,
                    "must not have leading or trailing whitespace",
                ));
            }
        }
    }
    errs
}

/// `ValidatePodTemplateSpec`. Note upstream's paths: `<template>.labels`, not
/// `<template>.metadata.labels`.
pub(crate) fn validate_pod_template(template: Option<&Value>, path: &Path) -> ErrorList {
    let template = template.unwrap_or(&Value::Null);
    let meta = template.get("metadata").unwrap_or(&Value::Null);
    let mut errs = validate_labels(field(meta, "labels"), &path.child("labels"));
    errs.extend(validate_annotations(
        field(meta, "annotations"),
        &path.child("annotations"),
    ));
    let spec = template.get("spec").unwrap_or(&Value::Null);
    let spec_path = path.child("spec");
    errs.extend(validate_pod_spec(spec, &spec_path));
    if !items(spec, "ephemeralContainers").is_empty() {
        errs.push(FieldError::forbidden(
            spec_path.child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
    errs
}

/// `ValidatePodSpec`.
pub(crate) fn validate_pod_spec(spec: &Value, path: &Path) -> ErrorList {
    let (volumes, mut errs) = validate_volumes(items(spec, "volumes"), &path.child("volumes"));
    let ctx = PodContext {
        volumes,
        grace_period: int(spec, "terminationGracePeriodSeconds"),
    };
    let containers = items(spec, "containers");
    errs.extend(validate_containers(
        containers,
        &ctx,
        &path.child("containers"),
    ));
    errs.extend(validate_init_containers(
        items(spec, "initContainers"),
        containers,
        &ctx,
        &path.child("initContainers"),
    ));
    errs.extend(one_of(
        spec,
        "restartPolicy",
        &["Always", "OnFailure", "Never"],
        path,
    ));
    errs.extend(one_of(
        spec,
        "dnsPolicy",
        &["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"],
        path,
    ));
    if text(spec, "dnsPolicy") == "None" {
        errs.extend(dns_none_config(spec, &path.child("dnsConfig")));
    }
    errs.extend(validate_labels(
        field(spec, "nodeSelector"),
        &path.child("nodeSelector"),
    ));
    if let Some(sc) = field(spec, "securityContext") {
        errs.extend(validate_ids(
            sc,
            &["runAsUser", "runAsGroup", "fsGroup"],
            &path.child("securityContext"),
        ));
    }
    for (i, secret) in items(spec, "imagePullSecrets").iter().enumerate() {
        if secret
            .as_object()
            .is_some_and(|m| m.keys().any(|k| k != "name"))
        {
            errs.push(FieldError::invalid(
                path.child("imagePullSecrets").index(i),
                secret.clone(),
                "only name may be set",
            ));
        }
    }
    for key in [
        "serviceAccountName",
        "nodeName",
        "priorityClassName",
        "runtimeClassName",
    ] {
        errs.extend(subdomain_if_set(spec, key, path));
    }
    if let Some(ads) =
        int(spec, "activeDeadlineSeconds").filter(|v| !(1..=i64::from(i32::MAX)).contains(v))
    {
        let msg = names::inclusive_range_error(1, i64::from(i32::MAX));
        errs.push(FieldError::invalid(
            path.child("activeDeadlineSeconds"),
            ads,
            msg,
        ));
    }
    for key in ["hostname", "subdomain"] {
        let v = text(spec, key);
        if !v.is_empty() {
            errs.extend(
                names::is_dns1123_label(v)
                    .into_iter()
                    .map(|m| FieldError::invalid(path.child(key), v, m)),
            );
        }
    }
    errs.extend(validate_tolerations(
        items(spec, "tolerations"),
        &path.child("tolerations"),
    ));
    errs
}

fn subdomain_if_set(spec: &Value, key: &str, path: &Path) -> ErrorList {
    let v = text(spec, key);
    if v.is_empty() {
        return ErrorList::new();
    }
    names::is_dns1123_subdomain(v)
        .into_iter()
        .map(|m| FieldError::invalid(path.child(key), v, m))
        .collect()
}

fn dns_none_config(spec: &Value, path: &Path) -> Option<FieldError> {
    let Some(config) = field(spec, "dnsConfig") else {
        return Some(FieldError::required(
            path,
            "must provide `dnsConfig` when `dnsPolicy` is None",
        ));
    };
    items(config, "nameservers").is_empty().then(|| {
        FieldError::required(
            path.child("nameservers"),
            "must provide at least one DNS nameserver when `dnsPolicy` is None",
        )
    })
}

/// `ValidateVolumes`: returns the names of the volumes that validated cleanly, which are
/// the only ones mounts may refer to.
fn validate_volumes(volumes: &[Value], path: &Path) -> (HashSet<String>, ErrorList) {
    let mut valid = HashSet::new();
    let mut all_names = HashSet::new();
    let mut errs = ErrorList::new();
    for (i, vol) in volumes.iter().enumerate() {
        let p = path.index(i);
        let mut vol_errs = validate_volume_source(vol, &p);
        let name = text(vol, "name");
        if name.is_empty() {
            vol_errs.push(FieldError::required(p.child("name"), ""));
        } else {
            vol_errs.extend(
                names::is_dns1123_label(name)
                    .into_iter()
                    .map(|m| FieldError::invalid(p.child("name"), name, m)),
            );
        }
        if all_names.contains(name) {
            vol_errs.push(FieldError::duplicate(p.child("name"), name));
        }
        if vol_errs.is_empty() {
            all_names.insert(name.to_string());
            valid.insert(name.to_string());
        } else {
            errs.extend(vol_errs);
        }
    }
    (valid, errs)
}

/// Exactly one volume source, and the common fields of the sources users use most.
fn validate_volume_source(vol: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let mut count = 0;
    for (key, error_name) in VOLUME_SOURCES {
        let Some(src) = field(vol, key) else { continue };
        if count > 0 {
            errs.push(FieldError::forbidden(
                path.child(error_name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        errs.extend(validate_source(key, src, &path.child(key)));
    }
    if count == 0 {
        errs.push(FieldError::required(path, "must specify a volume type"));
    }
    errs
}

fn validate_source(key: &str, src: &Value, path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    let required = |k: &str| {
        text(src, k)
            .is_empty()
            .then(|| FieldError::required(path.child(k), ""))
    };
    match key {
        "emptyDir" => {
            let negative = field(src, "sizeLimit")
                .and_then(|v| {
                    v.as_str()
                        .map(String::from)
                        .or_else(|| v.as_number().map(|n| n.to_string()))
                })
                .and_then(|s| parse_quantity(&s).ok())
                .is_some_and(|q| q.is_negative());
            if negative {
                errs.push(FieldError::forbidden(
                    path.child("sizeLimit"),
                    "SizeLimit field must be a valid resource quantity",
                ));
            }
        }
        "hostPath" => errs.extend(required("path")),
        "secret" => errs.extend(required("secretName")),
        "configMap" => errs.extend(required("name")),
        "persistentVolumeClaim" => errs.extend(required("claimName")),
        "nfs" => {
            errs.extend(required("server"));
            errs.extend(required("path"));
        }
        _ => {}
    }
    if matches!(key, "secret" | "configMap") {
        errs.extend(validate_key_to_paths(
            items(src, "items"),
            &path.child("items"),
        ));
        if let Some(mode) = int(src, "defaultMode") {
            errs.extend(file_mode(mode, &path.child("defaultMode")));
        }
    }
    errs
}

/// `ValidateTolerations`.
pub(crate) fn validate_tolerations(tolerations: &[Value], path: &Path) -> ErrorList {
    let mut errs = ErrorList::new();
    for (i, t) in tolerations.iter().enumerate() {
        let p = path.index(i);
        let key = text(t, "key");
        let operator = text(t, "operator");
        let effect = text(t, "effect");
        if !key.is_empty() {
            errs.extend(super::meta::validate_label_name(key, &p.child("key")));
        }
        if key.is_empty() && operator != "Exists" {
            errs.push(FieldError::invalid(
                p.child("operator"),
                operator,
                "operator must be Exists when `key` is empty, which means \"match all values and all keys\"",
            ));
        }
        if field(t, "tolerationSeconds").is_some() && effect != "NoExecute" {
            errs.push(FieldError::invalid(
                p.child("effect"),
                effect,
                "effect must be 'NoExecute' when `tolerationSeconds` is set",
            ));
        }
        let value = text(t, "value");
        match operator {
            "Equal" | "" => {
                let msgs = names::is_valid_label_value(value);
                if !msgs.is_empty() {
                    errs.push(FieldError::invalid(
                        p.child("operator"),
                        value,
                        msgs.join(";"),
                    ));
                }
            }
            "Exists" if !value.is_empty() => errs.push(FieldError::invalid(
                p.child("operator"),
                t.clone(),
                "value must be empty when `operator` is 'Exists'",
            )),
            "Exists" => {}
            other => errs.push(FieldError::not_supported(
                p.child("operator"),
                other,
                &["Equal", "Exists"],
            )),
        }
        if !effect.is_empty() && !matches!(effect, "NoSchedule" | "PreferNoSchedule" | "NoExecute")
        {
            errs.push(FieldError::not_supported(
                p.child("effect"),
                effect,
                &["NoSchedule", "PreferNoSchedule", "NoExecute"],
            ));
        }
    }
    errs
}
