//! One container: image and pull policy, command and args, env, user, limits, mounts,
//! capabilities and probes.

use k8s_openapi::api::core::v1::{Container, Pod, Probe as KubeProbe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use nodeless_engine::instance::{ContainerSpec, Probe, ProbeAction, PullPolicy, VolumeMount};
use std::time::Duration;

use super::{Context, Sources, TranslateError};

/// What every container of a Pod is translated against.
pub(crate) struct PodContext<'a> {
    pub(crate) pod: &'a Pod,
    pub(crate) sources: &'a Sources,
    pub(crate) ctx: &'a Context,
    /// The instance's size, standing in for missing limits in the downward API.
    pub(crate) cpu_millis: u64,
    pub(crate) memory_bytes: u64,
}

impl PodContext<'_> {
    pub(crate) fn namespace(&self) -> String {
        self.pod
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into())
    }
}

pub(super) fn container_spec(
    pc: &PodContext,
    c: &Container,
) -> Result<ContainerSpec, TranslateError> {
    let image = c
        .image
        .clone()
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| TranslateError::Invalid(format!("container {:?} has no image", c.name)))?;
    let env = super::env::container_env(pc, c)?;
    let known = env.lookup();
    let expand_all = |v: &Option<Vec<String>>| {
        v.as_ref()
            .map(|v| v.iter().map(|a| super::env::expand(a, &known)).collect())
    };
    let mut spec = ContainerSpec::new(&c.name, &image);
    spec.pull_policy = pull_policy(c.image_pull_policy.as_deref(), &image);
    spec.command = expand_all(&c.command);
    spec.args = expand_all(&c.args);
    spec.working_dir = c.working_dir.clone().filter(|w| !w.is_empty());
    spec.user = user(pc.pod, c);
    apply_security(&mut spec, c);
    let limits = c.resources.as_ref().and_then(|r| r.limits.as_ref());
    let quantity = |name: &str| limits.and_then(|l| l.get(name)).map(|q| q.0.as_str());
    spec.cpu_millis = quantity("cpu").map(cpu_millis).transpose()?;
    spec.memory_bytes = quantity("memory").map(memory_bytes).transpose()?;
    spec.mounts = mounts(pc, c);
    spec.liveness_probe = c.liveness_probe.as_ref().map(|p| probe(c, p)).transpose()?;
    spec.readiness_probe = c
        .readiness_probe
        .as_ref()
        .map(|p| probe(c, p))
        .transpose()?;
    spec.startup_probe = c.startup_probe.as_ref().map(|p| probe(c, p)).transpose()?;
    spec.env = env.vars;
    spec.ip_env = env.ip_vars;
    spec.stdin = c.stdin.unwrap_or(false);
    spec.stdin_once = c.stdin_once.unwrap_or(false);
    spec.tty = c.tty.unwrap_or(false);
    Ok(spec)
}

/// The API server defaults the policy; a Pod from elsewhere may lack it: `:latest` or no
/// tag means Always, anything else IfNotPresent, as upstream's defaulting.
fn pull_policy(policy: Option<&str>, image: &str) -> PullPolicy {
    match policy {
        Some("Always") => PullPolicy::Always,
        Some("Never") => PullPolicy::Never,
        Some("IfNotPresent") => PullPolicy::IfNotPresent,
        _ => {
            let reference: Option<nodeless_engine::image::ImageReference> = image.parse().ok();
            match reference {
                Some(r) if r.digest().is_some() => PullPolicy::IfNotPresent,
                Some(r) if r.tag().is_some_and(|t| t != "latest") && has_explicit_tag(image) => {
                    PullPolicy::IfNotPresent
                }
                _ => PullPolicy::Always,
            }
        }
    }
}

fn has_explicit_tag(image: &str) -> bool {
    let name = image.split('@').next().unwrap_or(image);
    let last = name.rsplit('/').next().unwrap_or(name);
    last.contains(':')
}

/// `runAsUser[:runAsGroup]`, the container's settings over the Pod's. A group without a
/// user cannot be expressed to the engine without the image's user; it is left out.
fn user(pod: &Pod, c: &Container) -> Option<String> {
    let pod_sc = pod.spec.as_ref().and_then(|s| s.security_context.as_ref());
    let sc = c.security_context.as_ref();
    let uid = sc
        .and_then(|s| s.run_as_user)
        .or_else(|| pod_sc.and_then(|s| s.run_as_user))?;
    let gid = sc
        .and_then(|s| s.run_as_group)
        .or_else(|| pod_sc.and_then(|s| s.run_as_group));
    Some(match gid {
        Some(g) => format!("{uid}:{g}"),
        None => uid.to_string(),
    })
}

