//! A fake [`Engine`] for other crates' unit tests (the host agent's): instances "run" the
//! moment they are created, every change is an event, and tests steer containers by hand
//! (`exit`, `push_log`, `fail_next_create`, `set_exec_result`, `set_exec_stderr`,
//! `forward_port_to`). Followed logs see pushed lines until the container exits.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast;

use crate::instance::{
    ContainerState, ContainerStats, ContainerStatus, ContainerView, Engine, EngineError, ExecIo,
    InstanceEvent, InstancePhase, InstanceSpec, InstanceStatus, LogStream, Termination, VolumeFile,
    VolumeSource,
};
use crate::sandbox::cgroups::CgroupStats;
use crate::sandbox::logs::{LogLine, LogOptions, LogStreamKind};

#[derive(Default)]
struct State {
    instances: BTreeMap<String, (InstanceSpec, InstanceStatus)>,
    logs: HashMap<(String, String), Vec<LogLine>>,
    next_ip: u8,
    fail_create: Option<String>,
    exec_result: i32,
    exec_stderr: Option<String>,
    /// Open `follow` log streams per (instance, container).
    followers: Vec<((String, String), tokio::sync::mpsc::Sender<LogLine>)>,
    forwards: HashMap<(String, u16), SocketAddr>,
    calls: Vec<String>,
}

/// The fake engine. Cheap to create; share it with `Arc`.
pub struct FakeEngine {
    state: Mutex<State>,
    events: broadcast::Sender<InstanceEvent>,
}

impl Default for FakeEngine {
    fn default() -> Self {
        Self::new()
    }
}

fn running(name: &str) -> ContainerStatus {
    ContainerStatus {
        state: ContainerState::Running {
            pid: 1,
            started_at: Utc::now(),
        },
        ..ContainerStatus::new(name)
    }
}

fn terminated(name: &str, exit_code: i32, reason: &str) -> ContainerStatus {
    ContainerStatus {
        state: ContainerState::Terminated(Termination {
            exit_code,
            signal: None,
            reason: reason.to_string(),
            message: None,
            started_at: Some(Utc::now()),
            finished_at: Utc::now(),
        }),
        ..ContainerStatus::new(name)
    }
}

fn view(spec: &crate::instance::ContainerSpec, status: ContainerStatus) -> ContainerView {
    let ready = status.state.is_running();
    ContainerView {
        status,
        image: spec.image.clone(),
        image_digest: "sha256:fake".into(),
        ready,
        started: ready,
    }
}

