//! Stopping and removing instances, and recovering after an engine restart: adopt what
//! still runs, finish what a crash left half done, clean up what has no record.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

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
        tracing::debug!(instance = %id, "removing");
        if let Some(rec) = &rec {
            if self.status_of(rec).phase.is_finished() {
                // Nothing runs or will run again; the supervisor is only deleting the runtime's
                // containers, which touches neither their root filesystems nor the network:
                // release those meanwhile. tear_down below finds them done.
                let (_, released) = tokio::join!(
                    self.wait_supervisor_exit(rec, Duration::from_secs(5)),
                    self.unmount_and_detach(id)
                );
                released?;
                tracing::debug!(instance = %id, "supervisor gone");
            } else {
                self.stop_instance(id, Duration::ZERO).await?;
            }
        }
        self.tear_down(id).await?;
        tracing::debug!(instance = %id, "removed");
        let _ = self
            .inner
            .events
            .send(InstanceEvent::Removed { id: id.to_string() });
        Ok(())
    }

    async fn wait_supervisor_exit(&self, rec: &InstanceRecord, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.supervisor_alive(rec) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
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
        self.unmount_and_detach(id).await?;
        tracing::debug!(instance = %id, elapsed = ?t0.elapsed(), "unmounted and detached");
        self.inner.cgroups.remove(&cgroups::instance_cgroup(id));
        tracing::debug!(instance = %id, elapsed = ?t0.elapsed(), "cgroups removed");
        // Deleting a container's files costs an unlink each, slow on a busy disk: move the
        // directory aside in one rename and delete it in the background.
        let trash = state::trash_dir(&self.inner.cfg.root)
            .join(format!("{id}-{:08x}", rand::random::<u32>()));
        let moved = std::fs::create_dir_all(trash.parent().unwrap_or(&trash))
            .and_then(|()| std::fs::rename(&dir.dir, &trash));
        tracing::debug!(instance = %id, elapsed = ?t0.elapsed(), "files moved aside");
        match moved {
            Ok(()) => {
                self.empty_trash();
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(format!("cannot remove {}", dir.dir.display()))(e)),
        }
    }

    /// Unmounts the instance's file systems and detaches its network; idempotent. Only once
    /// its containers are dead.
    async fn unmount_and_detach(&self, id: &str) -> Result<(), EngineError> {
        // Deepest first: volume tmpfs inside nothing, rootfs overlays.
        let mut mounts = self.inner.mounter.mounts_under(&self.dir(id).dir);
        mounts.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for m in mounts {
            self.inner.mounter.unmount(&m)?;
        }
        self.inner
            .network
            .detach(id)
            .await
            .map_err(EngineError::Network)
    }

    /// Deletes what removals moved aside, on a background thread; at most one sweep at a time.
    /// A plain thread rather than a blocking task, so that a short-lived process (the CLI)
    /// exits without waiting for it: what an exit interrupts, the next sweep finishes.
    pub(crate) fn empty_trash(&self) {
        use std::sync::atomic::Ordering;
        if self.inner.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        let trash = state::trash_dir(&self.inner.cfg.root);
        let inner = std::sync::Arc::downgrade(&self.inner);
        let sweep = move || {
            loop {
                let entries: Vec<_> = std::fs::read_dir(&trash)
                    .map(|rd| rd.flatten().map(|e| e.path()).collect())
                    .unwrap_or_default();
                if entries.is_empty() {
                    break;
                }
                for path in entries {
                    let _ = std::fs::remove_dir_all(path);
                }
            }
            if let Some(inner) = inner.upgrade() {
                inner.sweeping.store(false, Ordering::Release);
            }
        };
        if std::thread::Builder::new()
            .name("nodeless-trash".into())
            .spawn(sweep)
            .is_err()
        {
            self.inner.sweeping.store(false, Ordering::Release);
        }
    }

    /// Adopts instances whose supervisor still runs, marks the containers of dead supervisors
    /// as exited, removes half-created instances and kills runtime containers nobody owns.
    pub async fn recover(&self) -> Result<RecoveryReport, EngineError> {
        let mut report = RecoveryReport::default();
        // Finish what interrupted background sweeps left (a CLI process exits mid-sweep).
        let trash = state::trash_dir(&self.inner.cfg.root);
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(trash)).await;
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
            if rec.phase == InstancePhase::Stopping {
                // The previous engine died in the middle of a stop: finish it, without grace.
                self.stop_instance(&id, Duration::ZERO).await?;
                continue;
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
                // The kubelet's reason and exit code for a container it can no longer find.
                reason: "ContainerStatusUnknown".into(),
                message: Some(
                    "the container could not be located: its instance supervisor exited while \
                     it ran (a host restart, or the supervisor was killed)"
                        .into(),
                ),
                started_at,
                finished_at: Utc::now(),
            });
            write_status(&dir.status(&c.name), &st);
            any = true;
        }
        any
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;

    use super::*;
    use crate::instance::deps::{LocalImages, NoNetwork};
    use crate::instance::engine::{EngineParts, RuntimeLocator};
    use crate::instance::lifecycle::ContainerStatus;
    use crate::instance::spec::{EngineConfig, InstanceSpec};
    use crate::instance::supervisor::write_status;
    use crate::sandbox::rootfs::{Mounter, RootfsError};
    use crate::sandbox::runtime::{RuntimeBinary, RuntimeError, RuntimeKind, RuntimeState};

    /// A runtime whose container obeys SIGTERM or not; it "exits" by writing the status file
    /// the way the shim would.
    struct FakeRuntime {
        bin: RuntimeBinary,
        status: PathBuf,
        obeys_term: bool,
        signals: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl Runtime for FakeRuntime {
        fn kind(&self) -> RuntimeKind {
            RuntimeKind::Runc
        }
        fn binary(&self) -> &RuntimeBinary {
            &self.bin
        }
        async fn state(&self, _: &str) -> Result<Option<RuntimeState>, RuntimeError> {
            Ok(None)
        }
        async fn list(&self) -> Result<Vec<RuntimeState>, RuntimeError> {
            Ok(Vec::new())
        }
        async fn kill(&self, _: &str, signal: &str, _: bool) -> Result<(), RuntimeError> {
            self.signals.lock().expect("lock").push(signal.to_string());
            let exits = signal == "KILL" || self.obeys_term;
            if exits {
                let code = if signal == "KILL" { 137 } else { 143 };
                let term = Termination {
                    exit_code: code,
                    signal: None,
                    reason: "Error".into(),
                    message: None,
                    started_at: None,
                    finished_at: Utc::now(),
                };
                let st = ContainerStatus {
                    state: ContainerState::Terminated(term),
                    ..ContainerStatus::new("web")
                };
                write_status(&self.status, &st);
            }
            Ok(())
        }
        async fn delete(&self, _: &str, _: bool) -> Result<(), RuntimeError> {
            Ok(())
        }
    }

    struct Locator(Arc<FakeRuntime>);

    impl RuntimeLocator for Locator {
        fn runtime(&self, _: RuntimeKind) -> Result<Arc<dyn Runtime>, RuntimeError> {
            Ok(self.0.clone())
        }
    }

    struct NoMounts;

    impl Mounter for NoMounts {
        fn mount_overlay(
            &self,
            _: &[PathBuf],
            _: &Path,
            _: &Path,
            _: &Path,
        ) -> Result<(), RootfsError> {
            Ok(())
        }
        fn mount_tmpfs(&self, _: &Path, _: Option<u64>) -> Result<(), RootfsError> {
            Ok(())
        }
        fn unmount(&self, _: &Path) -> Result<(), RootfsError> {
            Ok(())
        }
        fn mounts_under(&self, _: &Path) -> Vec<PathBuf> {
            Vec::new()
        }
    }

    /// An engine with one running instance "i1" (container "web") on the fake runtime.
    fn running_instance(
        root: &Path,
        obeys_term: bool,
        stop_signal: Option<&str>,
    ) -> (LocalEngine, Arc<FakeRuntime>) {
        let spec = InstanceSpec::single("i1", "web", "busybox");
        let dir = crate::instance::state::InstanceDir::new(root, "i1");
        std::fs::create_dir_all(dir.container("web")).expect("mkdir");
        let rt = Arc::new(FakeRuntime {
            bin: RuntimeBinary {
                kind: RuntimeKind::Runc,
                path: "/bin/false".into(),
                state_root: root.join("run"),
                network_flags: vec![],
            },
            status: dir.status("web"),
            obeys_term,
            signals: Mutex::new(Vec::new()),
        });
        let running = ContainerStatus {
            state: ContainerState::Running {
                pid: 42,
                started_at: Utc::now(),
            },
            ..ContainerStatus::new("web")
        };
        write_status(&dir.status("web"), &running);
        let mut stop_signals = BTreeMap::new();
        if let Some(sig) = stop_signal {
            stop_signals.insert("web".to_string(), sig.to_string());
        }
        let rec = InstanceRecord {
            spec,
            phase: InstancePhase::Running,
            message: None,
            created_at: Utc::now(),
            network: None,
            images: BTreeMap::new(),
            stop_signals,
            shim_pid: None,
        };
        dir.write_record(&rec).expect("record");
        let parts = EngineParts {
            config: EngineConfig::new(root.to_path_buf()),
            images: Arc::new(LocalImages::default()),
            network: Arc::new(NoNetwork),
            runtimes: Arc::new(Locator(rt.clone())),
            mounter: Arc::new(NoMounts),
            cgroups: crate::sandbox::cgroups::Cgroups::at(
                &root.join("cgroup"),
                crate::sandbox::cgroups::CgroupVersion::V2,
            ),
        };
        (LocalEngine::open(parts).expect("open"), rt)
    }

    #[tokio::test(start_paused = true)]
    async fn stop_escalates_to_sigkill_only_after_the_grace_period() {
        let root = tempfile::tempdir().expect("tmp");
        let (engine, rt) = running_instance(root.path(), false, None);
        let start = Instant::now();
        engine
            .stop_instance("i1", Duration::from_secs(30))
            .await
            .expect("stop");
        assert!(
            start.elapsed() >= Duration::from_secs(30),
            "killed early: {:?}",
            start.elapsed()
        );
        assert_eq!(
            rt.signals.lock().expect("lock").as_slice(),
            ["TERM", "KILL"]
        );
        let st = engine.status_of(&engine.record("i1").expect("record"));
        assert_eq!(st.phase, InstancePhase::Stopped);
    }

    #[tokio::test(start_paused = true)]
    async fn a_container_that_honours_sigterm_is_never_killed() {
        let root = tempfile::tempdir().expect("tmp");
        let (engine, rt) = running_instance(root.path(), true, None);
        let start = Instant::now();
        engine
            .stop_instance("i1", Duration::from_secs(30))
            .await
            .expect("stop");
        assert!(start.elapsed() < Duration::from_secs(1));
        assert_eq!(rt.signals.lock().expect("lock").as_slice(), ["TERM"]);
        assert!(
            root.path().join("instances/i1/stop").exists(),
            "the supervisor must be told not to restart"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn stop_uses_the_images_stop_signal() {
        let root = tempfile::tempdir().expect("tmp");
        let (engine, rt) = running_instance(root.path(), true, Some("SIGQUIT"));
        engine
            .stop_instance("i1", Duration::from_secs(30))
            .await
            .expect("stop");
        assert_eq!(rt.signals.lock().expect("lock").as_slice(), ["SIGQUIT"]);
    }

    #[tokio::test(start_paused = true)]
    async fn recovery_finishes_a_stop_the_previous_engine_began() {
        let root = tempfile::tempdir().expect("tmp");
        let (engine, rt) = running_instance(root.path(), false, None);
        let dir = engine.dir("i1");
        let mut rec = dir.read_record().expect("record");
        rec.phase = InstancePhase::Stopping;
        dir.write_record(&rec).expect("write");
        let report = engine.recover().await.expect("recover");
        assert!(report.adopted.is_empty());
        assert_eq!(rt.signals.lock().expect("lock").as_slice(), ["KILL"]);
        assert_eq!(
            engine.record("i1").expect("record").phase,
            InstancePhase::Stopped
        );
    }
}
