//! The per-instance shim: a small process (`nodeless shim <config>`) that runs an instance's
//! containers and outlives the engine.
//!
//! Why a separate process: a container's stdout and stderr are pipes, and whoever holds the
//! read ends must keep draining them into the log files for as long as the container runs.
//! If the engine held them, restarting the engine would break every container's output. The
//! shim holds them instead, is a child subreaper so it can reap each container's init process
//! and see its exit status, runs init containers in order, applies the restart policy with
//! backoff, and records every state change in a `status.json` per container that the engine
//! reads. One shim per instance, like containerd's runc v2 shim per pod.
//!
//! The engine asks it to stop by creating the `stop` file and signalling the containers.

use std::fs::File;
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use super::lifecycle::{ContainerEvent, ContainerState, ContainerStatus, Termination};
use super::reaper::Reaper;
use super::restart::{Backoff, RestartPolicy};
use super::shim_stdio::{RunStdio, ShimStdio};
use crate::sandbox::cgroups::Cgroups;
use crate::sandbox::logs::{self, LineSplitter, LogStreamKind, LogWriter};
use crate::sandbox::runtime::{RuntimeBinary, RuntimeKind};
use crate::sandbox::start_gate::StartGate;

/// One container as the shim runs it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShimContainer {
    pub name: String,
    /// The runtime's container id.
    pub runtime_id: String,
    pub bundle: PathBuf,
    pub cgroup: String,
    pub log_dir: PathBuf,
    pub status_path: PathBuf,
    /// The work directory of a root overlay the runtime mounts itself, whose `volatile`
    /// marker must go before each run (`rootfs::clear_volatile_marker`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub overlay_work: Option<PathBuf>,
    /// Its stdin and terminal, for attach; absent in configs of older engines.
    #[serde(default)]
    pub stdio: ShimStdio,
}

/// Everything the shim needs, written by the engine as JSON next to the instance's state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ShimConfig {
    pub instance_id: String,
    pub runtime: RuntimeBinary,
    pub init_containers: Vec<ShimContainer>,
    pub containers: Vec<ShimContainer>,
    pub restart_policy: RestartPolicy,
    pub backoff: Backoff,
    pub stop_path: PathBuf,
    pub log_max_bytes: u64,
    pub log_max_files: u32,
    /// Caps the host's concurrent runtime starts; absent in configs of older engines.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_gate: Option<StartGate>,
    /// The instance's network namespace pin: the shim's mount namespace keeps only this one
    /// (`netns::keep_only_pin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub netns: Option<PathBuf>,
}

/// How long one runtime start (`runc run --detach`) may take, as the kubelet's default
/// runtime request timeout. A hung start would otherwise hold its start-gate slot, and with
/// it a share of every later start on the host, for good; killed, it is a start error the
/// restart policy handles.
const RUNTIME_START_LIMIT: Duration = Duration::from_secs(120);

/// The line the shim prints on stdout once it is set up; the engine waits for it.
pub const READY_LINE: &str = "nodeless-shim ready";

/// Runs the shim for the config file named by the first argument; returns the exit code.
pub fn shim_main(args: Vec<std::ffi::OsString>) -> i32 {
    let Some(path) = args.first() else {
        eprintln!("usage: nodeless shim <config.json>");
        return 2;
    };
    let cfg: ShimConfig = match std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!(
                "nodeless shim: cannot read {}: {e}",
                Path::new(path).display()
            );
            return 2;
        }
    };
    // Leave the caller's session so a terminal's Ctrl-C or hangup does not reach us, and
    // adopt the containers' init processes when their runtime parent exits.
    let _ = rustix::process::setsid();
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        eprintln!("nodeless shim: cannot become a child subreaper: {e}");
    }
    // Before any thread starts: a mount namespace belongs to the whole process only when
    // entered single-threaded.
    if let Some(netns) = &cfg.netns {
        if let Err(e) = crate::network::netns::keep_only_pin(netns) {
            // The host's view still works; runtime starts just read a longer mount table.
            eprintln!("nodeless shim: cannot hide other instances' namespaces: {e}");
        }
    }
    println!("{READY_LINE}");
    let _ = std::io::stdout().flush();
    Supervisor {
        cfg: Arc::new(cfg),
        cgroups: Cgroups::default(),
        reaper: Reaper::start(),
    }
    .run();
    0
}

