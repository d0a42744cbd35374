//! Liveness, readiness and startup probes (exec, httpGet, tcpSocket), and the status monitor
//! that turns status-file changes into [`InstanceEvent`]s.
//!
//! Each probe of each container is a task owned by the engine (aborted on stop/remove). A
//! failing liveness or startup probe kills the container; its supervisor then restarts it
//! under the restart policy, as the kubelet does.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::engine::{InstanceEvent, LocalEngine, ProbeResult};
use super::lifecycle::ContainerState;
use super::spec::{ContainerSpec, Probe, ProbeAction};
use super::state::{self, InstanceRecord};
use super::supervisor::read_status;
use crate::sandbox::exec::{self, ExecStreams};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Startup,
    Liveness,
    Readiness,
}

impl LocalEngine {
    /// Starts the probe tasks of an instance's containers.
    pub(crate) fn start_probes(&self, rec: &InstanceRecord) {
        for c in &rec.spec.containers {
            let probes = [
                (Kind::Startup, &c.startup_probe),
                (Kind::Liveness, &c.liveness_probe),
                (Kind::Readiness, &c.readiness_probe),
            ];
            let has_any = probes.iter().any(|(_, p)| p.is_some());
            if !has_any {
                continue;
            }
            for (kind, probe) in probes {
                if let Some(probe) = probe.clone() {
                    let me = self.clone();
                    let (owned, c) = (rec.clone(), c.clone());
                    let handle =
                        tokio::spawn(async move { me.probe_loop(owned, c, kind, probe).await });
                    self.add_task(&rec.spec.id, handle);
                }
            }
        }
    }

    fn probe_state(&self, id: &str, name: &str) -> (bool, bool) {
        let map = self
            .inner
            .probe_state
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        map.get(&(id.to_string(), name.to_string()))
            .map(|p| (p.ready, p.started))
            .unwrap_or((false, false))
    }

    /// Updates a container's probe result; `run` resets it once per container run (every probe
    /// task of the container notices the new run, only the first resets).
    fn update_probe_state(
        &self,
        id: &str,
        c: &ContainerSpec,
        run: u32,
        change: impl FnOnce(&mut ProbeResult),
    ) {
        let changed = {
            let mut map = self
                .inner
                .probe_state
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let entry = map.entry((id.to_string(), c.name.clone())).or_default();
            let before = *entry;
            if entry.run != Some(run) {
                // A new run: not started until the startup probe passes, not ready until the
                // readiness probe does (each counts as passed when absent).
                let started = c.startup_probe.is_none();
                *entry = ProbeResult {
                    run: Some(run),
                    started,
                    ready: started && c.readiness_probe.is_none(),
                };
            }
            change(entry);
            *entry != before
        };
        if changed {
            if let Ok(rec) = self.record(id) {
                self.emit(self.status_of(&rec));
            }
        }
    }

