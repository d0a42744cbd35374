//! Pod and PodSpec defaults (core/v1 `SetDefaults_Pod`, `SetDefaults_PodSpec`, containers,
//! probes and volumes), shared by every workload's pod template.

use super::{child, child_or_new, is_unset, is_zero, items, set_unset, set_zero, str_at, Obj};
use serde_json::{json, Map, Value};

/// A Pod object: the PodSpec defaults plus those upstream applies to Pods only.
pub(super) fn pod(obj: &mut Obj) {
    let Some(spec) = child_or_new(obj, "spec") else {
        return;
    };
    for key in ["containers", "initContainers"] {
        for c in items(spec, key) {
            requests_from_limits(c);
        }
    }
    set_unset(spec, "enableServiceLinks", true);
    if spec.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
        for key in ["containers", "initContainers"] {
            for port in items(spec, key).flat_map(|c| items(c, "ports")) {
                if is_zero(port.get("hostPort")) {
                    let container_port = port.get("containerPort").cloned().unwrap_or(Value::Null);
                    port.insert("hostPort".into(), container_port);
                }
            }
        }
    }
    pod_spec(spec);
}

/// A PodSpec wherever it appears: in a Pod or in a workload's template.
pub(super) fn pod_spec(spec: &mut Obj) {
    set_zero(spec, "dnsPolicy", "ClusterFirst");
    set_zero(spec, "restartPolicy", "Always");
    set_unset(spec, "securityContext", json!({}));
    set_unset(spec, "terminationGracePeriodSeconds", 30);
    set_zero(spec, "schedulerName", "default-scheduler");
    for v in items(spec, "volumes") {
        volume(v);
    }
    for key in ["initContainers", "containers", "ephemeralContainers"] {
        for c in items(spec, key) {
            container(c);
        }
    }
}

/// A container without requests gets its limits as requests (Pods only, not templates).
fn requests_from_limits(c: &mut Obj) {
    let Some(resources) = child(c, "resources") else {
        return;
    };
    let Some(limits) = resources.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    if limits.is_empty() {
        return;
    }
    let Some(requests) = child_or_new(resources, "requests") else {
        return;
    };
    for (name, quantity) in limits {
        requests.entry(name).or_insert(quantity);
    }
}

fn container(c: &mut Obj) {
    if is_zero(c.get("imagePullPolicy")) {
        let policy = if image_tag(str_at(c, "image")) == "latest" {
            "Always"
        } else {
            "IfNotPresent"
        };
        c.insert("imagePullPolicy".into(), policy.into());
    }
    set_zero(c, "terminationMessagePath", "/dev/termination-log");
    set_zero(c, "terminationMessagePolicy", "File");
    // Not a default but Go's encoding: `resources` is a struct, so it is always written.
    set_unset(c, "resources", json!({}));
    for port in items(c, "ports") {
        set_zero(port, "protocol", "TCP");
    }
    for env in items(c, "env") {
        if let Some(field_ref) = child(env, "valueFrom").and_then(|v| child(v, "fieldRef")) {
            set_zero(field_ref, "apiVersion", "v1");
        }
    }
    for key in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = child(c, key) {
            probe(p);
        }
    }
    if let Some(lifecycle) = child(c, "lifecycle") {
        for hook in ["postStart", "preStop"] {
            if let Some(http) = child(lifecycle, hook).and_then(|h| child(h, "httpGet")) {
                http_get(http);
            }
        }
    }
}

/// The tag upstream's image-name parser finds: `latest` when there is neither tag nor
/// digest, empty for a digest-only or empty reference.
pub(super) fn image_tag(image: &str) -> &str {
    if image.is_empty() {
        return "";
    }
    let (name, digest) = match image.split_once('@') {
        Some((name, digest)) => (name, Some(digest)),
        None => (image, None),
    };
    // A colon before the last slash belongs to a registry port, not to a tag.
    let last_component = name.rsplit('/').next().unwrap_or(name);
    match last_component.split_once(':') {
        Some((_, tag)) => tag,
        None if digest.is_some() => "",
        None => "latest",
    }
}