struct Supervisor {
    cfg: Arc<ShimConfig>,
    cgroups: Cgroups,
    reaper: Reaper,
}

impl Supervisor {
    /// Stop was asked for, or the instance's directory is gone (removed by an engine that
    /// no longer knew us): either way nothing may start again.
    fn stop_requested(&self) -> bool {
        self.cfg.stop_path.exists() || self.cfg.stop_path.parent().is_some_and(|dir| !dir.exists())
    }

    fn run(&self) {
        // Init containers: in order, each to success; they retry on failure unless the policy is Never.
        let init_policy = match self.cfg.restart_policy {
            RestartPolicy::Never => RestartPolicy::Never,
            _ => RestartPolicy::OnFailure,
        };
        for c in &self.cfg.init_containers {
            match self.supervise(c, init_policy) {
                Some(t) if t.exit_code == 0 => {}
                _ => return,
            }
        }
        let threads: Vec<_> = self
            .cfg
            .containers
            .iter()
            .cloned()
            .map(|c| {
                let me = Supervisor {
                    cfg: self.cfg.clone(),
                    cgroups: self.cgroups.clone(),
                    reaper: self.reaper.clone(),
                };
                std::thread::spawn(move || me.supervise(&c, me.cfg.restart_policy))
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
    }

    /// Runs one container until it exits for good; `None` if stopped before it ever ran.
    fn supervise(&self, c: &ShimContainer, policy: RestartPolicy) -> Option<Termination> {
        let mut status = ContainerStatus::new(&c.name);
        write_status(&c.status_path, &status);
        let mut failures = 0u32;
        loop {
            if self.stop_requested() {
                return status.state.termination().cloned();
            }
            let started = Instant::now();
            let term = self.run_once(c, &mut status);
            status.state = ContainerState::Terminated(term.clone());
            write_status(&c.status_path, &status);
            // After the status, so whoever waits for the exit learns of it first.
            let _ = self.quiet(self.cfg.runtime.delete(&c.runtime_id, true));
            if self.stop_requested() || !policy.restarts(term.exit_code) {
                return Some(term);
            }
            failures = self.cfg.backoff.next_failures(failures, started.elapsed());
            let delay = self.cfg.backoff.delay(failures);
            let message = format!(
                "back-off {}s restarting failed container={}",
                delay.as_secs(),
                c.name
            );
            // No back-off (the first restart after a failure): straight to the next run.
            if !delay.is_zero() {
                if let Ok(next) = status.state.apply(ContainerEvent::BackingOff { message }) {
                    status.state = next;
                }
                write_status(&c.status_path, &status);
            }
            if !self.sleep_unless_stopped(delay) {
                status.state = ContainerState::Terminated(term.clone());
                write_status(&c.status_path, &status);
                return Some(term);
            }
            status.last_state = Some(term);
            status.restart_count += 1;
        }
    }

    fn sleep_unless_stopped(&self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        while Instant::now() < until {
            if self.stop_requested() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50).min(until - Instant::now()));
        }
        !self.stop_requested()
    }

