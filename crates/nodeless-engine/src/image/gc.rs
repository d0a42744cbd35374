//! Garbage collection: image records nobody uses, then the blobs and snapshots no remaining
//! record refers to.
//!
//! A pull in progress holds leases on the digests it is about to check for and write, taken under
//! the same lock the collector holds while it checks and removes one item. Either the collector
//! removes an item before the pull looks (and the pull fetches it again), or the pull's lease
//! makes the collector keep it.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use super::error::ImageError;
use super::store::{ImageRecord, Store};

/// What a collection removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// References of the removed images.
    pub images_removed: Vec<String>,
    pub snapshots_removed: usize,
    pub blobs_removed: usize,
    pub bytes_freed: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Leases {
    held: Mutex<HashMap<String, usize>>,
}

/// Digests a pull is working with; released on drop.
pub(crate) struct Lease {
    leases: Arc<Leases>,
    digests: Vec<String>,
}

impl Leases {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, usize>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn hold(self: &Arc<Self>, digests: impl IntoIterator<Item = String>) -> Lease {
        let digests: Vec<String> = digests.into_iter().collect();
        let mut held = self.lock();
        for d in &digests {
            *held.entry(d.clone()).or_default() += 1;
        }
        Lease {
            leases: Arc::clone(self),
            digests,
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut held = self.leases.lock();
        for d in &self.digests {
            if let Some(n) = held.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    held.remove(d);
                }
            }
        }
    }
}

/// Removes the records `keep` rejects, then unreferenced, unleased blobs and snapshots.
pub(crate) fn collect(
    store: &Store,
    leases: &Leases,
    keep: impl Fn(&ImageRecord) -> bool,
) -> Result<GcReport, ImageError> {
    let mut report = GcReport::default();
    let mut kept = Vec::new();
    for record in store.records()? {
        if keep(&record) {
            kept.push(record);
        } else if store.remove_record(&record.reference)? {
            report.images_removed.push(record.reference);
        }
    }
    let live_blobs: HashSet<&str> = kept.iter().flat_map(ImageRecord::blobs).collect();
    let live_snapshots: HashSet<&str> = kept
        .iter()
        .flat_map(|r| r.layers.iter().map(|l| l.diff_id.as_str()))
        .collect();

    for digest in store.blob_digests()? {
        if live_blobs.contains(digest.as_str()) {
            continue;
        }
        let path = store.blob_path(&digest)?;
        let held = leases.lock();
        if held.contains_key(&digest) {
            continue;
        }
        let size = fs::symlink_metadata(&path).map_or(0, |m| m.len());
        fs::remove_file(&path).map_err(ImageError::storage("removing", &path))?;
        drop(held);
        report.blobs_removed += 1;
        report.bytes_freed += size;
    }

    for diff_id in store.snapshot_ids()? {
        if live_snapshots.contains(diff_id.as_str()) {
            continue;
        }
        let dir = store.snapshot_dir(&diff_id)?;
        // Out of sight under the lock, then deleted at leisure.
        let doomed = store.temp_path("gc");
        {
            let held = leases.lock();
            if held.contains_key(&diff_id) {
                continue;
            }
            fs::create_dir_all(store.tmp_dir())
                .map_err(ImageError::storage("creating", store.tmp_dir()))?;
            fs::rename(&dir, &doomed).map_err(ImageError::storage("removing", &dir))?;
        }
        report.bytes_freed += dir_size(&doomed);
        fs::remove_dir_all(&doomed).map_err(ImageError::storage("removing", &doomed))?;
        report.snapshots_removed += 1;
    }
    Ok(report)
}

/// Bytes of regular files under `path`, not following links; unreadable parts count as zero.
fn dir_size(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return if meta.is_file() { meta.len() } else { 0 };
    }
    fs::read_dir(path)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| dir_size(&e.path()))
                .sum()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::store::sha256_hex;

    #[test]
    fn leased_content_survives_collection_until_the_lease_is_dropped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(dir.path()).expect("open");
        let leases = Arc::new(Leases::default());
        let blob = format!("sha256:{}", sha256_hex(b"in flight"));
        store.put_blob(&blob, b"in flight").expect("put");
        let snapshot = format!("sha256:{}", "c".repeat(64));
        fs::create_dir_all(store.snapshot_fs(&snapshot).expect("path")).expect("snapshot");

        let lease = leases.hold([blob.clone(), snapshot.clone()]);
        let report = collect(&store, &leases, |_| false).expect("gc");
        assert_eq!((report.blobs_removed, report.snapshots_removed), (0, 0));
        drop(lease);
        let report = collect(&store, &leases, |_| false).expect("gc");
        assert_eq!((report.blobs_removed, report.snapshots_removed), (1, 1));
        assert!(!store.snapshot_dir(&snapshot).expect("path").exists());
    }

    #[test]
    fn leases_count_holders() {
        let leases = Arc::new(Leases::default());
        let a = leases.hold(["sha256:x".to_string()]);
        let b = leases.hold(["sha256:x".to_string()]);
        drop(a);
        assert!(leases.lock().contains_key("sha256:x"));
        drop(b);
        assert!(leases.lock().is_empty());
    }
}
