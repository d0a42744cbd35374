//! Stopping and removing instances, and recovering after an engine restart: adopt what
//! still runs, finish what a crash left half done, clean up what has no record.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;

use super::engine::{io_err, EngineError, InstanceEvent, LocalEngine};
use super::lifecycle::{ContainerState, InstancePhase, Termination};
use super::state::{self, InstanceLock, InstanceRecord};
use super::supervisor::{read_status, write_status};
use crate::sandbox::cgroups;
use crate::sandbox::runtime::Runtime;

/// How often stop re-checks the containers while waiting for them to exit.
const STOP_POLL: Duration = Duration::from_millis(5);
/// How long to wait after SIGKILL before giving up on the supervisor.
const KILL_WAIT: Duration = Duration::from_secs(10);

/// What `recover` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RecoveryReport {
    pub adopted: Vec<String>,
    /// Instances whose supervisor had died: their containers were killed and marked exited.
    pub lost: Vec<String>,
    /// Half-created instances removed.
    pub removed: Vec<String>,
    /// Runtime containers without an instance record, killed and deleted.
    pub orphan_containers: Vec<String>,
}

impl LocalEngine {
    pub(crate) async fn stop_instance(&self, id: &str, grace: Duration) -> Result<(), EngineError> {
        let mut rec = self.record(id)?;
        if rec.phase == InstancePhase::Stopped {
            return Ok(());
        }
        let dir = self.dir(id);
        std::fs::write(dir.stop_file(), b"").map_err(io_err("cannot write the stop request"))?;
        if let Ok(next) = rec.phase.transition(InstancePhase::Stopping) {
            rec.phase = next;
            dir.write_record(&rec)
                .map_err(io_err("cannot write the instance record"))?;
        }
        self.emit(self.status_of(&rec));
        self.abort_tasks(id);
        let runtime = self.inner.runtimes.runtime(rec.spec.runtime)?;
        self.signal_until_exited(&rec, runtime.as_ref(), grace)
            .await;
        rec.phase = InstancePhase::Stopped;
        dir.write_record(&rec)
            .map_err(io_err("cannot write the instance record"))?;
        self.emit(self.status_of(&rec));
        Ok(())
    }