    /// One run: create with our pipes as stdio, start, wait, record.
    fn run_once(&self, c: &ShimContainer, status: &mut ContainerStatus) -> Termination {
        let rt = &self.cfg.runtime;
        // A container left over from a crashed shim has the same id; runc keeps its state in
        // a directory named after it, so only pay for a delete when there is one.
        if rt.state_root.join(&c.runtime_id).exists() {
            let _ = self.quiet(rt.delete(&c.runtime_id, true));
        }
        if let Some(work) = &c.overlay_work {
            crate::sandbox::rootfs::clear_volatile_marker(work);
        }
        let restart = status.restart_count;
        if restart >= 2 {
            for old in logs::run_files(&c.log_dir, restart - 2) {
                let _ = std::fs::remove_file(old);
            }
        }
        let writer = match LogWriter::open(
            &logs::run_log_path(&c.log_dir, restart),
            self.cfg.log_max_bytes,
            self.cfg.log_max_files,
        ) {
            Ok(w) => Arc::new(Mutex::new(w)),
            Err(e) => return start_error(format!("cannot open the log file: {e}")),
        };
        let (out_r, out_w) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
            Ok(p) => p,
            Err(e) => return start_error(format!("cannot create pipes: {e}")),
        };
        let (err_r, err_w) = match rustix::pipe::pipe_with(rustix::pipe::PipeFlags::CLOEXEC) {
            Ok(p) => p,
            Err(e) => return start_error(format!("cannot create pipes: {e}")),
        };
        let mut stdio = match RunStdio::prepare(c.stdio, &c.bundle) {
            Ok(s) => s,
            Err(e) => return start_error(format!("cannot prepare the container's stdin: {e}")),
        };
        let pid_file = c.bundle.join("init.pid");
        let runtime_log = c.bundle.join("runtime.log");
        let _ = std::fs::remove_file(&runtime_log);
        let created = {
            let _slot = self.cfg.start_gate.as_ref().and_then(StartGate::acquire);
            // One invocation instead of create + start: a runtime start costs a process exec.
            let mut cmd =
                rt.run_detached(&c.runtime_id, &c.bundle, &pid_file, stdio.console_socket());
            insert_log_flag(&mut cmd, rt, &runtime_log);
            if let Some(stdin) = stdio.take_container_stdin() {
                cmd.stdin(Stdio::from(stdin));
            }
            cmd.stdout(Stdio::from(out_w)).stderr(Stdio::from(err_w));
            self.reaper.status_within(&mut cmd, RUNTIME_START_LIMIT)
            // the Command, and with it our copies of the write ends, is dropped here
        };
        let mut readers = vec![
            spawn_reader(out_r, LogStreamKind::Stdout, writer.clone()),
            spawn_reader(err_r, LogStreamKind::Stderr, writer.clone()),
        ];
        match created {
            Ok(Some((0, _))) => {}
            Ok(None) => {
                return start_error(format!(
                    "{} run did not finish within {} s and was killed",
                    rt.kind,
                    RUNTIME_START_LIMIT.as_secs()
                ))
            }
            Ok(Some((code, _))) => {
                return start_error(
                    runtime_error(&runtime_log)
                        .unwrap_or_else(|| format!("{} run exited with {code}", rt.kind)),
                )
            }
            Err(e) => return start_error(format!("cannot run {}: {e}", rt.path.display())),
        }
        // A terminal's output is one stream, logged as stdout.
        match stdio.started(|master| spawn_reader(master, LogStreamKind::Stdout, writer)) {
            Ok(terminal) => readers.extend(terminal),
            // The container runs but cannot be reached; `supervise` deletes it by force.
            Err(e) => return start_error(e),
        }
        let pid: u32 = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0);
        let started_at = Utc::now();
        if let Ok(next) = status.state.apply(ContainerEvent::Started {
            pid,
            at: started_at,
        }) {
            status.state = next;
        }
        write_status(&c.status_path, status);
        // runc's pid is the container's init; runsc's is the sandbox (`runsc boot`), which
        // exits with the container's status the same way. Either is ours as subreaper.
        let (exit_code, signal) = self.reaper.wait(pid as i32);
        let finished_at = Utc::now();
        stdio.finish();
        // Output written just before exit is still in the pipes; give the readers a moment.
        wait_readers(readers, Duration::from_secs(2));
        // Read before the runtime deletes the container's cgroup with it.
        let oom = self.cgroups.oom_kills(&c.cgroup) > 0;
        let reason = if oom {
            "OOMKilled"
        } else if exit_code == 0 {
            "Completed"
        } else {
            "Error"
        };
        Termination {
            exit_code,
            signal,
            reason: reason.into(),
            message: None,
            started_at: Some(started_at),
            finished_at,
        }
    }

    fn quiet(&self, mut cmd: std::process::Command) -> std::io::Result<(i32, Option<i32>)> {
        self.reaper
            .status(cmd.stdout(Stdio::null()).stderr(Stdio::null()))
    }
}

