//! On-disk layout under the image root:
//!
//! ```text
//! ROOT/blobs/sha256/<hex>        content-addressed blobs (manifests, configs, layer tarballs)
//! ROOT/snapshots/<hex>/fs        one unpacked layer, keyed by its uncompressed digest (diff id)
//! ROOT/images/<sha256(ref)>.json one record per image reference
//! ROOT/tmp/<pid>/                work in progress of one process; removed once it is gone
//! ```
//!
//! Everything becomes visible by a rename of a finished temp file or directory, so a crash leaves
//! either the old state or the new one, and junk in `tmp/` only.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::config::ImageConfig;
use super::error::ImageError;
use super::reference::parse_digest;

/// One layer of a stored image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LayerRecord {
    /// Digest of the (compressed) blob.
    pub digest: String,
    /// Digest of the uncompressed tar; names the snapshot.
    pub diff_id: String,
    pub size: u64,
    pub media_type: String,
}

/// What `ROOT/images/*.json` holds for one reference.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ImageRecord {
    pub reference: String,
    /// What the reference resolved to: the index digest for multi-platform images.
    pub digest: String,
    /// This platform's manifest (equal to `digest` for single-platform images).
    pub manifest_digest: String,
    pub config_digest: String,
    pub layers: Vec<LayerRecord>,
    pub config: ImageConfig,
    pub size: u64,
    /// Seconds since the epoch.
    pub pulled_at: u64,
}