fn probe(p: &mut Obj) {
    set_zero(p, "timeoutSeconds", 1);
    set_zero(p, "periodSeconds", 10);
    set_zero(p, "successThreshold", 1);
    set_zero(p, "failureThreshold", 3);
    if let Some(http) = child(p, "httpGet") {
        http_get(http);
    }
}

fn http_get(h: &mut Obj) {
    set_zero(h, "path", "/");
    set_zero(h, "scheme", "HTTP");
}

/// `0644`, the mode of files projected from Secrets, ConfigMaps and the downward API.
const DEFAULT_FILE_MODE: i32 = 0o644;

fn volume(v: &mut Obj) {
    // A volume naming no source is an emptyDir.
    if v.iter()
        .all(|(key, value)| key == "name" || value.is_null())
    {
        v.insert("emptyDir".into(), Value::Object(Map::new()));
    }
    if let Some(host_path) = child(v, "hostPath") {
        set_unset(host_path, "type", "");
    }
    for key in ["secret", "configMap"] {
        if let Some(source) = child(v, key) {
            set_unset(source, "defaultMode", DEFAULT_FILE_MODE);
        }
    }
    if let Some(downward) = child(v, "downwardAPI") {
        downward_api(downward);
        set_unset(downward, "defaultMode", DEFAULT_FILE_MODE);
    }
    if let Some(projected) = child(v, "projected") {
        set_unset(projected, "defaultMode", DEFAULT_FILE_MODE);
        for source in items(projected, "sources") {
            if let Some(downward) = child(source, "downwardAPI") {
                downward_api(downward);
            }
            if let Some(token) = child(source, "serviceAccountToken") {
                set_unset(token, "expirationSeconds", 3600);
            }
        }
    }
    if let Some(pvc_spec) = child(v, "ephemeral")
        .and_then(|e| child(e, "volumeClaimTemplate"))
        .and_then(|t| child_or_new(t, "spec"))
    {
        persistent_volume_claim_spec(pvc_spec);
    }
    legacy_volume_sources(v);
}

fn downward_api(d: &mut Obj) {
    for item in items(d, "items") {
        if let Some(field_ref) = child(item, "fieldRef") {
            set_zero(field_ref, "apiVersion", "v1");
        }
    }
}

/// In-tree volume plugins nodeless cannot mount; defaulted anyway so objects read back as
/// upstream's would.
fn legacy_volume_sources(v: &mut Obj) {
    if let Some(iscsi) = child(v, "iscsi") {
        set_zero(iscsi, "iscsiInterface", "default");
    }
    if let Some(rbd) = child(v, "rbd") {
        set_zero(rbd, "pool", "rbd");
        set_zero(rbd, "user", "admin");
        set_zero(rbd, "keyring", "/etc/ceph/keyring");
    }
    if let Some(disk) = child(v, "azureDisk") {
        set_unset(disk, "cachingMode", "ReadWrite");
        set_unset(disk, "kind", "Shared");
        set_unset(disk, "fsType", "ext4");
        set_unset(disk, "readOnly", false);
    }
    if let Some(scale_io) = child(v, "scaleIO") {
        set_zero(scale_io, "storageMode", "ThinProvisioned");
        set_zero(scale_io, "fsType", "xfs");
    }
}

/// A PersistentVolumeClaimSpec, in a claim, a StatefulSet's templates or an ephemeral volume.
pub(super) fn persistent_volume_claim_spec(spec: &mut Obj) {
    if is_unset(spec.get("volumeMode")) {
        spec.insert("volumeMode".into(), "Filesystem".into());
    }
}

#[cfg(test)]
mod tests {
    use super::image_tag;

    #[test]
    fn image_tags_are_found_like_upstreams_parser() {
        assert_eq!(image_tag("nginx"), "latest");
        assert_eq!(image_tag("nginx:1.25"), "1.25");
        assert_eq!(image_tag("nginx:latest"), "latest");
        assert_eq!(image_tag("localhost:5000/nginx"), "latest");
        assert_eq!(image_tag("localhost:5000/team/nginx:v2"), "v2");
        assert_eq!(image_tag("nginx@sha256:abcd"), "");
        assert_eq!(image_tag("nginx:1.2@sha256:abcd"), "1.2");
        assert_eq!(image_tag(""), "");
    }
}
