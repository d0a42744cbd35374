//! Small OCI test images, built in-process and pushed with the distribution API:
//! - busybox: one layer with Debian's static /bin/busybox and symlinks for its common applets,
//!   /etc/passwd and /etc/group, a 1777 /tmp; `Cmd ["sh"]` and a standard PATH.
//! - httpd: the busybox layer plus a second one with /www/index.html, serving it on port 80.
//! - anything else (hostile layers, whiteouts, devices) through [`build_image`] and [`LayerEntry`],
//!   whose names are written verbatim, `..` and absolute paths included.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::http;
use super::Registry;

pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ash", "true", "false", "echo", "sleep", "cat", "httpd", "wget", "nc", "env", "id",
    "hostname", "ls", "ps", "mkdir", "rm", "touch", "cp", "mv", "ln", "chmod", "grep", "sed",
    "head", "tail", "wc", "tr", "cut", "sort", "uniq", "seq", "printf", "test", "kill", "pwd",
    "date", "uname", "whoami", "yes", "dd", "ip", "ifconfig", "ping", "nslookup", "netstat",
    "mount", "df", "free", "top", "stat", "timeout", "nohup", "tee", "xargs", "find", "du",
    "basename", "dirname", "readlink", "realpath", "sync",
];

pub const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
pub const HTTPD_INDEX: &str = "hello from nodeless\n";

/// One tar entry; `path` and `target` go into the archive exactly as given.
#[derive(Debug, Clone)]
pub enum LayerEntry {
    Dir {
        path: String,
        mode: u32,
    },
    File {
        path: String,
        data: Vec<u8>,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
    Hardlink {
        path: String,
        target: String,
    },
    CharDevice {
        path: String,
        major: u32,
        minor: u32,
    },
}

impl LayerEntry {
    pub fn dir(path: &str) -> Self {
        LayerEntry::Dir {
            path: path.into(),
            mode: 0o755,
        }
    }
    pub fn file(path: &str, data: impl Into<Vec<u8>>) -> Self {
        LayerEntry::File {
            path: path.into(),
            data: data.into(),
            mode: 0o644,
        }
    }
    pub fn symlink(path: &str, target: &str) -> Self {
        LayerEntry::Symlink {
            path: path.into(),
            target: target.into(),
        }
    }
    pub fn hardlink(path: &str, target: &str) -> Self {
        LayerEntry::Hardlink {
            path: path.into(),
            target: target.into(),
        }
    }
}

/// A content-addressed blob in an image layout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: String,
    pub size: u64,
    pub media_type: String,
}

/// An image written as an OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/`).
#[derive(Debug, Clone)]
pub struct TestImage {
    pub dir: PathBuf,
    pub manifest: Blob,
    pub config: Blob,
    pub layers: Vec<Blob>,
    /// sha256 of each uncompressed layer tar, as in the config's `rootfs.diff_ids`.
    pub diff_ids: Vec<String>,
}

impl AsRef<Path> for TestImage {
    fn as_ref(&self) -> &Path {
        &self.dir
    }
}

const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";

/// A compressed layer and the digest of its uncompressed tar.
#[derive(Clone)]
struct Layer {
    gz: Vec<u8>,
    diff_id: String,
}

/// The busybox image in `dir`.
pub fn build_busybox_image(dir: &Path) -> TestImage {
    let config = json!({ "Cmd": ["sh"], "Env": [PATH_ENV] });
    write_layout(dir, vec![busybox_layer().clone()], config)
}

/// busybox `httpd` serving /www (index.html says [`HTTPD_INDEX`]) on port 80, in the foreground.
pub fn build_httpd_image(dir: &Path) -> TestImage {
    let www = layer(&[
        LayerEntry::dir("www"),
        LayerEntry::file("www/index.html", HTTPD_INDEX),
    ]);
    let config = json!({
        "Cmd": ["httpd", "-f", "-v", "-p", "80", "-h", "/www"],
        "Env": [PATH_ENV],
        "ExposedPorts": { "80/tcp": {} },
    });
    write_layout(dir, vec![busybox_layer().clone(), www], config)
}

/// Any image: `layers` lowest first, `config` the image config's `config` object (Cmd, Env, ...).
pub fn build_image(dir: &Path, layers: &[Vec<LayerEntry>], config: Value) -> TestImage {
    write_layout(
        dir,
        layers.iter().map(|entries| layer(entries)).collect(),
        config,
    )
}

