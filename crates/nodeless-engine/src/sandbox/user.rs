//! Resolves a container's `user` (`uid`, `uid:gid`, `name`, `name:group`) against the image's
//! own /etc/passwd and /etc/group, read inside the root filesystem so that a hostile image's
//! symlinks cannot make us read host files.

use std::io::Read;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("user {user:?} not found in the image's /etc/passwd")]
    UnknownUser { user: String },
    #[error("group {group:?} not found in the image's /etc/group")]
    UnknownGroup { group: String },
}

/// Resolves `spec` (empty means root) in the root filesystem at `rootfs`.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser, UserError> {
    resolve_with(spec, |file| read_in_root(rootfs, file).ok())
}

/// Resolves `spec` in an image's layers (lowest first) that are not mounted anywhere the
/// engine can see, as for a root filesystem the runtime mounts itself: each file is read
/// from the highest layer that has it, as the overlay would show it.
pub fn resolve_user_in_layers(layers: &[PathBuf], spec: &str) -> Result<ResolvedUser, UserError> {
    resolve_with(spec, |file| read_in_layers(layers, file))
}

/// [`resolve_in`] over /etc/passwd and /etc/group as `read` finds them (missing reads as empty).
fn resolve_with(
    spec: &str,
    read: impl Fn(&str) -> Option<String>,
) -> Result<ResolvedUser, UserError> {
    let spec = spec.trim();
    if spec.is_empty() {
        return Ok(ResolvedUser::default());
    }
    let passwd = read("etc/passwd").unwrap_or_default();
    let group = read("etc/group").unwrap_or_default();
    resolve_in(&passwd, &group, spec)
}

/// The file at `relative` in the overlay of `layers` (lowest first): the highest layer that
/// has it wins; a whiteout (a 0/0 character device) or an opaque directory on the way hides
/// the layers below. A symlink is followed within its own layer only, which covers images'
/// /etc/passwd in practice; a missing file reads as `None`.
pub fn read_in_layers(layers: &[PathBuf], relative: &str) -> Option<String> {
    for layer in layers.iter().rev() {
        match read_in_root(layer, relative) {
            Ok(text) => return Some(text),
            // A whiteout is a character device: reading it fails with something other than
            // "not found", and hides the file below.
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return None,
            Err(_) => {}
        }
        if hides_below(layer, relative) {
            return None;
        }
    }
    None
}

/// Whether a directory on `relative`'s path in `layer` is opaque or whited out.
fn hides_below(layer: &Path, relative: &str) -> bool {
    let mut dir = layer.to_path_buf();
    let parts: Vec<&str> = relative.split('/').filter(|p| !p.is_empty()).collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        dir.push(part);
        match std::fs::symlink_metadata(&dir) {
            Ok(m) if m.is_dir() => {
                if xattr_is_set(&dir, "trusted.overlay.opaque") {
                    return true;
                }
            }
            Ok(_) => return true, // a whiteout or a file where a directory was
            Err(_) => return false,
        }
    }
    false
}

fn xattr_is_set(path: &Path, name: &str) -> bool {
    let mut value = [0u8; 1];
    rustix::fs::lgetxattr(path, name, &mut value).is_ok_and(|n| n == 1 && value[0] == b'y')
}

/// The pure part of [`resolve_user`], over the two files' contents.
pub fn resolve_in(passwd: &str, group: &str, spec: &str) -> Result<ResolvedUser, UserError> {
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let entry =
        passwd_entries(passwd).find(|e| e.name == user_part || user_part.parse() == Ok(e.uid));
    let (uid, default_gid, name) = match (user_part.parse::<u32>(), entry) {
        (_, Some(e)) => (e.uid, e.gid, Some(e.name)),
        // A numeric uid need not exist in the image; like Docker, its group is then 0.
        (Ok(uid), None) => (uid, 0, None),
        (Err(_), None) => {
            return Err(UserError::UnknownUser {
                user: user_part.to_string(),
            })
        }
    };
    let gid = match group_part {
        None => default_gid,
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => group_entries(group)
                .find(|e| e.name == g)
                .map(|e| e.gid)
                .ok_or_else(|| UserError::UnknownGroup {
                    group: g.to_string(),
                })?,
        },
    };
    // Supplementary groups come from membership lists, only when the group was not forced.
    let mut additional_gids: Vec<u32> = match (name, group_part) {
        (Some(name), None) => group_entries(group)
            .filter(|e| e.members.contains(&name))
            .map(|e| e.gid)
            .collect(),
        _ => Vec::new(),
    };
    additional_gids.retain(|g| *g != gid);
    additional_gids.dedup();
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
    })
}

struct PasswdEntry<'a> {
    name: &'a str,
    uid: u32,
    gid: u32,
}

struct GroupEntry<'a> {
    name: &'a str,
    gid: u32,
    members: Vec<&'a str>,
}

fn passwd_entries(text: &str) -> impl Iterator<Item = PasswdEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 4 || line.starts_with('#') {
            return None;
        }
        Some(PasswdEntry {
            name: f[0],
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
        })
    })
}

fn group_entries(text: &str) -> impl Iterator<Item = GroupEntry<'_>> {
    text.lines().filter_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 3 || line.starts_with('#') {
            return None;
        }
        let members = f
            .get(3)
            .map(|m| m.split(',').filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        Some(GroupEntry {
            name: f[0],
            gid: f[2].parse().ok()?,
            members,
        })
    })
}

