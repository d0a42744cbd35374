//! Cgroups, v1 (per-controller hierarchies, as on hybrid hosts) and v2 (unified).
//!
//! Containers are placed with an absolute `cgroupsPath` of `/nodeless/<instance>/<container>`:
//! runc's cgroupfs driver reads an absolute path as relative to each hierarchy's root on v1
//! and to the unified root on v2, so one form works on both. runc and runsc create and
//! limit the leaf; we only read usage and OOM counters and remove the empty parents.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

const CGROUP_ROOT: &str = "/sys/fs/cgroup";
const V1_CONTROLLERS: &[&str] = &[
    "cpu",
    "cpuacct",
    "cpuset",
    "memory",
    "devices",
    "freezer",
    "blkio",
    "pids",
    "net_cls",
    "net_prio",
    "perf_event",
    "hugetlb",
    "rdma",
    "systemd",
];

/// Which cgroup layout the host uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

impl CgroupVersion {
    pub fn detect() -> Self {
        Self::detect_at(Path::new(CGROUP_ROOT))
    }

    /// v2 only when the root itself is the unified hierarchy; a hybrid host's
    /// /sys/fs/cgroup/unified holds no controllers and does not count.
    pub fn detect_at(root: &Path) -> Self {
        if root.join("cgroup.controllers").exists() {
            CgroupVersion::V2
        } else {
            CgroupVersion::V1
        }
    }
}

/// The cgroup of an instance's container, as given to the runtime.
pub fn container_cgroup(instance_id: &str, container: &str) -> String {
    format!("/nodeless/{instance_id}/{container}")
}

pub fn instance_cgroup(instance_id: &str) -> String {
    format!("/nodeless/{instance_id}")
}

/// CPU and memory usage of one cgroup.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CgroupStats {
    /// Cumulative CPU time, nanoseconds.
    pub cpu_usage_ns: u64,
    pub memory_usage_bytes: u64,
    /// Usage less inactive file cache: what the kubelet calls the working set.
    pub memory_working_set_bytes: u64,
    pub pids: u64,
}

/// Reads cgroup files under a root (the real /sys/fs/cgroup, or a fixture in tests).
#[derive(Debug, Clone)]
pub struct Cgroups {
    root: PathBuf,
    version: CgroupVersion,
}

impl Default for Cgroups {
    fn default() -> Self {
        Cgroups {
            root: PathBuf::from(CGROUP_ROOT),
            version: CgroupVersion::detect(),
        }
    }
}

impl Cgroups {
    pub fn at(root: &Path, version: CgroupVersion) -> Self {
        Cgroups {
            root: root.to_path_buf(),
            version,
        }
    }

    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    fn file(&self, controller: &str, cgroup: &str, name: &str) -> PathBuf {
        let rel = cgroup.trim_start_matches('/');
        match self.version {
            CgroupVersion::V2 => self.root.join(rel).join(name),
            CgroupVersion::V1 => self.root.join(controller).join(rel).join(name),
        }
    }

