//! Unpacking one layer tarball into a snapshot directory that overlayfs can use as a lower layer.
//!
//! Layers come from registries and are hostile until proven otherwise, so no entry may leave the
//! snapshot: paths with `..` are refused, absolute paths are taken relative to the snapshot (as
//! Docker and containerd do), nothing is ever written through a symbolic link (a parent that is a
//! link is refused; a final component that is one is replaced), hard links must point to an
//! earlier entry of the same layer, and device nodes are not created. Symbolic links are stored
//! verbatim: they are resolved inside the container's root at run time, never by us.
//!
//! OCI whiteouts become overlayfs's own: `dir/.wh.name` a 0/0 character device `dir/name`, and
//! `dir/.wh..wh..opq` the `trusted.overlay.opaque=y` attribute on `dir` (as containerd's overlay
//! snapshotter lays them out). Both need root.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fs::{self, File};
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use rustix::fs::{AtFlags, FileType, Mode, OFlags, Timespec, Timestamps, XattrFlags, CWD};
use rustix::process::{Gid, Uid};
use sha2::{Digest as _, Sha256};

const WHITEOUT_PREFIX: &str = ".wh.";
const OPAQUE_MARKER: &str = ".wh..wh..opq";
const OVERLAY_OPAQUE_XATTR: &str = "trusted.overlay.opaque";

#[derive(Debug, Clone, thiserror::Error)]
pub enum UnpackError {
    #[error("reading the layer: {0}")]
    Read(#[source] Arc<io::Error>),
    #[error("entry {0:?} escapes the snapshot")]
    Escapes(String),
    #[error("entry {path:?} would be written through the symbolic link {link:?}")]
    ThroughSymlink { path: String, link: String },
    #[error("entry {path:?} needs {parent:?} to be a directory")]
    NotADirectory { path: String, parent: String },
    #[error("hard link {path:?} to {target:?}: {reason}")]
    BadHardLink {
        path: String,
        target: String,
        reason: &'static str,
    },
    #[error("invalid whiteout {0:?}")]
    BadWhiteout(String),
    #[error("writing {path:?}: {source}")]
    Write {
        path: String,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("the uncompressed layer is {actual}, the image config says {expected}")]
    DiffIdMismatch { expected: String, actual: String },
}

fn read_error(e: io::Error) -> UnpackError {
    UnpackError::Read(Arc::new(e))
}

/// What unpacking did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnpackStats {
    pub entries: u64,
    /// Bytes of regular file content written.
    pub bytes: u64,
    pub whiteouts: u64,
    pub devices_refused: u64,
    /// `sha256:…` of the uncompressed tar.
    pub diff_id: String,
}

/// Unpacks the layer blob at `blob` (plain, gzip or zstd tar, told apart by content) into the
/// existing empty directory `dest`, then flushes it to disk. When `expected_diff_id` is given the
/// uncompressed stream must hash to it.
pub fn unpack_layer(
    blob: &Path,
    dest: &Path,
    expected_diff_id: Option<&str>,
) -> Result<UnpackStats, UnpackError> {
    let file = File::open(blob).map_err(read_error)?;
    let hashing = HashingReader {
        inner: decompressor(file).map_err(read_error)?,
        hasher: Sha256::new(),
    };
    let mut archive = tar::Archive::new(hashing);
    let mut unpacker = Unpacker::new(dest);
    for entry in archive.entries().map_err(read_error)? {
        let mut entry = entry.map_err(read_error)?;
        unpacker.entry(&mut entry)?;
    }
    // The diff id covers the whole stream, including the padding after the end-of-archive marker.
    let mut rest = archive.into_inner();
    io::copy(&mut rest, &mut io::sink()).map_err(read_error)?;
    let diff_id = format!("sha256:{:x}", rest.hasher.finalize());
    if let Some(expected) = expected_diff_id.filter(|e| *e != diff_id) {
        return Err(UnpackError::DiffIdMismatch {
            expected: expected.to_string(),
            actual: diff_id,
        });
    }
    unpacker.finish_dirs()?;
    let dir = File::open(dest).map_err(|e| unpacker.write_error(dest, e))?;
    rustix::fs::syncfs(&dir).map_err(|e| unpacker.write_error(dest, e.into()))?;
    Ok(UnpackStats {
        diff_id,
        ..unpacker.stats
    })
}

