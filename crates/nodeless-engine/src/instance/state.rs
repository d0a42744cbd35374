//! The engine's state on disk, one directory per instance:
//!
//! ```text
//! ROOT/instances/<id>/instance.json      the record: spec, phase, network, images
//!                    /lock               flock held while an engine creates or removes it
//!                    /shim.json, shim.log, stop
//!                    /etc/{hosts,resolv.conf,hostname}
//!                    /volumes/<name>/
//!                    /containers/<name>/{config.json,rootfs,upper,work,status.json}
//!                    /logs/<name>/<restart>.log
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::deps::NetAttachment;
use super::lifecycle::InstancePhase;
use super::spec::InstanceSpec;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub spec: InstanceSpec,
    /// The phase the engine set; Running and later are refined from the containers' statuses.
    pub phase: InstancePhase,
    pub message: Option<String>,
    pub created_at: DateTime<Utc>,
    pub network: Option<NetAttachment>,
    /// Container name → (reference, digest).
    pub images: BTreeMap<String, (String, String)>,
    pub stop_signals: BTreeMap<String, String>,
    pub shim_pid: Option<u32>,
}

/// Paths of one instance's state.
#[derive(Debug, Clone)]
pub struct InstanceDir {
    pub dir: PathBuf,
}

impl InstanceDir {
    pub fn new(root: &Path, id: &str) -> Self {
        InstanceDir {
            dir: instances_dir(root).join(id),
        }
    }
    pub fn record(&self) -> PathBuf {
        self.dir.join("instance.json")
    }
    pub fn lock(&self) -> PathBuf {
        self.dir.join("lock")
    }
    pub fn shim_config(&self) -> PathBuf {
        self.dir.join("shim.json")
    }
    pub fn shim_log(&self) -> PathBuf {
        self.dir.join("shim.log")
    }
    pub fn stop_file(&self) -> PathBuf {
        self.dir.join("stop")
    }
    pub fn etc(&self) -> PathBuf {
        self.dir.join("etc")
    }
    pub fn volume(&self, name: &str) -> PathBuf {
        self.dir.join("volumes").join(name)
    }
    pub fn container(&self, name: &str) -> PathBuf {
        self.dir.join("containers").join(name)
    }
    pub fn rootfs(&self, name: &str) -> PathBuf {
        self.container(name).join("rootfs")
    }
    pub fn status(&self, name: &str) -> PathBuf {
        self.container(name).join("status.json")
    }
    pub fn logs(&self, name: &str) -> PathBuf {
        self.dir.join("logs").join(name)
    }

    pub fn read_record(&self) -> std::io::Result<InstanceRecord> {
        let bytes = std::fs::read(self.record())?;
        serde_json::from_slice(&bytes).map_err(std::io::Error::other)
    }

    /// Atomic replace, so a crash never leaves half a record.
    pub fn write_record(&self, rec: &InstanceRecord) -> std::io::Result<()> {
        let tmp = self.dir.join("instance.json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec_pretty(rec).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(tmp, self.record())
    }
}

pub fn instances_dir(root: &Path) -> PathBuf {
    root.join("instances")
}

/// Where removed instances' files wait to be deleted.
pub fn trash_dir(root: &Path) -> PathBuf {
    root.join("trash")
}

/// The ids of all instance directories.
pub fn list_ids(root: &Path) -> Vec<String> {
    let mut ids: Vec<String> = std::fs::read_dir(instances_dir(root))
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// The runtime's id for a container of an instance.
pub fn runtime_id(instance_id: &str, container: &str) -> String {
    format!("{instance_id}-{container}")
}

/// An exclusive lock on an instance directory, released on drop.
#[derive(Debug)]
pub struct InstanceLock {
    _file: std::fs::File,
}

impl InstanceLock {
    /// `Ok(None)` when another engine process holds it.
    pub fn try_acquire(dir: &InstanceDir) -> std::io::Result<Option<InstanceLock>> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.lock())?;
        match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(Some(InstanceLock { _file: file })),
            Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// Whether `pid` is alive and is the shim of `instance_id` (pids get reused).
pub fn shim_alive(pid: u32, instance_id: &str) -> bool {
    match std::fs::read(format!("/proc/{pid}/cmdline")) {
        Ok(cmdline) => {
            let text = String::from_utf8_lossy(&cmdline);
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // A zombie has exited; its cmdline is empty anyway, but be explicit.
            let zombie = stat
                .rsplit(") ")
                .next()
                .is_some_and(|rest| rest.starts_with('Z'));
            !zombie && text.contains(instance_id)
        }
        Err(_) => false,
    }
}

/// Instance ids become directory, cgroup and runtime names: lower-case letters, digits and
/// dashes only, so no id can name a path outside the state directory.
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !id.starts_with('-')
}

/// A fresh random instance id.
pub fn new_id() -> String {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..12)
        .map(|_| char::from(b"0123456789abcdef"[rng.gen_range(0..16)]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_could_escape_the_state_directory_are_invalid() {
        assert!(is_valid_id("a1b2-c3"));
        assert!(!is_valid_id("../etc"));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id(""));
        assert!(is_valid_id(&new_id()));
    }
}