    fn read_u64(&self, controller: &str, cgroup: &str, name: &str) -> Option<u64> {
        std::fs::read_to_string(self.file(controller, cgroup, name))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn read_keyed(&self, controller: &str, cgroup: &str, name: &str, key: &str) -> Option<u64> {
        let text = std::fs::read_to_string(self.file(controller, cgroup, name)).ok()?;
        text.lines().find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            if k == key {
                v.trim().parse().ok()
            } else {
                None
            }
        })
    }

    /// Usage of `cgroup`; `None` when it does not exist (the container is gone).
    pub fn stats(&self, cgroup: &str) -> Option<CgroupStats> {
        match self.version {
            CgroupVersion::V2 => {
                let memory = self.read_u64("", cgroup, "memory.current")?;
                let inactive = self
                    .read_keyed("", cgroup, "memory.stat", "inactive_file")
                    .unwrap_or(0);
                Some(CgroupStats {
                    cpu_usage_ns: self
                        .read_keyed("", cgroup, "cpu.stat", "usage_usec")
                        .unwrap_or(0)
                        * 1000,
                    memory_usage_bytes: memory,
                    memory_working_set_bytes: memory.saturating_sub(inactive),
                    pids: self.read_u64("", cgroup, "pids.current").unwrap_or(0),
                })
            }
            CgroupVersion::V1 => {
                let memory = self.read_u64("memory", cgroup, "memory.usage_in_bytes")?;
                let inactive = self
                    .read_keyed("memory", cgroup, "memory.stat", "total_inactive_file")
                    .unwrap_or(0);
                Some(CgroupStats {
                    cpu_usage_ns: self
                        .read_u64("cpuacct", cgroup, "cpuacct.usage")
                        .unwrap_or(0),
                    memory_usage_bytes: memory,
                    memory_working_set_bytes: memory.saturating_sub(inactive),
                    pids: self.read_u64("pids", cgroup, "pids.current").unwrap_or(0),
                })
            }
        }
    }

    /// How many times the kernel OOM-killed a process in `cgroup` (0 if unknown).
    pub fn oom_kills(&self, cgroup: &str) -> u64 {
        match self.version {
            CgroupVersion::V2 => self
                .read_keyed("", cgroup, "memory.events", "oom_kill")
                .unwrap_or(0),
            CgroupVersion::V1 => self
                .read_keyed("memory", cgroup, "memory.oom_control", "oom_kill")
                .unwrap_or(0),
        }
    }

    /// Creates `cgroup` with CPU and memory limits: the instance-wide cgroup above its
    /// containers', so that together they stay within the instance's limits.
    pub fn set_limits(
        &self,
        cgroup: &str,
        cpu_millis: Option<u64>,
        memory_bytes: Option<u64>,
    ) -> std::io::Result<()> {
        let write = |path: PathBuf, value: String| -> std::io::Result<()> {
            std::fs::write(&path, value)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        let rel = cgroup.trim_start_matches('/');
        match self.version {
            CgroupVersion::V1 => {
                if let Some(millis) = cpu_millis.filter(|m| *m > 0) {
                    let dir = self.root.join("cpu").join(rel);
                    std::fs::create_dir_all(&dir)?;
                    write(
                        dir.join("cpu.cfs_period_us"),
                        super::bundle::CPU_PERIOD_US.to_string(),
                    )?;
                    write(
                        dir.join("cpu.cfs_quota_us"),
                        super::bundle::cpu_quota(millis).to_string(),
                    )?;
                    write(
                        dir.join("cpu.shares"),
                        super::bundle::cpu_shares(millis).to_string(),
                    )?;
                }
                if let Some(bytes) = memory_bytes.filter(|b| *b > 0) {
                    let dir = self.root.join("memory").join(rel);
                    std::fs::create_dir_all(&dir)?;
                    write(dir.join("memory.limit_in_bytes"), bytes.to_string())?;
                }
            }
            CgroupVersion::V2 => {
                // Each level must hand the controllers down before a child can use them.
                let mut dir = self.root.clone();
                for part in rel.split('/').filter(|p| !p.is_empty()) {
                    let _ =
                        std::fs::write(dir.join("cgroup.subtree_control"), "+cpu +memory +pids");
                    dir = dir.join(part);
                    std::fs::create_dir_all(&dir)?;
                }
                let _ = std::fs::write(dir.join("cgroup.subtree_control"), "+cpu +memory +pids");
                if let Some(millis) = cpu_millis.filter(|m| *m > 0) {
                    write(
                        dir.join("cpu.max"),
                        format!(
                            "{} {}",
                            super::bundle::cpu_quota(millis),
                            super::bundle::CPU_PERIOD_US
                        ),
                    )?;
                    write(
                        dir.join("cpu.weight"),
                        cpu_weight(super::bundle::cpu_shares(millis)).to_string(),
                    )?;
                }
                if let Some(bytes) = memory_bytes.filter(|b| *b > 0) {
                    write(dir.join("memory.max"), bytes.to_string())?;
                }
            }
        }
        Ok(())
    }

    /// Removes `cgroup` (and nothing above it) from every hierarchy; missing or busy is ignored.
    pub fn remove(&self, cgroup: &str) {
        let rel = cgroup.trim_start_matches('/');
        let dirs: Vec<PathBuf> = match self.version {
            CgroupVersion::V2 => vec![self.root.join(rel)],
            CgroupVersion::V1 => V1_CONTROLLERS
                .iter()
                .map(|c| self.root.join(c).join(rel))
                .collect(),
        };
        for dir in dirs {
            remove_tree(&dir);
        }
    }
}