fn insert_log_flag(cmd: &mut std::process::Command, rt: &RuntimeBinary, log: &Path) {
    // Global flags must precede the subcommand: rebuild with --log in front.
    let args: Vec<std::ffi::OsString> = cmd.get_args().map(|a| a.to_os_string()).collect();
    let mut fresh = std::process::Command::new(&rt.path);
    fresh.arg("--log").arg(log);
    if rt.kind == RuntimeKind::Runc {
        fresh.arg("--log-format").arg("json");
    }
    fresh.args(args).stdin(Stdio::null());
    *cmd = fresh;
}

/// The last error the runtime logged, from runc's JSON log or runsc's text log.
fn runtime_error(log: &Path) -> Option<String> {
    let file = File::open(log).ok()?;
    let lines: Vec<String> = std::io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let last = lines
        .iter()
        .rev()
        .find(|l| l.contains("\"level\":\"error\""))
        .or(lines.last())?;
    match serde_json::from_str::<serde_json::Value>(last) {
        Ok(v) => v["msg"].as_str().map(str::to_string),
        Err(_) => Some(last.clone()),
    }
}

fn start_error(message: String) -> Termination {
    Termination {
        exit_code: 128,
        signal: None,
        reason: "StartError".into(),
        message: Some(message),
        started_at: None,
        finished_at: Utc::now(),
    }
}

fn spawn_reader(
    fd: std::os::fd::OwnedFd,
    stream: LogStreamKind,
    writer: Arc<Mutex<LogWriter>>,
) -> std::sync::mpsc::Receiver<()> {
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut pipe = File::from(fd);
        let mut splitter = LineSplitter::default();
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            let lines = splitter.push(&buf[..n]);
            if let Ok(mut w) = writer.lock() {
                for (partial, line) in lines {
                    let _ = w.write(stream, partial, &line);
                }
            }
        }
        if let (Some(rest), Ok(mut w)) = (splitter.finish(), writer.lock()) {
            let _ = w.write(stream, false, &rest);
        }
        let _ = done_tx.send(());
    });
    done_rx
}

fn wait_readers(readers: Vec<std::sync::mpsc::Receiver<()>>, limit: Duration) {
    let deadline = Instant::now() + limit;
    for r in readers {
        let _ = r.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

/// Writes the status atomically: readers never see half a file.
pub fn write_status(path: &Path, status: &ContainerStatus) {
    let tmp = path.with_extension("json.tmp");
    if let Ok(json) = serde_json::to_vec(status) {
        if std::fs::write(&tmp, json).is_ok() {
            let _ = std::fs::rename(&tmp, path);
        }
    }
}

pub fn read_status(path: &Path) -> Option<ContainerStatus> {
    serde_json::from_slice(&std::fs::read(path).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_error_prefers_runc_error_records() {
        let dir = tempfile::tempdir().expect("tmp");
        let log = dir.path().join("runtime.log");
        std::fs::write(&log, "{\"level\":\"error\",\"msg\":\"exec: \\\"nope\\\": executable file not found in $PATH\"}\n{\"level\":\"info\",\"msg\":\"bye\"}\n").expect("write");
        assert_eq!(
            runtime_error(&log).expect("msg"),
            "exec: \"nope\": executable file not found in $PATH"
        );
    }

    #[test]
    fn status_files_round_trip() {
        let dir = tempfile::tempdir().expect("tmp");
        let path = dir.path().join("status.json");
        let st = ContainerStatus {
            restart_count: 3,
            ..ContainerStatus::new("web")
        };
        write_status(&path, &st);
        assert_eq!(read_status(&path), Some(st));
    }
}
