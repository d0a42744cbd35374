//! Instance addresses, handed to the bridge plugin through the CNI `static` IPAM plugin.
//!
//! Leases are the files host-local keeps, in the same directory and format: one file per
//! address, named after it, holding `<CNI container id>\r\n<ifname>`, plus
//! `last_reserved_ip.0`, the cursor the next search starts after (so a released address is
//! not handed out again at once). Taking a lease is creating its file with `O_EXCL`, which is
//! atomic against every other process over the directory, host-local included; releasing it
//! is removing the file. So `host-local` DEL still releases what nodeless reserved (a DEL
//! without a record, in orphan cleanup), and orphan cleanup reads both alike.
//!
//! Why not host-local itself: it walks every lease file on each ADD to find one the container
//! may already hold, so a host with n instances pays O(n) file reads per start (ADD of bridge
//! plus host-local measured 11.0 ms of CPU with 25 leases and 16.6 ms with 275; with `static`,
//! 10.4 and 11.2 ms). nodeless already remembers each instance's address in its record.

use std::fs::OpenOptions;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use ipnet::Ipv4Net;

use super::record::lease_owner;

/// host-local's cursor file for the first (only) range.
const CURSOR: &str = "last_reserved_ip.0";

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error("no free address left in {subnet} (leases in {dir})")]
    Exhausted { subnet: Ipv4Net, dir: PathBuf },
    #[error("lease {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The leases of one network's subnet.
#[derive(Debug)]
pub struct Leases {
    dir: PathBuf,
    subnet: Ipv4Net,
    /// Serializes this process's searches, so concurrent attaches do not race each other
    /// for the same next address; other processes are kept apart by `O_EXCL`.
    search: Mutex<()>,
}

impl Leases {
    pub fn new(dir: PathBuf, subnet: Ipv4Net) -> Self {
        Leases {
            dir,
            subnet: subnet.trunc(),
            search: Mutex::new(()),
        }
    }

    /// Takes the next free address after the cursor for `owner` (a CNI container id).
    pub fn reserve(&self, owner: &str, ifname: &str) -> Result<Ipv4Addr, IpamError> {
        let _search = self.search.lock().unwrap_or_else(|p| p.into_inner());
        std::fs::create_dir_all(&self.dir).map_err(|source| IpamError::Io {
            path: self.dir.clone(),
            source,
        })?;
        let cursor = std::fs::read_to_string(self.dir.join(CURSOR))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        for ip in candidates(self.subnet, cursor) {
            let path = self.dir.join(ip.to_string());
            let created = OpenOptions::new().write(true).create_new(true).open(&path);
            let mut file = match created {
                Ok(file) => file,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(source) => return Err(IpamError::Io { path, source }),
            };
            if let Err(source) = file.write_all(format!("{owner}\r\n{ifname}").as_bytes()) {
                let _ = std::fs::remove_file(&path);
                return Err(IpamError::Io { path, source });
            }
            // Only a hint: losing it just restarts the search lower down.
            let _ = std::fs::write(self.dir.join(CURSOR), ip.to_string());
            return Ok(ip);
        }
        Err(IpamError::Exhausted {
            subnet: self.subnet,
            dir: self.dir.clone(),
        })
    }