/// Built once per test binary: compressing and hashing ~2 MB of busybox is the slow part.
fn busybox_layer() -> &'static Layer {
    static LAYER: OnceLock<Layer> = OnceLock::new();
    LAYER.get_or_init(|| {
        let busybox = std::fs::read("/bin/busybox")
            .expect("/bin/busybox missing: run scripts/engine-deps.sh");
        let mut entries = vec![
            LayerEntry::dir("bin"),
            LayerEntry::dir("etc"),
            LayerEntry::Dir {
                path: "root".into(),
                mode: 0o700,
            },
            LayerEntry::Dir {
                path: "tmp".into(),
                mode: 0o1777,
            },
            LayerEntry::File {
                path: "bin/busybox".into(),
                data: busybox,
                mode: 0o755,
            },
            LayerEntry::file(
                "etc/passwd",
                "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
            ),
            LayerEntry::file("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ];
        entries.extend(
            BUSYBOX_APPLETS
                .iter()
                .map(|a| LayerEntry::symlink(&format!("bin/{a}"), "busybox")),
        );
        layer(&entries)
    })
}

fn layer(entries: &[LayerEntry]) -> Layer {
    let tar = tar_bytes(entries);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip in memory");
    Layer {
        gz: gz.finish().expect("gzip in memory"),
        diff_id: sha256(&tar),
    }
}

fn tar_bytes(entries: &[LayerEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        let (path, kind, mode, data, link): (&str, tar::EntryType, u32, &[u8], Option<&str>) =
            match entry {
                LayerEntry::Dir { path, mode } => {
                    (path, tar::EntryType::Directory, *mode, &[], None)
                }
                LayerEntry::File { path, data, mode } => {
                    (path, tar::EntryType::Regular, *mode, data, None)
                }
                LayerEntry::Symlink { path, target } => {
                    (path, tar::EntryType::Symlink, 0o777, &[], Some(target))
                }
                LayerEntry::Hardlink { path, target } => {
                    (path, tar::EntryType::Link, 0o644, &[], Some(target))
                }
                LayerEntry::CharDevice { path, .. } => {
                    (path, tar::EntryType::Char, 0o666, &[], None)
                }
            };
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(kind);
        header.set_mode(mode);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(0);
        header.set_size(data.len() as u64);
        if let LayerEntry::CharDevice { major, minor, .. } = entry {
            header
                .set_device_major(*major)
                .expect("gnu header has device fields");
            header
                .set_device_minor(*minor)
                .expect("gnu header has device fields");
        }
        // Raw names, so hostile entries (`../x`, `/etc/x`) are written as asked; the tar crate
        // would refuse them.
        let old = header.as_old_mut();
        put_name(&mut old.name, path);
        if let Some(link) = link {
            put_name(&mut old.linkname, link);
        }
        header.set_cksum();
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.resize(out.len() + 1024, 0); // two zero blocks end the archive
    out
}

fn put_name(field: &mut [u8; 100], name: &str) {
    assert!(
        name.len() < field.len(),
        "test layer names must be shorter than 100 bytes: {name}"
    );
    field[..name.len()].copy_from_slice(name.as_bytes());
}

fn write_layout(dir: &Path, layers: Vec<Layer>, config: Value) -> TestImage {
    std::fs::create_dir_all(dir.join("blobs/sha256")).expect("create image layout");
    let diff_ids: Vec<String> = layers.iter().map(|l| l.diff_id.clone()).collect();
    let layer_blobs: Vec<Blob> = layers
        .iter()
        .map(|l| put_blob(dir, &l.gz, LAYER_MEDIA_TYPE))
        .collect();
    let image_config = json!({
        "architecture": go_arch(),
        "os": "linux",
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    });
    let config_blob = put_blob(dir, &to_bytes(&image_config), CONFIG_MEDIA_TYPE);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": descriptor(&config_blob),
        "layers": layer_blobs.iter().map(descriptor).collect::<Vec<_>>(),
    });
    let manifest_blob = put_blob(dir, &to_bytes(&manifest), MANIFEST_MEDIA_TYPE);
    let mut index_entry = descriptor(&manifest_blob);
    index_entry["annotations"] = json!({ "org.opencontainers.image.ref.name": "latest" });
    let index = json!({ "schemaVersion": 2, "manifests": [index_entry] });
    std::fs::write(dir.join("index.json"), to_bytes(&index)).expect("write index.json");
    std::fs::write(dir.join("oci-layout"), br#"{"imageLayoutVersion":"1.0.0"}"#)
        .expect("write oci-layout");
    TestImage {
        dir: dir.to_path_buf(),
        manifest: manifest_blob,
        config: config_blob,
        layers: layer_blobs,
        diff_ids,
    }
}

fn put_blob(dir: &Path, data: &[u8], media_type: &str) -> Blob {
    let digest = sha256(data);
    let hex = digest.trim_start_matches("sha256:");
    std::fs::write(dir.join("blobs/sha256").join(hex), data).expect("write blob");
    Blob {
        digest,
        size: data.len() as u64,
        media_type: media_type.to_string(),
    }
}

fn descriptor(blob: &Blob) -> Value {
    json!({ "mediaType": blob.media_type, "digest": blob.digest, "size": blob.size })
}

fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("json in memory")
}

