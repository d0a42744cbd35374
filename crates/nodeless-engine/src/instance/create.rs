//! Creating an instance: validate, pull, attach the network, write /etc files and volumes,
//! mount root filesystems, write bundles, start the supervisor.

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use chrono::Utc;
use tokio::io::AsyncBufReadExt;

use super::deps::{NetAttachment, PulledImage};
use super::engine::{io_err, EngineError, LocalEngine};
use super::lifecycle::InstancePhase;
use super::shim_stdio::ShimStdio;
use super::spec::{
    ContainerSpec, InstanceSpec, StorageMedium, VolumeFile, VolumeSource, POD_IP_PLACEHOLDER,
};
use super::state::{self, InstanceDir, InstanceLock, InstanceRecord};
use super::supervisor::{ShimConfig, ShimContainer, READY_LINE};
use crate::sandbox::bundle::{self, BindMount, BundleSpec, Resources};
use crate::sandbox::cgroups;
use crate::sandbox::rootfs;
use crate::sandbox::runtime::RuntimeKind;
use crate::sandbox::start_gate::StartGate;
use crate::sandbox::user;

/// Checks what the engine relies on: names are DNS labels and unique, mounts name volumes,
/// paths stay inside volumes.
pub fn validate(spec: &InstanceSpec) -> Result<(), EngineError> {
    let invalid = |m: String| Err(EngineError::Invalid(m));
    if !state::is_valid_id(&spec.id) {
        return invalid(format!(
            "id {:?} must be lower-case letters, digits and dashes",
            spec.id
        ));
    }
    let hostname_ok = spec.hostname.len() <= 63
        && spec
            .hostname
            .split('.')
            .all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'));
    if !hostname_ok {
        return invalid(format!(
            "hostname {:?} is not a valid host name",
            spec.hostname
        ));
    }
    if spec.containers.is_empty() {
        return invalid("an instance needs at least one container".into());
    }
    let mut names = HashSet::new();
    for c in spec.all_containers() {
        if !super::spec::is_dns_label(&c.name) {
            return invalid(format!("container name {:?} is not a DNS label", c.name));
        }
        if !names.insert(c.name.as_str()) {
            return invalid(format!("container name {:?} is used twice", c.name));
        }
        if c.image.trim().is_empty() {
            return invalid(format!("container {:?} has no image", c.name));
        }
        for m in &c.mounts {
            if !spec.volumes.iter().any(|v| v.name == m.volume) {
                return invalid(format!(
                    "container {:?} mounts unknown volume {:?}",
                    c.name, m.volume
                ));
            }
            if !m.mount_path.starts_with('/') {
                return invalid(format!("mount path {:?} must be absolute", m.mount_path));
            }
            if m.sub_path.as_deref().is_some_and(|p| !is_inside(p)) {
                return invalid(format!(
                    "subPath {:?} must be a relative path without '..'",
                    m.sub_path
                ));
            }
        }
    }
    let mut volumes = HashSet::new();
    for v in &spec.volumes {
        if !super::spec::is_dns_label(&v.name) || !volumes.insert(v.name.as_str()) {
            return invalid(format!(
                "volume name {:?} is not a unique DNS label",
                v.name
            ));
        }
        if let VolumeSource::Files { files } = &v.source {
            if let Some(f) = files.iter().find(|f| !is_inside(&f.path)) {
                return invalid(format!(
                    "volume {:?} file path {:?} must be relative without '..'",
                    v.name, f.path
                ));
            }
        }
    }
    Ok(())
}

/// A relative path that cannot climb out of its base.
fn is_inside(p: &str) -> bool {
    !p.is_empty()
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir))
}

