//! Named network namespaces, made the way `ip netns add` makes them: a new namespace
//! bind-mounted onto a file under /run/netns (a shared mount, so later mount namespaces see
//! it), so it outlives every process and a restarted engine finds it again. Also running code
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
    let made = unshare_net().and_then(|()| {
        rustix::mount::mount_bind("/proc/thread-self/ns/net", path).map_err(io::Error::from)
    });
    if made.is_err() {
        let _ = std::fs::remove_file(path);
    }
    made
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

/// rustix deprecated its safe `unshare` because `CLONE_FILES` can invalidate descriptors other
/// threads hold; only `CLONE_NEWNET` is passed here, which cannot.
#[allow(deprecated)]
fn unshare_net() -> io::Result<()> {
    rustix::thread::unshare(rustix::thread::UnshareFlags::NEWNET).map_err(io::Error::from)
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