fn sha256(data: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(data))
}

fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// Pushes the image of an OCI layout (its first manifest) to `registry` as `name`
/// (`repo[:tag]`, tag `latest` by default), with the registry's credentials if it has any.
/// Returns the manifest digest.
pub fn push(layout: impl AsRef<Path>, registry: &Registry, name: &str) -> String {
    let layout = layout.as_ref();
    let (repo, tag) = name
        .rsplit_once(':')
        .filter(|(_, t)| !t.contains('/'))
        .unwrap_or((name, "latest"));
    let index: Value = read_json(&layout.join("index.json"));
    let manifest_digest = index["manifests"][0]["digest"]
        .as_str()
        .expect("index.json has a manifest")
        .to_string();
    let manifest_bytes = read_blob(layout, &manifest_digest);
    let manifest: Value = serde_json::from_slice(&manifest_bytes).expect("manifest is json");
    let mut digests = vec![manifest["config"]["digest"]
        .as_str()
        .expect("manifest config digest")
        .to_string()];
    for l in manifest["layers"].as_array().expect("manifest layers") {
        digests.push(l["digest"].as_str().expect("layer digest").to_string());
    }
    for digest in &digests {
        push_blob(registry, repo, digest, &read_blob(layout, digest));
    }
    let media_type = manifest["mediaType"]
        .as_str()
        .unwrap_or(MANIFEST_MEDIA_TYPE)
        .to_string();
    let mut headers = auth_headers(registry);
    headers.push(("Content-Type", media_type));
    let path = format!("/v2/{repo}/manifests/{tag}");
    let r = http::request(registry.addr, "PUT", &path, &headers, &manifest_bytes)
        .expect("put manifest");
    assert_eq!(r.status, 201, "PUT {path}: {}", r.text());
    manifest_digest
}

fn push_blob(registry: &Registry, repo: &str, digest: &str, data: &[u8]) {
    let headers = auth_headers(registry);
    let head = http::request(
        registry.addr,
        "HEAD",
        &format!("/v2/{repo}/blobs/{digest}"),
        &headers,
        &[],
    );
    if head.map(|r| r.status == 200).unwrap_or(false) {
        return;
    }
    let path = format!("/v2/{repo}/blobs/uploads/");
    let r = http::request(registry.addr, "POST", &path, &headers, &[]).expect("start upload");
    assert_eq!(r.status, 202, "POST {path}: {}", r.text());
    let location = r.header("Location").expect("upload location");
    // The registry answers with an absolute URL; the request line wants its path and query.
    let location = location
        .split_once("://")
        .map_or(location, |(_, rest)| &rest[rest.find('/').unwrap_or(0)..]);
    let separator = if location.contains('?') { '&' } else { '?' };
    let put = format!("{location}{separator}digest={digest}");
    let mut headers = headers;
    headers.push(("Content-Type", "application/octet-stream".to_string()));
    let r = http::request(registry.addr, "PUT", &put, &headers, data).expect("upload blob");
    assert_eq!(r.status, 201, "PUT {put}: {}", r.text());
}

fn auth_headers(registry: &Registry) -> Vec<(&'static str, String)> {
    registry
        .authorization()
        .map(|a| vec![("Authorization", a)])
        .unwrap_or_default()
}

fn read_json(path: &Path) -> Value {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn read_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let path = layout
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}
