//! An in-memory registry behind the `Transport` seam, for unit tests: it counts requests, can fail
//! a number of them, serve corrupted blobs, and hold requests until released.

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;

use super::auth::RegistryAuth;
use super::reference::ImageReference;
use super::registry::Endpoint;
use super::store::sha256_hex;
use super::transport::{BlobStream, FetchError, FetchedManifest, Transport};

#[derive(Default)]
pub(crate) struct FakeRegistry {
    /// (host, repository, tag or digest) → manifest bytes.
    manifests: Mutex<HashMap<(String, String, String), Bytes>>,
    blobs: Mutex<HashMap<String, Bytes>>,
    pub manifest_requests: AtomicUsize,
    pub blob_requests: AtomicUsize,
    /// Requests to fail with 503 before answering.
    pub fail_next: AtomicUsize,
    /// Blob digests served with a flipped byte.
    pub corrupt: Mutex<Vec<String>>,
    /// When set, manifest requests wait for this to be notified.
    pub gate: Mutex<Option<std::sync::Arc<tokio::sync::Notify>>>,
}

pub(crate) fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(bytes))
}

/// A gzip layer holding `files` (path, content), plus its uncompressed digest.
pub(crate) fn layer(files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o755);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, *content)
            .expect("append");
    }
    let tar = builder.into_inner().expect("tar");
    let diff_id = digest_of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).expect("gzip");
    (gz.finish().expect("gzip"), diff_id)
}

impl FakeRegistry {
    pub fn put_blob(&self, bytes: Vec<u8>) -> (String, u64) {
        let digest = digest_of(&bytes);
        let size = bytes.len() as u64;
        self.blobs
            .lock()
            .expect("lock")
            .insert(digest.clone(), bytes.into());
        (digest, size)
    }

    pub fn put_manifest(&self, host: &str, repository: &str, tag: &str, bytes: Vec<u8>) -> String {
        let digest = digest_of(&bytes);
        let mut manifests = self.manifests.lock().expect("lock");
        let bytes = Bytes::from(bytes);
        manifests.insert((host.into(), repository.into(), tag.into()), bytes.clone());
        manifests.insert((host.into(), repository.into(), digest.clone()), bytes);
        digest
    }

    /// Pushes a one-layer image with `cmd`; returns its manifest digest.
    pub fn push_image(&self, host: &str, repository: &str, tag: &str, cmd: &str) -> String {
        let (layer, diff_id) = layer(&[("bin/tool", cmd.as_bytes())]);
        let (layer_digest, layer_size) = self.put_blob(layer);
        let config = format!(
            r#"{{"config":{{"Cmd":["{cmd}"]}},"rootfs":{{"type":"layers","diff_ids":["{diff_id}"]}}}}"#
        );
        let (config_digest, config_size) = self.put_blob(config.into_bytes());
        let manifest = format!(
            r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{config_size}}},"layers":[{{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"{layer_digest}","size":{layer_size}}}]}}"#
        );
        self.put_manifest(host, repository, tag, manifest.into_bytes())
    }

    fn injected_failure(&self) -> Result<(), FetchError> {
        let failed = self
            .fail_next
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        match failed {
            Ok(_) => Err(FetchError::Registry {
                status: 503,
                message: "service unavailable".into(),
            }),
            Err(_) => Ok(()),
        }
    }
}

#[async_trait]
impl Transport for FakeRegistry {
    async fn manifest(
        &self,
        endpoint: &Endpoint,
        image: &ImageReference,
        reference: &str,
        _auth: Option<&RegistryAuth>,
    ) -> Result<FetchedManifest, FetchError> {
        self.manifest_requests.fetch_add(1, Ordering::SeqCst);
        let gate = self.gate.lock().expect("lock").clone();
        if let Some(gate) = gate {
            gate.notified().await;
        }
        self.injected_failure()?;
        let key = (
            endpoint.host.clone(),
            image.repository().to_string(),
            reference.to_string(),
        );
        let bytes = self.manifests.lock().expect("lock").get(&key).cloned();
        match bytes {
            Some(bytes) => Ok(FetchedManifest {
                digest: digest_of(&bytes),
                bytes,
            }),
            None => Err(FetchError::Registry {
                status: 404,
                message: "manifest unknown".into(),
            }),
        }
    }

    async fn blob(
        &self,
        _endpoint: &Endpoint,
        _image: &ImageReference,
        digest: &str,
        _auth: Option<&RegistryAuth>,
    ) -> Result<BlobStream, FetchError> {
        self.blob_requests.fetch_add(1, Ordering::SeqCst);
        self.injected_failure()?;
        let bytes = self.blobs.lock().expect("lock").get(digest).cloned();
        let Some(bytes) = bytes else {
            return Err(FetchError::Registry {
                status: 404,
                message: "blob unknown to registry".into(),
            });
        };
        let bytes = if self
            .corrupt
            .lock()
            .expect("lock")
            .iter()
            .any(|d| d == digest)
        {
            let mut v = bytes.to_vec();
            if let Some(last) = v.last_mut() {
                *last ^= 0xff;
            }
            Bytes::from(v)
        } else {
            bytes
        };
        // Two chunks, as a network would deliver them.
        let mid = bytes.len() / 2;
        let chunks = vec![Ok(bytes.slice(..mid)), Ok(bytes.slice(mid..))];
        Ok(futures::stream::iter(chunks).boxed())
    }
}