fn decompressor(file: File) -> io::Result<Box<dyn Read>> {
    let mut reader = BufReader::with_capacity(256 * 1024, file);
    let head = reader.fill_buf()?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        // Multi-member: pigz and eStargz write several gzip members.
        Box::new(flate2::read::MultiGzDecoder::new(reader))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(reader)?)
    } else {
        Box::new(reader)
    })
}

struct HashingReader {
    inner: Box<dyn Read>,
    hasher: Sha256,
}

impl Read for HashingReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Ownership, mode and time of an entry, applied after its content.
#[derive(Clone, Copy)]
struct Meta {
    uid: u32,
    gid: u32,
    mode: u32,
    mtime: i64,
}

impl Meta {
    fn of(header: &tar::Header) -> Meta {
        Meta {
            uid: header
                .uid()
                .ok()
                .and_then(|u| u32::try_from(u).ok())
                .unwrap_or(0),
            gid: header
                .gid()
                .ok()
                .and_then(|g| u32::try_from(g).ok())
                .unwrap_or(0),
            mode: header.mode().unwrap_or(0o644) & 0o7777,
            mtime: header
                .mtime()
                .ok()
                .and_then(|t| i64::try_from(t).ok())
                .unwrap_or(0),
        }
    }

    fn times(&self) -> Timestamps {
        let t = Timespec {
            tv_sec: self.mtime,
            tv_nsec: 0,
        };
        Timestamps {
            last_access: t,
            last_modification: t,
        }
    }
}

struct Unpacker<'a> {
    root: &'a Path,
    /// Directories known to exist and not to be links, relative to `root`.
    known_dirs: HashSet<PathBuf>,
    /// Directory metadata, applied last so that creating entries inside does not disturb it.
    dirs: HashMap<PathBuf, Meta>,
    as_root: bool,
    stats: UnpackStats,
}

impl<'a> Unpacker<'a> {
    fn new(root: &'a Path) -> Self {
        Unpacker {
            root,
            known_dirs: HashSet::from([PathBuf::new()]),
            dirs: HashMap::new(),
            as_root: rustix::process::geteuid().is_root(),
            stats: UnpackStats::default(),
        }
    }

