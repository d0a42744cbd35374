//! The [`Engine`] trait the host agent calls, its types, and [`LocalEngine`], the real one.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast;

use super::deps::{DepError, ImageSource, NetworkProvider};
use super::lifecycle::{derive_phase, ContainerStatus, InstancePhase};
use super::spec::{EngineConfig, RuntimeKind};
use super::state::{self, InstanceDir, InstanceRecord};
use super::supervisor::read_status;
use crate::sandbox::bundle::BundleError;
use crate::sandbox::cgroups::{CgroupStats, Cgroups};
use crate::sandbox::logs::{LogLine, LogOptions};
use crate::sandbox::rootfs::{HostMounter, Mounter, RootfsError};
use crate::sandbox::runtime::{CliRuntime, Runtime, RuntimeBinary, RuntimeError};
use crate::sandbox::user::UserError;

/// One container's status as the engine reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerView {
    #[serde(flatten)]
    pub status: ContainerStatus,
    pub image: String,
    pub image_digest: String,
    /// Readiness from the readiness probe (true when there is none and it runs).
    pub ready: bool,
    /// The startup probe passed (true when there is none and it runs).
    pub started: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InstanceStatus {
    pub id: String,
    pub name: String,
    pub phase: InstancePhase,
    pub message: Option<String>,
    pub ip: Option<IpAddr>,
    pub runtime: RuntimeKind,
    pub created_at: DateTime<Utc>,
    pub init_containers: Vec<ContainerView>,
    pub containers: Vec<ContainerView>,
    pub labels: std::collections::BTreeMap<String, String>,
}

/// CPU and memory of one container, from its cgroup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerStats {
    pub name: String,
    pub timestamp: DateTime<Utc>,
    #[serde(flatten)]
    pub usage: CgroupStats,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceEvent {
    /// The instance's status changed (phase, a container's state, readiness).
    Changed(Box<InstanceStatus>),
    Removed {
        id: String,
    },
}

/// A stream of log records; dropping it stops the reader.
pub struct LogStream {
    pub(crate) rx: tokio::sync::mpsc::Receiver<LogLine>,
    pub(crate) task: Option<tokio::task::JoinHandle<()>>,
}

impl LogStream {
    pub fn from_channel(
        rx: tokio::sync::mpsc::Receiver<LogLine>,
        task: Option<tokio::task::JoinHandle<()>>,
    ) -> Self {
        LogStream { rx, task }
    }

    pub async fn next(&mut self) -> Option<LogLine> {
        self.rx.recv().await
    }
}

