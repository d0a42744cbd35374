//! OCI runtime bundles: the `config.json` runc and runsc read, built with `oci-spec` from
//! the image config, the container's overrides, the instance's limits and the default
//! security profile.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use oci_spec::runtime::{
    LinuxBuilder, LinuxCpuBuilder, LinuxDeviceCgroupBuilder, LinuxMemoryBuilder, LinuxNamespace,
    LinuxNamespaceBuilder, LinuxNamespaceType, LinuxPidsBuilder, LinuxResources,
    LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};

use super::security::{self, SecurityError};
use super::user::ResolvedUser;

/// The CFS period every container uses; quota is derived from millicores against it.
pub const CPU_PERIOD_US: u64 = 100_000;
pub const DEFAULT_PIDS_LIMIT: i64 = 4096;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Resources {
    pub cpu_millis: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub pids_limit: Option<i64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BindMount {
    pub source: PathBuf,
    pub destination: String,
    pub read_only: bool,
}

/// Everything that goes into one container's `config.json`.
#[derive(Debug, Clone, Default)]
pub struct BundleSpec {
    pub rootfs: PathBuf,
    /// Overlay options for the runtime to mount on `/` inside the container's mount namespace
    /// (see `rootfs::prepare_overlay`); `None` when `rootfs` is already mounted.
    pub rootfs_overlay: Option<String>,
    pub readonly_rootfs: bool,
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    pub user: ResolvedUser,
    pub terminal: bool,
    pub hostname: String,
    /// The instance's network namespace; `None` gives the container a private, unconnected one.
    pub netns: Option<PathBuf>,
    pub cgroups_path: String,
    pub resources: Resources,
    pub mounts: Vec<BindMount>,
    pub add_capabilities: Vec<String>,
    pub drop_capabilities: Vec<String>,
    pub annotations: HashMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error(
        "the container has no command: the image sets no entrypoint or cmd and the spec gives none"
    )]
    NoCommand,
    #[error(transparent)]
    Security(#[from] SecurityError),
    #[error("could not build the runtime spec: {0}")]
    Build(String),
    #[error("could not write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn build_err(e: oci_spec::OciSpecError) -> BundleError {
    BundleError::Build(e.to_string())
}

/// Kubernetes' rule for the final argv: `command` replaces the entrypoint, `args` the cmd,
/// and a `command` without `args` drops the image's cmd.
pub fn resolve_args(
    entrypoint: &[String],
    cmd: &[String],
    command: Option<&[String]>,
    args: Option<&[String]>,
) -> Result<Vec<String>, BundleError> {
    let argv: Vec<String> = match (command, args) {
        (Some(c), a) => c.iter().chain(a.unwrap_or_default()).cloned().collect(),
        (None, Some(a)) => entrypoint.iter().chain(a).cloned().collect(),
        (None, None) => entrypoint.iter().chain(cmd).cloned().collect(),
    };
    if argv.is_empty() {
        return Err(BundleError::NoCommand);
    }
    Ok(argv)
}

/// The image's environment with the container's variables replacing same-named ones, in order.
pub fn merge_env(image_env: &[String], overrides: &[(String, String)]) -> Vec<String> {
    let mut env: Vec<String> = image_env.to_vec();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(
            0,
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
        );
    }
    for (key, value) in overrides {
        let prefix = format!("{key}=");
        let entry = format!("{key}={value}");
        match env.iter_mut().find(|e| e.starts_with(&prefix)) {
            Some(existing) => *existing = entry,
            None => env.push(entry),
        }
    }
    env
}

/// CPU shares (relative weight) from millicores, as the kubelet computes them.
pub fn cpu_shares(millis: u64) -> u64 {
    (millis * 1024 / 1000).max(2)
}

/// CFS quota from millicores; a tenth of a millicore is below what CFS enforces.
pub fn cpu_quota(millis: u64) -> i64 {
    ((millis * CPU_PERIOD_US / 1000).max(1000)) as i64
}