impl LocalEngine {
    pub(crate) async fn create_instance(
        &self,
        spec: InstanceSpec,
    ) -> Result<super::engine::InstanceStatus, EngineError> {
        validate(&spec)?;
        let dir = self.dir(&spec.id);
        std::fs::create_dir_all(dir.dir.parent().unwrap_or(Path::new("/")))
            .map_err(io_err("cannot create the instances directory"))?;
        match std::fs::create_dir(&dir.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return Err(EngineError::AlreadyExists(spec.id))
            }
            Err(e) => return Err(io_err("cannot create the instance directory")(e)),
        }
        let lock = InstanceLock::try_acquire(&dir)
            .map_err(io_err("cannot lock the instance directory"))?
            .ok_or_else(|| EngineError::Busy(spec.id.clone()))?;
        let mut rec = InstanceRecord {
            spec: spec.clone(),
            phase: InstancePhase::Creating,
            message: None,
            created_at: Utc::now(),
            network: None,
            images: BTreeMap::new(),
            stop_signals: BTreeMap::new(),
            shim_pid: None,
        };
        dir.write_record(&rec)
            .map_err(io_err("cannot write the instance record"))?;
        match self.set_up(&dir, &mut rec).await {
            Ok(()) => {
                drop(lock);
                let status = self.status_of(&rec);
                self.emit(status.clone());
                self.start_probes(&rec);
                Ok(status)
            }
            Err(e) => {
                tracing::warn!(instance = %spec.id, error = %e, "instance creation failed; cleaning up");
                drop(lock);
                let _ = self.tear_down(&spec.id).await;
                Err(e)
            }
        }
    }

    async fn set_up(&self, dir: &InstanceDir, rec: &mut InstanceRecord) -> Result<(), EngineError> {
        let spec = rec.spec.clone();
        // Fail fast on a missing runtime, before pulling anything.
        let runtime = self.inner.runtimes.runtime(spec.runtime)?;
        let t0 = std::time::Instant::now();
        let mut images: BTreeMap<String, PulledImage> = BTreeMap::new();
        for c in spec.all_containers() {
            if !images.contains_key(&c.image) {
                let img = self
                    .inner
                    .images
                    .ensure(&c.image, c.pull_policy, spec.auth.as_ref())
                    .await
                    .map_err(|source| EngineError::Image {
                        container: c.name.clone(),
                        image: c.image.clone(),
                        source,
                    })?;
                images.insert(c.image.clone(), img);
            }
            let img = &images[&c.image];
            rec.images
                .insert(c.name.clone(), (img.reference.clone(), img.digest.clone()));
            if let Some(sig) = &img.stop_signal {
                rec.stop_signals.insert(c.name.clone(), sig.clone());
            }
        }
        tracing::debug!(instance = %spec.id, elapsed = ?t0.elapsed(), "images ready");
        let net = self
            .inner
            .network
            .attach(&spec.id, &spec.port_mappings)
            .await
            .map_err(EngineError::Network)?;
        rec.network = Some(net.clone());
        tracing::debug!(instance = %spec.id, elapsed = ?t0.elapsed(), "network attached");
        dir.write_record(rec)
            .map_err(io_err("cannot write the instance record"))?;
        write_etc_files(dir, &spec, &net)?;
        self.prepare_volumes(dir, &spec)?;
        let mut shim = ShimConfig {
            instance_id: spec.id.clone(),
            runtime: runtime.binary().clone().with_network(net.netns.is_some()),
            init_containers: Vec::new(),
            containers: Vec::new(),
            restart_policy: spec.restart_policy,
            backoff: self.inner.cfg.backoff,
            stop_path: dir.stop_file(),
            log_max_bytes: self.inner.cfg.log_max_bytes,
            log_max_files: self.inner.cfg.log_max_files,
            start_gate: Some(StartGate::under(&self.inner.cfg.root)),
            netns: net.netns.clone(),
        };
        for (is_init, c) in spec
            .init_containers
            .iter()
            .map(|c| (true, c))
            .chain(spec.containers.iter().map(|c| (false, c)))
        {
            let sc = self.prepare_container(dir, &spec, c, &images[&c.image], &net)?;
            if is_init {
                shim.init_containers.push(sc);
            } else {
                shim.containers.push(sc);
            }
        }
        tracing::debug!(instance = %spec.id, elapsed = ?t0.elapsed(), "network, volumes and root filesystems ready");
        self.inner
            .cgroups
            .set_limits(
                &cgroups::instance_cgroup(&spec.id),
                Some(spec.cpu_millis),
                Some(spec.memory_bytes),
            )
            .map_err(io_err("cannot set the instance's cgroup limits"))?;
        let pid = self.start_shim(dir, &shim).await?;
        tracing::debug!(instance = %spec.id, elapsed = ?t0.elapsed(), "supervisor started");
        rec.shim_pid = Some(pid);
        rec.phase = rec
            .phase
            .transition(if spec.init_containers.is_empty() {
                InstancePhase::Running
            } else {
                InstancePhase::Initializing
            })
            .map_err(|e| EngineError::Invalid(e.to_string()))?;
        dir.write_record(rec)
            .map_err(io_err("cannot write the instance record"))
    }

    fn prepare_volumes(&self, dir: &InstanceDir, spec: &InstanceSpec) -> Result<(), EngineError> {
        for v in &spec.volumes {
            let path = dir.volume(&v.name);
            std::fs::create_dir_all(&path)
                .map_err(io_err(format!("cannot create volume {}", v.name)))?;
            match &v.source {
                VolumeSource::EmptyDir {
                    medium: StorageMedium::Memory,
                    size_limit,
                } => {
                    self.inner.mounter.mount_tmpfs(&path, *size_limit)?;
                }
                VolumeSource::EmptyDir {
                    medium: StorageMedium::Disk,
                    ..
                } => {
                    set_mode(&path, 0o777)?;
                }
                VolumeSource::Files { files } => {
                    // Like the kubelet's secret volumes: in memory, never on disk.
                    let size: u64 = files.iter().map(|f| f.contents.len() as u64 + 4096).sum();
                    self.inner
                        .mounter
                        .mount_tmpfs(&path, Some(size.max(1 << 20)))?;
                    set_mode(&path, 0o755)?;
                    for f in files {
                        write_volume_file(&path, f)?;
                    }
                }
            }
        }
        Ok(())
    }

    /// See [`super::engine::Engine::update_volume`].
    pub(crate) fn update_files_volume(
        &self,
        id: &str,
        volume: &str,
        files: Vec<VolumeFile>,
    ) -> Result<(), EngineError> {
        let mut rec = self.record(id)?;
        let Some(spec) = rec.spec.volumes.iter_mut().find(|v| v.name == volume) else {
            return Err(EngineError::Invalid(format!(
                "instance {id} has no volume {volume:?}"
            )));
        };
        let VolumeSource::Files { files: old } = &mut spec.source else {
            return Err(EngineError::Invalid(format!(
                "volume {volume:?} of instance {id} holds no files"
            )));
        };
        if let Some(f) = files.iter().find(|f| !is_inside(&f.path)) {
            return Err(EngineError::Invalid(format!(
                "volume {volume:?} file path {:?} must be relative without '..'",
                f.path
            )));
        }
        let dir = self.dir(id);
        let path = dir.volume(volume);
        for f in &files {
            write_volume_file(&path, f)?;
        }
        for gone in old
            .iter()
            .filter(|o| !files.iter().any(|f| f.path == o.path))
        {
            match std::fs::remove_file(path.join(&gone.path)) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(io_err(format!("cannot remove {}", gone.path))(e))
                }
                _ => {}
            }
        }
        *old = files;
        dir.write_record(&rec)
            .map_err(io_err("cannot write the instance record"))
    }

    fn prepare_container(
        &self,
        dir: &InstanceDir,
        spec: &InstanceSpec,
        c: &ContainerSpec,
        image: &PulledImage,
        net: &NetAttachment,
    ) -> Result<ShimContainer, EngineError> {
        let cdir = dir.container(&c.name);
        let rootfs = dir.rootfs(&c.name);
        let (upper, work) = (cdir.join("upper"), cdir.join("work"));
        let user_spec = c
            .user
            .clone()
            .or_else(|| image.user.clone())
            .unwrap_or_default();
        // runc mounts the overlay itself, in the container's mount namespace; runsc cannot
        // mount one on `/`, so its root is mounted here.
        let in_container = spec.runtime == RuntimeKind::Runc;
        let (rootfs_overlay, resolved) = if in_container {
            let options = rootfs::prepare_overlay(
                &image.layers,
                &upper,
                &work,
                &rootfs,
                self.inner.overlay_volatile,
            )?;
            let user = user::resolve_user_in_layers(&image.layers, &user_spec);
            (Some(options), user)
        } else {
            self.inner
                .mounter
                .mount_overlay(&image.layers, &upper, &work, &rootfs)?;
            (None, user::resolve_user(&rootfs, &user_spec))
        };
        let resolved = resolved.map_err(|source| EngineError::User {
            container: c.name.clone(),
            source,
        })?;
        let bundle_err = |source| EngineError::Bundle {
            container: c.name.clone(),
            source,
        };
        let args = bundle::resolve_args(
            &image.entrypoint,
            &image.cmd,
            c.command.as_deref(),
            c.args.as_deref(),
        )
        .map_err(bundle_err)?;
        let ip = instance_ip(net);
        let args: Vec<String> = args.iter().map(|a| with_ip(a, &ip)).collect();
        let mut env = bundle::merge_env(&image.env, &with_ip_env(c, &ip));
        if !env.iter().any(|e| e.starts_with("HOSTNAME=")) {
            env.push(format!("HOSTNAME={}", spec.hostname));
        }
        let cgroup = cgroups::container_cgroup(&spec.id, &c.name);
        let etc = dir.etc();
        let mut mounts = vec![
            BindMount {
                source: etc.join("hosts"),
                destination: "/etc/hosts".into(),
                read_only: false,
            },
            BindMount {
                source: etc.join("resolv.conf"),
                destination: "/etc/resolv.conf".into(),
                read_only: false,
            },
            BindMount {
                source: etc.join("hostname"),
                destination: "/etc/hostname".into(),
                read_only: false,
            },
        ];
        for m in &c.mounts {
            let mut source = dir.volume(&m.volume);
            if let Some(sub) = &m.sub_path {
                source = source.join(sub);
                std::fs::create_dir_all(&source).map_err(io_err(format!(
                    "cannot create subPath {}",
                    source.display()
                )))?;
            }
            mounts.push(BindMount {
                source,
                destination: m.mount_path.clone(),
                read_only: m.read_only,
            });
        }
        let b = BundleSpec {
            rootfs: rootfs.clone(),
            rootfs_overlay,
            readonly_rootfs: c.readonly_rootfs,
            args,
            env,
            cwd: c
                .working_dir
                .clone()
                .or_else(|| image.working_dir.clone())
                .filter(|w| !w.is_empty())
                .unwrap_or_else(|| "/".into()),
            user: resolved,
            terminal: c.tty,
            hostname: spec.hostname.clone(),
            netns: net.netns.clone(),
            cgroups_path: cgroup.clone(),
            resources: Resources {
                cpu_millis: c.cpu_millis.or(Some(spec.cpu_millis)).filter(|m| *m > 0),
                memory_bytes: c
                    .memory_bytes
                    .or(Some(spec.memory_bytes))
                    .filter(|m| *m > 0),
                pids_limit: Some(self.inner.cfg.pids_limit),
            },
            mounts,
            add_capabilities: c.add_capabilities.clone(),
            drop_capabilities: c.drop_capabilities.clone(),
            annotations: Default::default(),
        };
        let oci = bundle::build_spec(&b).map_err(bundle_err)?;
        bundle::write_bundle(&cdir, &oci).map_err(bundle_err)?;
        Ok(ShimContainer {
            name: c.name.clone(),
            runtime_id: state::runtime_id(&spec.id, &c.name),
            overlay_work: in_container.then_some(work),
            bundle: cdir,
            cgroup,
            log_dir: dir.logs(&c.name),
            status_path: dir.status(&c.name),
            stdio: ShimStdio {
                stdin: c.stdin,
                stdin_once: c.stdin_once,
                tty: c.tty,
            },
        })
    }

    /// Starts `nodeless shim` for the instance and waits until it says it is ready.
    async fn start_shim(&self, dir: &InstanceDir, cfg: &ShimConfig) -> Result<u32, EngineError> {
        let path = dir.shim_config();
        let json = serde_json::to_vec_pretty(cfg).map_err(|e| EngineError::Shim(e.to_string()))?;
        std::fs::write(&path, json).map_err(io_err("cannot write the shim config"))?;
        let log =
            std::fs::File::create(dir.shim_log()).map_err(io_err("cannot create the shim log"))?;
        let (program, args) = self
            .inner
            .cfg
            .shim_command
            .split_first()
            .ok_or_else(|| EngineError::Shim("no shim command configured".into()))?;
        let mut child = tokio::process::Command::new(program)
            .args(args)
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .map_err(|e| {
                EngineError::Shim(format!(
                    "cannot start {}: {e}",
                    Path::new(program).display()
                ))
            })?;
        let pid = child
            .id()
            .ok_or_else(|| EngineError::Shim("the shim exited at once".into()))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| EngineError::Shim("no shim stdout".into()))?;
        let mut line = String::new();
        let read = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::io::BufReader::new(stdout).read_line(&mut line),
        )
        .await;
        if !matches!(read, Ok(Ok(_))) || line.trim() != READY_LINE {
            let _ = child.start_kill();
            let log = std::fs::read_to_string(dir.shim_log()).unwrap_or_default();
            return Err(EngineError::Shim(format!(
                "no ready signal; shim log: {}",
                log.trim()
            )));
        }
        // The shim lives on by itself; tokio reaps it if it exits while we run.
        drop(child);
        Ok(pid)
    }
}

