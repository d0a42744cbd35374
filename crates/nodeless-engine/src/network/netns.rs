//! Named network namespaces, made the way `ip netns add` makes them: a new namespace
//! bind-mounted onto a file under /run/netns (a shared mount, so later mount namespaces see
//! it), so it outlives every process and a restarted engine finds it again. Its `lo` is set up
//! as it is made (what the CNI `loopback` plugin would do, without a process). Also running code
//! inside one: each call gets a short-lived thread of its own, since `setns` changes only the
//! calling thread and must never touch the runtime's worker threads.

use std::fs::File;
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

/// `statfs` type of a namespace file (nsfs); i128 holds `f_type` of every width and sign.
const NSFS_MAGIC: i128 = 0x6e73_6673;

#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("prepare netns directory {path}: {source}")]
    PrepareDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("create netns {path}: {source}")]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("netns {path} already exists")]
    Exists { path: PathBuf },
    #[error("remove netns {path}: {source}")]
    Remove {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("enter netns {path}: {source}")]
    Enter {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("connect to 127.0.0.1:{port} in netns {path}: {source}")]
    Connect {
        path: PathBuf,
        port: u16,
        #[source]
        source: io::Error,
    },
    #[error("netns helper thread for {path} died")]
    Thread { path: PathBuf },
}

/// Creating and removing named namespaces; the fake in tests makes plain files.
#[async_trait]
pub trait Namespaces: Send + Sync + std::fmt::Debug {
    async fn create(&self, path: &Path) -> Result<(), NetnsError>;
    /// A second name `to` for the namespace at `from` (a bind mount, as `ip netns attach`).
    async fn bind(&self, from: &Path, to: &Path) -> Result<(), NetnsError>;
    /// Idempotent: a missing or unmounted file is fine.
    async fn remove(&self, path: &Path) -> Result<(), NetnsError>;
    /// Whether `path` is a live namespace (not a stale file left by a reboot).
    fn exists(&self, path: &Path) -> bool;
}

/// The host's namespaces.
#[derive(Debug, Clone)]
pub struct HostNamespaces;

impl HostNamespaces {
    /// Makes `dir` a shared mount point, as `ip netns` does, so namespace mounts in it
    /// propagate to mount namespaces created later.
    pub fn prepare(dir: &Path) -> Result<HostNamespaces, NetnsError> {
        use rustix::mount::{mount_bind, mount_change, MountPropagationFlags as P};
        let err = |source: io::Error| NetnsError::PrepareDir {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        match mount_change(dir, P::SHARED | P::REC) {
            Ok(()) => return Ok(HostNamespaces),
            // EINVAL: not a mount point yet; bind it onto itself first.
            Err(e) if e == rustix::io::Errno::INVAL => {}
            Err(e) => return Err(err(e.into())),
        }
        mount_bind(dir, dir).map_err(|e| err(e.into()))?;
        mount_change(dir, P::SHARED | P::REC).map_err(|e| err(e.into()))?;
        Ok(HostNamespaces)
    }
}

#[async_trait]
impl Namespaces for HostNamespaces {
    async fn create(&self, path: &Path) -> Result<(), NetnsError> {
        if is_netns(path) {
            return Err(NetnsError::Exists {
                path: path.to_path_buf(),
            });
        }
        let owned = path.to_path_buf();
        in_thread(path, move || create_blocking(&owned))
            .await?
            .map_err(|source| NetnsError::Create {
                path: path.to_path_buf(),
                source,
            })
    }

    async fn bind(&self, from: &Path, to: &Path) -> Result<(), NetnsError> {
        if is_netns(to) {
            return Err(NetnsError::Exists {
                path: to.to_path_buf(),
            });
        }
        bind_blocking(from, to).map_err(|source| NetnsError::Create {
            path: to.to_path_buf(),
            source,
        })
    }

    async fn remove(&self, path: &Path) -> Result<(), NetnsError> {
        remove_blocking(path).map_err(|source| NetnsError::Remove {
            path: path.to_path_buf(),
            source,
        })
    }

