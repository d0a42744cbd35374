//! Pod → engine [`InstanceSpec`]: the kubelet's "generate the container config" step, as
//! pure functions over the Pod and the ConfigMaps and Secrets it names (resolved by the
//! caller), so every rule is unit-tested without an API server.
//!
//! - [`env`]: env, envFrom, downward API env and `$(VAR)` expansion.
//! - [`container`]: image, command, security context, limits, probes.
//! - [`volumes`]: emptyDir, configMap, secret, projected and downwardAPI volumes.
//! - [`dns`]: dnsPolicy, dnsConfig and hostAliases.

mod container;
mod dns;
mod env;
mod volumes;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret};
use nodeless_engine::image::{ImageReference, RegistryAuth};
use nodeless_engine::instance::{
    InstanceSpec, RestartPolicy, RuntimeKind, VolumeFile, VolumeSource,
};

/// What the translation needs to know about this host and cluster.
#[derive(Debug, Clone)]
pub struct Context {
    /// The host's address: `status.hostIP`.
    pub host_ip: IpAddr,
    /// `spec.nodeName` as users see it (the virtual node).
    pub node_name: String,
    /// Cluster DNS servers for `dnsPolicy: ClusterFirst`; empty: the host's resolvers.
    pub cluster_dns: Vec<String>,
    pub cluster_domain: String,
    /// The host's /etc/resolv.conf, for `dnsPolicy: Default` combined with a dnsConfig.
    pub host_resolv_conf: String,
}

/// The ConfigMaps and Secrets of the Pod's namespace that it names, by name. A name absent
/// here does not exist.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub config_maps: HashMap<String, ConfigMap>,
    pub secrets: HashMap<String, Secret>,
}

/// The ConfigMaps and Secrets (in the Pod's namespace) a Pod reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct References {
    pub config_maps: BTreeSet<String>,
    pub secrets: BTreeSet<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TranslateError {
    #[error("configmap {0:?} not found")]
    ConfigMapNotFound(String),
    #[error("secret {0:?} not found")]
    SecretNotFound(String),
    #[error("couldn't find key {key} in ConfigMap {namespace}/{name}")]
    ConfigMapKeyNotFound {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("couldn't find key {key} in Secret {namespace}/{name}")]
    SecretKeyNotFound {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("RuntimeClass {0:?} not found on this host (known: gvisor)")]
    UnknownRuntimeClass(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Invalid(String),
}

impl TranslateError {
    /// The waiting reason the kubelet shows for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            TranslateError::UnknownRuntimeClass(_) => "RunContainerError",
            _ => "CreateContainerConfigError",
        }
    }
}

/// Everything a Pod reads from ConfigMaps and Secrets: env, envFrom, volumes and
/// imagePullSecrets (which are secrets too, though a missing one is not fatal).
pub fn references(pod: &Pod) -> References {
    let mut refs = References::default();
    let Some(spec) = &pod.spec else { return refs };
    for c in spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
    {
        env::references(c, &mut refs);
    }
    for v in spec.volumes.iter().flatten() {
        volumes::references(v, &mut refs);
    }
    for s in spec.image_pull_secrets.iter().flatten() {
        refs.secrets.insert(s.name.clone());
    }
    refs
}

/// Builds the instance a Pod runs as.
pub fn instance_spec(
    pod: &Pod,
    sources: &Sources,
    ctx: &Context,
) -> Result<InstanceSpec, TranslateError> {
    let spec = pod
        .spec
        .as_ref()
        .ok_or_else(|| TranslateError::Invalid("pod has no spec".into()))?;
    let meta = &pod.metadata;
    let uid = meta
        .uid
        .clone()
        .ok_or_else(|| TranslateError::Invalid("pod has no uid".into()))?;
    let namespace = meta.namespace.clone().unwrap_or_else(|| "default".into());
    let name = meta.name.clone().unwrap_or_default();
    let (cpu_millis, memory_bytes) = instance_size(pod)?;
    let pod_ctx = container::PodContext {
        pod,
        sources,
        ctx,
        cpu_millis,
        memory_bytes,
    };
    let containers = spec
        .containers
        .iter()
        .map(|c| container::container_spec(&pod_ctx, c))
        .collect::<Result<Vec<_>, _>>()?;
    let init_containers = spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| container::container_spec(&pod_ctx, c))
        .collect::<Result<Vec<_>, _>>()?;
    let volumes = spec
        .volumes
        .iter()
        .flatten()
        .filter_map(|v| volumes::volume_spec(&pod_ctx, v).transpose())
        .collect::<Result<Vec<_>, _>>()?;
    let mut labels = meta.labels.clone().unwrap_or_default();
    labels.insert("io.kubernetes.pod.namespace".into(), namespace.clone());
    labels.insert("io.kubernetes.pod.name".into(), name.clone());
    labels.insert("io.kubernetes.pod.uid".into(), uid.clone());
    Ok(InstanceSpec {
        id: uid,
        name: format!("{namespace}/{name}"),
        hostname: hostname(spec.hostname.as_deref().unwrap_or(&name)),
        runtime: runtime(spec.runtime_class_name.as_deref())?,
        cpu_millis,
        memory_bytes,
        init_containers,
        containers,
        volumes,
        restart_policy: restart_policy(spec.restart_policy.as_deref()),
        dns: dns::dns_config(pod, ctx),
        hosts: dns::host_aliases(spec)?,
        port_mappings: Vec::new(),
        auth: pull_auth(pod, sources),
        labels: labels.into_iter().collect::<BTreeMap<_, _>>(),
    })
}

