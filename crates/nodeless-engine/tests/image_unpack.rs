//! Layer unpacking against crafted tarballs: hostile entries that try to leave the snapshot, and
//! the overlayfs whiteout format. Root only (ownership, whiteout devices, trusted xattrs).

use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use nodeless_engine::image::{unpack_layer, UnpackError};

fn skip_unless_root(test: &str) -> bool {
    if rustix::process::geteuid().is_root() {
        return false;
    }
    eprintln!("skipping {test}: needs root (ownership, whiteout devices, trusted xattrs)");
    true
}

/// One tar entry, written with raw headers so that hostile names survive (tar::Builder refuses
/// `..`, as it should).
enum Entry<'a> {
    File(&'a str, &'a [u8]),
    FileWith {
        path: &'a str,
        data: &'a [u8],
        mode: u32,
        uid: u64,
        gid: u64,
        mtime: u64,
    },
    Dir(&'a str),
    Symlink(&'a str, &'a str),
    HardLink(&'a str, &'a str),
    CharDevice(&'a str),
    PaxXattrDir(&'a str, &'a str, &'a [u8]),
}

fn header(path: &str, kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    let name = &mut h.as_gnu_mut().expect("gnu header").name;
    assert!(path.len() < name.len(), "test path too long");
    name[..path.len()].copy_from_slice(path.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(1_600_000_000);
    h
}

fn set_link(h: &mut tar::Header, target: &str) {
    let link = &mut h.as_gnu_mut().expect("gnu header").linkname;
    link[..target.len()].copy_from_slice(target.as_bytes());
}

fn tar(entries: &[Entry]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    for entry in entries {
        match entry {
            Entry::File(path, data) => {
                let mut h = header(path, tar::EntryType::Regular, data.len() as u64, 0o644);
                h.set_cksum();
                b.append(&h, *data).expect("append");
            }
            Entry::FileWith {
                path,
                data,
                mode,
                uid,
                gid,
                mtime,
            } => {
                let mut h = header(path, tar::EntryType::Regular, data.len() as u64, *mode);
                h.set_uid(*uid);
                h.set_gid(*gid);
                h.set_mtime(*mtime);
                h.set_cksum();
                b.append(&h, *data).expect("append");
            }
            Entry::Dir(path) => {
                let mut h = header(path, tar::EntryType::Directory, 0, 0o755);
                h.set_cksum();
                b.append(&h, &[][..]).expect("append");
            }
            Entry::Symlink(path, target) | Entry::HardLink(path, target) => {
                let kind = if matches!(entry, Entry::Symlink(..)) {
                    tar::EntryType::Symlink
                } else {
                    tar::EntryType::Link
                };
                let mut h = header(path, kind, 0, 0o777);
                set_link(&mut h, target);
                h.set_cksum();
                b.append(&h, &[][..]).expect("append");
            }
            Entry::CharDevice(path) => {
                let mut h = header(path, tar::EntryType::Char, 0, 0o600);
                h.set_device_major(8).expect("major");
                h.set_device_minor(0).expect("minor");
                h.set_cksum();
                b.append(&h, &[][..]).expect("append");
            }
            Entry::PaxXattrDir(path, name, value) => {
                let key = format!("SCHILY.xattr.{name}");
                b.append_pax_extensions([(key.as_str(), *value)])
                    .expect("pax");
                let mut h = header(path, tar::EntryType::Directory, 0, 0o755);
                h.set_cksum();
                b.append(&h, &[][..]).expect("append");
            }
        }
    }
    b.into_inner().expect("tar")
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

/// A sandbox: `outside/` is what a hostile layer must not reach; `snap/fs` is the snapshot.
struct Setup {
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Setup {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join("snap/fs")).expect("snapshot dir");
        Setup { dir }
    }

    fn fs(&self) -> PathBuf {
        self.dir.path().join("snap/fs")
    }

    fn unpack(&self, layer: &[u8]) -> Result<nodeless_engine::image::UnpackStats, UnpackError> {
        let blob = self.dir.path().join("layer.blob");
        fs::write(&blob, layer).expect("write layer");
        unpack_layer(&blob, &self.fs(), None)
    }

    fn fresh(&self) {
        let _ = fs::remove_dir_all(self.fs());
        fs::create_dir_all(self.fs()).expect("snapshot dir");
    }
}

fn sha(path: &Path) -> Vec<u8> {
    fs::read(path).expect("read")
}

#[test]
fn hostile_layers_cannot_write_outside_the_snapshot() {
    if skip_unless_root("hostile_layers_cannot_write_outside_the_snapshot") {
        return;
    }
    let s = Setup::new();
    let passwd_before = (
        sha(Path::new("/etc/passwd")),
        fs::metadata("/etc/passwd").expect("passwd").nlink(),
    );

    // `../escape`: refused outright.
    let err = s
        .unpack(&gzip(&tar(&[Entry::File("../escape", b"x")])))
        .expect_err("should fail");
    assert!(
        matches!(err, UnpackError::Escapes(ref p) if p == "../escape"),
        "{err}"
    );
    assert!(!s.dir.path().join("snap/escape").exists());
    assert!(!s.dir.path().join("escape").exists());

    // `a/../../escape`: also refused, even though it starts inside.
    s.fresh();
    let err = s
        .unpack(&tar(&[
            Entry::Dir("a/"),
            Entry::File("a/../../escape", b"x"),
        ]))
        .expect_err("should fail");
    assert!(matches!(err, UnpackError::Escapes(_)), "{err}");
    assert!(!s.dir.path().join("snap/escape").exists());

    // `/etc/evil`: an absolute path means the snapshot's /etc, never the host's.
    s.fresh();
    s.unpack(&tar(&[Entry::File("/etc/nodeless-evil", b"x")]))
        .expect("absolute path is relative to the snapshot");
    assert_eq!(
        fs::read(s.fs().join("etc/nodeless-evil")).expect("inside"),
        b"x"
    );
    assert!(!Path::new("/etc/nodeless-evil").exists());

    // Symlink `a -> /`, then `a/etc/x`: never written through the link.
    s.fresh();
    let err = s
        .unpack(&tar(&[
            Entry::Symlink("a", "/"),
            Entry::File("a/etc/nodeless-x", b"x"),
        ]))
        .expect_err("should fail");
    assert!(
        matches!(err, UnpackError::ThroughSymlink { ref link, .. } if link == "a"),
        "{err}"
    );
    assert!(!Path::new("/etc/nodeless-x").exists());

    // Same with a relative link that climbs out.
    s.fresh();
    let err = s
        .unpack(&tar(&[
            Entry::Symlink("up", "../../../../../../.."),
            Entry::File("up/tmp/nodeless-y", b"y"),
        ]))
        .expect_err("should fail");
    assert!(matches!(err, UnpackError::ThroughSymlink { .. }), "{err}");
    assert!(!Path::new("/tmp/nodeless-y").exists());

    // Hard link to /etc/passwd: the target must be an earlier entry of this layer.
    s.fresh();
    let err = s
        .unpack(&tar(&[Entry::HardLink("pw", "/etc/passwd")]))
        .expect_err("should fail");
    assert!(matches!(err, UnpackError::BadHardLink { .. }), "{err}");
    let err = s
        .unpack(&tar(&[Entry::HardLink("pw", "../../../../etc/passwd")]))
        .expect_err("should fail");
    assert!(matches!(err, UnpackError::BadHardLink { .. }), "{err}");

    // Hard link through a symlinked directory that points at the host's /etc.
    s.fresh();
    let err = s
        .unpack(&tar(&[
            Entry::Symlink("e", "/etc"),
            Entry::HardLink("pw", "e/passwd"),
        ]))
        .expect_err("should fail");
    assert!(matches!(err, UnpackError::BadHardLink { .. }), "{err}");

    // A symlink to /etc/passwd replaced by a file: the file replaces the link, not its target.
    s.fresh();
    s.unpack(&tar(&[
        Entry::Symlink("pw", "/etc/passwd"),
        Entry::File("pw", b"owned"),
    ]))
    .expect("replace link");
    let meta = fs::symlink_metadata(s.fs().join("pw")).expect("pw");
    assert!(meta.is_file());

    // A hard link to a symlink links the symlink itself, not what it points to.
    s.fresh();
    s.unpack(&tar(&[
        Entry::Symlink("l", "/etc/passwd"),
        Entry::HardLink("h", "l"),
    ]))
    .expect("link to link");
    assert!(fs::symlink_metadata(s.fs().join("h"))
        .expect("h")
        .file_type()
        .is_symlink());

    // Device nodes are not created.
    s.fresh();
    let stats = s
        .unpack(&tar(&[Entry::Dir("dev/"), Entry::CharDevice("dev/sda")]))
        .expect("devices skipped");
    assert_eq!(stats.devices_refused, 1);
    assert!(!s.fs().join("dev/sda").exists());

    // A layer may not forge overlay metadata through PAX xattrs.
    s.fresh();
    s.unpack(&tar(&[Entry::PaxXattrDir(
        "d/",
        "trusted.overlay.opaque",
        b"y",
    )]))
    .expect("xattr ignored");
    assert_eq!(xattr(&s.fs().join("d"), "trusted.overlay.opaque"), None);

    let passwd_after = (
        sha(Path::new("/etc/passwd")),
        fs::metadata("/etc/passwd").expect("passwd").nlink(),
    );
    assert_eq!(passwd_before, passwd_after, "/etc/passwd was touched");
}

fn xattr(path: &Path, name: &str) -> Option<Vec<u8>> {
    let mut buf = vec![0u8; 64];
    let n = rustix::fs::lgetxattr(path, name, &mut buf).ok()?;
    buf.truncate(n);
    Some(buf)
}

#[test]
fn whiteouts_become_overlay_whiteouts_and_opaque_directories() {
    if skip_unless_root("whiteouts_become_overlay_whiteouts_and_opaque_directories") {
        return;
    }
    let s = Setup::new();
    let stats = s
        .unpack(&gzip(&tar(&[
            Entry::Dir("etc/"),
            Entry::File("etc/.wh.hosts", b""),
            Entry::Dir("var/"),
            Entry::File("var/.wh..wh..opq", b""),
            Entry::File("var/keep", b"k"),
        ])))
        .expect("unpack");
    assert_eq!(stats.whiteouts, 2);
    let hosts = fs::symlink_metadata(s.fs().join("etc/hosts")).expect("whiteout");
    assert!(hosts.file_type().is_char_device());
    assert_eq!(hosts.rdev(), 0);
    assert!(!s.fs().join("etc/.wh.hosts").exists());
    assert_eq!(
        xattr(&s.fs().join("var"), "trusted.overlay.opaque").as_deref(),
        Some(&b"y"[..])
    );
    assert!(!s.fs().join("var/.wh..wh..opq").exists());
    assert_eq!(fs::read(s.fs().join("var/keep")).expect("keep"), b"k");

    // Stacked over a lower layer, overlayfs hides what the whiteouts name.
    let lower = s.dir.path().join("lower");
    fs::create_dir_all(lower.join("etc")).expect("lower");
    fs::create_dir_all(lower.join("var")).expect("lower");
    fs::write(lower.join("etc/hosts"), "lower").expect("lower");
    fs::write(lower.join("etc/passwd"), "lower").expect("lower");
    fs::write(lower.join("var/old"), "lower").expect("lower");
    let merged = s.dir.path().join("merged");
    fs::create_dir_all(&merged).expect("merged");
    let options = format!("lowerdir={}:{}", s.fs().display(), lower.display());
    let mounted = std::process::Command::new("mount")
        .args(["-t", "overlay", "overlay", "-o", &options])
        .arg(&merged)
        .status()
        .is_ok_and(|st| st.success());
    if !mounted {
        eprintln!("overlay mount unavailable here; checked the on-disk format only");
        return;
    }
    let seen = (
        merged.join("etc/hosts").exists(),
        merged.join("etc/passwd").exists(),
        merged.join("var/old").exists(),
        merged.join("var/keep").exists(),
    );
    let _ = std::process::Command::new("umount").arg(&merged).status();
    assert_eq!(seen, (false, true, false, true));
}

#[test]
fn ownership_modes_and_times_are_kept_including_setuid() {
    if skip_unless_root("ownership_modes_and_times_are_kept_including_setuid") {
        return;
    }
    let s = Setup::new();
    s.unpack(&tar(&[
        Entry::Dir("bin/"),
        Entry::FileWith {
            path: "bin/su",
            data: b"#!",
            mode: 0o4755,
            uid: 0,
            gid: 0,
            mtime: 1_234_567,
        },
        Entry::FileWith {
            path: "home/app/data",
            data: b"d",
            mode: 0o600,
            uid: 1000,
            gid: 1001,
            mtime: 7,
        },
        Entry::Symlink("bin/sh", "busybox"),
    ]))
    .expect("unpack");
    let su = fs::metadata(s.fs().join("bin/su")).expect("su");
    assert_eq!(su.permissions().mode() & 0o7777, 0o4755);
    assert_eq!(su.mtime(), 1_234_567);
    let data = fs::metadata(s.fs().join("home/app/data")).expect("data");
    assert_eq!(
        (data.uid(), data.gid(), data.permissions().mode() & 0o777),
        (1000, 1001, 0o600)
    );
    assert_eq!(
        fs::read_link(s.fs().join("bin/sh")).expect("link"),
        PathBuf::from("busybox")
    );
    assert_eq!(
        fs::metadata(s.fs().join("bin")).expect("bin").mtime(),
        1_600_000_000
    );
}

#[test]
fn zstd_and_plain_layers_unpack_and_the_diff_id_is_checked() {
    if skip_unless_root("zstd_and_plain_layers_unpack_and_the_diff_id_is_checked") {
        return;
    }
    let s = Setup::new();
    let plain = tar(&[Entry::File("hello", b"world")]);
    let stats = s.unpack(&plain).expect("plain");
    let diff_id = stats.diff_id.clone();
    s.fresh();
    let zstd = zstd::encode_all(&plain[..], 3).expect("zstd");
    assert_eq!(s.unpack(&zstd).expect("zstd").diff_id, diff_id);
    assert_eq!(fs::read(s.fs().join("hello")).expect("hello"), b"world");

    s.fresh();
    let blob = s.dir.path().join("layer.blob");
    fs::write(&blob, gzip(&plain)).expect("write");
    let wrong = format!("sha256:{}", "0".repeat(64));
    let err = unpack_layer(&blob, &s.fs(), Some(&wrong)).expect_err("should fail");
    assert!(
        matches!(err, UnpackError::DiffIdMismatch { ref actual, .. } if *actual == diff_id),
        "{err}"
    );
    s.fresh();
    unpack_layer(&blob, &s.fs(), Some(&diff_id)).expect("matching diff id");
}