fn apply_security(spec: &mut ContainerSpec, c: &Container) {
    let Some(sc) = &c.security_context else {
        return;
    };
    spec.readonly_rootfs = sc.read_only_root_filesystem == Some(true);
    if let Some(caps) = &sc.capabilities {
        spec.add_capabilities = caps.add.clone().unwrap_or_default();
        spec.drop_capabilities = caps.drop.clone().unwrap_or_default();
    }
}

pub(super) fn cpu_millis(q: &str) -> Result<u64, TranslateError> {
    let q = nodeless_core::validation::quantity::parse_quantity(q)
        .map_err(|e| TranslateError::Invalid(format!("cpu {q:?}: {e}")))?;
    Ok(u64::try_from(q.milli_value()).unwrap_or(0))
}

pub(super) fn memory_bytes(q: &str) -> Result<u64, TranslateError> {
    let q = nodeless_core::validation::quantity::parse_quantity(q)
        .map_err(|e| TranslateError::Invalid(format!("memory {q:?}: {e}")))?;
    Ok(u64::try_from(q.value()).unwrap_or(0))
}

/// Volume mounts; configMap, secret, projected and downwardAPI volumes are always
/// read-only, as the kubelet mounts them.
fn mounts(pc: &PodContext, c: &Container) -> Vec<VolumeMount> {
    let volumes = pc.pod.spec.as_ref().and_then(|s| s.volumes.as_ref());
    c.volume_mounts
        .iter()
        .flatten()
        .map(|m| {
            let files = volumes
                .and_then(|vs| vs.iter().find(|v| v.name == m.name))
                .is_some_and(super::volumes::is_files_volume);
            VolumeMount {
                volume: m.name.clone(),
                mount_path: m.mount_path.clone(),
                read_only: m.read_only == Some(true) || files,
                sub_path: m.sub_path.clone().filter(|p| !p.is_empty()),
            }
        })
        .collect()
}

fn seconds(v: Option<i32>, default: u64) -> Duration {
    Duration::from_secs(v.map(|s| u64::try_from(s).unwrap_or(0)).unwrap_or(default))
}

pub(super) fn probe(c: &Container, p: &KubeProbe) -> Result<Probe, TranslateError> {
    let action = probe_action(c, p)?;
    let mut probe = Probe::new(action);
    probe.initial_delay = seconds(p.initial_delay_seconds, 0);
    probe.period = seconds(p.period_seconds, 10).max(Duration::from_secs(1));
    probe.timeout = seconds(p.timeout_seconds, 1).max(Duration::from_secs(1));
    probe.success_threshold = p.success_threshold.map_or(1, |n| n.max(1) as u32);
    probe.failure_threshold = p.failure_threshold.map_or(3, |n| n.max(1) as u32);
    Ok(probe)
}

fn probe_action(c: &Container, p: &KubeProbe) -> Result<ProbeAction, TranslateError> {
    if let Some(e) = &p.exec {
        return Ok(ProbeAction::Exec {
            command: e.command.clone().unwrap_or_default(),
        });
    }
    if let Some(h) = &p.http_get {
        let headers: Vec<(String, String)> = h
            .http_headers
            .iter()
            .flatten()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        let host_header = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("host"))
            .map(|(_, v)| v.clone())
            .or_else(|| h.host.clone());
        return Ok(ProbeAction::HttpGet {
            path: h
                .path
                .clone()
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| "/".into()),
            port: port(c, &h.port)?,
            host_header,
            headers: headers
                .into_iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("host"))
                .collect(),
        });
    }
    if let Some(t) = &p.tcp_socket {
        return Ok(ProbeAction::TcpSocket {
            port: port(c, &t.port)?,
        });
    }
    Err(TranslateError::Unsupported(format!(
        "container {:?}: only exec, httpGet and tcpSocket probes are supported",
        c.name
    )))
}

/// A probe or hook port: a number, or the name of one of the container's ports.
pub(crate) fn port(c: &Container, port: &IntOrString) -> Result<u16, TranslateError> {
    let found = match port {
        IntOrString::Int(n) => u16::try_from(*n).ok().filter(|p| *p > 0),
        IntOrString::String(s) => match s.parse::<u16>() {
            Ok(n) => Some(n),
            Err(_) => c
                .ports
                .iter()
                .flatten()
                .find(|p| p.name.as_deref() == Some(s.as_str()))
                .and_then(|p| u16::try_from(p.container_port).ok()),
        },
    };
    found.ok_or_else(|| {
        TranslateError::Invalid(format!(
            "container {:?}: port {:?} is not a valid port or the name of one of its ports",
            c.name,
            match port {
                IntOrString::Int(n) => n.to_string(),
                IntOrString::String(s) => s.clone(),
            }
        ))
    })
}