/// A lifecycle hook's port: a number or the name of one of the container's ports.
pub fn hook_port(
    c: &k8s_openapi::api::core::v1::Container,
    port: &k8s_openapi::apimachinery::pkg::util::intstr::IntOrString,
) -> Result<u16, TranslateError> {
    container::port(c, port)
}

/// The rendered files of the Pod's configMap, secret, projected and downwardAPI volumes, by
/// volume name: what a running instance's volumes are updated to when their sources change.
pub fn files_volumes(
    pod: &Pod,
    sources: &Sources,
    ctx: &Context,
) -> Result<Vec<(String, Vec<VolumeFile>)>, TranslateError> {
    let spec = instance_spec(pod, sources, ctx)?;
    Ok(spec
        .volumes
        .into_iter()
        .filter_map(|v| match v.source {
            VolumeSource::Files { files } => Some((v.name, files)),
            VolumeSource::EmptyDir { .. } => None,
        })
        .collect())
}

/// The instance's CPU and memory: the scheduler's `nodeless.dev/instance-spec` as written
/// (it already checked the containers fit), else what the scheduler's rules derive.
fn instance_size(pod: &Pod) -> Result<(u64, u64), TranslateError> {
    use nodeless_core::instance_spec::InstanceSpec as Size;
    let annotation = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(nodeless_kube::names::INSTANCE_SPEC_ANNOTATION));
    if let Some(size) = annotation.and_then(|a| a.parse::<Size>().ok()) {
        return Ok((size.millicpu, size.memory_bytes()));
    }
    let value = serde_json::to_value(pod).map_err(|e| TranslateError::Invalid(e.to_string()))?;
    let choice = nodeless_core::instance_spec::spec_for_pod(&value)
        .map_err(|e| TranslateError::Invalid(e.to_string()))?;
    Ok((choice.spec.millicpu, choice.spec.memory_bytes()))
}

/// The kubelet's rule: at most 63 characters, no trailing dash or dot.
fn hostname(name: &str) -> String {
    let mut h: String = name.chars().take(63).collect();
    while h.ends_with('-') || h.ends_with('.') {
        h.pop();
    }
    h
}

fn runtime(class: Option<&str>) -> Result<RuntimeKind, TranslateError> {
    match class {
        None | Some("") | Some("runc") => Ok(RuntimeKind::Runc),
        Some(nodeless_kube::names::GVISOR_RUNTIME_CLASS) => Ok(RuntimeKind::Runsc),
        Some(other) => Err(TranslateError::UnknownRuntimeClass(other.to_string())),
    }
}

fn restart_policy(policy: Option<&str>) -> RestartPolicy {
    match policy {
        Some("Never") => RestartPolicy::Never,
        Some("OnFailure") => RestartPolicy::OnFailure,
        _ => RestartPolicy::Always,
    }
}

/// Credentials for the registry of the Pod's first image, from the first imagePullSecret
/// that has some. Missing pull secrets are skipped, as the kubelet does (with a warning).
fn pull_auth(pod: &Pod, sources: &Sources) -> Option<RegistryAuth> {
    let spec = pod.spec.as_ref()?;
    let image = spec.containers.first()?.image.as_deref()?;
    let reference: ImageReference = image.parse().ok()?;
    spec.image_pull_secrets.iter().flatten().find_map(|r| {
        let Some(secret) = sources.secrets.get(&r.name) else {
            tracing::warn!(secret = %r.name, "image pull secret not found; pulling without it");
            return None;
        };
        let data = secret.data.as_ref()?;
        [".dockerconfigjson", ".dockercfg"]
            .iter()
            .filter_map(|k| data.get(*k))
            .find_map(|json| RegistryAuth::from_docker_config_json(&json.0, reference.registry()))
    })
}