/// cgroup v2's weight (1..10000) for v1 shares (2..262144), as runc converts it.
pub fn cpu_weight(shares: u64) -> u64 {
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

/// cgroup directories can only be rmdir'ed, children first.
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                remove_tree(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        std::fs::write(p, text).expect("write");
    }

    #[test]
    fn v1_stats_read_each_controller_hierarchy() {
        let dir = tempfile::tempdir().expect("tmp");
        write(
            dir.path(),
            "memory/nodeless/i/c/memory.usage_in_bytes",
            "1000\n",
        );
        write(
            dir.path(),
            "memory/nodeless/i/c/memory.stat",
            "cache 5\ntotal_inactive_file 300\n",
        );
        write(
            dir.path(),
            "memory/nodeless/i/c/memory.oom_control",
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        );
        write(dir.path(), "cpuacct/nodeless/i/c/cpuacct.usage", "123456\n");
        let cg = Cgroups::at(dir.path(), CgroupVersion::V1);
        let stats = cg.stats(&container_cgroup("i", "c")).expect("stats");
        assert_eq!(stats.memory_working_set_bytes, 700);
        assert_eq!(stats.cpu_usage_ns, 123456);
        assert_eq!(cg.oom_kills("/nodeless/i/c"), 1);
    }

    #[test]
    fn v2_stats_read_the_unified_hierarchy() {
        let dir = tempfile::tempdir().expect("tmp");
        write(dir.path(), "cgroup.controllers", "cpu memory pids\n");
        write(dir.path(), "nodeless/i/c/memory.current", "2048\n");
        write(
            dir.path(),
            "nodeless/i/c/memory.stat",
            "anon 1\ninactive_file 48\n",
        );
        write(
            dir.path(),
            "nodeless/i/c/cpu.stat",
            "usage_usec 7\nuser_usec 5\n",
        );
        write(
            dir.path(),
            "nodeless/i/c/memory.events",
            "low 0\noom 2\noom_kill 2\n",
        );
        assert_eq!(CgroupVersion::detect_at(dir.path()), CgroupVersion::V2);
        let cg = Cgroups::at(dir.path(), CgroupVersion::V2);
        let stats = cg.stats("/nodeless/i/c").expect("stats");
        assert_eq!(
            (stats.memory_working_set_bytes, stats.cpu_usage_ns),
            (2000, 7000)
        );
        assert_eq!(cg.oom_kills("/nodeless/i/c"), 2);
    }

    #[test]
    fn instance_limits_are_written_per_controller_on_v1() {
        let dir = tempfile::tempdir().expect("tmp");
        let cg = Cgroups::at(dir.path(), CgroupVersion::V1);
        cg.set_limits("/nodeless/i", Some(500), Some(64 << 20))
            .expect("limits");
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).expect("read");
        assert_eq!(read("cpu/nodeless/i/cpu.cfs_quota_us"), "50000");
        assert_eq!(read("cpu/nodeless/i/cpu.shares"), "512");
        assert_eq!(
            read("memory/nodeless/i/memory.limit_in_bytes"),
            (64u64 << 20).to_string()
        );
    }

    #[test]
    fn instance_limits_on_v2_enable_controllers_down_the_tree() {
        let dir = tempfile::tempdir().expect("tmp");
        let cg = Cgroups::at(dir.path(), CgroupVersion::V2);
        cg.set_limits("/nodeless/i", Some(1500), None)
            .expect("limits");
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).expect("read");
        assert_eq!(read("nodeless/i/cpu.max"), "150000 100000");
        assert_eq!(
            read("nodeless/cgroup.subtree_control"),
            "+cpu +memory +pids"
        );
        assert_eq!(cpu_weight(1024), 39);
        assert!(!dir.path().join("nodeless/i/memory.max").exists());
    }

    #[test]
    fn missing_cgroup_has_no_stats() {
        let dir = tempfile::tempdir().expect("tmp");
        assert!(Cgroups::at(dir.path(), CgroupVersion::V1)
            .stats("/nodeless/x/y")
            .is_none());
    }
}
