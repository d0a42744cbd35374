//! Volumes: emptyDir becomes a directory or tmpfs; configMap, secret, projected and
//! downwardAPI volumes become files the agent renders (the engine writes them to a tmpfs),
//! so that a ConfigMap change can be rendered again and pushed into a running instance.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    ConfigMap, ConfigMapProjection, DownwardAPIVolumeFile, KeyToPath, SecretProjection, Volume,
    VolumeProjection,
};
use nodeless_engine::instance::{StorageMedium, VolumeFile, VolumeSource, VolumeSpec};

use super::container::PodContext;
use super::{References, TranslateError};

const DEFAULT_MODE: i32 = 0o644;

pub(super) fn references(v: &Volume, refs: &mut References) {
    if let Some(cm) = &v.config_map {
        refs.config_maps.insert(cm.name.clone());
    }
    if let Some(s) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
        refs.secrets.insert(s);
    }
    for source in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
        if let Some(cm) = &source.config_map {
            refs.config_maps.insert(cm.name.clone());
        }
        if let Some(s) = &source.secret {
            refs.secrets.insert(s.name.clone());
        }
    }
}

/// Volumes whose contents the agent renders (and mounts read-only).
pub(super) fn is_files_volume(v: &Volume) -> bool {
    v.config_map.is_some()
        || v.secret.is_some()
        || v.projected.is_some()
        || v.downward_api.is_some()
}

pub(super) fn volume_spec(
    pc: &PodContext,
    v: &Volume,
) -> Result<Option<VolumeSpec>, TranslateError> {
    let source = if let Some(e) = &v.empty_dir {
        VolumeSource::EmptyDir {
            medium: match e.medium.as_deref() {
                Some("Memory") => StorageMedium::Memory,
                _ => StorageMedium::Disk,
            },
            size_limit: e
                .size_limit
                .as_ref()
                .map(|q| super::container::memory_bytes(&q.0))
                .transpose()?,
        }
    } else if is_files_volume(v) {
        VolumeSource::Files {
            files: volume_files(pc, v)?,
        }
    } else {
        return Err(TranslateError::Unsupported(format!(
            "volume {:?}: only emptyDir, configMap, secret, projected and downwardAPI volumes are supported",
            v.name
        )));
    };
    Ok(Some(VolumeSpec {
        name: v.name.clone(),
        source,
    }))
}

fn volume_files(pc: &PodContext, v: &Volume) -> Result<Vec<VolumeFile>, TranslateError> {
    let mut files = Vec::new();
    if let Some(cm) = &v.config_map {
        let projection = ConfigMapProjection {
            name: cm.name.clone(),
            items: cm.items.clone(),
            optional: cm.optional,
        };
        config_map_files(pc, &projection, mode_or(cm.default_mode), &mut files)?;
    }
    if let Some(s) = &v.secret {
        let projection = SecretProjection {
            name: s.secret_name.clone().unwrap_or_default(),
            items: s.items.clone(),
            optional: s.optional,
        };
        secret_files(pc, &projection, mode_or(s.default_mode), &mut files)?;
    }
    if let Some(d) = &v.downward_api {
        let mode = mode_or(d.default_mode);
        for item in d.items.iter().flatten() {
            files.push(downward_file(pc, item, mode)?);
        }
    }
    if let Some(p) = &v.projected {
        let mode = mode_or(p.default_mode);
        for source in p.sources.iter().flatten() {
            projection_files(pc, &v.name, source, mode, &mut files)?;
        }
    }
    Ok(files)
}

fn projection_files(
    pc: &PodContext,
    volume: &str,
    source: &VolumeProjection,
    mode: u32,
    files: &mut Vec<VolumeFile>,
) -> Result<(), TranslateError> {
    if let Some(cm) = &source.config_map {
        config_map_files(pc, cm, mode, files)?;
    }
    if let Some(s) = &source.secret {
        secret_files(pc, s, mode, files)?;
    }
    if let Some(d) = &source.downward_api {
        for item in d.items.iter().flatten() {
            files.push(downward_file(pc, item, mode)?);
        }
    }
    if source.service_account_token.is_some() || source.cluster_trust_bundle.is_some() {
        tracing::warn!(
            volume,
            "serviceAccountToken and clusterTrustBundle projections are not supported yet; skipped"
        );
    }
    Ok(())
}

fn mode_or(mode: Option<i32>) -> u32 {
    u32::try_from(mode.unwrap_or(DEFAULT_MODE)).unwrap_or(0o644) & 0o7777
}

/// A ConfigMap's `data` and `binaryData`, by key.
pub(super) fn config_map_entries(cm: &ConfigMap) -> BTreeMap<String, Vec<u8>> {
    let mut out: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for (k, v) in cm.data.iter().flatten() {
        out.insert(k.clone(), v.as_bytes().to_vec());
    }
    for (k, v) in cm.binary_data.iter().flatten() {
        out.insert(k.clone(), v.0.clone());
    }
    out
}

fn config_map_files(
    pc: &PodContext,
    p: &ConfigMapProjection,
    mode: u32,
    files: &mut Vec<VolumeFile>,
) -> Result<(), TranslateError> {
    let optional = p.optional == Some(true);
    let Some(cm) = pc.sources.config_maps.get(&p.name) else {
        return if optional {
            Ok(())
        } else {
            Err(TranslateError::ConfigMapNotFound(p.name.clone()))
        };
    };
    let missing = |key: &str| TranslateError::ConfigMapKeyNotFound {
        namespace: pc.namespace(),
        name: p.name.clone(),
        key: key.to_string(),
    };
    keyed_files(
        config_map_entries(cm),
        p.items.as_deref(),
        mode,
        optional,
        missing,
        files,
    )
}