    fn exists(&self, path: &Path) -> bool {
        is_netns(path)
    }
}

/// Whether a namespace is mounted at `path`.
pub fn is_netns(path: &Path) -> bool {
    rustix::fs::statfs(path)
        .map(|st| i128::from(st.f_type) == NSFS_MAGIC)
        .unwrap_or(false)
}

/// Runs on a fresh thread that exits right after, taking the new namespace membership with it.
fn create_blocking(path: &Path) -> io::Result<()> {
    // A stale file (the namespace died with a reboot while /run/netns is on disk) is reused.
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)?;
    let made = unshare_net()
        .and_then(|()| loopback_up())
        .and_then(|()| no_ipv6_on_new_links())
        .and_then(|()| {
            rustix::mount::mount_bind("/proc/thread-self/ns/net", path).map_err(io::Error::from)
        });
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
}

/// Sets `lo` up in the calling thread's network namespace, as `ip link set lo up` does: one
/// RTM_NEWLINK request over rtnetlink, then its acknowledgement.
///
/// Why not the CNI `loopback` plugin: it is a process start (~4 ms of CPU under load) for
/// one flag, on every instance's start path; here the thread is already in the namespace.
fn loopback_up() -> io::Result<()> {
    use rustix::net::{
        netdevice, recv, send, socket, AddressFamily, RecvFlags, SendFlags, SocketType,
    };
    let sock = socket(AddressFamily::NETLINK, SocketType::RAW, None)?;
    let index = netdevice::name_to_index(&sock, "lo")?;
    send(&sock, &link_up_request(index), SendFlags::empty())?;
    let mut reply = [0u8; 256];
    let (n, _) = recv(&sock, &mut reply, RecvFlags::empty())?;
    ack_error(&reply[..n]).map_or(Ok(()), |errno| Err(io::Error::from_raw_os_error(errno)))
}