    /// Gives `ip` back if `owner` holds it; a lease already gone, or taken since by someone
    /// else, is left alone.
    pub fn release(&self, ip: Ipv4Addr, owner: &str) -> Result<(), IpamError> {
        let path = self.dir.join(ip.to_string());
        let content = match std::fs::read_to_string(&path) {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(IpamError::Io { path, source }),
        };
        if lease_owner(&content) != Some(owner) {
            return Ok(());
        }
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(IpamError::Io { path, source: e }),
            _ => Ok(()),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Every address instances may get, starting after `cursor` and wrapping around: the
/// subnet's hosts without the gateway (the first) and the broadcast address, as host-local
/// hands them out.
fn candidates(subnet: Ipv4Net, cursor: Option<Ipv4Addr>) -> impl Iterator<Item = Ipv4Addr> {
    let first = u32::from(subnet.network()).saturating_add(2);
    let last = u32::from(subnet.broadcast()).saturating_sub(1);
    let start = cursor
        .map(u32::from)
        .filter(|c| (first..=last).contains(c))
        .map_or(first, |c| if c == last { first } else { c + 1 });
    (start..=last).chain(first..start).map(Ipv4Addr::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> Ipv4Net {
        s.parse().expect("subnet")
    }

    #[test]
    fn candidates_skip_the_network_gateway_and_broadcast_and_wrap_after_the_cursor() {
        let all: Vec<String> = candidates(net("10.1.0.0/29"), None)
            .map(|ip| ip.to_string())
            .collect();
        assert_eq!(
            all,
            ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5", "10.1.0.6"]
        );
        let after: Vec<String> =
            candidates(net("10.1.0.0/29"), Some("10.1.0.4".parse().expect("ip")))
                .map(|ip| ip.to_string())
                .collect();
        assert_eq!(
            after,
            ["10.1.0.5", "10.1.0.6", "10.1.0.2", "10.1.0.3", "10.1.0.4"]
        );
        let from_last =
            candidates(net("10.1.0.0/29"), Some("10.1.0.6".parse().expect("ip"))).next();
        assert_eq!(from_last, Some("10.1.0.2".parse().expect("ip")));
        let outside = candidates(net("10.1.0.0/29"), Some("10.9.0.1".parse().expect("ip"))).next();
        assert_eq!(outside, Some("10.1.0.2".parse().expect("ip")));
    }

    #[test]
    fn reserve_writes_host_local_leases_and_moves_the_cursor_on() {
        let dir = tempfile::tempdir().expect("tempdir");
        let leases = Leases::new(dir.path().join("net"), net("10.1.0.0/24"));
        let a = leases.reserve("a", "eth0").expect("a");
        let b = leases.reserve("b", "eth0").expect("b");
        assert_eq!(
            (a.to_string().as_str(), b.to_string().as_str()),
            ("10.1.0.2", "10.1.0.3")
        );
        let lease = std::fs::read_to_string(dir.path().join("net/10.1.0.2")).expect("lease");
        assert_eq!(lease, "a\r\neth0");
        // A released address is not handed out again straight away.
        leases.release(a, "a").expect("release");
        assert_eq!(
            leases.reserve("c", "eth0").expect("c").to_string(),
            "10.1.0.4"
        );
    }

    #[test]
    fn reserve_skips_addresses_others_hold_and_says_when_the_subnet_is_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let lease_dir = dir.path().join("net");
        std::fs::create_dir_all(&lease_dir).expect("dir");
        std::fs::write(lease_dir.join("10.1.0.2"), "theirs\r\neth0").expect("theirs");
        let leases = Leases::new(lease_dir, net("10.1.0.0/30"));
        // /30: the gateway .1 and one instance address, .2, which is taken.
        let err = leases.reserve("mine", "eth0").expect_err("full");
        assert!(matches!(err, IpamError::Exhausted { .. }), "{err}");
        assert!(err
            .to_string()
            .contains("no free address left in 10.1.0.0/30"));
    }

    #[test]
    fn release_leaves_a_lease_someone_else_holds_and_a_missing_one_alone() {
        let dir = tempfile::tempdir().expect("tempdir");
        let leases = Leases::new(dir.path().join("net"), net("10.1.0.0/24"));
        let ip = leases.reserve("a", "eth0").expect("a");
        leases.release(ip, "b").expect("not b's");
        assert!(dir.path().join("net").join(ip.to_string()).exists());
        leases.release(ip, "a").expect("a's");
        assert!(!dir.path().join("net").join(ip.to_string()).exists());
        leases.release(ip, "a").expect("already gone");
    }
}
