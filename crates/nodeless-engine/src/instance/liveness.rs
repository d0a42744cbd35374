//! Whether each instance's shim is still alive, cheaply enough to ask for every instance on
//! every status scan.
//!
//! A pid alone cannot answer (pids get reused), so a shim is first recognised through
//! `/proc/<pid>/cmdline`, which names its instance ([`state::shim_alive`]). Reading another
//! process's cmdline walks its memory, and with hundreds of instances scanned four times a
//! second that walk was a tenth of the engine's CPU. So once recognised, a shim is held by a
//! pidfd: the kernel marks it readable when the process exits, and polling it costs one
//! syscall that touches nothing of the shim.

use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::sync::Mutex;

use rustix::event::Timespec;
use rustix::event::{poll, PollFd, PollFlags};
use rustix::process::{pidfd_open, Pid, PidfdFlags};

use super::state;

/// The shims recognised so far, by instance id.
#[derive(Default)]
pub(crate) struct Shims {
    known: Mutex<HashMap<String, Known>>,
}

struct Known {
    pid: u32,
    pidfd: OwnedFd,
}

impl Shims {
    /// Whether `pid` is alive and is the shim of instance `id`.
    pub fn alive(&self, pid: u32, id: &str) -> bool {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = known.get(id).filter(|k| k.pid == pid) {
            if exited(&k.pidfd) {
                known.remove(id);
                return false;
            }
            return true;
        }
        // The pidfd is opened before the process is recognised: if the pid were reused in
        // between, the check below would see the new process and refuse it; if the shim dies
        // after the check, its pidfd says so.
        let Some(pidfd) =
            Pid::from_raw(pid as i32).and_then(|p| pidfd_open(p, PidfdFlags::empty()).ok())
        else {
            // No pidfd (a kernel before 5.3, or out of descriptors): ask /proc every time.
            return state::shim_alive(pid, id);
        };
        if !state::shim_alive(pid, id) || exited(&pidfd) {
            known.remove(id);
            return false;
        }
        known.insert(id.to_string(), Known { pid, pidfd });
        true
    }

    /// Drops the shims of instances not in `ids` (they were removed).
    pub fn retain(&self, ids: &std::collections::HashSet<&str>) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.retain(|id, _| ids.contains(id.as_str()));
    }

    #[cfg(test)]
    fn held(&self) -> usize {
        self.known.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

/// A pidfd polls readable once its process has exited (zombies included).
fn exited(pidfd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(pidfd, PollFlags::IN)];
    let now = Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    match poll(&mut fds, Some(&now)) {
        Ok(n) => n > 0,
        // Polling a pidfd does not fail; if it does, trust the record over a guess.
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    /// A child whose command line names `id`, as a shim's does, once it has exec'd.
    fn child_naming(id: &str) -> std::process::Child {
        let child = Command::new("sh")
            .args(["-c", "read line", id])
            .stdin(Stdio::piped())
            .spawn()
            .expect("sh runs");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !state::shim_alive(child.id(), id) {
            assert!(std::time::Instant::now() < deadline, "sh never started");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        child
    }

    /// Lets the child's `read` end, so it exits, and reaps it.
    fn end(mut child: std::process::Child) {
        drop(child.stdin.take());
        let _ = child.wait();
    }

    #[test]
    fn a_live_shim_is_alive_until_it_exits() {
        let shims = Shims::default();
        let child = child_naming("inst-a");
        let pid = child.id();
        assert!(shims.alive(pid, "inst-a"));
        assert!(
            shims.alive(pid, "inst-a"),
            "the held pidfd answers the second time"
        );
        assert_eq!(shims.held(), 1);
        end(child);
        assert!(!shims.alive(pid, "inst-a"));
        assert_eq!(shims.held(), 0);
    }

    #[test]
    fn an_exited_but_unreaped_shim_is_not_alive() {
        let shims = Shims::default();
        let mut child = child_naming("inst-z");
        let pid = child.id();
        assert!(shims.alive(pid, "inst-z"));
        drop(child.stdin.take());
        // Wait for the exit without reaping: the child stays a zombie.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while shims.alive(pid, "inst-z") {
            assert!(
                std::time::Instant::now() < deadline,
                "the exit was never seen"
            );
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let _ = child.wait();
    }

    #[test]
    fn a_process_that_is_not_the_instances_shim_is_not_alive() {
        let shims = Shims::default();
        let child = child_naming("inst-b");
        assert!(!shims.alive(child.id(), "inst-other"));
        assert_eq!(shims.held(), 0);
        end(child);
    }

    #[test]
    fn removed_instances_are_forgotten() {
        let shims = Shims::default();
        let child = child_naming("inst-c");
        assert!(shims.alive(child.id(), "inst-c"));
        shims.retain(&std::collections::HashSet::new());
        assert_eq!(shims.held(), 0);
        end(child);
    }
}