    async fn probe_loop(self, rec: InstanceRecord, c: ContainerSpec, kind: Kind, probe: Probe) {
        let id = rec.spec.id.clone();
        let status_path = self.dir(&id).status(&c.name);
        let mut run: Option<u32> = None;
        let (mut successes, mut failures) = (0u32, 0u32);
        loop {
            let Some(st) = read_status(&status_path) else {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            };
            let started_at = match st.state {
                ContainerState::Running { started_at, .. } => started_at,
                _ => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
            if run != Some(st.restart_count) {
                // A new run starts over, and waits out the initial delay from its start.
                run = Some(st.restart_count);
                (successes, failures) = (0, 0);
                self.update_probe_state(&id, &c, st.restart_count, |_| {});
                let since = (chrono::Utc::now() - started_at)
                    .to_std()
                    .unwrap_or_default();
                tokio::time::sleep(probe.initial_delay.saturating_sub(since)).await;
            }
            let (ready, started) = self.probe_state(&id, &c.name);
            // Liveness and readiness wait for the startup probe, as in Kubernetes.
            if kind != Kind::Startup && !started {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            if kind == Kind::Startup && started {
                tokio::time::sleep(probe.period).await;
                continue;
            }
            let ok = tokio::time::timeout(probe.timeout, self.run_probe(&rec, &c, &probe.action))
                .await
                .unwrap_or(false);
            if ok {
                successes += 1;
                failures = 0;
            } else {
                failures += 1;
                successes = 0;
            }
            match kind {
                Kind::Readiness => {
                    if ok && successes >= probe.success_threshold.max(1) && !ready {
                        self.update_probe_state(&id, &c, st.restart_count, |p| p.ready = true);
                    } else if !ok && failures >= probe.failure_threshold.max(1) && ready {
                        self.update_probe_state(&id, &c, st.restart_count, |p| p.ready = false);
                    }
                }
                Kind::Startup if ok => {
                    let no_readiness = c.readiness_probe.is_none();
                    self.update_probe_state(&id, &c, st.restart_count, |p| {
                        p.started = true;
                        p.ready |= no_readiness;
                    })
                }
                Kind::Liveness if ok => {}
                Kind::Startup | Kind::Liveness => {
                    if failures >= probe.failure_threshold.max(1) {
                        tracing::info!(instance = %id, container = %c.name, ?kind, "probe failed; killing the container");
                        if let Ok(rt) = self.inner.runtimes.runtime(rec.spec.runtime) {
                            let _ = rt
                                .kill(&state::runtime_id(&id, &c.name), "KILL", true)
                                .await;
                        }
                        failures = 0;
                    }
                }
            }
            tokio::time::sleep(probe.period).await;
        }
    }

    async fn run_probe(
        &self,
        rec: &InstanceRecord,
        c: &ContainerSpec,
        action: &ProbeAction,
    ) -> bool {
        let netns = rec.network.as_ref().and_then(|n| n.netns.clone());
        match action {
            ProbeAction::Exec { command } => {
                let Ok(rt) = self.inner.runtimes.runtime(rec.spec.runtime) else {
                    return false;
                };
                let io = ExecStreams {
                    stdin: None,
                    stdout: Box::new(tokio::io::sink()),
                    stderr: Some(Box::new(tokio::io::sink())),
                    tty: false,
                    resize: None,
                };
                let bundle = self.dir(&rec.spec.id).container(&c.name);
                matches!(
                    exec::exec(
                        rt.binary(),
                        &state::runtime_id(&rec.spec.id, &c.name),
                        &bundle,
                        command.clone(),
                        io
                    )
                    .await,
                    Ok(0)
                )
            }
            ProbeAction::TcpSocket { port } => match netns {
                Some(ns) => self.inner.network.connect(&ns, *port).await.is_ok(),
                None => false,
            },
            ProbeAction::HttpGet {
                path,
                port,
                host_header,
                headers,
            } => {
                let Some(ns) = netns else { return false };
                let Ok(mut stream) = self.inner.network.connect(&ns, *port).await else {
                    return false;
                };
                let host = host_header.clone().unwrap_or_else(|| {
                    rec.network
                        .as_ref()
                        .and_then(|n| n.ip)
                        .map(|ip| ip.to_string())
                        .unwrap_or_default()
                });
                http_probe(&mut stream, path, &host, headers).await
            }
        }
    }

    /// Emits an event whenever an instance's status changes, polling every `period`. Owned by
    /// the engine; stops when the engine is dropped. The scan reads files, so it runs on the
    /// blocking pool, and re-parses an instance's record only when the file changed.
    pub fn watch(&self, period: Duration) {
        let weak = std::sync::Arc::downgrade(&self.inner);
        let handle = tokio::spawn(async move {
            let mut last: HashMap<String, super::engine::InstanceStatus> = HashMap::new();
            let mut records = RecordCache::default();
            loop {
                tokio::time::sleep(period).await;
                let Some(inner) = weak.upgrade() else { return };
                let engine = LocalEngine { inner };
                let scan = {
                    let engine = engine.clone();
                    tokio::task::spawn_blocking(move || {
                        let seen = records.scan(&engine);
                        (seen, records)
                    })
                };
                let Ok((seen, cache)) = scan.await else {
                    return;
                };
                records = cache;
                for (id, status) in &seen {
                    if last.get(id) != Some(status) {
                        engine.emit(status.clone());
                    }
                }
                for id in last.keys().filter(|id| !seen.contains_key(*id)) {
                    let _ = engine
                        .inner
                        .events
                        .send(InstanceEvent::Removed { id: id.clone() });
                }
                last = seen;
            }
        });
        self.add_task("", handle);
    }
}

/// Identifies one version of a record file: records are replaced by rename, so a new version
/// is a new inode (the time and length guard against inode reuse).
type Stamp = (u64, i64, i64, u64);

fn stamp(path: &std::path::Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).ok()?;
    Some((m.ino(), m.mtime(), m.mtime_nsec(), m.size()))
}

/// Instance records as last parsed, by instance id. The watch looks at every instance several
/// times a second and a record holds the whole spec, while records change rarely.
#[derive(Default)]
struct RecordCache(HashMap<String, (Stamp, InstanceRecord)>);

impl RecordCache {
    /// Every instance's status now; forgets instances that are gone.
    fn scan(&mut self, engine: &LocalEngine) -> HashMap<String, super::engine::InstanceStatus> {
        let mut seen = HashMap::new();
        let mut fresh = HashMap::new();
        for id in state::list_ids(&engine.inner.cfg.root) {
            let dir = engine.dir(&id);
            let Some(now) = stamp(&dir.record()) else {
                continue;
            };
            let rec = match self.0.remove(&id) {
                Some((then, rec)) if then == now => rec,
                _ => match dir.read_record() {
                    Ok(rec) => rec,
                    Err(_) => continue,
                },
            };
            seen.insert(id.clone(), engine.status_of(&rec));
            fresh.insert(id, (now, rec));
        }
        self.0 = fresh;
        engine
            .inner
            .shims
            .retain(&self.0.keys().map(String::as_str).collect());
        seen
    }
}

/// An HTTP/1.1 GET; success is a 2xx or 3xx status, as for the kubelet.
async fn http_probe(
    stream: &mut tokio::net::TcpStream,
    path: &str,
    host: &str,
    headers: &[(String, String)],
) -> bool {
    let path = if path.starts_with('/') {
        path.to_string()
    } else {
        format!("/{path}")
    };
    let mut req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: kube-probe/1.32\r\nAccept: */*\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    if stream.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    let mut got = 0;
    while got < 12 {
        match stream.read(&mut buf[got..]).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    parse_status_code(&buf[..got]).is_some_and(|code| (200..400).contains(&code))
}

fn parse_status_code(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head).ok()?;
    let mut parts = text.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.get(..3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_are_parsed() {
        assert_eq!(parse_status_code(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status_code(b"HTTP/1.0 500"), Some(500));
        assert_eq!(parse_status_code(b"garbage"), None);
    }

    #[tokio::test]
    async fn http_probe_succeeds_on_2xx_and_fails_on_5xx() {
        for (answer, expect) in [
            ("HTTP/1.1 200 OK\r\n\r\n", true),
            ("HTTP/1.1 503 Unavailable\r\n\r\n", false),
        ] {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let server = tokio::spawn(async move {
                let (mut s, _) = listener.accept().await.expect("accept");
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.expect("read");
                assert!(String::from_utf8_lossy(&buf[..n]).starts_with("GET /healthz HTTP/1.1\r\n"));
                s.write_all(answer.as_bytes()).await.expect("write");
            });
            let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
            assert_eq!(http_probe(&mut stream, "/healthz", "x", &[]).await, expect);
            server.await.expect("server");
        }
    }
}