/// The instance's IP as the downward API gives it: empty when the instance has none, as
/// the kubelet leaves `status.podIP` empty.
fn instance_ip(net: &NetAttachment) -> String {
    net.ip.map(|ip| ip.to_string()).unwrap_or_default()
}

/// `value` with every [`POD_IP_PLACEHOLDER`] replaced by `ip`.
fn with_ip(value: &str, ip: &str) -> String {
    if value.contains(POD_IP_PLACEHOLDER) {
        value.replace(POD_IP_PLACEHOLDER, ip)
    } else {
        value.to_string()
    }
}

/// The container's env, references to the IP filled in, followed by its `ip_env` variables
/// set to the IP.
fn with_ip_env(c: &ContainerSpec, ip: &str) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = c
        .env
        .iter()
        .map(|(k, v)| (k.clone(), with_ip(v, ip)))
        .collect();
    env.extend(c.ip_env.iter().map(|name| (name.clone(), ip.to_string())));
    env
}

/// Writes one file of a `Files` volume atomically: a hidden sibling first, then a rename.
fn write_volume_file(volume: &Path, f: &VolumeFile) -> Result<(), EngineError> {
    let target = volume.join(&f.path);
    let parent = target.parent().unwrap_or(volume);
    std::fs::create_dir_all(parent)
        .map_err(io_err(format!("cannot create {}", parent.display())))?;
    let file_name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = parent.join(format!(".{file_name}.nodeless-new"));
    std::fs::write(&tmp, &f.contents).map_err(io_err(format!("cannot write {}", tmp.display())))?;
    set_mode(&tmp, f.mode & 0o7777)?;
    std::fs::rename(&tmp, &target).map_err(io_err(format!("cannot write {}", target.display())))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), EngineError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(io_err(format!("cannot chmod {}", path.display())))
}

