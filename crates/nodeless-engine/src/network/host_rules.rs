//! The network's host firewall rules (masquerading and FORWARD accepts), checked when a network
//! opens: every `nodeless runtime` command opens one, and two `iptables -S` runs cost ~8 ms
//! of a ~60 ms `run --rm`.
//!
//! With nftables-backed iptables (Debian's default) the kernel numbers every ruleset change
//! (the nftables generation id). After a check found (or made) the rules right, the state dir
//! remembers that generation; while the kernel still reports it, the ruleset is the one that
//! was checked and the check is skipped. Any change to any rule, by anyone, means a new
//! generation and a full check. Legacy iptables has no such counter: always checked.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use ipnet::Ipv4Net;

use super::config::NetworkConfig;
use super::forward;
use super::masquerade::{self, Iptables, IptablesError};

/// Where the state dir remembers the checked rules.
const STAMP: &str = "host-rules.checked";

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWGEN: u16 = 15;
const NFT_MSG_GETGEN: u16 = 16;
const NFTA_GEN_ID: u16 = 1;

/// Makes the host's rules what `cfg` wants, skipping the check when nothing changed since
/// the last one (see the module doc).
pub(super) fn apply(
    ipt: &dyn Iptables,
    cfg: &NetworkConfig,
    subnet: Ipv4Net,
) -> Result<(), IptablesError> {
    let stamp_path = cfg.state_dir.join(STAMP);
    let wanted = Wanted::new(cfg, subnet);
    let stamp = |generation: u32| wanted.stamp(generation);
    let generation = || uses_nftables().then(nft_generation).flatten();
    if let Some(now) = generation() {
        if std::fs::read_to_string(&stamp_path).ok().as_deref() == Some(stamp(now).as_str()) {
            return Ok(());
        }
    }
    // A generation read before a check that changed nothing vouches for the rules; one the
    // check itself moved (it fixed the rules) needs one more, quiet, round.
    for _ in 0..2 {
        let before = generation();
        masquerade::apply(ipt, &cfg.name, subnet, cfg.masquerade)?;
        forward::apply(ipt, &cfg.name, &cfg.bridge, true)?;
        let Some(before) = before else {
            return Ok(());
        };
        if generation() == Some(before) {
            write_stamp(&stamp_path, &stamp(before));
            return Ok(());
        }
    }
    let _ = std::fs::remove_file(&stamp_path);
    Ok(())
}

/// What the check is about: the rules wanted, on this boot.
struct Wanted(String);

impl Wanted {
    fn new(cfg: &NetworkConfig, subnet: Ipv4Net) -> Self {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        Wanted(format!(
            "boot {}\nnetwork {}\nbridge {}\nsubnet {subnet}\nmasquerade {}\n",
            boot.trim(),
            cfg.name,
            cfg.bridge,
            cfg.masquerade
        ))
    }

    fn stamp(&self, generation: u32) -> String {
        format!("{}generation {generation}\n", self.0)
    }
}

/// A cache: losing it costs one check, so no fsync.
fn write_stamp(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    if std::fs::write(&tmp, text).is_ok() && std::fs::rename(&tmp, path).is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
}

/// Whether the `iptables` on `$PATH` is the nftables one (`xtables-nft-multi`).
fn uses_nftables() -> bool {
    let dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.iter()
        .map(|d| d.join("iptables"))
        .find(|p| p.exists())
        .and_then(|p| std::fs::canonicalize(p).ok())
        .is_some_and(|real| {
            real.file_name()
                .is_some_and(|n| n.to_string_lossy().contains("nft"))
        })
}

/// The nftables ruleset generation of our network namespace: one NFT_MSG_GETGEN over
/// netfilter netlink. `None` when the kernel does not answer it.
fn nft_generation() -> Option<u32> {
    use rustix::net::{
        netlink, recv, send, socket, AddressFamily, RecvFlags, SendFlags, SocketType,
    };
    const NLM_F_REQUEST: u16 = 1;
    const HEADER: usize = 16 + 4; // nlmsghdr + nfgenmsg
    let sock = socket(
        AddressFamily::NETLINK,
        SocketType::RAW,
        Some(netlink::NETFILTER),
    )
    .ok()?;
    let mut req = Vec::with_capacity(HEADER);
    req.extend_from_slice(&(HEADER as u32).to_ne_bytes());
    req.extend_from_slice(&((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN).to_ne_bytes());
    req.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    req.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel fills it in
    req.extend_from_slice(&[0, 0, 0, 0]); // family unspec, version 0, resource id 0
    send(sock.as_fd(), &req, SendFlags::empty()).ok()?;
    let mut buf = [0u8; 512];
    let (n, _) = recv(sock.as_fd(), &mut buf[..], RecvFlags::empty()).ok()?;
    parse_generation(&buf[..n.min(buf.len())])
}

/// NFTA_GEN_ID of a NEWGEN reply.
fn parse_generation(reply: &[u8]) -> Option<u32> {
    let u16_at = |i: usize| Some(u16::from_ne_bytes(reply.get(i..i + 2)?.try_into().ok()?));
    let len = u32::from_ne_bytes(reply.get(0..4)?.try_into().ok()?) as usize;
    if u16_at(4)? != (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN || len > reply.len() {
        return None;
    }
    let mut at = 20;
    while at + 4 <= len {
        let attr_len = u16_at(at)? as usize;
        let attr_type = u16_at(at + 2)? & 0x3fff; // without the nested/byte-order flags
        if attr_len < 4 {
            return None;
        }
        if attr_type == NFTA_GEN_ID {
            return Some(u32::from_be_bytes(
                reply.get(at + 4..at + 8)?.try_into().ok()?,
            ));
        }
        at += (attr_len + 3) & !3;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_read_from_a_newgen_reply() {
        // As the kernel answered on a test host: NEWGEN, id 0x1fec, pid, process name.
        let reply = hex("300000000f0a000001000000da36000000001fec0800010000001fec\
                         08000200000036da0c000300707974686f6e3300");
        assert_eq!(parse_generation(&reply), Some(0x1fec));
    }

    #[test]
    fn other_replies_have_no_generation() {
        // EINVAL for an unknown message type.
        let error = hex("280000000200000001000000da360000eaffffff14000000630a0100\
                         010000000000000000000000");
        assert_eq!(parse_generation(&error), None);
        assert_eq!(parse_generation(&[]), None);
    }

    #[test]
    fn stamps_differ_by_rules_and_generation() {
        let mut cfg = NetworkConfig::new("/tmp/x");
        let subnet: Ipv4Net = "10.88.0.0/16".parse().expect("net");
        let a = Wanted::new(&cfg, subnet).stamp(7);
        assert_ne!(a, Wanted::new(&cfg, subnet).stamp(8));
        cfg.masquerade = false;
        assert_ne!(a, Wanted::new(&cfg, subnet).stamp(7));
    }

    #[test]
    fn this_hosts_generation_does_not_move_by_itself() {
        // Only meaningful where nftables answers (root, or any user in most kernels).
        if let Some(first) = nft_generation() {
            assert_eq!(nft_generation(), Some(first));
        }
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }
}