fn resources(r: &Resources) -> Result<LinuxResources, BundleError> {
    // Deny every device, then runc and runsc add the standard safe ones (null, zero, tty, ...).
    let deny_all = LinuxDeviceCgroupBuilder::default()
        .allow(false)
        .access("rwm")
        .build()
        .map_err(build_err)?;
    let mut builder = LinuxResourcesBuilder::default()
        .devices(vec![deny_all])
        .pids(
            LinuxPidsBuilder::default()
                .limit(r.pids_limit.unwrap_or(DEFAULT_PIDS_LIMIT))
                .build()
                .map_err(build_err)?,
        );
    if let Some(millis) = r.cpu_millis.filter(|m| *m > 0) {
        let cpu = LinuxCpuBuilder::default()
            .shares(cpu_shares(millis))
            .quota(cpu_quota(millis))
            .period(CPU_PERIOD_US)
            .build()
            .map_err(build_err)?;
        builder = builder.cpu(cpu);
    }
    if let Some(bytes) = r.memory_bytes.filter(|b| *b > 0) {
        let limit = i64::try_from(bytes).unwrap_or(i64::MAX);
        builder = builder.memory(
            LinuxMemoryBuilder::default()
                .limit(limit)
                .build()
                .map_err(build_err)?,
        );
    }
    builder.build().map_err(build_err)
}

fn namespaces(netns: Option<&Path>) -> Result<Vec<LinuxNamespace>, BundleError> {
    let mut out = Vec::new();
    for typ in [
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ] {
        out.push(
            LinuxNamespaceBuilder::default()
                .typ(typ)
                .build()
                .map_err(build_err)?,
        );
    }
    let mut net = LinuxNamespaceBuilder::default().typ(LinuxNamespaceType::Network);
    if let Some(path) = netns {
        net = net.path(path.to_path_buf());
    }
    out.push(net.build().map_err(build_err)?);
    Ok(out)
}

fn mounts(overlay: Option<&str>, binds: &[BindMount]) -> Result<Vec<Mount>, BundleError> {
    let mut out = Vec::new();
    // First, so that every later mount lands inside the overlay.
    if let Some(options) = overlay {
        out.push(
            MountBuilder::default()
                .destination(PathBuf::from("/"))
                .typ("overlay")
                .source(PathBuf::from("overlay"))
                .options(options.split(',').map(String::from).collect::<Vec<_>>())
                .build()
                .map_err(build_err)?,
        );
    }
    out.extend(oci_spec::runtime::get_default_mounts());
    for bind in binds {
        let mut options = vec![
            "rbind".to_string(),
            "rprivate".to_string(),
            "nosuid".to_string(),
            "nodev".to_string(),
        ];
        if bind.read_only {
            options.push("ro".to_string());
        }
        out.push(
            MountBuilder::default()
                .destination(PathBuf::from(&bind.destination))
                .typ("bind")
                .source(bind.source.clone())
                .options(options)
                .build()
                .map_err(build_err)?,
        );
    }
    Ok(out)
}

/// Builds the runtime spec for one container.
pub fn build_spec(b: &BundleSpec) -> Result<Spec, BundleError> {
    let user = UserBuilder::default()
        .uid(b.user.uid)
        .gid(b.user.gid)
        .additional_gids(b.user.additional_gids.clone())
        .build()
        .map_err(build_err)?;
    // Raising a hard limit needs privileges the runtime may lack: keep the host's.
    let nofile_hard = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .maximum
        .unwrap_or(1_048_576);
    let nofile = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(nofile_hard)
        .soft(nofile_hard.min(1_048_576))
        .build()
        .map_err(build_err)?;
    let process = ProcessBuilder::default()
        .terminal(b.terminal)
        .user(user)
        .args(b.args.clone())
        .env(b.env.clone())
        .cwd(if b.cwd.is_empty() {
            "/".to_string()
        } else {
            b.cwd.clone()
        })
        .no_new_privileges(true)
        .capabilities(security::capabilities(
            &b.add_capabilities,
            &b.drop_capabilities,
        )?)
        .rlimits(vec![nofile])
        .build()
        .map_err(build_err)?;
    let linux = LinuxBuilder::default()
        .namespaces(namespaces(b.netns.as_deref())?)
        .resources(resources(&b.resources)?)
        .cgroups_path(PathBuf::from(&b.cgroups_path))
        .masked_paths(
            security::MASKED_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            security::READONLY_PATHS
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>(),
        )
        .seccomp(security::default_seccomp()?)
        .build()
        .map_err(build_err)?;
    SpecBuilder::default()
        .version("1.0.2-dev")
        .root(
            RootBuilder::default()
                .path(b.rootfs.clone())
                .readonly(b.readonly_rootfs)
                .build()
                .map_err(build_err)?,
        )
        .process(process)
        .hostname(b.hostname.clone())
        .mounts(mounts(b.rootfs_overlay.as_deref(), &b.mounts)?)
        .linux(linux)
        .annotations(b.annotations.clone())
        .build()
        .map_err(build_err)
}