/// /etc/hosts, /etc/resolv.conf and /etc/hostname, shared by the instance's containers.
fn write_etc_files(
    dir: &InstanceDir,
    spec: &InstanceSpec,
    net: &NetAttachment,
) -> Result<(), EngineError> {
    let etc = dir.etc();
    std::fs::create_dir_all(&etc).map_err(io_err("cannot create the etc directory"))?;
    let write = |name: &str, text: String| {
        let p: PathBuf = etc.join(name);
        std::fs::write(&p, text).map_err(io_err(format!("cannot write {}", p.display())))
    };
    write("hosts", hosts_file(spec, net))?;
    write("resolv.conf", resolv_conf(spec, &host_resolv_conf()))?;
    write("hostname", format!("{}\n", spec.hostname))
}

pub(crate) fn hosts_file(spec: &InstanceSpec, net: &NetAttachment) -> String {
    let mut s = String::from("# Kubernetes-managed hosts file (nodeless).\n127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n");
    if let Some(ip) = net.ip {
        s.push_str(&format!("{ip}\t{}\n", spec.hostname));
    }
    for (ip, names) in &spec.hosts {
        s.push_str(&format!("{ip}\t{}\n", names.join("\t")));
    }
    s
}

fn host_resolv_conf() -> String {
    std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
}