    fn write_error(&self, path: &Path, e: io::Error) -> UnpackError {
        let shown = path.strip_prefix(self.root).unwrap_or(path);
        UnpackError::Write {
            path: shown.display().to_string(),
            source: Arc::new(e),
        }
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), UnpackError> {
        let raw = entry.path().map_err(read_error)?.into_owned();
        let shown = raw.display().to_string();
        let rel = clean_path(&raw).ok_or_else(|| UnpackError::Escapes(shown.clone()))?;
        self.stats.entries += 1;
        let meta = Meta::of(entry.header());
        let kind = entry.header().entry_type();
        let Some(name) = rel.file_name().map(OsStr::to_owned) else {
            // The layer's root directory itself.
            if kind.is_dir() {
                self.dirs.insert(PathBuf::new(), meta);
            }
            return Ok(());
        };
        let parent = rel.parent().unwrap_or(Path::new("")).to_path_buf();
        if let Some(hidden) = name.as_bytes().strip_prefix(WHITEOUT_PREFIX.as_bytes()) {
            return self.whiteout(&parent, &name, hidden, &shown);
        }
        self.ensure_dirs(&parent, &shown)?;
        let abs = self.root.join(&rel);
        match kind {
            tar::EntryType::Directory => self.directory(&rel, &abs, meta),
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                let xattrs = allowed_xattrs(entry);
                self.regular(entry, &abs, meta, &xattrs)
            }
            tar::EntryType::Symlink => {
                let target = entry.link_name().map_err(read_error)?.ok_or_else(|| {
                    read_error(io::Error::other(format!(
                        "symbolic link {shown:?} has no target"
                    )))
                })?;
                self.symlink(&abs, &target, meta)
            }
            tar::EntryType::Link => {
                let target = entry
                    .link_name()
                    .map_err(read_error)?
                    .map(|t| t.into_owned());
                self.hard_link(&abs, target.as_deref(), &shown)
            }
            tar::EntryType::Fifo => self.fifo(&abs, meta),
            tar::EntryType::Char | tar::EntryType::Block => {
                tracing::warn!(entry = %shown, "refusing a device node in an image layer");
                self.stats.devices_refused += 1;
                Ok(())
            }
            // PAX and GNU long-name headers are consumed by the tar reader; anything else is not
            // a file system object.
            _ => Ok(()),
        }
    }

    /// Creates the missing directories of `dir` (relative), refusing links and non-directories.
    fn ensure_dirs(&mut self, dir: &Path, shown: &str) -> Result<(), UnpackError> {
        if self.known_dirs.contains(dir) {
            return Ok(());
        }
        let mut prefix = PathBuf::new();
        for component in dir.components() {
            prefix.push(component);
            if self.known_dirs.contains(&prefix) {
                continue;
            }
            let abs = self.root.join(&prefix);
            match fs::symlink_metadata(&abs) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    let link = prefix.display().to_string();
                    return Err(UnpackError::ThroughSymlink {
                        path: shown.to_string(),
                        link,
                    });
                }
                Ok(_) => {
                    let parent = prefix.display().to_string();
                    return Err(UnpackError::NotADirectory {
                        path: shown.to_string(),
                        parent,
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&abs).map_err(|e| self.write_error(&abs, e))?;
                }
                Err(e) => return Err(self.write_error(&abs, e)),
            }
            self.known_dirs.insert(prefix.clone());
        }
        Ok(())
    }

    /// Clears whatever an earlier entry left at `abs`; a directory stays when `keep_dir`.
    fn remove_existing(&mut self, abs: &Path, keep_dir: bool) -> Result<(), UnpackError> {
        match fs::symlink_metadata(abs) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.write_error(abs, e)),
            Ok(m) if m.is_dir() && keep_dir => Ok(()),
            Ok(m) if m.is_dir() => {
                // Forget every directory at or under it; remove_dir_all does not follow links.
                let rel = abs.strip_prefix(self.root).unwrap_or(abs).to_path_buf();
                self.known_dirs.retain(|d| !d.starts_with(&rel));
                self.dirs.retain(|d, _| !d.starts_with(&rel));
                fs::remove_dir_all(abs).map_err(|e| self.write_error(abs, e))
            }
            Ok(_) => fs::remove_file(abs).map_err(|e| self.write_error(abs, e)),
        }
    }

    fn whiteout(
        &mut self,
        parent: &Path,
        name: &OsStr,
        hidden: &[u8],
        shown: &str,
    ) -> Result<(), UnpackError> {
        self.ensure_dirs(parent, shown)?;
        let dir = self.root.join(parent);
        if name == OPAQUE_MARKER {
            self.stats.whiteouts += 1;
            return rustix::fs::lsetxattr(&dir, OVERLAY_OPAQUE_XATTR, b"y", XattrFlags::empty())
                .map_err(|e| self.write_error(&dir, e.into()));
        }
        if hidden.starts_with(WHITEOUT_PREFIX.as_bytes()) {
            // Other `.wh..wh.` names are aufs bookkeeping, not files.
            return Ok(());
        }
        if hidden.is_empty() || hidden == b"." || hidden == b".." {
            return Err(UnpackError::BadWhiteout(shown.to_string()));
        }
        let abs = dir.join(OsStr::from_bytes(hidden));
        self.remove_existing(&abs, false)?;
        rustix::fs::mknodat(
            CWD,
            &abs,
            FileType::CharacterDevice,
            Mode::empty(),
            rustix::fs::makedev(0, 0),
        )
        .map_err(|e| self.write_error(&abs, e.into()))?;
        self.stats.whiteouts += 1;
        Ok(())
    }

    fn directory(&mut self, rel: &Path, abs: &Path, meta: Meta) -> Result<(), UnpackError> {
        self.remove_existing(abs, true)?;
        if !abs.is_dir() {
            fs::create_dir(abs).map_err(|e| self.write_error(abs, e))?;
        }
        self.known_dirs.insert(rel.to_path_buf());
        self.dirs.insert(rel.to_path_buf(), meta);
        Ok(())
    }

    fn regular<R: Read>(
        &mut self,
        entry: &mut tar::Entry<R>,
        abs: &Path,
        meta: Meta,
        xattrs: &[(String, Vec<u8>)],
    ) -> Result<(), UnpackError> {
        self.remove_existing(abs, false)?;
        let flags =
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(abs, flags, Mode::from_raw_mode(0o600))
            .map_err(|e| self.write_error(abs, e.into()))?;
        let mut file = File::from(fd);
        let copied = io::copy(entry, &mut file).map_err(read_error)?;
        self.stats.bytes += copied;
        let apply = || -> io::Result<()> {
            if self.as_root {
                // Before chmod: chown clears set-id bits.
                rustix::fs::fchown(&file, Some(uid(meta.uid)), Some(gid(meta.gid)))?;
            }
            rustix::fs::fchmod(&file, Mode::from_raw_mode(meta.mode))?;
            for (name, value) in xattrs {
                rustix::fs::fsetxattr(&file, name.as_str(), value, XattrFlags::empty())?;
            }
            rustix::fs::futimens(&file, &meta.times())?;
            Ok(())
        };
        apply().map_err(|e| self.write_error(abs, e))
    }

    fn symlink(&mut self, abs: &Path, target: &Path, meta: Meta) -> Result<(), UnpackError> {
        self.remove_existing(abs, false)?;
        std::os::unix::fs::symlink(target, abs).map_err(|e| self.write_error(abs, e))?;
        let apply = || -> io::Result<()> {
            if self.as_root {
                let (u, g) = (Some(uid(meta.uid)), Some(gid(meta.gid)));
                rustix::fs::chownat(CWD, abs, u, g, AtFlags::SYMLINK_NOFOLLOW)?;
            }
            rustix::fs::utimensat(CWD, abs, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)?;
            Ok(())
        };
        apply().map_err(|e| self.write_error(abs, e))
    }

    fn hard_link(
        &mut self,
        abs: &Path,
        target: Option<&Path>,
        shown: &str,
    ) -> Result<(), UnpackError> {
        let target_shown = target.map(|t| t.display().to_string()).unwrap_or_default();
        let bad = |reason| UnpackError::BadHardLink {
            path: shown.to_string(),
            target: target_shown.clone(),
            reason,
        };
        let rel = target
            .and_then(clean_path)
            .ok_or_else(|| bad("it points outside the snapshot"))?;
        if rel.as_os_str().is_empty() {
            return Err(bad("it points at the snapshot root"));
        }
        // The target's directories must already be real directories of this layer.
        let mut prefix = PathBuf::new();
        for component in rel.parent().unwrap_or(Path::new("")).components() {
            prefix.push(component);
            match fs::symlink_metadata(self.root.join(&prefix)) {
                Ok(m) if m.is_dir() => {}
                Ok(m) if m.file_type().is_symlink() => {
                    return Err(bad("its path goes through a symbolic link"))
                }
                _ => return Err(bad("it is not an earlier entry of this layer")),
            }
        }
        let target_abs = self.root.join(&rel);
        match fs::symlink_metadata(&target_abs) {
            Ok(m) if m.is_dir() => return Err(bad("it is a directory")),
            Ok(_) => {}
            Err(_) => return Err(bad("it is not an earlier entry of this layer")),
        }
        if target_abs == abs {
            return Ok(());
        }
        self.remove_existing(abs, false)?;
        // link(2) does not follow a symbolic link target: the link itself is linked.
        fs::hard_link(&target_abs, abs).map_err(|e| self.write_error(abs, e))
    }

    fn fifo(&mut self, abs: &Path, meta: Meta) -> Result<(), UnpackError> {
        self.remove_existing(abs, false)?;
        let apply = || -> io::Result<()> {
            rustix::fs::mknodat(CWD, abs, FileType::Fifo, Mode::from_raw_mode(0o600), 0)?;
            if self.as_root {
                rustix::fs::chownat(
                    CWD,
                    abs,
                    Some(uid(meta.uid)),
                    Some(gid(meta.gid)),
                    AtFlags::SYMLINK_NOFOLLOW,
                )?;
            }
            rustix::fs::chmodat(CWD, abs, Mode::from_raw_mode(meta.mode), AtFlags::empty())?;
            rustix::fs::utimensat(CWD, abs, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)?;
            Ok(())
        };
        apply().map_err(|e| self.write_error(abs, e))
    }

    /// Applies directory ownership, modes and times, deepest first so that setting a parent's
    /// time is not undone by work in a child.
    fn finish_dirs(&mut self) -> Result<(), UnpackError> {
        let mut dirs: Vec<(PathBuf, Meta)> = self.dirs.drain().collect();
        dirs.sort_by_key(|(p, _)| std::cmp::Reverse(p.components().count()));
        for (rel, meta) in dirs {
            let abs = self.root.join(&rel);
            let apply = || -> io::Result<()> {
                if self.as_root {
                    rustix::fs::chownat(
                        CWD,
                        &abs,
                        Some(uid(meta.uid)),
                        Some(gid(meta.gid)),
                        AtFlags::SYMLINK_NOFOLLOW,
                    )?;
                }
                rustix::fs::chmodat(CWD, &abs, Mode::from_raw_mode(meta.mode), AtFlags::empty())?;
                rustix::fs::utimensat(CWD, &abs, &meta.times(), AtFlags::SYMLINK_NOFOLLOW)?;
                Ok(())
            };
            apply().map_err(|e| self.write_error(&abs, e))?;
        }
        Ok(())
    }
}