/// Writes `config.json` into `dir` (created if missing).
pub fn write_bundle(dir: &Path, spec: &Spec) -> Result<PathBuf, BundleError> {
    let path = dir.join("config.json");
    let write = |source| BundleError::Write {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(write)?;
    let json = serde_json::to_vec(spec).map_err(|e| write(std::io::Error::other(e)))?;
    std::fs::write(&path, json).map_err(write)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn command_replaces_entrypoint_and_drops_image_cmd() {
        let argv = resolve_args(
            &s(&["/entry"]),
            &s(&["serve"]),
            Some(&s(&["sh", "-c"])),
            None,
        )
        .expect("argv");
        assert_eq!(argv, s(&["sh", "-c"]));
    }

    #[test]
    fn args_alone_replace_only_the_cmd() {
        let argv = resolve_args(&s(&["/entry"]), &s(&["serve"]), None, Some(&s(&["check"])))
            .expect("argv");
        assert_eq!(argv, s(&["/entry", "check"]));
    }

    #[test]
    fn image_without_any_command_is_an_error() {
        assert!(matches!(
            resolve_args(&[], &[], None, None),
            Err(BundleError::NoCommand)
        ));
    }

    #[test]
    fn container_env_overrides_image_env_in_place() {
        let env = merge_env(
            &s(&["PATH=/bin", "A=1", "B=2"]),
            &[("A".into(), "x".into()), ("C".into(), "3".into())],
        );
        assert_eq!(env, s(&["PATH=/bin", "A=x", "B=2", "C=3"]));
    }

    #[test]
    fn millicores_become_quota_and_shares() {
        assert_eq!(cpu_quota(500), 50_000);
        assert_eq!(cpu_shares(500), 512);
        assert_eq!(cpu_shares(1), 2);
    }

    #[test]
    fn spec_carries_limits_netns_user_and_binds() {
        let spec = build_spec(&BundleSpec {
            rootfs: "/r".into(),
            args: s(&["true"]),
            user: ResolvedUser {
                uid: 1000,
                gid: 100,
                additional_gids: vec![],
            },
            hostname: "web".into(),
            netns: Some("/run/netns/x".into()),
            cgroups_path: "/nodeless/i/c".into(),
            resources: Resources {
                cpu_millis: Some(250),
                memory_bytes: Some(64 << 20),
                pids_limit: None,
            },
            mounts: vec![BindMount {
                source: "/h".into(),
                destination: "/etc/hosts".into(),
                read_only: true,
            }],
            ..Default::default()
        })
        .expect("spec");
        let json = serde_json::to_value(&spec).expect("json");
        assert_eq!(json["linux"]["resources"]["cpu"]["quota"], 25_000);
        assert_eq!(json["linux"]["resources"]["memory"]["limit"], 64 << 20);
        assert_eq!(
            json["linux"]["resources"]["pids"]["limit"],
            DEFAULT_PIDS_LIMIT
        );
        assert_eq!(json["linux"]["resources"]["devices"][0]["allow"], false);
        assert_eq!(json["process"]["user"]["uid"], 1000);
        assert_eq!(json["process"]["noNewPrivileges"], true);
        let net = json["linux"]["namespaces"]
            .as_array()
            .expect("ns")
            .iter()
            .find(|n| n["type"] == "network")
            .cloned();
        assert_eq!(net.expect("netns")["path"], "/run/netns/x");
        let hosts = json["mounts"]
            .as_array()
            .expect("mounts")
            .iter()
            .find(|m| m["destination"] == "/etc/hosts")
            .cloned();
        assert!(hosts.expect("hosts bind")["options"]
            .as_array()
            .expect("opts")
            .iter()
            .any(|o| o == "ro"));
    }

    #[test]
    fn an_in_container_overlay_is_the_first_mount_on_root() {
        let spec = build_spec(&BundleSpec {
            rootfs: "/r".into(),
            rootfs_overlay: Some("lowerdir=/l,upperdir=/u,workdir=/w,volatile".into()),
            args: s(&["true"]),
            ..Default::default()
        })
        .expect("spec");
        let json = serde_json::to_value(&spec).expect("json");
        let first = &json["mounts"][0];
        assert_eq!(first["destination"], "/");
        assert_eq!(first["type"], "overlay");
        assert_eq!(
            first["options"],
            serde_json::json!(["lowerdir=/l", "upperdir=/u", "workdir=/w", "volatile"])
        );
        assert_eq!(json["mounts"][1]["destination"], "/proc");
        assert_eq!(json["root"]["path"], "/r");
    }
}
