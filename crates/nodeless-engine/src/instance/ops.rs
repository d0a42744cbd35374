//! The [`Engine`] implementation of [`LocalEngine`]: reading logs, exec, port-forward, stats,
//! and the trait's dispatch to create/stop/remove.

use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::sync::broadcast;

use super::attach::Attachment;
use super::engine::{
    io_err, ContainerStats, Engine, EngineError, ExecIo, InstanceEvent, InstanceStatus,
    LocalEngine, LogStream,
};
use super::spec::{ContainerSpec, InstanceSpec, VolumeFile};
use super::state::{self, InstanceRecord};
use super::supervisor::read_status;
use crate::sandbox::cgroups;
use crate::sandbox::exec::{self, ExecStreams};
use crate::sandbox::logs::{self, LogOptions};

impl LocalEngine {
    fn container<'a>(
        &self,
        rec: &'a InstanceRecord,
        name: &str,
    ) -> Result<&'a ContainerSpec, EngineError> {
        rec.spec
            .all_containers()
            .find(|c| c.name == name)
            .ok_or_else(|| EngineError::ContainerNotFound {
                id: rec.spec.id.clone(),
                container: name.to_string(),
            })
    }

    /// A container that runs now, as exec and attach need: `NotRunning` otherwise.
    fn running_container<'a>(
        &self,
        rec: &'a InstanceRecord,
        name: &str,
    ) -> Result<&'a ContainerSpec, EngineError> {
        let c = self.container(rec, name)?;
        let dir = self.dir(&rec.spec.id);
        if !read_status(&dir.status(&c.name)).is_some_and(|s| s.state.is_running()) {
            return Err(EngineError::NotRunning {
                id: rec.spec.id.clone(),
                container: c.name.clone(),
            });
        }
        Ok(c)
    }

    /// Digests of the images the instances on this host use, for image garbage collection.
    pub fn images_in_use(&self) -> std::collections::HashSet<String> {
        state::list_ids(&self.inner.cfg.root)
            .into_iter()
            .filter_map(|id| self.dir(&id).read_record().ok())
            .flat_map(|rec| {
                rec.images
                    .into_values()
                    .flat_map(|(reference, digest)| [reference, digest])
            })
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// The container to use when the caller names none: the only (or first) main container.
    pub fn default_container(&self, id: &str) -> Result<String, EngineError> {
        let rec = self.record(id)?;
        Ok(rec.spec.containers[0].name.clone())
    }
}

#[async_trait]
impl Engine for LocalEngine {
    async fn create(&self, spec: InstanceSpec) -> Result<InstanceStatus, EngineError> {
        self.create_instance(spec).await
    }

    async fn stop(&self, id: &str, grace: Duration) -> Result<(), EngineError> {
        self.stop_instance(id, grace).await
    }

    async fn remove(&self, id: &str) -> Result<(), EngineError> {
        self.remove_instance(id).await
    }

    async fn status(&self, id: &str) -> Result<InstanceStatus, EngineError> {
        Ok(self.status_of(&self.record(id)?))
    }

    async fn list(&self) -> Result<Vec<InstanceStatus>, EngineError> {
        let mut out = Vec::new();
        for id in state::list_ids(&self.inner.cfg.root) {
            // A directory without a record is mid-creation (or debris for `recover`).
            if let Ok(rec) = self.dir(&id).read_record() {
                out.push(self.status_of(&rec));
            }
        }
        out.sort_by_key(|s| s.created_at);
        Ok(out)
    }