    /// TERM (or the image's stop signal) to every running container, KILL after `grace`;
    /// returns when the supervisor has exited.
    async fn signal_until_exited(
        &self,
        rec: &InstanceRecord,
        runtime: &dyn Runtime,
        grace: Duration,
    ) {
        let dir = self.dir(&rec.spec.id);
        let start = Instant::now();
        let mut termed: HashSet<(String, u32)> = HashSet::new();
        loop {
            let running: Vec<(String, u32)> = rec
                .spec
                .all_containers()
                .filter_map(|c| match read_status(&dir.status(&c.name))?.state {
                    ContainerState::Running { pid, .. } => Some((c.name.clone(), pid)),
                    _ => None,
                })
                .collect();
            let shim_alive = self.supervisor_alive(rec);
            if running.is_empty() && !shim_alive {
                return;
            }
            let past_grace = start.elapsed() >= grace;
            for (name, pid) in &running {
                let rid = state::runtime_id(&rec.spec.id, name);
                if past_grace {
                    // Every round: a container that (re)started after the first KILL must die too.
                    let _ = runtime.kill(&rid, "KILL", true).await;
                } else if termed.insert((name.clone(), *pid)) {
                    let signal = rec
                        .stop_signals
                        .get(name)
                        .map(String::as_str)
                        .unwrap_or("TERM");
                    if let Err(e) = runtime.kill(&rid, signal, false).await {
                        tracing::debug!(container = %rid, error = %e, "stop signal failed");
                    }
                }
            }
            if past_grace && start.elapsed() >= grace + KILL_WAIT {
                // The supervisor is stuck; end it so removal can go on.
                if let Some(pid) = rec
                    .shim_pid
                    .filter(|_| shim_alive)
                    .and_then(|p| rustix::process::Pid::from_raw(p as i32))
                {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::KILL);
                }
                return;
            }
            tokio::time::sleep(STOP_POLL).await;
        }
    }

    pub(crate) async fn remove_instance(&self, id: &str) -> Result<(), EngineError> {
        let rec = match self.record(id) {
            Ok(r) => Some(r),
            Err(EngineError::NotFound(_))
                if state::is_valid_id(id) && self.dir(id).dir.exists() =>
            {
                None
            }
            Err(EngineError::NotFound(_)) => return Ok(()),
            Err(e) => return Err(e),
        };
        if let Some(rec) = &rec {
            let settled = rec.phase == InstancePhase::Stopped
                || (self.status_of(rec).phase.is_finished() && !self.supervisor_alive(rec));
            if !settled {
                self.stop_instance(id, Duration::ZERO).await?;
            }
        }
        self.tear_down(id).await?;
        let _ = self
            .inner
            .events
            .send(InstanceEvent::Removed { id: id.to_string() });
        Ok(())
    }

    /// Removes every trace of an instance: runtime containers, mounts, network, cgroups, files.
    pub(crate) async fn tear_down(&self, id: &str) -> Result<(), EngineError> {
        self.abort_tasks(id);
        let t0 = Instant::now();
        let dir = self.dir(id);
        let rec = dir.read_record().ok();
        if let Some(rec) = &rec {
            // The supervisor deletes each container after it exits; only a container it did
            // not see through (crash, kill) is left for us.
            let alive = self.supervisor_alive(rec);
            let leftover = |name: &str| {
                alive
                    || read_status(&dir.status(name))
                        .is_some_and(|s| s.state.termination().is_none())
            };
            if let Ok(runtime) = self.inner.runtimes.runtime(rec.spec.runtime) {
                for c in rec.spec.all_containers().filter(|c| leftover(&c.name)) {
                    let _ = runtime.delete(&state::runtime_id(id, &c.name), true).await;
                }
            }
        }
        tracing::debug!(instance = %id, elapsed = ?t0.elapsed(), "runtime containers deleted");
        // Deepest first: volume tmpfs inside nothing, rootfs overlays.
        let mut mounts = self.inner.mounter.mounts_under(&dir.dir);
        mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for m in mounts {
            self.inner.mounter.unmount(&m)?;
        }
        tracing::debug!(instance = %id, elapsed = ?t0.elapsed(), "unmounted");
        self.inner
            .network
            .detach(id)
            .await
            .map_err(EngineError::Network)?;
        tracing::debug!(instance = %id, elapsed = ?t0.elapsed(), "unmounted and detached");
        self.inner.cgroups.remove(&cgroups::instance_cgroup(id));
        match std::fs::remove_dir_all(&dir.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(format!("cannot remove {}", dir.dir.display()))(e)),
        }
    }

    /// Adopts instances whose supervisor still runs, marks the containers of dead supervisors
    /// as exited, removes half-created instances and kills runtime containers nobody owns.
    pub async fn recover(&self) -> Result<RecoveryReport, EngineError> {
        let mut report = RecoveryReport::default();
        let mut live_ids = HashSet::new();
        let mut live_containers = HashSet::new();
        for id in state::list_ids(&self.inner.cfg.root) {
            let dir = self.dir(&id);
            let Some(_lock) = InstanceLock::try_acquire(&dir).ok().flatten() else {
                // Another engine process is creating or removing it right now.
                live_ids.insert(id.clone());
                continue;
            };
            let rec = match dir.read_record() {
                Ok(rec) if rec.phase != InstancePhase::Creating => rec,
                _ => {
                    drop(_lock);
                    self.tear_down(&id).await?;
                    report.removed.push(id);
                    continue;
                }
            };
            live_ids.insert(id.clone());
            for c in rec.spec.all_containers() {
                live_containers.insert(state::runtime_id(&id, &c.name));
            }
            if self.supervisor_alive(&rec) {
                self.start_probes(&rec);
                report.adopted.push(id);
            } else if self.mark_lost(&rec).await {
                report.lost.push(id);
            }
        }
        for kind in [
            crate::sandbox::RuntimeKind::Runc,
            crate::sandbox::RuntimeKind::Runsc,
        ] {
            let Ok(runtime) = self.inner.runtimes.runtime(kind) else {
                continue;
            };
            for c in runtime.list().await.unwrap_or_default() {
                if !live_containers.contains(&c.id) {
                    let _ = runtime.kill(&c.id, "KILL", true).await;
                    let _ = runtime.delete(&c.id, true).await;
                    report.orphan_containers.push(c.id);
                }
            }
        }
        self.inner
            .network
            .cleanup_orphans(&live_ids)
            .await
            .map_err(EngineError::Network)?;
        Ok(report)
    }

    /// A record whose supervisor is gone: nothing drains its containers' output any more,
    /// so kill what still runs and record the containers as exited. Returns whether any was.
    async fn mark_lost(&self, rec: &InstanceRecord) -> bool {
        let dir = self.dir(&rec.spec.id);
        let runtime: Option<Arc<dyn Runtime>> = self.inner.runtimes.runtime(rec.spec.runtime).ok();
        let mut any = false;
        for c in rec.spec.all_containers() {
            let Some(mut st) = read_status(&dir.status(&c.name)) else {
                continue;
            };
            if st.state.termination().is_some() {
                continue;
            }
            if let Some(rt) = &runtime {
                let rid = state::runtime_id(&rec.spec.id, &c.name);
                let _ = rt.kill(&rid, "KILL", true).await;
                let _ = rt.delete(&rid, true).await;
            }
            let started_at = match &st.state {
                ContainerState::Running { started_at, .. } => Some(*started_at),
                _ => None,
            };
            st.state = ContainerState::Terminated(Termination {
                exit_code: 137,
                signal: None,
                reason: "Unknown".into(),
                message: Some("the instance supervisor exited while the container ran".into()),
                started_at,
                finished_at: Utc::now(),
            });
            write_status(&dir.status(&c.name), &st);
            any = true;
        }
        any
    }
}
