//! Container root filesystems: an overlay of the image's read-only snapshot directories
//! with the container's own upper and work directories, plus the tmpfs behind memory-backed
//! emptyDir volumes.
//!
//! Under runc the overlay is mounted by runc itself, inside the container's new mount
//! namespace ([`prepare_overlay`]); under runsc, which cannot mount an overlay on `/`,
//! the engine mounts it in the host namespace. Either way the mount outlives an engine
//! restart: it belongs to the container, or to the host.

use std::path::{Path, PathBuf};

use rustix::mount::{MountFlags, UnmountFlags};

#[derive(Debug, thiserror::Error)]
pub enum RootfsError {
    #[error("an image needs at least one layer to make a root filesystem")]
    NoLayers,
    #[error("the overlay options for {target} are {len} bytes, over the kernel's limit of a page")]
    OptionsTooLong { target: PathBuf, len: usize },
    #[error("could not prepare {path}: {source}")]
    Prepare {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not mount {target}: {source}")]
    Mount {
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not unmount {target}: {source}")]
    Unmount {
        target: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Mounting, behind a trait so instance logic can be tested without root.
pub trait Mounter: Send + Sync {
    /// Mounts `layers` (lowest first) with `upper`/`work` at `target`.
    fn mount_overlay(
        &self,
        layers: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<(), RootfsError>;
    fn mount_tmpfs(&self, target: &Path, size_bytes: Option<u64>) -> Result<(), RootfsError>;
    /// Detaches the mount at `target`; not mounted is not an error.
    fn unmount(&self, target: &Path) -> Result<(), RootfsError>;
    /// Mount points at or below `dir`.
    fn mounts_under(&self, dir: &Path) -> Vec<PathBuf>;
}

/// The overlay mount options; the kernel wants the top layer first.
pub fn overlay_options(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
) -> Result<String, RootfsError> {
    if layers.is_empty() {
        return Err(RootfsError::NoLayers);
    }
    let lower: Vec<String> = layers
        .iter()
        .rev()
        .map(|p| p.display().to_string())
        .collect();
    Ok(format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    ))
}

/// Prepares an overlay root filesystem: creates the upper, work and `target` directories and
/// returns the overlay's options. Under runc nothing more happens here: the options become
/// the first mount of the container's spec, on `/` (over the empty `target`), so runc mounts
/// it inside the container's own mount namespace. [`HostMounter`] (runsc) mounts it on the
/// host instead.
///
/// Why runc's root is not mounted on the host: every mount in the host namespace is a line of
/// /proc/self/mountinfo, which runc reads several times per start, so with one overlay per
/// running instance each start cost O(instances) and a burst O(n²). Measured on 2 cores,
/// 500 concurrent `runc run -d`: 10.3 s with host overlays, 7.1 s with in-container ones.
///
/// `volatile` (see [`kernel_has_volatile`]) skips the upper filesystem's syncs, so the
/// namespace's teardown does not sync the whole disk; the shim clears its marker before each
/// run ([`clear_volatile_marker`]) so a restarted container mounts the same upper again.
pub fn prepare_overlay(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    target: &Path,
    volatile: bool,
) -> Result<String, RootfsError> {
    let mut options = overlay_options(layers, upper, work)?;
    if volatile {
        options.push_str(",volatile");
    }
    if options.len() >= PAGE {
        return Err(RootfsError::OptionsTooLong {
            target: target.to_path_buf(),
            len: options.len(),
        });
    }
    for dir in [upper, work, target] {
        std::fs::create_dir_all(dir).map_err(|source| RootfsError::Prepare {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    Ok(options)
}

/// Removes the marker a `volatile` overlay leaves in its work directory, without which the
/// kernel refuses to mount the same upper and work directories again. Its meaning is "the
/// upper may have lost writes in a crash"; a container's writable layer accepts that.
pub fn clear_volatile_marker(work: &Path) {
    let _ = std::fs::remove_dir_all(work.join("work/incompat/volatile"));
}

/// Whether a kernel release (`uname -r`) supports overlayfs's `volatile` option (5.10+).
pub fn kernel_has_volatile(release: &str) -> bool {
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (5, 10)
}

/// This host's answer to [`kernel_has_volatile`].
pub fn host_has_volatile() -> bool {
    let uname = rustix::system::uname();
    kernel_has_volatile(&uname.release().to_string_lossy())
}

/// The real mounter.
#[derive(Debug, Default, Clone)]
pub struct HostMounter;

const PAGE: usize = 4096;

impl Mounter for HostMounter {
    fn mount_overlay(
        &self,
        layers: &[PathBuf],
        upper: &Path,
        work: &Path,
        target: &Path,
    ) -> Result<(), RootfsError> {
        // `volatile` is tried below, with a fallback for kernels that refuse it.
        let options = prepare_overlay(layers, upper, work, target, false)?;
        if is_mounted(target) {
            return Ok(());
        }
        // volatile: a container's writable layer needs no durability, and skipping the
        // upper filesystem's syncs makes unmounting cheap. Kernels before 5.10 lack it.
        let volatile = cstring(&format!("{options},volatile"))?;
        let plain = cstring(&options)?;
        let mount = |data: &std::ffi::CStr| {
            rustix::mount::mount(
                "overlay",
                target,
                "overlay",
                MountFlags::empty(),
                Some(data),
            )
        };
        mount(volatile.as_c_str())
            .or_else(|e| {
                if e == rustix::io::Errno::INVAL {
                    mount(plain.as_c_str())
                } else {
                    Err(e)
                }
            })
            .map_err(|e| RootfsError::Mount {
                target: target.to_path_buf(),
                source: e.into(),
            })
    }

    fn mount_tmpfs(&self, target: &Path, size_bytes: Option<u64>) -> Result<(), RootfsError> {
        std::fs::create_dir_all(target).map_err(|source| RootfsError::Prepare {
            path: target.to_path_buf(),
            source,
        })?;
        if is_mounted(target) {
            return Ok(());
        }
        let mut options = "mode=1777".to_string();
        if let Some(size) = size_bytes.filter(|s| *s > 0) {
            options.push_str(&format!(",size={size}"));
        }
        let data = cstring(&options)?;
        rustix::mount::mount(
            "tmpfs",
            target,
            "tmpfs",
            MountFlags::NOSUID | MountFlags::NODEV,
            Some(data.as_c_str()),
        )
        .map_err(|e| RootfsError::Mount {
            target: target.to_path_buf(),
            source: e.into(),
        })
    }

    fn unmount(&self, target: &Path) -> Result<(), RootfsError> {
        // Lazy detach: a process still holding a file open must not make removal fail.
        match rustix::mount::unmount(target, UnmountFlags::DETACH) {
            Ok(()) => Ok(()),
            Err(e) if e == rustix::io::Errno::INVAL || e == rustix::io::Errno::NOENT => Ok(()),
            Err(e) => Err(RootfsError::Unmount {
                target: target.to_path_buf(),
                source: e.into(),
            }),
        }
    }

    fn mounts_under(&self, dir: &Path) -> Vec<PathBuf> {
        mount_points()
            .into_iter()
            .filter(|p| p.starts_with(dir))
            .collect()
    }
}

fn cstring(options: &str) -> Result<std::ffi::CString, RootfsError> {
    std::ffi::CString::new(options).map_err(|e| RootfsError::Prepare {
        path: PathBuf::from(options),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
    })
}

/// Whether `path` is itself a mount point: its device differs from its parent's.
///
/// The engine asks this only of the overlay and tmpfs targets it mounts, and those always get
/// a device of their own. Reading /proc/self/mountinfo instead cost O(mounts) per check, and
/// every instance adds mounts: in a burst of 300 instances that read was ~4% of the machine.
pub fn is_mounted(path: &Path) -> bool {
    let Some(parent) = path.parent() else {
        return false;
    };
    match (rustix::fs::stat(path), rustix::fs::stat(parent)) {
        (Ok(me), Ok(up)) => me.st_dev != up.st_dev,
        _ => false,
    }
}

/// Mount points of this mount namespace, from /proc/self/mountinfo (octal escapes decoded).
fn mount_points() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    text.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|p| PathBuf::from(unescape_mountinfo(p)))
        .collect()
}

fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\'
            && i + 3 < bytes.len()
            && bytes[i + 1..i + 4]
                .iter()
                .all(|b| (b'0'..=b'7').contains(b))
        {
            let v = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(v);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_mount_point_is_told_apart_from_a_plain_directory() {
        assert!(super::is_mounted(std::path::Path::new("/proc")));
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!super::is_mounted(dir.path()));
        assert!(!super::is_mounted(&dir.path().join("missing")));
    }

    use super::*;

    #[test]
    fn overlay_lists_the_top_layer_first() {
        let opts = overlay_options(
            &["/l/base".into(), "/l/top".into()],
            Path::new("/u"),
            Path::new("/w"),
        )
        .expect("opts");
        assert_eq!(opts, "lowerdir=/l/top:/l/base,upperdir=/u,workdir=/w");
    }

    #[test]
    fn overlay_without_layers_is_refused() {
        assert!(matches!(
            overlay_options(&[], Path::new("/u"), Path::new("/w")),
            Err(RootfsError::NoLayers)
        ));
    }

    #[test]
    fn volatile_needs_linux_5_10() {
        assert!(kernel_has_volatile("6.1.0-27-amd64"));
        assert!(kernel_has_volatile("5.10.0"));
        assert!(!kernel_has_volatile("5.4.0-150-generic"));
        assert!(!kernel_has_volatile("4.19.0"));
        assert!(!kernel_has_volatile("garbage"));
    }

    #[test]
    fn an_in_container_overlay_is_prepared_but_not_mounted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (upper, work, target) = (
            dir.path().join("upper"),
            dir.path().join("work"),
            dir.path().join("rootfs"),
        );
        let opts =
            prepare_overlay(&["/l/base".into()], &upper, &work, &target, true).expect("prepared");
        assert_eq!(
            opts,
            format!(
                "lowerdir=/l/base,upperdir={},workdir={},volatile",
                upper.display(),
                work.display()
            )
        );
        assert!(upper.is_dir() && work.is_dir() && target.is_dir());
        assert!(!is_mounted(&target));
        let long: Vec<PathBuf> = (0..200)
            .map(|i| format!("/layers/{i:040}").into())
            .collect();
        assert!(matches!(
            prepare_overlay(&long, &upper, &work, &target, false),
            Err(RootfsError::OptionsTooLong { .. })
        ));
    }

    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(unescape_mountinfo("/a\\040b"), "/a b");
    }
}
