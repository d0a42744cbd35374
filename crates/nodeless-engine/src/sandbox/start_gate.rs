//! A host-wide cap on concurrent container starts, shared by every shim (separate processes,
//! some outliving the engine) through lock files: slot `i` is held while `dir/i` is locked.
//!
//! Why: a runtime start is a burst of CPU in short-lived processes (`runc`, `runc init`). When a
//! burst of instances starts them all at once, the processes contend for the cores and the
//! burst takes longer than starting a few at a time. Measured on 2 cores, 300 `runc run -d`:
//! 6.9 s at 2 at a time, 5.3 s at 4, 6.3 s at 16.

use std::fs::File;
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartGate {
    pub dir: PathBuf,
    pub slots: usize,
}

/// A held slot; dropping it (closing the file) frees the slot.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] File);

impl StartGate {
    /// The engine's gate under `root`: two starts per core, the best point measured above.
    pub fn under(root: &Path) -> Self {
        StartGate {
            dir: root.join("start-slots"),
            slots: process_slots(),
        }
    }

    /// Waits for a slot. Never fails a start: a gate that cannot be used lets it through.
    pub fn acquire(&self) -> Option<Slot> {
        if std::fs::create_dir_all(&self.dir).is_err() || self.slots == 0 {
            return None;
        }
        let open = |i: usize| {
            std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(self.dir.join(i.to_string()))
                .ok()
        };
        for i in 0..self.slots {
            let file = open(i)?;
            if flock(&file, FlockOperation::NonBlockingLockExclusive).is_ok() {
                return Some(Slot(file));
            }
        }
        // All busy: queue on one slot, spread by pid so waiters do not all pile on slot 0.
        let file = open(std::process::id() as usize % self.slots)?;
        flock(&file, FlockOperation::LockExclusive).ok()?;
        Some(Slot(file))
    }
}

/// Short-lived helper processes (runtime starts, CNI plugins) to run at once on this host.
pub fn process_slots() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_exclusive_until_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let gate = StartGate {
            dir: dir.path().join("slots"),
            slots: 2,
        };
        let a = gate.acquire().expect("first slot");
        let b = gate.acquire().expect("second slot");
        // Both held: a third acquirer waits until one is dropped.
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = {
            let gate = gate.clone();
            std::thread::spawn(move || {
                let slot = gate.acquire();
                tx.send(()).expect("send");
                slot.is_some()
            })
        };
        assert!(rx
            .recv_timeout(std::time::Duration::from_millis(200))
            .is_err());
        drop(a);
        drop(b);
        rx.recv_timeout(std::time::Duration::from_secs(5))
            .expect("a freed slot lets the waiter in");
        assert!(waiter.join().expect("join"));
    }

    #[test]
    fn an_unusable_gate_lets_starts_through() {
        let gate = StartGate {
            dir: "/proc/nodeless-no-such-dir".into(),
            slots: 2,
        };
        assert!(gate.acquire().is_none());
    }
}