impl ImageRecord {
    /// Every blob the record needs kept.
    pub fn blobs(&self) -> impl Iterator<Item = &str> {
        [
            self.digest.as_str(),
            &self.manifest_digest,
            &self.config_digest,
        ]
        .into_iter()
        .chain(self.layers.iter().map(|l| l.digest.as_str()))
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Store {
    root: PathBuf,
}

pub(crate) fn hex_of(digest: &str) -> Result<&str, ImageError> {
    parse_digest(digest).map_err(|e| ImageError::CorruptRecord {
        path: PathBuf::from(digest),
        reason: format!("bad digest: {e}"),
    })?;
    Ok(&digest["sha256:".len()..])
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

impl Store {
    pub fn open(root: &Path) -> Result<Store, ImageError> {
        let store = Store {
            root: root.to_path_buf(),
        };
        for dir in [store.blobs_dir(), store.snapshots_dir(), store.images_dir()] {
            fs::create_dir_all(&dir).map_err(ImageError::storage("creating", &dir))?;
        }
        store.clean_tmp()?;
        let tmp = store.tmp_dir();
        fs::create_dir_all(&tmp).map_err(ImageError::storage("creating", &tmp))?;
        Ok(store)
    }

    /// Removes leftovers of interrupted pulls. Each process works in `tmp/<pid>`, so a CLI
    /// opening the root while the engine pulls leaves the engine's work alone.
    fn clean_tmp(&self) -> Result<(), ImageError> {
        let tmp = self.root.join("tmp");
        if !tmp.exists() {
            return Ok(());
        }
        for dir in list_dir(&tmp)? {
            let pid = dir
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<u32>().ok());
            let alive = pid.is_some_and(|p| {
                p != std::process::id() && Path::new(&format!("/proc/{p}")).exists()
            });
            if !alive {
                let _ = fs::remove_dir_all(&dir).or_else(|_| fs::remove_file(&dir));
            }
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    pub fn snapshots_dir(&self) -> PathBuf {
        self.root.join("snapshots")
    }

    fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp").join(std::process::id().to_string())
    }

    /// A fresh path in `tmp/` (not created).
    pub fn temp_path(&self, what: &str) -> PathBuf {
        self.tmp_dir()
            .join(format!("{what}-{}", uuid::Uuid::new_v4().simple()))
    }

    pub fn blob_path(&self, digest: &str) -> Result<PathBuf, ImageError> {
        Ok(self.blobs_dir().join(hex_of(digest)?))
    }

    #[cfg(test)]
    pub fn has_blob(&self, digest: &str) -> bool {
        self.blob_path(digest).is_ok_and(|p| p.is_file())
    }

    pub fn read_blob(&self, digest: &str) -> Result<Vec<u8>, ImageError> {
        let path = self.blob_path(digest)?;
        fs::read(&path).map_err(ImageError::storage("reading", &path))
    }

    /// Stores small content (manifests, configs) after checking it against `digest`.
    pub fn put_blob(&self, digest: &str, bytes: &[u8]) -> Result<(), ImageError> {
        let path = self.blob_path(digest)?;
        let actual = format!("sha256:{}", sha256_hex(bytes));
        if actual != digest {
            return Err(ImageError::CorruptRecord {
                path,
                reason: format!("content is {actual}, expected {digest}"),
            });
        }
        if path.is_file() {
            return Ok(());
        }
        self.write_atomic(&path, bytes)
    }

    /// Moves a finished, verified temp file into place as blob `digest`.
    pub fn commit_blob(&self, temp: &Path, digest: &str) -> Result<PathBuf, ImageError> {
        let path = self.blob_path(digest)?;
        fs::rename(temp, &path).map_err(ImageError::storage("storing blob", &path))?;
        sync_dir(&self.blobs_dir())?;
        Ok(path)
    }

    pub fn snapshot_dir(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        Ok(self.snapshots_dir().join(hex_of(diff_id)?))
    }

    /// The directory an overlay mount uses as a lower layer.
    pub fn snapshot_fs(&self, diff_id: &str) -> Result<PathBuf, ImageError> {
        Ok(self.snapshot_dir(diff_id)?.join("fs"))
    }

    pub fn has_snapshot(&self, diff_id: &str) -> bool {
        self.snapshot_fs(diff_id).is_ok_and(|p| p.is_dir())
    }

    /// Moves an unpacked temp directory (holding `fs/`) into place. Losing a race to another
    /// unpack of the same layer is fine: its result is the same.
    pub fn commit_snapshot(&self, temp: &Path, diff_id: &str) -> Result<(), ImageError> {
        let dir = self.snapshot_dir(diff_id)?;
        match fs::rename(temp, &dir) {
            Ok(()) => sync_dir(&self.snapshots_dir()),
            Err(_) if self.has_snapshot(diff_id) => {
                let _ = fs::remove_dir_all(temp);
                Ok(())
            }
            Err(e) => Err(ImageError::storage("storing snapshot", dir)(e)),
        }
    }

    fn record_path(&self, reference: &str) -> PathBuf {
        self.images_dir()
            .join(format!("{}.json", sha256_hex(reference.as_bytes())))
    }

    pub fn read_record(&self, reference: &str) -> Result<Option<ImageRecord>, ImageError> {
        read_record_file(&self.record_path(reference))
    }

    pub fn write_record(&self, record: &ImageRecord) -> Result<(), ImageError> {
        let path = self.record_path(&record.reference);
        let json = serde_json::to_vec_pretty(record).map_err(|e| ImageError::CorruptRecord {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        self.write_atomic(&path, &json)
    }

    /// Returns whether there was a record to remove.
    pub fn remove_record(&self, reference: &str) -> Result<bool, ImageError> {
        let path = self.record_path(reference);
        match fs::remove_file(&path) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(ImageError::storage("removing", path)(e)),
        }
    }

    pub fn records(&self) -> Result<Vec<ImageRecord>, ImageError> {
        let mut records = Vec::new();
        for path in list_dir(&self.images_dir())? {
            if path.extension().is_some_and(|e| e == "json") {
                records.extend(read_record_file(&path)?);
            }
        }
        records.sort_by(|a, b| a.reference.cmp(&b.reference));
        Ok(records)
    }

    /// Digests (`sha256:…`) of all stored blobs.
    pub fn blob_digests(&self) -> Result<Vec<String>, ImageError> {
        Ok(file_names(&self.blobs_dir())?
            .into_iter()
            .map(|h| format!("sha256:{h}"))
            .collect())
    }

    /// Diff ids (`sha256:…`) of all stored snapshots.
    pub fn snapshot_ids(&self) -> Result<Vec<String>, ImageError> {
        Ok(file_names(&self.snapshots_dir())?
            .into_iter()
            .map(|h| format!("sha256:{h}"))
            .collect())
    }

    fn write_atomic(&self, path: &Path, bytes: &[u8]) -> Result<(), ImageError> {
        let temp = self.temp_path("file");
        let write = || -> io::Result<()> {
            let mut file = fs::File::create(&temp)?;
            file.write_all(bytes)?;
            file.sync_all()?;
            fs::rename(&temp, path)
        };
        write().map_err(|e| {
            let _ = fs::remove_file(&temp);
            ImageError::storage("writing", path)(e)
        })?;
        sync_dir(path.parent().unwrap_or(&self.root))
    }
}

fn read_record_file(path: &Path) -> Result<Option<ImageRecord>, ImageError> {
    let bytes = match fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ImageError::storage("reading", path)(e)),
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| ImageError::CorruptRecord {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let entries = fs::read_dir(dir).map_err(ImageError::storage("listing", dir))?;
    entries
        .map(|e| {
            e.map(|e| e.path())
                .map_err(ImageError::storage("listing", dir))
        })
        .collect()
}

/// Names in `dir` that are sha256 hex strings (anything else is not ours to touch).
fn file_names(dir: &Path) -> Result<Vec<String>, ImageError> {
    Ok(list_dir(dir)?
        .iter()
        .filter_map(|p| p.file_name()?.to_str().map(str::to_string))
        .filter(|name| parse_digest(&format!("sha256:{name}")).is_ok())
        .collect())
}

/// Makes a rename in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), ImageError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(ImageError::storage("syncing", dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(reference: &str) -> ImageRecord {
        ImageRecord {
            reference: reference.into(),
            digest: format!("sha256:{}", "a".repeat(64)),
            manifest_digest: format!("sha256:{}", "a".repeat(64)),
            config_digest: format!("sha256:{}", "b".repeat(64)),
            layers: vec![],
            config: ImageConfig::default(),
            size: 1,
            pulled_at: 0,
        }
    }

    #[test]
    fn blobs_are_checked_against_their_digest_before_they_are_stored() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let digest = format!("sha256:{}", sha256_hex(b"hello"));
        store.put_blob(&digest, b"hello").expect("put");
        assert_eq!(store.read_blob(&digest).expect("read"), b"hello");
        let wrong = format!("sha256:{}", sha256_hex(b"other"));
        assert!(store.put_blob(&wrong, b"hello").is_err());
        assert!(!store.has_blob(&wrong));
        assert!(store.put_blob("sha256:../../x", b"hello").is_err());
    }

    #[test]
    fn records_round_trip_and_are_listed_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        store
            .write_record(&record("docker.io/library/b:1"))
            .expect("write");
        store
            .write_record(&record("docker.io/library/a:1"))
            .expect("write");
        let refs: Vec<String> = store
            .records()
            .expect("list")
            .into_iter()
            .map(|r| r.reference)
            .collect();
        assert_eq!(refs, ["docker.io/library/a:1", "docker.io/library/b:1"]);
        assert_eq!(
            store.read_record("docker.io/library/a:1").expect("read"),
            Some(record("docker.io/library/a:1"))
        );
        assert!(store.remove_record("docker.io/library/a:1").expect("rm"));
        assert!(!store
            .remove_record("docker.io/library/a:1")
            .expect("rm again"));
    }

    #[test]
    fn opening_clears_leftovers_of_interrupted_work() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        fs::create_dir_all(store.temp_path("snap").join("fs")).expect("junk");
        Store::open(dir.path()).expect("reopen");
        assert_eq!(fs::read_dir(store.tmp_dir()).expect("tmp").count(), 0);
    }
}