fn uid(raw: u32) -> Uid {
    Uid::from_raw(raw)
}

fn gid(raw: u32) -> Gid {
    Gid::from_raw(raw)
}

/// A tar path made relative to the snapshot root: `/` and `.` components dropped, `None` when a
/// `..` appears (even one that would stay inside: the path means something else once links are
/// involved, and no honest tool writes it).
fn clean_path(raw: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for component in raw.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

/// File attributes from PAX `SCHILY.xattr.` records that a layer may set: `user.*` and file
/// capabilities. `trusted.*` (which would forge overlay whiteouts) and security labels are not.
fn allowed_xattrs<R: Read>(entry: &mut tar::Entry<R>) -> Vec<(String, Vec<u8>)> {
    let Ok(Some(extensions)) = entry.pax_extensions() else {
        return Vec::new();
    };
    extensions
        .filter_map(Result::ok)
        .filter_map(|ext| {
            let name = ext.key().ok()?.strip_prefix("SCHILY.xattr.")?.to_string();
            let allowed = name.starts_with("user.") || name == "security.capability";
            allowed.then(|| (name, ext.value_bytes().to_vec()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_made_relative_and_parent_components_are_refused() {
        assert_eq!(
            clean_path(Path::new("/etc/evil")),
            Some(PathBuf::from("etc/evil"))
        );
        assert_eq!(
            clean_path(Path::new("./a//b/./c")),
            Some(PathBuf::from("a/b/c"))
        );
        assert_eq!(clean_path(Path::new("./")), Some(PathBuf::new()));
        assert_eq!(clean_path(Path::new("../escape")), None);
        assert_eq!(clean_path(Path::new("a/../../escape")), None);
        assert_eq!(clean_path(Path::new("a/../b")), None);
    }
}
