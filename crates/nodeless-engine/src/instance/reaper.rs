//! The shim's child reaper.
//!
//! As a child subreaper the shim inherits every process the runtime leaves behind: the
//! container's init (runc) or sandbox (runsc), and runsc's gofer. Unreaped, those linger as
//! zombies, and runsc waits for them to vanish before `delete` returns. So one thread reaps
//! every child, and whoever waits for a particular pid collects its status here.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use rustix::process::{Pid, WaitOptions};

/// Exit code and, when a signal ended it, the signal (code is then 128 + signal).
pub type ExitStatus = (i32, Option<i32>);

#[derive(Clone)]
pub struct Reaper {
    shared: Arc<(Mutex<Reaped>, Condvar)>,
}

#[derive(Default)]
struct Reaped {
    statuses: HashMap<i32, ExitStatus>,
    /// Bumped after every spawn through us: the reaping thread, idle for lack of children,
    /// wakes at once for the new one instead of at its next poll.
    spawns: u64,
}

/// Statuses nobody asked for (runsc's gofer) are dropped past this many.
const MAX_UNCLAIMED: usize = 1024;

impl Reaper {
    /// The process's reaper, started on first use; it lives as long as the process. There is
    /// only one: two would steal each other's children.
    pub fn start() -> Self {
        static GLOBAL: std::sync::OnceLock<Reaper> = std::sync::OnceLock::new();
        GLOBAL.get_or_init(Self::spawn).clone()
    }

    fn spawn() -> Self {
        let reaper = Reaper {
            shared: Arc::default(),
        };
        let shared = reaper.shared.clone();
        std::thread::spawn(move || loop {
            let (reaped, cv) = &*shared;
            let spawns = reaped.lock().unwrap_or_else(|p| p.into_inner()).spawns;
            match rustix::process::wait(WaitOptions::empty()) {
                Ok(Some((pid, st))) => {
                    let status = match (st.exit_status(), st.terminating_signal()) {
                        (Some(code), _) => (code, None),
                        (None, Some(sig)) => (128 + sig, Some(sig)),
                        _ => continue,
                    };
                    let mut reaped = reaped.lock().unwrap_or_else(|p| p.into_inner());
                    if reaped.statuses.len() >= MAX_UNCLAIMED {
                        reaped.statuses.clear();
                    }
                    reaped.statuses.insert(pid.as_raw_nonzero().get(), status);
                    cv.notify_all();
                }
                Err(rustix::io::Errno::INTR) | Ok(None) => {}
                // No children right now: wait for the next spawn (children only appear by
                // our spawns, or by reparenting while we have one), with a poll as backstop.
                Err(_) => {
                    let guard = reaped.lock().unwrap_or_else(|p| p.into_inner());
                    if guard.spawns == spawns {
                        let _ = cv.wait_timeout(guard, Duration::from_millis(20));
                    }
                }
            }
        });
        reaper
    }

    /// Waits for `pid` to exit. If it is not our child (no subreaper), waits for it to vanish
    /// and reports status 255.
    pub fn wait(&self, pid: i32) -> ExitStatus {
        self.wait_until(pid, None).unwrap_or((255, None))
    }

    /// Like [`Reaper::wait`], but gives up at `deadline`: `None` if `pid` still runs then.
    fn wait_until(&self, pid: i32, deadline: Option<Instant>) -> Option<ExitStatus> {
        let (reaped, cv) = &*self.shared;
        let mut guard = reaped.lock().unwrap_or_else(|p| p.into_inner());
        // Once the pid is gone, the reaper may hold its status while it waits for our lock:
        // give it a moment before deciding the process was not ours.
        let mut gone_rounds = 0;
        loop {
            if let Some(st) = guard.statuses.remove(&pid) {
                return Some(st);
            }
            let gone =
                Pid::from_raw(pid).is_none_or(|p| rustix::process::test_kill_process(p).is_err());
            if gone {
                gone_rounds += 1;
                if gone_rounds > 10 {
                    return Some((255, None));
                }
            }
            let mut pause = if gone {
                Duration::from_millis(20)
            } else {
                Duration::from_millis(200)
            };
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return None;
                }
                pause = pause.min(left);
            }
            guard = cv
                .wait_timeout(guard, pause)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// Runs a command to completion; returns its status.
    pub fn status(&self, cmd: &mut Command) -> std::io::Result<ExitStatus> {
        let child = cmd.spawn()?;
        self.spawned();
        Ok(self.wait(child.id() as i32))
    }

    /// Runs a command to completion, but kills it if it has not finished within `limit`:
    /// `Ok(None)` then.
    pub fn status_within(
        &self,
        cmd: &mut Command,
        limit: Duration,
    ) -> std::io::Result<Option<ExitStatus>> {
        let mut child = cmd.spawn()?;
        self.spawned();
        let pid = child.id() as i32;
        if let Some(status) = self.wait_until(pid, Some(Instant::now() + limit)) {
            return Ok(Some(status));
        }
        let _ = child.kill();
        // Collected here, so the pid cannot be reused before the reaper sees it.
        self.wait(pid);
        Ok(None)
    }

    /// Wakes the reaping thread if it idles for lack of children.
    fn spawned(&self) {
        let (reaped, cv) = &*self.shared;
        reaped.lock().unwrap_or_else(|p| p.into_inner()).spawns += 1;
        cv.notify_all();
    }

    /// Runs a command to completion; returns its status and stderr.
    pub fn stderr(&self, cmd: &mut Command) -> std::io::Result<(ExitStatus, String)> {
        use std::io::Read;
        let mut child = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
        self.spawned();
        let mut err = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut err);
        }
        Ok((self.wait(child.id() as i32), err.trim().to_string()))
    }
}
