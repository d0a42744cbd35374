//! What the host agent asks for: an instance (a Pod's worth of containers) and its parts.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::restart::RestartPolicy;
pub use crate::image::RegistryAuth;
pub use crate::network::{PortMapping, Protocol};
pub use crate::sandbox::runtime::RuntimeKind;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceSpec {
    /// Unique on the host; names runtime containers, cgroups and the network namespace.
    pub id: String,
    /// Human name (the Pod's `namespace/name`, or the CLI's `--name`).
    pub name: String,
    pub hostname: String,
    pub runtime: RuntimeKind,
    /// Instance-wide limits; a container's own limits take precedence. 0 means unlimited.
    pub cpu_millis: u64,
    pub memory_bytes: u64,
    pub init_containers: Vec<ContainerSpec>,
    pub containers: Vec<ContainerSpec>,
    pub volumes: Vec<VolumeSpec>,
    pub restart_policy: RestartPolicy,
    pub dns: DnsConfig,
    /// Extra /etc/hosts entries (the Pod's hostAliases).
    pub hosts: Vec<(IpAddr, Vec<String>)>,
    pub port_mappings: Vec<PortMapping>,
    /// Pull credentials; never written to disk with the rest of the spec.
    #[serde(skip)]
    pub auth: Option<RegistryAuth>,
    pub labels: BTreeMap<String, String>,
}

impl InstanceSpec {
    /// A single-container instance with defaults, the CLI's and the tests' starting point.
    pub fn single(id: &str, name: &str, image: &str) -> Self {
        InstanceSpec {
            id: id.to_string(),
            name: name.to_string(),
            hostname: name
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .take(63)
                .collect(),
            runtime: RuntimeKind::Runc,
            cpu_millis: 0,
            memory_bytes: 0,
            init_containers: Vec::new(),
            containers: vec![ContainerSpec::new(name_or_main(name), image)],
            volumes: Vec::new(),
            restart_policy: RestartPolicy::Never,
            dns: DnsConfig::default(),
            hosts: Vec::new(),
            port_mappings: Vec::new(),
            auth: None,
            labels: BTreeMap::new(),
        }
    }

    pub fn all_containers(&self) -> impl Iterator<Item = &ContainerSpec> {
        self.init_containers.iter().chain(self.containers.iter())
    }
}

fn name_or_main(name: &str) -> &str {
    if is_dns_label(name) {
        name
    } else {
        "main"
    }
}

/// RFC 1123 label: what container names, and therefore file and cgroup names, may be.
pub fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum PullPolicy {
    Always,
    #[default]
    IfNotPresent,
    Never,
}

/// Stands for the instance's IP inside a container's env values, `command` and `args`, and
/// is replaced by it once the network is attached: how a `$(POD_IP)` reference to a variable
/// set from `status.podIP` reaches the container expanded, as the kubelet expands it. A NUL
/// cannot occur in a real value (execve takes C strings), so the marker is unambiguous.
pub const POD_IP_PLACEHOLDER: &str = "\0nodeless:pod-ip\0";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerSpec {
    pub name: String,
    pub image: String,
    pub pull_policy: PullPolicy,
    /// Replaces the image's entrypoint.
    pub command: Option<Vec<String>>,
    /// Replaces the image's cmd.
    pub args: Option<Vec<String>>,
    /// Values (and `command` and `args`) may hold [`POD_IP_PLACEHOLDER`].
    pub env: Vec<(String, String)>,
    /// Variables set to the instance's IP, known only once the network is attached (the
    /// downward API's `status.podIP`); they follow `env`.
    #[serde(default)]
    pub ip_env: Vec<String>,
    pub working_dir: Option<String>,
    /// `uid`, `uid:gid`, `name` or `name:group`; overrides the image's user.
    pub user: Option<String>,
    pub cpu_millis: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub mounts: Vec<VolumeMount>,
    pub readonly_rootfs: bool,
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    pub liveness_probe: Option<Probe>,
    pub readiness_probe: Option<Probe>,
    pub startup_probe: Option<Probe>,
    /// Keeps a stdin open that `attach` writes to (the Pod's `stdin`); the container reads
    /// EOF once the first attach session ends when `stdin_once` is set.
    #[serde(default)]
    pub stdin: bool,
    #[serde(default)]
    pub stdin_once: bool,
    /// Runs the process on a terminal (the Pod's `tty`): its output is one stream.
    #[serde(default)]
    pub tty: bool,
}