impl FakeEngine {
    pub fn new() -> Self {
        FakeEngine {
            state: Mutex::new(State {
                next_ip: 2,
                ..State::default()
            }),
            events: broadcast::channel(256).0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn emit(&self, status: &InstanceStatus) {
        let _ = self
            .events
            .send(InstanceEvent::Changed(Box::new(status.clone())));
    }

    /// Every call made, as `verb id` strings, in order.
    pub fn calls(&self) -> Vec<String> {
        self.lock().calls.clone()
    }

    /// The spec an instance was created with (with its volumes as last updated).
    pub fn spec(&self, id: &str) -> Option<InstanceSpec> {
        self.lock().instances.get(id).map(|(s, _)| s.clone())
    }

    /// The next `create` fails with this message (as an image pull error).
    pub fn fail_next_create(&self, message: &str) {
        self.lock().fail_create = Some(message.to_string());
    }

    /// Exit code that `exec` returns from now on.
    pub fn set_exec_result(&self, code: i32) {
        self.lock().exec_result = code;
    }

    /// `exec` writes this to the process's stderr (or stdout with a terminal) from now on.
    pub fn set_exec_stderr(&self, text: &str) {
        self.lock().exec_stderr = Some(text.to_string());
    }

    /// `port_forward(id, port)` connects to `target` (e.g. a test server on 127.0.0.1).
    pub fn forward_port_to(&self, id: &str, port: u16, target: SocketAddr) {
        self.lock().forwards.insert((id.to_string(), port), target);
    }

    /// Appends a line to a container's log.
    pub fn push_log(&self, id: &str, container: &str, stream: LogStreamKind, text: &str) {
        let line = LogLine {
            time: Utc::now(),
            stream,
            partial: false,
            content: text.as_bytes().to_vec(),
        };
        let key = (id.to_string(), container.to_string());
        let mut st = self.lock();
        st.followers
            .retain(|(k, tx)| *k != key || tx.try_send(line.clone()).is_ok());
        st.logs.entry(key).or_default().push(line);
    }

    /// Ends a container with `exit_code` (OOMKilled with `oom`), as if it exited by itself;
    /// the instance's phase follows as for the real engine with restart policy Never.
    pub fn exit(&self, id: &str, container: &str, exit_code: i32, oom: bool) {
        let status = {
            let mut st = self.lock();
            st.followers
                .retain(|((i, c), _)| (i.as_str(), c.as_str()) != (id, container));
            let Some((_, status)) = st.instances.get_mut(id) else {
                return;
            };
            let reason = if oom {
                "OOMKilled"
            } else if exit_code == 0 {
                "Completed"
            } else {
                "Error"
            };
            for c in status
                .containers
                .iter_mut()
                .filter(|c| c.status.name == container)
            {
                c.status = terminated(container, exit_code, reason);
                c.ready = false;
                c.started = false;
            }
            let all_done = status
                .containers
                .iter()
                .all(|c| c.status.state.termination().is_some());
            if all_done {
                let ok = status.containers.iter().all(|c| {
                    c.status
                        .state
                        .termination()
                        .is_some_and(|t| t.exit_code == 0)
                });
                status.phase = if ok {
                    InstancePhase::Succeeded
                } else {
                    InstancePhase::Failed
                };
            }
            status.clone()
        };
        self.emit(&status);
    }

    /// Sets a container's readiness, as a readiness probe would.
    pub fn set_ready(&self, id: &str, container: &str, ready: bool) {
        let status = {
            let mut st = self.lock();
            let Some((_, status)) = st.instances.get_mut(id) else {
                return;
            };
            for c in status
                .containers
                .iter_mut()
                .filter(|c| c.status.name == container)
            {
                c.ready = ready;
            }
            status.clone()
        };
        self.emit(&status);
    }

    fn get(&self, id: &str) -> Result<InstanceStatus, EngineError> {
        self.lock()
            .instances
            .get(id)
            .map(|(_, s)| s.clone())
            .ok_or_else(|| EngineError::NotFound(id.to_string()))
    }
}

#[async_trait]
impl Engine for FakeEngine {
    async fn create(&self, spec: InstanceSpec) -> Result<InstanceStatus, EngineError> {
        crate::instance::validate(&spec)?;
        let status = {
            let mut st = self.lock();
            st.calls.push(format!("create {}", spec.id));
            if let Some(message) = st.fail_create.take() {
                return Err(EngineError::Image {
                    container: spec.containers[0].name.clone(),
                    image: spec.containers[0].image.clone(),
                    source: crate::instance::DepError(message),
                });
            }
            if st.instances.contains_key(&spec.id) {
                return Err(EngineError::AlreadyExists(spec.id));
            }
            let ip = IpAddr::V4(Ipv4Addr::new(10, 88, 0, st.next_ip));
            st.next_ip = st.next_ip.wrapping_add(1).max(2);
            let status = InstanceStatus {
                id: spec.id.clone(),
                name: spec.name.clone(),
                phase: InstancePhase::Running,
                message: None,
                ip: Some(ip),
                runtime: spec.runtime,
                created_at: Utc::now(),
                init_containers: spec
                    .init_containers
                    .iter()
                    .map(|c| view(c, terminated(&c.name, 0, "Completed")))
                    .collect(),
                containers: spec
                    .containers
                    .iter()
                    .map(|c| view(c, running(&c.name)))
                    .collect(),
                labels: spec.labels.clone(),
            };
            st.instances.insert(spec.id.clone(), (spec, status.clone()));
            status
        };
        self.emit(&status);
        Ok(status)
    }

    async fn stop(&self, id: &str, _grace: Duration) -> Result<(), EngineError> {
        let status = {
            let mut st = self.lock();
            st.calls.push(format!("stop {id}"));
            let (_, status) = st
                .instances
                .get_mut(id)
                .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
            for c in status.containers.iter_mut() {
                if c.status.state.is_running() {
                    c.status = terminated(&c.status.name, 143, "Error");
                }
                c.ready = false;
                c.started = false;
            }
            status.phase = InstancePhase::Stopped;
            status.clone()
        };
        self.emit(&status);
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<(), EngineError> {
        let removed = {
            let mut st = self.lock();
            st.calls.push(format!("remove {id}"));
            st.logs.retain(|(i, _), _| i != id);
            st.instances.remove(id).is_some()
        };
        if removed {
            let _ = self
                .events
                .send(InstanceEvent::Removed { id: id.to_string() });
        }
        Ok(())
    }

    async fn status(&self, id: &str) -> Result<InstanceStatus, EngineError> {
        self.get(id)
    }

    async fn list(&self) -> Result<Vec<InstanceStatus>, EngineError> {
        Ok(self
            .lock()
            .instances
            .values()
            .map(|(_, s)| s.clone())
            .collect())
    }

    async fn logs(
        &self,
        id: &str,
        container: &str,
        opts: LogOptions,
    ) -> Result<LogStream, EngineError> {
        self.get(id)?;
        let key = (id.to_string(), container.to_string());
        let mut st = self.lock();
        let mut lines = st.logs.get(&key).cloned().unwrap_or_default();
        if let Some(since) = opts.since {
            lines.retain(|l| l.time >= since);
        }
        if let Some(n) = opts.tail_lines {
            lines.drain(..lines.len().saturating_sub(n));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(lines.len() + 64);
        for line in lines {
            let _ = tx.try_send(line);
        }
        if opts.follow {
            st.followers.push((key, tx));
        }
        Ok(LogStream::from_channel(rx, None))
    }

    async fn attach(
        &self,
        id: &str,
        container: &str,
        stdin: bool,
    ) -> Result<crate::instance::attach::Attachment, EngineError> {
        let status = self.get(id)?;
        let running = status
            .containers
            .iter()
            .any(|c| c.status.name == container && c.status.state.is_running());
        if !running {
            return Err(EngineError::NotRunning {
                id: id.to_string(),
                container: container.to_string(),
            });
        }
        let mut st = self.lock();
        let takes_input = st.instances.get(id).is_some_and(|(spec, _)| {
            spec.containers
                .iter()
                .any(|c| c.name == container && c.stdin)
        });
        if stdin && !takes_input {
            return Err(crate::instance::attach::no_stdin(container));
        }
        st.calls
            .push(format!("attach {id} {container} stdin={stdin}"));
        Ok(crate::instance::attach::Attachment::without_input(false))
    }

    async fn exec(
        &self,
        id: &str,
        container: &str,
        cmd: Vec<String>,
        mut io: ExecIo,
    ) -> Result<i32, EngineError> {
        let status = self.get(id)?;
        let c = status
            .containers
            .iter()
            .find(|c| c.status.name == container);
        if !c.is_some_and(|c| c.status.state.is_running()) {
            return Err(EngineError::NotRunning {
                id: id.to_string(),
                container: container.to_string(),
            });
        }
        let (code, stderr_text) = {
            let mut st = self.lock();
            st.calls
                .push(format!("exec {id} {container} {}", cmd.join(" ")));
            (st.exec_result, st.exec_stderr.clone())
        };
        if let Some(text) = stderr_text {
            match io.stderr.as_mut() {
                Some(stderr) => {
                    let _ = stderr.write_all(text.as_bytes()).await;
                }
                None => {
                    let _ = io.stdout.write_all(text.as_bytes()).await;
                }
            }
        }
        // Echo stdin back, so tests can check both directions.
        if let Some(mut stdin) = io.stdin.take() {
            let _ = tokio::io::copy(&mut stdin, &mut io.stdout).await;
        }
        let _ = io.stdout.flush().await;
        Ok(code)
    }

    async fn port_forward(
        &self,
        id: &str,
        port: u16,
    ) -> Result<tokio::net::TcpStream, EngineError> {
        self.get(id)?;
        let target = self.lock().forwards.get(&(id.to_string(), port)).copied();
        let target = target.ok_or_else(|| {
            EngineError::Network(crate::instance::DepError(format!(
                "nothing listens on port {port}"
            )))
        })?;
        tokio::net::TcpStream::connect(target)
            .await
            .map_err(|e| EngineError::Network(crate::instance::DepError(e.to_string())))
    }

    async fn stats(&self, id: &str) -> Result<Vec<ContainerStats>, EngineError> {
        let status = self.get(id)?;
        Ok(status
            .containers
            .iter()
            .filter(|c| c.status.state.is_running())
            .map(|c| ContainerStats {
                name: c.status.name.clone(),
                timestamp: Utc::now(),
                usage: CgroupStats {
                    cpu_usage_ns: 1_000_000,
                    memory_usage_bytes: 4 << 20,
                    memory_working_set_bytes: 3 << 20,
                    pids: 1,
                },
            })
            .collect())
    }

    async fn update_volume(
        &self,
        id: &str,
        volume: &str,
        files: Vec<VolumeFile>,
    ) -> Result<(), EngineError> {
        let mut st = self.lock();
        st.calls.push(format!("update_volume {id} {volume}"));
        let (spec, _) = st
            .instances
            .get_mut(id)
            .ok_or_else(|| EngineError::NotFound(id.to_string()))?;
        match spec.volumes.iter_mut().find(|v| v.name == volume) {
            Some(v) if matches!(v.source, VolumeSource::Files { .. }) => {
                v.source = VolumeSource::Files { files };
                Ok(())
            }
            _ => Err(EngineError::Invalid(format!(
                "instance {id} has no files volume {volume:?}"
            ))),
        }
    }

    fn events(&self) -> broadcast::Receiver<InstanceEvent> {
        self.events.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn created_instances_run_and_exits_are_announced() {
        let engine = FakeEngine::new();
        let mut events = engine.events();
        let st = engine
            .create(InstanceSpec::single("a1", "web", "nginx"))
            .await
            .expect("create");
        assert_eq!(st.phase, InstancePhase::Running);
        assert!(st.containers[0].ready);
        assert!(matches!(events.recv().await, Ok(InstanceEvent::Changed(_))));
        engine.exit("a1", "web", 137, true);
        let InstanceEvent::Changed(st) = events.recv().await.expect("event") else {
            panic!("expected a change")
        };
        assert_eq!(st.phase, InstancePhase::Failed);
        assert_eq!(
            st.containers[0]
                .status
                .state
                .termination()
                .map(|t| t.reason.as_str()),
            Some("OOMKilled")
        );
    }

    #[tokio::test]
    async fn a_failed_create_leaves_nothing_behind() {
        let engine = FakeEngine::new();
        engine.fail_next_create("manifest unknown");
        let err = engine
            .create(InstanceSpec::single("a1", "web", "nginx"))
            .await
            .expect_err("fails");
        assert!(err.to_string().contains("manifest unknown"));
        assert!(engine.list().await.expect("list").is_empty());
        assert!(engine
            .create(InstanceSpec::single("a1", "web", "nginx"))
            .await
            .is_ok());
    }

    #[tokio::test]
    async fn logs_and_exec_are_scripted() {
        let engine = FakeEngine::new();
        engine
            .create(InstanceSpec::single("a1", "web", "nginx"))
            .await
            .expect("create");
        engine.push_log("a1", "web", LogStreamKind::Stdout, "hello");
        let mut logs = engine
            .logs("a1", "web", LogOptions::default())
            .await
            .expect("logs");
        assert_eq!(logs.next().await.expect("line").content, b"hello");
        engine.set_exec_result(3);
        let io = ExecIo {
            stdin: None,
            stdout: Box::new(tokio::io::sink()),
            stderr: None,
            tty: false,
            resize: None,
        };
        assert_eq!(
            engine
                .exec("a1", "web", vec!["false".into()], io)
                .await
                .expect("exec"),
            3
        );
        engine.stop("a1", Duration::ZERO).await.expect("stop");
        assert_eq!(
            engine.status("a1").await.expect("status").phase,
            InstancePhase::Stopped
        );
        assert_eq!(
            engine.calls(),
            ["create a1", "exec a1 web false", "stop a1"]
        );
    }

    #[tokio::test]
    async fn followed_logs_see_new_lines_until_the_container_exits() {
        let engine = FakeEngine::new();
        engine
            .create(InstanceSpec::single("a1", "web", "nginx"))
            .await
            .expect("create");
        let opts = LogOptions {
            follow: true,
            ..Default::default()
        };
        let mut logs = engine.logs("a1", "web", opts).await.expect("logs");
        engine.push_log("a1", "web", LogStreamKind::Stderr, "later");
        assert_eq!(logs.next().await.expect("line").content, b"later");
        engine.exit("a1", "web", 0, false);
        assert!(logs.next().await.is_none());
    }
}