/// The spec's DNS settings, else the host's minus loopback resolvers (unreachable from a netns).
pub(crate) fn resolv_conf(spec: &InstanceSpec, host: &str) -> String {
    let mut servers = spec.dns.nameservers.clone();
    let mut searches = spec.dns.searches.clone();
    let mut options = spec.dns.options.clone();
    if servers.is_empty() {
        for line in host.lines() {
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => servers.extend(
                    words
                        .next()
                        .filter(|s| !s.starts_with("127.") && *s != "::1")
                        .map(str::to_string),
                ),
                Some("search") if searches.is_empty() => searches.extend(words.map(str::to_string)),
                Some("options") if options.is_empty() => options.extend(words.map(str::to_string)),
                _ => {}
            }
        }
    }
    let mut s = String::new();
    for ns in servers {
        s.push_str(&format!("nameserver {ns}\n"));
    }
    if !searches.is_empty() {
        s.push_str(&format!("search {}\n", searches.join(" ")));
    }
    if !options.is_empty() {
        s.push_str(&format!("options {}\n", options.join(" ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::spec::{VolumeFile, VolumeMount, VolumeSpec};

    #[test]
    fn hostnames_that_are_not_host_names_are_invalid() {
        let mut spec = InstanceSpec::single("i1", "web", "busybox");
        spec.hostname = "bad host".into();
        assert!(validate(&spec).is_err());
        spec.hostname = "web-0.svc".into();
        assert!(validate(&spec).is_ok());
    }

    #[test]
    fn duplicate_container_names_are_invalid() {
        let mut spec = InstanceSpec::single("i1", "web", "busybox");
        spec.init_containers
            .push(ContainerSpec::new("web", "busybox"));
        assert!(matches!(validate(&spec), Err(EngineError::Invalid(m)) if m.contains("twice")));
    }

    #[test]
    fn volume_files_cannot_climb_out_of_their_volume() {
        let mut spec = InstanceSpec::single("i1", "web", "busybox");
        spec.volumes.push(VolumeSpec {
            name: "cfg".into(),
            source: VolumeSource::Files {
                files: vec![VolumeFile {
                    path: "../../etc/passwd".into(),
                    contents: vec![],
                    mode: 0o644,
                }],
            },
        });
        assert!(validate(&spec).is_err());
    }

    #[test]
    fn mounts_must_name_a_volume() {
        let mut spec = InstanceSpec::single("i1", "web", "busybox");
        spec.containers[0].mounts.push(VolumeMount {
            volume: "nope".into(),
            mount_path: "/data".into(),
            read_only: false,
            sub_path: None,
        });
        assert!(validate(&spec).is_err());
    }

    struct NoMounts;

    impl crate::sandbox::rootfs::Mounter for NoMounts {
        fn mount_overlay(
            &self,
            _: &[PathBuf],
            _: &Path,
            _: &Path,
            _: &Path,
        ) -> Result<(), crate::sandbox::rootfs::RootfsError> {
            Ok(())
        }
        fn mount_tmpfs(
            &self,
            _: &Path,
            _: Option<u64>,
        ) -> Result<(), crate::sandbox::rootfs::RootfsError> {
            Ok(())
        }
        fn unmount(&self, _: &Path) -> Result<(), crate::sandbox::rootfs::RootfsError> {
            Ok(())
        }
        fn mounts_under(&self, _: &Path) -> Vec<PathBuf> {
            Vec::new()
        }
    }

    fn file(path: &str, text: &str) -> VolumeFile {
        VolumeFile {
            path: path.into(),
            contents: text.as_bytes().to_vec(),
            mode: 0o640,
        }
    }

    /// An engine whose instance "i1" has a files volume "cfg" holding `a` and `sub/b`.
    fn engine_with_files_volume(root: &Path) -> LocalEngine {
        use crate::instance::engine::{EngineParts, HostRuntimes};
        let parts = EngineParts {
            config: crate::instance::EngineConfig::new(root.to_path_buf()),
            images: std::sync::Arc::new(crate::instance::LocalImages::default()),
            network: std::sync::Arc::new(crate::instance::NoNetwork),
            runtimes: std::sync::Arc::new(HostRuntimes::new(root)),
            mounter: std::sync::Arc::new(NoMounts),
            cgroups: crate::sandbox::cgroups::Cgroups::at(
                &root.join("cgroup"),
                crate::sandbox::cgroups::CgroupVersion::V2,
            ),
        };
        let engine = LocalEngine::open(parts).expect("open");
        let mut spec = InstanceSpec::single("i1", "web", "busybox");
        spec.volumes.push(VolumeSpec {
            name: "cfg".into(),
            source: VolumeSource::Files {
                files: vec![file("a", "old a"), file("sub/b", "old b")],
            },
        });
        let dir = engine.dir("i1");
        std::fs::create_dir_all(&dir.dir).expect("mkdir");
        engine.prepare_volumes(&dir, &spec).expect("volumes");
        let rec = InstanceRecord {
            spec,
            phase: InstancePhase::Running,
            message: None,
            created_at: Utc::now(),
            network: None,
            images: BTreeMap::new(),
            stop_signals: BTreeMap::new(),
            shim_pid: None,
        };
        dir.write_record(&rec).expect("record");
        engine
    }

    #[test]
    fn updating_a_files_volume_rewrites_changed_files_and_removes_dropped_ones() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().expect("tmp");
        let engine = engine_with_files_volume(root.path());
        engine
            .update_files_volume("i1", "cfg", vec![file("a", "new a"), file("c", "c")])
            .expect("update");
        let vol = engine.dir("i1").volume("cfg");
        assert_eq!(std::fs::read_to_string(vol.join("a")).expect("a"), "new a");
        assert_eq!(std::fs::read_to_string(vol.join("c")).expect("c"), "c");
        assert!(!vol.join("sub/b").exists(), "a dropped key must go");
        let mode = std::fs::metadata(vol.join("a"))
            .expect("meta")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
        let names: Vec<String> = std::fs::read_dir(&vol)
            .expect("ls")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            !names.iter().any(|n| n.ends_with(".nodeless-new")),
            "{names:?}"
        );
        // The record remembers the new list, so the next update removes `c` when dropped.
        engine
            .update_files_volume("i1", "cfg", vec![file("a", "a3")])
            .expect("update");
        assert!(!vol.join("c").exists());
    }

    #[test]
    fn updating_a_volume_refuses_unknown_volumes_and_escaping_paths() {
        let root = tempfile::tempdir().expect("tmp");
        let engine = engine_with_files_volume(root.path());
        assert!(matches!(
            engine.update_files_volume("i1", "nope", vec![]),
            Err(EngineError::Invalid(_))
        ));
        assert!(matches!(
            engine.update_files_volume("i1", "cfg", vec![file("../x", "")]),
            Err(EngineError::Invalid(_))
        ));
        assert!(!root.path().join("instances/i1/volumes/x").exists());
    }

    #[test]
    fn ip_env_variables_take_the_instance_ip_after_the_env_and_fill_in_references() {
        let mut c = ContainerSpec::new("web", "busybox");
        c.env.push(("A".into(), "1".into()));
        c.env
            .push(("ADDR".into(), format!("{POD_IP_PLACEHOLDER}:8080")));
        c.ip_env = vec!["POD_IP".into(), "POD_IPS".into()];
        let net = NetAttachment {
            netns: None,
            ip: Some("10.88.0.7".parse().expect("ip")),
            gateway: None,
        };
        let env = with_ip_env(&c, &instance_ip(&net));
        assert_eq!(
            env,
            [
                ("A".to_string(), "1".to_string()),
                ("ADDR".into(), "10.88.0.7:8080".into()),
                ("POD_IP".into(), "10.88.0.7".into()),
                ("POD_IPS".into(), "10.88.0.7".into())
            ]
        );
    }

    #[test]
    fn an_instance_without_an_address_fills_in_an_empty_ip() {
        let net = NetAttachment {
            netns: None,
            ip: None,
            gateway: None,
        };
        let arg = format!("--bind={POD_IP_PLACEHOLDER}:80");
        assert_eq!(with_ip(&arg, &instance_ip(&net)), "--bind=:80");
    }

    #[test]
    fn resolv_conf_drops_loopback_resolvers_of_the_host() {
        let spec = InstanceSpec::single("i1", "web", "busybox");
        let text = resolv_conf(
            &spec,
            "nameserver 127.0.0.53\nnameserver 10.0.0.2\nsearch corp\n",
        );
        assert_eq!(text, "nameserver 10.0.0.2\nsearch corp\n");
    }

    #[test]
    fn hosts_file_names_the_instance_and_its_aliases() {
        let mut spec = InstanceSpec::single("i1", "web", "busybox");
        spec.hosts.push((
            "10.1.1.1".parse().expect("ip"),
            vec!["db".into(), "db.local".into()],
        ));
        let net = NetAttachment {
            netns: None,
            ip: Some("10.88.0.5".parse().expect("ip")),
            gateway: None,
        };
        let text = hosts_file(&spec, &net);
        assert!(text.contains("10.88.0.5\tweb\n"));
        assert!(text.contains("10.1.1.1\tdb\tdb.local\n"));
    }
}