impl ContainerSpec {
    pub fn new(name: &str, image: &str) -> Self {
        ContainerSpec {
            name: name.to_string(),
            image: image.to_string(),
            pull_policy: PullPolicy::IfNotPresent,
            command: None,
            args: None,
            env: Vec::new(),
            ip_env: Vec::new(),
            working_dir: None,
            user: None,
            cpu_millis: None,
            memory_bytes: None,
            mounts: Vec::new(),
            readonly_rootfs: false,
            add_capabilities: Vec::new(),
            drop_capabilities: Vec::new(),
            liveness_probe: None,
            readiness_probe: None,
            startup_probe: None,
            stdin: false,
            stdin_once: false,
            tty: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeMount {
    pub volume: String,
    pub mount_path: String,
    pub read_only: bool,
    /// A path inside the volume to mount instead of its root.
    pub sub_path: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum StorageMedium {
    #[default]
    Disk,
    Memory,
}

/// A file of a configMap, secret, projected or downwardAPI volume: the agent renders them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeFile {
    /// Relative path inside the volume.
    pub path: String,
    /// Secrets among them: kept out of the instance record; the volume itself is a tmpfs.
    #[serde(skip_serializing, default)]
    pub contents: Vec<u8>,
    pub mode: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VolumeSource {
    EmptyDir {
        medium: StorageMedium,
        size_limit: Option<u64>,
    },
    Files {
        files: Vec<VolumeFile>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeSpec {
    pub name: String,
    pub source: VolumeSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct DnsConfig {
    pub nameservers: Vec<String>,
    pub searches: Vec<String>,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProbeAction {
    Exec {
        command: Vec<String>,
    },
    HttpGet {
        path: String,
        port: u16,
        host_header: Option<String>,
        headers: Vec<(String, String)>,
    },
    TcpSocket {
        port: u16,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Probe {
    pub action: ProbeAction,
    pub initial_delay: Duration,
    pub period: Duration,
    pub timeout: Duration,
    pub success_threshold: u32,
    pub failure_threshold: u32,
}

impl Probe {
    /// Kubernetes' defaults: every 10 s, 1 s timeout, 1 success, 3 failures.
    pub fn new(action: ProbeAction) -> Self {
        Probe {
            action,
            initial_delay: Duration::ZERO,
            period: Duration::from_secs(10),
            timeout: Duration::from_secs(1),
            success_threshold: 1,
            failure_threshold: 3,
        }
    }
}

/// Where instance state lives and how the engine behaves.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub root: PathBuf,
    /// The program and leading arguments that start a shim (`nodeless shim`).
    pub shim_command: Vec<std::ffi::OsString>,
    pub backoff: super::restart::Backoff,
    pub log_max_bytes: u64,
    pub log_max_files: u32,
    pub pids_limit: i64,
}

impl EngineConfig {
    /// Defaults for `root`, with the shim being [`default_shim_command`].
    pub fn new(root: PathBuf) -> Self {
        EngineConfig {
            root,
            shim_command: default_shim_command(),
            backoff: super::restart::Backoff::default(),
            log_max_bytes: 10 << 20,
            log_max_files: 5,
            pids_limit: crate::sandbox::bundle::DEFAULT_PIDS_LIMIT,
        }
    }
}

/// The small `nodeless-shim` binary when it sits next to this executable, else this
/// executable's `shim` subcommand. Every instance starts one shim and keeps it for life: the
/// small binary starts in ~0.9 ms of CPU against ~3.7 ms for the full `nodeless` binary
/// (mostly relocating it), and keeps less memory resident.
pub fn default_shim_command() -> Vec<std::ffi::OsString> {
    let exe = std::env::current_exe().unwrap_or_else(|_| "nodeless".into());
    let small = exe.with_file_name("nodeless-shim");
    if exe.file_name() != small.file_name() && is_executable_file(&small) {
        return vec![small.into_os_string()];
    }
    vec![exe.into_os_string(), "shim".into()]
}

fn is_executable_file(path: &std::path::Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_container_instances_take_a_valid_container_name() {
        assert_eq!(
            InstanceSpec::single("a1", "web", "busybox").containers[0].name,
            "web"
        );
        assert_eq!(
            InstanceSpec::single("a1", "Web_1", "busybox").containers[0].name,
            "main"
        );
    }
}