/// Reads a file with every path component resolved inside `root` (openat2 RESOLVE_IN_ROOT).
pub fn read_in_root(root: &Path, relative: &str) -> std::io::Result<String> {
    let dir = rustix::fs::open(
        root,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    // NONBLOCK: a FIFO where a file should be must not hang the engine on open or read.
    let fd = rustix::fs::openat2(
        &dir,
        relative,
        OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK,
        Mode::empty(),
        ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
    )?;
    let mut text = String::new();
    // Cap the read: a passwd file is small, a hostile one need not be.
    std::fs::File::from(fd)
        .take(4 << 20)
        .read_to_string(&mut text)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\nwww:x:33:33::/var/www:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nwww:x:33:\nnogroup:x:65534:\nstaff:x:50:www,other\n";

    #[test]
    fn name_resolves_to_its_uid_gid_and_supplementary_groups() {
        let u = resolve_in(PASSWD, GROUP, "www").expect("resolves");
        assert_eq!(
            u,
            ResolvedUser {
                uid: 33,
                gid: 33,
                additional_gids: vec![50]
            }
        );
    }

    #[test]
    fn numeric_uid_missing_from_passwd_gets_group_zero() {
        assert_eq!(
            resolve_in(PASSWD, GROUP, "1234").expect("resolves"),
            ResolvedUser {
                uid: 1234,
                gid: 0,
                additional_gids: vec![]
            }
        );
    }

    #[test]
    fn uid_and_gid_pair_is_taken_literally() {
        let u = resolve_in(PASSWD, GROUP, "1000:2000").expect("resolves");
        assert_eq!((u.uid, u.gid), (1000, 2000));
    }

    #[test]
    fn name_with_group_name_uses_that_group() {
        let u = resolve_in(PASSWD, GROUP, "nobody:staff").expect("resolves");
        assert_eq!((u.uid, u.gid), (65534, 50));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(matches!(
            resolve_in(PASSWD, GROUP, "ghost"),
            Err(UserError::UnknownUser { .. })
        ));
        assert!(matches!(
            resolve_in(PASSWD, GROUP, "www:ghosts"),
            Err(UserError::UnknownGroup { .. })
        ));
    }

    #[test]
    fn passwd_symlink_pointing_outside_the_root_stays_inside() {
        let root = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(root.path().join("etc")).expect("mkdir");
        std::fs::write(root.path().join("etc/real"), "app:x:7:7::/:/bin/sh\n").expect("write");
        // An absolute target must resolve relative to the root, not the host.
        std::os::unix::fs::symlink("/etc/real", root.path().join("etc/passwd")).expect("symlink");
        let u = resolve_user(root.path(), "app").expect("resolves inside the root");
        assert_eq!(u.uid, 7);
    }

    #[test]
    fn layers_are_read_top_down_with_whiteouts_and_opaque_directories() {
        let root = tempfile::tempdir().expect("tempdir");
        let layer = |name: &str, files: &[(&str, &str)]| {
            let dir = root.path().join(name);
            for (path, text) in files {
                let p = dir.join(path);
                std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
                std::fs::write(p, text).expect("write");
            }
            std::fs::create_dir_all(&dir).expect("mkdir");
            dir
        };
        let base = layer("base", &[("etc/passwd", PASSWD), ("etc/group", GROUP)]);
        let top = layer("top", &[("etc/passwd", "app:x:7:8::/:/bin/sh\n")]);
        let layers = vec![base.clone(), top.clone()];
        let u = resolve_user_in_layers(&layers, "app").expect("the top layer's passwd");
        assert_eq!((u.uid, u.gid), (7, 8));
        let u = resolve_user_in_layers(&layers, "33:staff").expect("group from the base");
        assert_eq!((u.uid, u.gid), (33, 50));
        // The top layer's passwd hides the base's.
        assert!(resolve_user_in_layers(&layers, "nobody").is_err());
        assert_eq!(
            resolve_user_in_layers(&layers, "").expect("root"),
            ResolvedUser::default()
        );
        // A layer that is only a file where /etc was hides everything below.
        let hiding = layer("hiding", &[("etc", "")]);
        let layers = vec![base.clone(), hiding];
        assert_eq!(read_in_layers(&layers, "etc/group"), None);
        let layers = vec![base.clone(), layer("empty", &[])];
        assert_eq!(read_in_layers(&layers, "etc/group").as_deref(), Some(GROUP));
        if !rustix::process::geteuid().is_root() {
            eprintln!("skipped the whiteout and opaque cases: they need root (mknod, trusted.*)");
            return;
        }
        // A whiteout (what unpacking makes of `.wh.group`) hides the base's file.
        let whiteout = layer("whiteout", &[]);
        std::fs::create_dir_all(whiteout.join("etc")).expect("mkdir");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            whiteout.join("etc/group"),
            rustix::fs::FileType::CharacterDevice,
            Mode::from_raw_mode(0o600),
            rustix::fs::makedev(0, 0),
        )
        .expect("mknod");
        assert_eq!(read_in_layers(&[base.clone(), whiteout], "etc/group"), None);
        // An opaque /etc hides the base's /etc/group but shows its own files.
        let opaque = layer("opaque", &[("etc/passwd", "op:x:9:9::/:/bin/sh\n")]);
        rustix::fs::setxattr(
            opaque.join("etc"),
            "trusted.overlay.opaque",
            b"y",
            rustix::fs::XattrFlags::empty(),
        )
        .expect("setxattr");
        let layers = vec![base, opaque];
        assert_eq!(read_in_layers(&layers, "etc/group"), None);
        assert!(read_in_layers(&layers, "etc/passwd").is_some_and(|p| p.starts_with("op:")));
    }
}