/// Interfaces made in this thread's namespace from now on (the CNI `eth0`) get no IPv6; `lo`,
/// made with the namespace, keeps `::1`.
///
/// Why: instances are IPv4-only, yet each IPv6 interface sends multicast listener reports and
/// router solicitations as it comes up, which the bridge floods to every other instance's
/// port: O(instances) per new instance, ~5% of the machine in a 500-instance burst.
fn no_ipv6_on_new_links() -> io::Result<()> {
    // /proc/sys/net is the opening thread's network namespace.
    match std::fs::write("/proc/sys/net/ipv6/conf/default/disable_ipv6", "1") {
        // A kernel without IPv6 has nothing to turn off.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

const RTM_NEWLINK: u16 = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST_ACK: u16 = 0x1 | 0x4;
const IFF_UP: u32 = 0x1;

/// An `nlmsghdr` and an `ifinfomsg` that set IFF_UP on interface `index` (native endian).
fn link_up_request(index: u32) -> [u8; 32] {
    let mut m = [0u8; 32];
    m[0..4].copy_from_slice(&32u32.to_ne_bytes()); // nlmsg_len
    m[4..6].copy_from_slice(&RTM_NEWLINK.to_ne_bytes());
    m[6..8].copy_from_slice(&NLM_F_REQUEST_ACK.to_ne_bytes());
    // nlmsg_seq 1; nlmsg_pid (12..16) stays 0, the kernel.
    m[8..12].copy_from_slice(&1u32.to_ne_bytes());
    // ifinfomsg: family AF_UNSPEC, pad and type stay 0; then index, flags and change mask.
    m[20..24].copy_from_slice(&index.to_ne_bytes());
    m[24..28].copy_from_slice(&IFF_UP.to_ne_bytes());
    m[28..32].copy_from_slice(&IFF_UP.to_ne_bytes());
    m
}

/// The errno of a netlink acknowledgement (`None` for success); a reply that is not one
/// reads as EPROTO.
fn ack_error(reply: &[u8]) -> Option<i32> {
    const EPROTO: i32 = 71;
    let field = |at: usize, len: usize| reply.get(at..at + len);
    let kind = field(4, 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let error = field(16, 4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    match (kind, error) {
        (Some(NLMSG_ERROR), Some(0)) => None,
        (Some(NLMSG_ERROR), Some(e)) => Some(-e),
        _ => Some(EPROTO),
    }
}

fn bind_blocking(from: &Path, to: &Path) -> io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .open(to)?;
    let bound = rustix::mount::mount_bind(from, to).map_err(io::Error::from);
    if bound.is_err() {
        let _ = std::fs::remove_file(to);
    }
    bound
}

fn unshare_net() -> io::Result<()> {
    unshare(rustix::thread::UnshareFlags::NEWNET)
}

/// rustix deprecated its safe `unshare` because `CLONE_FILES` can invalidate descriptors other
/// threads hold; only `CLONE_NEWNET` and `CLONE_NEWNS` are passed here, which cannot.
#[allow(deprecated)]
fn unshare(flags: rustix::thread::UnshareFlags) -> io::Result<()> {
    rustix::thread::unshare(flags).map_err(io::Error::from)
}

/// Moves the calling process into a mount namespace of its own in which the namespace
/// directory holds only `netns`, the instance's own pin. Called by each instance's shim
/// while it is still single-threaded, before it runs the OCI runtime.
///
/// Why: every pin is a mount, and runc reads the whole mount table several times per start
/// (its own and the new container's, a copy of it), so each start cost O(instances): runc
/// took 27 ms of CPU per start on an empty host and 38 ms with 500 pins. Here the table is the
/// host's without the pins. Mounts stay slaves of the host's, so mounts and unmounts made on
/// the host later still reach the runtime, and nothing done here reaches the host.
pub fn keep_only_pin(netns: &Path) -> io::Result<()> {
    use rustix::io::Errno;
    use rustix::mount::{mount_bind, mount_change, unmount, MountPropagationFlags, UnmountFlags};
    use std::os::fd::AsRawFd;
    if !is_netns(netns) {
        return Ok(()); // Not a pin (a test's plain file): nothing to hide it among.
    }
    let Some(dir) = netns.parent() else {
        return Ok(());
    };
    let pin = File::open(netns)?;
    unshare(rustix::thread::UnshareFlags::NEWNS)?;
    mount_change(
        "/",
        MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
    )?;
    match unmount(dir, UnmountFlags::DETACH) {
        Ok(()) => {}
        // Not a mount point of its own: the pins cannot go without the rest; keep the view.
        Err(Errno::INVAL) => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    // The pin files are in the directory itself, so ours is there to mount onto again.
    mount_bind(format!("/proc/self/fd/{}", pin.as_raw_fd()), netns)?;
    Ok(())
}

fn remove_blocking(path: &Path) -> io::Result<()> {
    use rustix::io::Errno;
    match rustix::mount::unmount(path, rustix::mount::UnmountFlags::DETACH) {
        // EINVAL: not mounted (stale file); ENOENT: already gone.
        Ok(()) | Err(Errno::INVAL) | Err(Errno::NOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Runs `f` on a dedicated thread and awaits its answer without blocking the runtime.
async fn in_thread<T: Send + 'static>(
    path: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NetnsError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let spawned = std::thread::Builder::new()
        .name("nodeless-netns".into())
        .spawn(move || {
            let _ = tx.send(f());
        });
    if spawned.is_err() {
        return Err(NetnsError::Thread {
            path: path.to_path_buf(),
        });
    }
    rx.await.map_err(|_| NetnsError::Thread {
        path: path.to_path_buf(),
    })
}

/// Runs `f` inside the network namespace at `netns`: sockets it creates belong to that
/// namespace and keep belonging to it after `f` returns.
pub async fn run_in_netns<T: Send + 'static>(
    netns: &Path,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, NetnsError> {
    let ns = File::open(netns).map_err(|source| NetnsError::Enter {
        path: netns.to_path_buf(),
        source,
    })?;
    let entered = in_thread(netns, move || {
        rustix::thread::move_into_link_name_space(
            ns.as_fd(),
            Some(rustix::thread::LinkNameSpaceType::Network),
        )
        .map(|()| f())
    })
    .await?;
    entered.map_err(|e| NetnsError::Enter {
        path: netns.to_path_buf(),
        source: e.into(),
    })
}

/// A TCP connection to 127.0.0.1:`port` inside the instance's namespace (port-forward, probes).
pub async fn connect_in_netns(
    netns: &Path,
    port: u16,
) -> Result<tokio::net::TcpStream, NetnsError> {
    let connect = move || {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let stream = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(10))?;
        stream.set_nonblocking(true)?;
        Ok::<_, io::Error>(stream)
    };
    let err = |source: io::Error| NetnsError::Connect {
        path: netns.to_path_buf(),
        port,
        source,
    };
    let stream = run_in_netns(netns, connect).await?.map_err(err)?;
    tokio::net::TcpStream::from_std(stream).map_err(err)
}

/// Instance ids of the namespaces in `dir` named `<prefix><id>`.
pub fn list_named(dir: &Path, prefix: &str) -> io::Result<Vec<String>> {
    let entries = match std::fs::read_dir(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        other => other?,
    };
    let mut ids = Vec::new();
    for entry in entries {
        let name = entry?.file_name();
        if let Some(id) = name.to_str().and_then(|n| n.strip_prefix(prefix)) {
            ids.push(id.to_string());
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_up_request_is_a_newlink_asking_for_an_ack() {
        let m = link_up_request(1);
        assert_eq!(u32::from_ne_bytes(m[0..4].try_into().expect("len")), 32);
        assert_eq!(u16::from_ne_bytes([m[4], m[5]]), RTM_NEWLINK);
        assert_eq!(u16::from_ne_bytes([m[6], m[7]]), NLM_F_REQUEST_ACK);
        assert_eq!(u32::from_ne_bytes(m[20..24].try_into().expect("index")), 1);
        assert_eq!(
            u32::from_ne_bytes(m[24..28].try_into().expect("flags")),
            IFF_UP
        );
        assert_eq!(
            u32::from_ne_bytes(m[28..32].try_into().expect("change")),
            IFF_UP
        );
    }

    #[test]
    fn acks_are_told_from_errors_and_from_garbage() {
        let reply = |kind: u16, error: i32| {
            let mut r = vec![0u8; 36];
            r[4..6].copy_from_slice(&kind.to_ne_bytes());
            r[16..20].copy_from_slice(&error.to_ne_bytes());
            r
        };
        assert_eq!(ack_error(&reply(NLMSG_ERROR, 0)), None);
        assert_eq!(ack_error(&reply(NLMSG_ERROR, -1)), Some(1));
        assert_eq!(ack_error(&reply(16, 0)), Some(71));
        assert_eq!(ack_error(&[0u8; 3]), Some(71));
    }

    #[test]
    fn a_new_namespace_has_its_loopback_up() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped: needs root (a network namespace)");
            return;
        }
        let echo = || -> io::Result<u8> {
            let probe = std::net::UdpSocket::bind("127.0.0.1:0")?;
            probe.set_read_timeout(Some(Duration::from_secs(1)))?;
            probe.send_to(b"x", probe.local_addr()?)?;
            let mut buf = [0u8; 1];
            probe.recv(&mut buf).map(|_| buf[0])
        };
        let host_ipv6 =
            || std::fs::read_to_string("/proc/sys/net/ipv6/conf/default/disable_ipv6").ok();
        let host_before = host_ipv6();
        let (before, up, ipv6) = std::thread::spawn(move || {
            unshare_net().expect("unshare");
            let before = echo();
            loopback_up().expect("lo up");
            no_ipv6_on_new_links().expect("sysctl");
            let read = |path: &str| std::fs::read_to_string(path).unwrap_or_default();
            let ipv6 = (
                read("/proc/sys/net/ipv6/conf/default/disable_ipv6"),
                read("/proc/sys/net/ipv6/conf/lo/disable_ipv6"),
            );
            (before, echo(), ipv6)
        })
        .join()
        .expect("thread");
        assert!(before.is_err(), "a new namespace starts with lo down");
        if !ipv6.0.is_empty() {
            assert_eq!((ipv6.0.trim(), ipv6.1.trim()), ("1", "0"), "new links only");
        }
        // The host's own namespace is untouched.
        assert_eq!(host_ipv6(), host_before);
        assert_eq!(up.expect("loopback traffic in the new namespace"), b'x');
    }
}