    async fn logs(
        &self,
        id: &str,
        container: &str,
        opts: LogOptions,
    ) -> Result<LogStream, EngineError> {
        let rec = self.record(id)?;
        let c = self.container(&rec, container)?;
        let dir = self.dir(id);
        let status_path = dir.status(&c.name);
        let current = read_status(&status_path)
            .map(|s| s.restart_count)
            .unwrap_or(0);
        let run = if opts.previous {
            current
                .checked_sub(1)
                .ok_or_else(|| EngineError::NoPreviousRun {
                    id: id.to_string(),
                    container: c.name.clone(),
                })?
        } else {
            current
        };
        let log_dir = dir.logs(&c.name);
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        // Following ends when this run is over: the container left Running, or a newer run began.
        let finished = move || match read_status(&status_path) {
            Some(s) => s.restart_count != run || !s.state.is_running(),
            None => true,
        };
        let task = tokio::spawn(async move {
            if let Err(e) = logs::read_run(log_dir, run, opts, finished, tx).await {
                tracing::warn!(error = %e, "reading container logs failed");
            }
        });
        Ok(LogStream::from_channel(rx, Some(task)))
    }

    async fn exec(
        &self,
        id: &str,
        container: &str,
        cmd: Vec<String>,
        io: ExecIo,
    ) -> Result<i32, EngineError> {
        let rec = self.record(id)?;
        let c = self.running_container(&rec, container)?;
        if cmd.is_empty() {
            return Err(EngineError::Invalid("exec needs a command".into()));
        }
        let runtime = self.inner.runtimes.runtime(rec.spec.runtime)?;
        let streams = ExecStreams {
            stdin: io.stdin,
            stdout: io.stdout,
            stderr: io.stderr,
            tty: io.tty,
            resize: io.resize,
        };
        exec::exec(
            runtime.binary(),
            &state::runtime_id(id, &c.name),
            &self.dir(id).container(&c.name),
            cmd,
            streams,
        )
        .await
        .map_err(|e| EngineError::Exec(e.to_string()))
    }

    async fn attach(
        &self,
        id: &str,
        container: &str,
        stdin: bool,
    ) -> Result<Attachment, EngineError> {
        let rec = self.record(id)?;
        let c = self.running_container(&rec, container)?;
        if stdin && !c.stdin {
            return Err(super::attach::no_stdin(&c.name));
        }
        let bundle = self.dir(id).container(&c.name);
        Attachment::open(&bundle, stdin, c.tty)
            .await
            .map_err(|e| match e.kind() {
                // Neither made nor read: the shim takes no more input for this run.
                std::io::ErrorKind::NotFound => EngineError::Invalid(format!(
                    "the stdin of container {} is closed: it was created with stdinOnce and \
                     its first attach session has ended",
                    c.name
                )),
                _ => io_err(format!("cannot attach to container {}", c.name))(e),
            })
    }

    async fn port_forward(
        &self,
        id: &str,
        port: u16,
    ) -> Result<tokio::net::TcpStream, EngineError> {
        let rec = self.record(id)?;
        let netns = rec.network.and_then(|n| n.netns).ok_or_else(|| {
            EngineError::Invalid(format!("instance {id} has no network namespace"))
        })?;
        self.inner
            .network
            .connect(&netns, port)
            .await
            .map_err(EngineError::Network)
    }

    async fn stats(&self, id: &str) -> Result<Vec<ContainerStats>, EngineError> {
        let rec = self.record(id)?;
        let dir = self.dir(id);
        Ok(rec
            .spec
            .containers
            .iter()
            .filter(|c| read_status(&dir.status(&c.name)).is_some_and(|s| s.state.is_running()))
            .filter_map(|c| {
                let usage = self
                    .inner
                    .cgroups
                    .stats(&cgroups::container_cgroup(id, &c.name))?;
                Some(ContainerStats {
                    name: c.name.clone(),
                    timestamp: Utc::now(),
                    usage,
                })
            })
            .collect())
    }

    async fn update_volume(
        &self,
        id: &str,
        volume: &str,
        files: Vec<VolumeFile>,
    ) -> Result<(), EngineError> {
        self.update_files_volume(id, volume, files)
    }

    fn events(&self) -> broadcast::Receiver<InstanceEvent> {
        self.inner.events.subscribe()
    }
}
