//! The kernel settings the data path relies on:
//! - `net.ipv4.ip_forward`: instance traffic to a ClusterIP is routed by the host;
//! - `net.bridge.bridge-nf-call-iptables` (from `br_netfilter`): when a Service sends an
//!   instance to another instance on the same bridge, the reply is bridged, not routed, and
//!   must still pass the `ip` hooks so conntrack undoes the DNAT.
//!
//! `net.ipv4.conf.*.route_localnet` is not needed: only NodePorts reached on 127.0.0.1 need
//! it, and nodeless has none.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum SysctlError {
    #[error("{path} is missing: {hint}")]
    Missing { path: PathBuf, hint: &'static str },
    #[error("read {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("set {path} to 1: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// (path under /proc/sys, what to do when the file does not exist)
const REQUIRED: [(&str, &str); 2] = [
    ("net/ipv4/ip_forward", "is /proc/sys mounted?"),
    (
        "net/bridge/bridge-nf-call-iptables",
        "load the br_netfilter module (modprobe br_netfilter)",
    ),
];

/// Sets each required value to 1 under `proc_sys` (normally /proc/sys); returns the keys it
/// had to change. Idempotent.
pub fn prepare_host(proc_sys: &Path) -> Result<Vec<String>, SysctlError> {
    let mut changed = Vec::new();
    for (key, hint) in REQUIRED {
        let path = proc_sys.join(key);
        let current = match std::fs::read_to_string(&path) {
            Ok(v) => v,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(SysctlError::Missing { path, hint });
            }
            Err(source) => return Err(SysctlError::Read { path, source }),
        };
        if current.trim() != "1" {
            std::fs::write(&path, "1").map_err(|source| SysctlError::Write {
                path: path.clone(),
                source,
            })?;
            changed.push(key.replace('/', "."));
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proc_sys(forward: &str, bridge: Option<&str>) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(dir.path().join("net/ipv4")).expect("mkdir");
        std::fs::write(dir.path().join("net/ipv4/ip_forward"), forward).expect("write");
        if let Some(v) = bridge {
            std::fs::create_dir_all(dir.path().join("net/bridge")).expect("mkdir");
            std::fs::write(dir.path().join("net/bridge/bridge-nf-call-iptables"), v)
                .expect("write");
        }
        dir
    }

    #[test]
    fn unset_values_are_set_to_one_and_reported() {
        let dir = proc_sys("0\n", Some("0\n"));
        let changed = prepare_host(dir.path()).expect("prepare");
        assert_eq!(
            changed,
            ["net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"]
        );
        let forward =
            std::fs::read_to_string(dir.path().join("net/ipv4/ip_forward")).expect("read");
        assert_eq!(forward, "1");
    }

    #[test]
    fn values_already_set_are_left_alone() {
        let dir = proc_sys("1\n", Some("1\n"));
        assert!(prepare_host(dir.path()).expect("prepare").is_empty());
    }

    #[test]
    fn a_missing_br_netfilter_is_told_with_the_fix() {
        let dir = proc_sys("1\n", None);
        let err = prepare_host(dir.path()).expect_err("no bridge sysctls");
        assert!(err.to_string().contains("modprobe br_netfilter"), "{err}");
    }
}