impl Drop for LogStream {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The I/O of an exec'd process. With `tty`, output comes on `stdout` only.
pub struct ExecIo {
    pub stdin: Option<Box<dyn AsyncRead + Send + Unpin>>,
    pub stdout: Box<dyn AsyncWrite + Send + Unpin>,
    pub stderr: Option<Box<dyn AsyncWrite + Send + Unpin>>,
    pub tty: bool,
    /// Terminal size changes as (columns, rows).
    pub resize: Option<tokio::sync::mpsc::Receiver<(u16, u16)>>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("instance {0} not found")]
    NotFound(String),
    #[error("instance {0} already exists")]
    AlreadyExists(String),
    #[error("instance {0} is busy: another engine process is creating or removing it")]
    Busy(String),
    #[error("invalid instance spec: {0}")]
    Invalid(String),
    #[error("container {container} not found in instance {id}")]
    ContainerNotFound { id: String, container: String },
    #[error("container {container} of instance {id} is not running")]
    NotRunning { id: String, container: String },
    #[error("container {container} of instance {id} has no previous run")]
    NoPreviousRun { id: String, container: String },
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("image {image} for container {container}: {source}")]
    Image {
        container: String,
        image: String,
        #[source]
        source: DepError,
    },
    #[error("network: {0}")]
    Network(#[source] DepError),
    #[error(transparent)]
    Rootfs(#[from] RootfsError),
    #[error("container {container}: {source}")]
    Bundle {
        container: String,
        #[source]
        source: BundleError,
    },
    #[error("container {container}: {source}")]
    User {
        container: String,
        #[source]
        source: UserError,
    },
    #[error("the instance supervisor did not start: {0}")]
    Shim(String),
    #[error("exec failed: {0}")]
    Exec(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

pub(crate) fn io_err(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> EngineError {
    let context = context.into();
    move |source| EngineError::Io { context, source }
}

/// The seam the host agent calls.
#[async_trait]
pub trait Engine: Send + Sync {
    /// Pulls images, attaches the network, prepares root filesystems and starts the
    /// instance's supervisor, which runs init containers in order and then the containers.
    async fn create(&self, spec: super::spec::InstanceSpec) -> Result<InstanceStatus, EngineError>;
    /// SIGTERM (or the image's stop signal), then SIGKILL after `grace`; nothing restarts.
    async fn stop(&self, id: &str, grace: Duration) -> Result<(), EngineError>;
    /// Stops if needed and removes everything of the instance; idempotent.
    async fn remove(&self, id: &str) -> Result<(), EngineError>;
    async fn status(&self, id: &str) -> Result<InstanceStatus, EngineError>;
    async fn list(&self) -> Result<Vec<InstanceStatus>, EngineError>;
    async fn logs(
        &self,
        id: &str,
        container: &str,
        opts: LogOptions,
    ) -> Result<LogStream, EngineError>;
    async fn exec(
        &self,
        id: &str,
        container: &str,
        cmd: Vec<String>,
        io: ExecIo,
    ) -> Result<i32, EngineError>;
    /// Opens a running container's input for an attach session: its stdin when `stdin` is
    /// asked (the container must have been created with `stdin`), and its terminal's size
    /// when it has one.
    async fn attach(
        &self,
        id: &str,
        container: &str,
        stdin: bool,
    ) -> Result<super::attach::Attachment, EngineError>;
    async fn port_forward(&self, id: &str, port: u16)
        -> Result<tokio::net::TcpStream, EngineError>;
    async fn stats(&self, id: &str) -> Result<Vec<ContainerStats>, EngineError>;
    /// Replaces the files of a running instance's `Files` volume (its ConfigMap or Secret
    /// changed). Each file is written beside its target and renamed over it, so a reader sees
    /// the old or the new contents of a file, never a mix; files no longer listed are removed.
    /// Mounts of a `subPath` inside the volume keep the old files, as on the kubelet.
    async fn update_volume(
        &self,
        id: &str,
        volume: &str,
        files: Vec<super::spec::VolumeFile>,
    ) -> Result<(), EngineError>;
    fn events(&self) -> broadcast::Receiver<InstanceEvent>;
}

/// Finds runtimes; faked in unit tests.
pub trait RuntimeLocator: Send + Sync {
    fn runtime(&self, kind: RuntimeKind) -> Result<Arc<dyn Runtime>, RuntimeError>;
}

/// Locates runc and runsc on the host, keeping their state under `ROOT/run/<runtime>`.
pub struct HostRuntimes {
    state_root: std::path::PathBuf,
    found: Mutex<HashMap<RuntimeKind, Arc<dyn Runtime>>>,
}

impl HostRuntimes {
    pub fn new(engine_root: &Path) -> Self {
        HostRuntimes {
            state_root: engine_root.join("run"),
            found: Mutex::new(HashMap::new()),
        }
    }
}

impl RuntimeLocator for HostRuntimes {
    fn runtime(&self, kind: RuntimeKind) -> Result<Arc<dyn Runtime>, RuntimeError> {
        let mut found = self.found.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(rt) = found.get(&kind) {
            return Ok(rt.clone());
        }
        let bin = RuntimeBinary::locate(kind, &self.state_root.join(kind.as_str()))?;
        let rt: Arc<dyn Runtime> = Arc::new(CliRuntime::new(bin));
        found.insert(kind, rt.clone());
        Ok(rt)
    }
}

/// What a [`LocalEngine`] is built from.
pub struct EngineParts {
    pub config: EngineConfig,
    pub images: Arc<dyn ImageSource>,
    pub network: Arc<dyn NetworkProvider>,
    pub runtimes: Arc<dyn RuntimeLocator>,
    pub mounter: Arc<dyn Mounter>,
    pub cgroups: Cgroups,
}

impl EngineParts {
    /// The host's real runtimes, mounts and cgroups with the given images and network.
    pub fn host(
        config: EngineConfig,
        images: Arc<dyn ImageSource>,
        network: Arc<dyn NetworkProvider>,
    ) -> Self {
        let runtimes = Arc::new(HostRuntimes::new(&config.root));
        EngineParts {
            config,
            images,
            network,
            runtimes,
            mounter: Arc::new(HostMounter),
            cgroups: Cgroups::default(),
        }
    }
}

/// What the probes of one container last concluded, for its current run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ProbeResult {
    pub(crate) run: Option<u32>,
    pub(crate) ready: bool,
    pub(crate) started: bool,
}

/// The real engine for this host.
#[derive(Clone)]
pub struct LocalEngine {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) cfg: EngineConfig,
    pub(crate) images: Arc<dyn ImageSource>,
    pub(crate) network: Arc<dyn NetworkProvider>,
    pub(crate) runtimes: Arc<dyn RuntimeLocator>,
    pub(crate) mounter: Arc<dyn Mounter>,
    pub(crate) cgroups: Cgroups,
    /// Whether root overlays the runtime mounts itself may be `volatile` (this kernel's).
    pub(crate) overlay_volatile: bool,
    pub(crate) events: broadcast::Sender<InstanceEvent>,
    /// Probe results per (instance, container): (ready, started).
    pub(crate) probe_state: Mutex<HashMap<(String, String), ProbeResult>>,
    pub(crate) tasks: Mutex<HashMap<String, Vec<tokio::task::JoinHandle<()>>>>,
    /// The instances' shims, recognised once and then held by pidfd.
    pub(crate) shims: super::liveness::Shims,
    /// A background sweep of the trash directory is running.
    pub(crate) sweeping: std::sync::atomic::AtomicBool,
}

impl Drop for Inner {
    fn drop(&mut self) {
        let tasks = self.tasks.get_mut().unwrap_or_else(|p| p.into_inner());
        for handle in tasks.values().flatten() {
            handle.abort();
        }
    }
}

impl LocalEngine {
    /// Opens the engine's state under `parts.config.root`. Call [`LocalEngine::recover`]
    /// once at agent start to adopt running instances and clean up orphans.
    pub fn open(parts: EngineParts) -> Result<Self, EngineError> {
        let dir = state::instances_dir(&parts.config.root);
        std::fs::create_dir_all(&dir)
            .map_err(io_err(format!("cannot create {}", dir.display())))?;
        let (events, _) = broadcast::channel(256);
        Ok(LocalEngine {
            inner: Arc::new(Inner {
                cfg: parts.config,
                images: parts.images,
                network: parts.network,
                runtimes: parts.runtimes,
                mounter: parts.mounter,
                cgroups: parts.cgroups,
                overlay_volatile: crate::sandbox::rootfs::host_has_volatile(),
                events,
                probe_state: Mutex::new(HashMap::new()),
                tasks: Mutex::new(HashMap::new()),
                shims: Default::default(),
                sweeping: std::sync::atomic::AtomicBool::new(false),
            }),
        })
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.cfg
    }

    pub(crate) fn dir(&self, id: &str) -> InstanceDir {
        InstanceDir::new(&self.inner.cfg.root, id)
    }

    pub(crate) fn record(&self, id: &str) -> Result<InstanceRecord, EngineError> {
        if !state::is_valid_id(id) {
            return Err(EngineError::NotFound(id.to_string()));
        }
        self.dir(id).read_record().map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => EngineError::NotFound(id.to_string()),
            _ => EngineError::Io {
                context: format!("cannot read instance {id}"),
                source: e,
            },
        })
    }

    pub(crate) fn supervisor_alive(&self, rec: &InstanceRecord) -> bool {
        rec.shim_pid
            .is_some_and(|pid| self.inner.shims.alive(pid, &rec.spec.id))
    }

    /// Builds the status of one instance from its record and its containers' status files.
    pub(crate) fn status_of(&self, rec: &InstanceRecord) -> InstanceStatus {
        let dir = self.dir(&rec.spec.id);
        let alive = self.supervisor_alive(rec);
        // Looked up per container, not copied: the map holds every instance's containers.
        let probe = |name: &str| {
            self.inner
                .probe_state
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&(rec.spec.id.clone(), name.to_string()))
                .copied()
        };
        let view = |c: &super::spec::ContainerSpec, has_probes: bool| {
            let status =
                read_status(&dir.status(&c.name)).unwrap_or_else(|| ContainerStatus::new(&c.name));
            let running = status.state.is_running();
            let (ready, started) = match probe(&c.name) {
                Some(p) => (p.ready, p.started),
                None => (running && !has_probes, running),
            };
            let (image, digest) = rec
                .images
                .get(&c.name)
                .cloned()
                .unwrap_or_else(|| (c.image.clone(), String::new()));
            ContainerView {
                status,
                image,
                image_digest: digest,
                ready: ready && running,
                started: started && running,
            }
        };
        let init: Vec<ContainerView> = rec
            .spec
            .init_containers
            .iter()
            .map(|c| view(c, false))
            .collect();
        let main: Vec<ContainerView> = rec
            .spec
            .containers
            .iter()
            .map(|c| view(c, c.readiness_probe.is_some() || c.startup_probe.is_some()))
            .collect();
        let phase = match rec.phase {
            InstancePhase::Creating | InstancePhase::Stopping | InstancePhase::Stopped => rec.phase,
            InstancePhase::Failed if rec.message.is_some() => InstancePhase::Failed,
            _ => {
                let i: Vec<ContainerStatus> = init.iter().map(|v| v.status.clone()).collect();
                let m: Vec<ContainerStatus> = main.iter().map(|v| v.status.clone()).collect();
                derive_phase(rec.spec.restart_policy, &i, &m, alive)
            }
        };
        InstanceStatus {
            id: rec.spec.id.clone(),
            name: rec.spec.name.clone(),
            phase,
            message: rec.message.clone(),
            ip: rec.network.as_ref().and_then(|n| n.ip),
            runtime: rec.spec.runtime,
            created_at: rec.created_at,
            init_containers: init,
            containers: main,
            labels: rec.spec.labels.clone(),
        }
    }

    pub(crate) fn emit(&self, status: InstanceStatus) {
        let _ = self
            .inner
            .events
            .send(InstanceEvent::Changed(Box::new(status)));
    }

    pub(crate) fn add_task(&self, id: &str, handle: tokio::task::JoinHandle<()>) {
        self.inner
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_default()
            .push(handle);
    }

    pub(crate) fn abort_tasks(&self, id: &str) {
        if let Some(handles) = self
            .inner
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id)
        {
            for h in handles {
                h.abort();
            }
        }
        self.inner
            .probe_state
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(i, _), _| i != id);
    }
}