fn secret_files(
    pc: &PodContext,
    p: &SecretProjection,
    mode: u32,
    files: &mut Vec<VolumeFile>,
) -> Result<(), TranslateError> {
    let optional = p.optional == Some(true);
    let Some(secret) = pc.sources.secrets.get(&p.name) else {
        return if optional {
            Ok(())
        } else {
            Err(TranslateError::SecretNotFound(p.name.clone()))
        };
    };
    let mut entries: BTreeMap<String, Vec<u8>> = secret
        .data
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    for (k, v) in secret.string_data.iter().flatten() {
        entries.insert(k.clone(), v.as_bytes().to_vec());
    }
    let missing = |key: &str| TranslateError::SecretKeyNotFound {
        namespace: pc.namespace(),
        name: p.name.clone(),
        key: key.to_string(),
    };
    keyed_files(entries, p.items.as_deref(), mode, optional, missing, files)
}

/// Every key as a file named after it, or only the listed items at their paths. A listed
/// key that is missing fails unless the source is optional.
fn keyed_files(
    entries: BTreeMap<String, Vec<u8>>,
    items: Option<&[KeyToPath]>,
    mode: u32,
    optional: bool,
    missing: impl Fn(&str) -> TranslateError,
    files: &mut Vec<VolumeFile>,
) -> Result<(), TranslateError> {
    let Some(items) = items.filter(|i| !i.is_empty()) else {
        files.extend(entries.into_iter().map(|(path, contents)| VolumeFile {
            path,
            contents,
            mode,
        }));
        return Ok(());
    };
    for item in items {
        match entries.get(&item.key) {
            Some(contents) => files.push(VolumeFile {
                path: item.path.clone(),
                contents: contents.clone(),
                mode: item.mode.map_or(mode, |m| mode_or(Some(m))),
            }),
            None if optional => {}
            None => return Err(missing(&item.key)),
        }
    }
    Ok(())
}

fn downward_file(
    pc: &PodContext,
    item: &DownwardAPIVolumeFile,
    mode: u32,
) -> Result<VolumeFile, TranslateError> {
    let text = if let Some(f) = &item.field_ref {
        metadata_field(pc, &f.field_path, true)?
    } else if let Some(r) = &item.resource_field_ref {
        let container = pc.pod.spec.as_ref().and_then(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
                .find(|c| Some(&c.name) == r.container_name.as_ref())
        });
        super::env::resource_value(pc, container, r)?
    } else {
        return Err(TranslateError::Invalid(format!(
            "downwardAPI item {:?} names no field",
            item.path
        )));
    };
    Ok(VolumeFile {
        path: item.path.clone(),
        contents: text.into_bytes(),
        mode: item.mode.map_or(mode, |m| mode_or(Some(m))),
    })
}

/// A downward API field of the Pod's metadata, spec or host. `whole_maps`: the volume form
/// may name all labels or annotations, rendered `key="value"` one per line, sorted.
pub(super) fn metadata_field(
    pc: &PodContext,
    path: &str,
    whole_maps: bool,
) -> Result<String, TranslateError> {
    let meta = &pc.pod.metadata;
    let spec = pc.pod.spec.as_ref();
    let subscript = |prefix: &str| {
        path.strip_prefix(prefix)
            .and_then(|r| r.strip_prefix("['"))
            .and_then(|r| r.strip_suffix("']"))
    };
    let value = match path {
        "metadata.name" => meta.name.clone().unwrap_or_default(),
        "metadata.namespace" => pc.namespace(),
        "metadata.uid" => meta.uid.clone().unwrap_or_default(),
        "metadata.labels" if whole_maps => format_map(meta.labels.as_ref()),
        "metadata.annotations" if whole_maps => format_map(meta.annotations.as_ref()),
        "spec.nodeName" => spec
            .and_then(|s| s.node_name.clone())
            .unwrap_or_else(|| pc.ctx.node_name.clone()),
        "spec.serviceAccountName" => spec
            .and_then(|s| s.service_account_name.clone())
            .unwrap_or_default(),
        "status.hostIP" | "status.hostIPs" => pc.ctx.host_ip.to_string(),
        _ => {
            if let Some(key) = subscript("metadata.labels") {
                lookup(meta.labels.as_ref(), key)
            } else if let Some(key) = subscript("metadata.annotations") {
                lookup(meta.annotations.as_ref(), key)
            } else {
                return Err(TranslateError::Unsupported(format!(
                    "unsupported downward API field {path:?}"
                )));
            }
        }
    };
    Ok(value)
}

fn lookup(map: Option<&BTreeMap<String, String>>, key: &str) -> String {
    map.and_then(|m| m.get(key)).cloned().unwrap_or_default()
}

/// `key="value"` lines in key order, as the kubelet writes labels and annotations files.
fn format_map(map: Option<&BTreeMap<String, String>>) -> String {
    map.into_iter()
        .flatten()
        .map(|(k, v)| {
            let quoted = serde_json::to_string(v).unwrap_or_else(|_| format!("\"{v}\""));
            format!("{k}={quoted}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}
