//! One pull: resolve the manifest (choosing this host's platform from an index), then fetch the
//! config and each missing layer, verify every byte against its digest, and unpack each layer
//! that has no snapshot yet. Endpoints (mirrors, then the registry) are tried in order; each
//! request is retried with exponential backoff while the failure is transient.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{StreamExt, TryStreamExt};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::auth::RegistryAuth;
use super::config::parse_config;
use super::error::{ImageError, PullFailure, PullFailures};
use super::gc::Leases;
use super::manifest::{
    parse_manifest, select_platform, Descriptor, ImageManifest, Manifest, ManifestError, Platform,
};
use super::reference::{parse_digest, ImageReference};
use super::registry::{Endpoint, RegistryConfig};
use super::store::{sha256_hex, ImageRecord, LayerRecord, Store};
use super::transport::{FetchError, Transport};
use super::unpack::unpack_layer;

/// Image configs are small; a registry that sends more is not sending a config.
const MAX_CONFIG_SIZE: u64 = 16 << 20;
const MAX_INDEX_DEPTH: usize = 2;
const LAYER_CONCURRENCY: usize = 3;

#[derive(Debug, Clone, Copy)]
pub(crate) struct RetryPolicy {
    pub attempts: u32,
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 4,
            first_delay: Duration::from_millis(250),
            max_delay: Duration::from_secs(4),
        }
    }
}

impl RetryPolicy {
    /// Runs `op` until it succeeds, fails for good, or the attempts are used up.
    pub async fn run<T, F, Fut>(&self, what: &str, mut op: F) -> Result<T, FetchError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, FetchError>>,
    {
        let mut delay = self.first_delay;
        let mut attempt = 1;
        loop {
            match op().await {
                Err(e) if e.is_retryable() && attempt < self.attempts => {
                    tracing::debug!(what, attempt, error = %e, "retrying registry request");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.max_delay);
                    attempt += 1;
                }
                result => return result,
            }
        }
    }
}

/// Why one endpoint did not deliver: its answer (try the next endpoint), or a failure that no
/// other endpoint can fix (bad image, local storage).
enum Attempt {
    Fetch { object: String, error: FetchError },
    Fatal(ImageError),
}

impl From<ImageError> for Attempt {
    fn from(e: ImageError) -> Self {
        Attempt::Fatal(e)
    }
}

pub(crate) struct Puller {
    pub transport: Arc<dyn Transport>,
    pub registries: RegistryConfig,
    pub store: Store,
    pub leases: Arc<Leases>,
    pub retry: RetryPolicy,
    pub platform: Platform,
}

/// Where the manifest came from and what it says.
struct Resolved {
    digest: String,
    manifest_digest: String,
    manifest: ImageManifest,
}

impl Puller {
    pub async fn pull(
        &self,
        image: &ImageReference,
        auth: Option<&RegistryAuth>,
        local: Option<&ImageRecord>,
    ) -> Result<ImageRecord, ImageError> {
        let mut failures = Vec::new();
        for endpoint in self.registries.endpoints(image.registry()) {
            match self.pull_from(&endpoint, image, auth, local).await {
                Ok(record) => return Ok(record),
                Err(Attempt::Fatal(e)) => return Err(e),
                Err(Attempt::Fetch { object, error }) => {
                    tracing::info!(image = %image, endpoint = %endpoint.label(), %error, "registry endpoint failed");
                    failures.push(PullFailure {
                        endpoint: endpoint.label(),
                        object,
                        error,
                    });
                }
            }
        }
        Err(ImageError::Pull {
            reference: image.to_string(),
            failures: PullFailures(failures),
        })
    }

    async fn pull_from(
        &self,
        endpoint: &Endpoint,
        image: &ImageReference,
        auth: Option<&RegistryAuth>,
        local: Option<&ImageRecord>,
    ) -> Result<ImageRecord, Attempt> {
        let resolved = self.resolve(endpoint, image, auth).await?;
        if let Some(local) = local.filter(|l| l.digest == resolved.digest && self.is_complete(l)) {
            return Ok(local.clone());
        }
        let manifest = &resolved.manifest;
        let _lease = self.leases.hold(
            [
                &resolved.digest,
                &resolved.manifest_digest,
                &manifest.config.digest,
            ]
            .into_iter()
            .cloned()
            .chain(manifest.layers.iter().map(|l| l.digest.clone())),
        );
        let config_bytes = self
            .config_blob(endpoint, image, auth, &manifest.config)
            .await?;
        let manifest_error = |source| ImageError::Manifest {
            reference: image.to_string(),
            source,
        };
        let (config, diff_ids) = parse_config(&config_bytes).map_err(manifest_error)?;
        if diff_ids.len() != manifest.layers.len() {
            let source = ManifestError::LayerCountMismatch {
                layers: manifest.layers.len(),
                diff_ids: diff_ids.len(),
            };
            return Err(manifest_error(source).into());
        }
        let _snapshot_lease = self.leases.hold(diff_ids.iter().cloned());
        let layers: Vec<(&Descriptor, &String)> = manifest.layers.iter().zip(&diff_ids).collect();
        let mut fetches = Vec::with_capacity(layers.len());
        for (desc, diff_id) in &layers {
            fetches.push(self.layer(endpoint, image, auth, desc, diff_id));
        }
        futures::stream::iter(fetches)
            .buffer_unordered(LAYER_CONCURRENCY)
            .try_collect::<Vec<()>>()
            .await?;
        let record = ImageRecord {
            reference: image.to_string(),
            digest: resolved.digest.clone(),
            manifest_digest: resolved.manifest_digest.clone(),
            config_digest: manifest.config.digest.clone(),
            layers: layers
                .iter()
                .map(|(d, diff_id)| LayerRecord {
                    digest: d.digest.clone(),
                    diff_id: (*diff_id).clone(),
                    size: d.size,
                    media_type: d.media_type.clone(),
                })
                .collect(),
            config,
            size: manifest.config.size + manifest.layers.iter().map(|l| l.size).sum::<u64>(),
            pulled_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        };
        self.store.write_record(&record)?;
        Ok(record)
    }

    pub fn is_complete(&self, record: &ImageRecord) -> bool {
        record
            .layers
            .iter()
            .all(|l| self.store.has_snapshot(&l.diff_id))
    }

    /// Fetches the manifest the reference names, following an index to this platform's entry.
    async fn resolve(
        &self,
        endpoint: &Endpoint,
        image: &ImageReference,
        auth: Option<&RegistryAuth>,
    ) -> Result<Resolved, Attempt> {
        let manifest_error = |source| {
            Attempt::Fatal(ImageError::Manifest {
                reference: image.to_string(),
                source,
            })
        };
        let (top_digest, mut bytes) = self
            .manifest(
                endpoint,
                image,
                image.manifest_reference(),
                auth,
                image.digest(),
                "",
            )
            .await?;
        let mut digest = top_digest.clone();
        for _ in 0..=MAX_INDEX_DEPTH {
            match parse_manifest(&bytes).map_err(manifest_error)? {
                Manifest::Image(manifest) => {
                    validate_digests(&manifest).map_err(manifest_error)?;
                    return Ok(Resolved {
                        digest: top_digest,
                        manifest_digest: digest,
                        manifest,
                    });
                }
                Manifest::Index(entries) => {
                    let entry =
                        select_platform(&entries, &self.platform).map_err(manifest_error)?;
                    parse_digest(&entry.digest)
                        .map_err(|e| manifest_error(ManifestError::Invalid(e.to_string())))?;
                    let object = format!("manifest {}", entry.digest);
                    (digest, bytes) = self
                        .manifest(
                            endpoint,
                            image,
                            &entry.digest,
                            auth,
                            Some(&entry.digest),
                            &object,
                        )
                        .await?;
                }
            }
        }
        Err(manifest_error(ManifestError::TooDeep(MAX_INDEX_DEPTH)))
    }

    /// Fetches one manifest, checks it against `pinned` and its own digest, and stores it.
    /// `object` names it in errors (empty for the one the reference names).
    async fn manifest(
        &self,
        endpoint: &Endpoint,
        image: &ImageReference,
        reference: &str,
        auth: Option<&RegistryAuth>,
        pinned: Option<&str>,
        object: &str,
    ) -> Result<(String, Vec<u8>), Attempt> {
        let fetch = || async {
            let fetched = self
                .transport
                .manifest(endpoint, image, reference, auth)
                .await?;
            let actual = format!("sha256:{}", sha256_hex(&fetched.bytes));
            match pinned.unwrap_or(&fetched.digest) {
                expected if expected != actual => Err(FetchError::DigestMismatch {
                    expected: expected.to_string(),
                    actual,
                }),
                _ => Ok((actual, fetched.bytes.to_vec())),
            }
        };
        let (digest, bytes) =
            self.retry
                .run("manifest", fetch)
                .await
                .map_err(|error| Attempt::Fetch {
                    object: object.to_string(),
                    error,
                })?;
        self.store.put_blob(&digest, &bytes)?;
        Ok((digest, bytes))
    }

    async fn config_blob(
        &self,
        endpoint: &Endpoint,
        image: &ImageReference,
        auth: Option<&RegistryAuth>,
        desc: &Descriptor,
    ) -> Result<Vec<u8>, Attempt> {
        if desc.size > MAX_CONFIG_SIZE {
            let source =
                ManifestError::InvalidConfig(format!("config of {} bytes is too large", desc.size));
            return Err(ImageError::Manifest {
                reference: image.to_string(),
                source,
            }
            .into());
        }
        self.blob(endpoint, image, auth, desc).await?;
        Ok(self.store.read_blob(&desc.digest)?)
    }

    async fn layer(
        &self,
        endpoint: &Endpoint,
        image: &ImageReference,
        auth: Option<&RegistryAuth>,
        desc: &Descriptor,
        diff_id: &str,
    ) -> Result<(), Attempt> {
        if self.store.has_snapshot(diff_id) {
            return Ok(());
        }
        let blob = self.blob(endpoint, image, auth, desc).await?;
        let temp = self.store.temp_path("snapshot");
        let fs_dir = temp.join("fs");
        std::fs::create_dir_all(&fs_dir).map_err(ImageError::storage("creating", &fs_dir))?;
        let expected = diff_id.to_string();
        let started = std::time::Instant::now();
        let unpacked =
            tokio::task::spawn_blocking(move || unpack_layer(&blob, &fs_dir, Some(&expected)))
                .await
                .map_err(|e| ImageError::storage("unpacking", &temp)(std::io::Error::other(e)))?;
        match unpacked {
            Ok(stats) => {
                tracing::debug!(layer = %desc.digest, entries = stats.entries, bytes = stats.bytes, elapsed = ?started.elapsed(), "unpacked layer");
                self.store.commit_snapshot(&temp, diff_id)?;
                Ok(())
            }
            Err(source) => {
                let _ = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(temp)).await;
                Err(ImageError::Unpack {
                    reference: image.to_string(),
                    layer: desc.digest.clone(),
                    source,
                }
                .into())
            }
        }
    }

    /// Makes sure blob `desc` is in the store, downloading and verifying it if not.
    async fn blob(
        &self,
        endpoint: &Endpoint,
        image: &ImageReference,
        auth: Option<&RegistryAuth>,
        desc: &Descriptor,
    ) -> Result<PathBuf, Attempt> {
        let path = self.store.blob_path(&desc.digest)?;
        if path.is_file() {
            return Ok(path);
        }
        let download = || async {
            let temp = self.store.temp_path("blob");
            let result = self.download(endpoint, image, auth, desc, &temp).await;
            if result.is_err() {
                let _ = tokio::fs::remove_file(&temp).await;
            }
            result.map(|()| temp)
        };
        let temp = self
            .retry
            .run("blob", download)
            .await
            .map_err(|error| Attempt::Fetch {
                object: format!("blob {}", desc.digest),
                error,
            })?;
        Ok(self.store.commit_blob(&temp, &desc.digest)?)
    }

    /// Streams one blob into `temp`, hashing as it goes; never accepts more than the manifest
    /// announced.
    async fn download(
        &self,
        endpoint: &Endpoint,
        image: &ImageReference,
        auth: Option<&RegistryAuth>,
        desc: &Descriptor,
        temp: &std::path::Path,
    ) -> Result<(), FetchError> {
        let local =
            |e: std::io::Error| FetchError::Protocol(format!("writing {}: {e}", temp.display()));
        let mut stream = self
            .transport
            .blob(endpoint, image, &desc.digest, auth)
            .await?;
        let mut file = tokio::io::BufWriter::with_capacity(
            256 * 1024,
            tokio::fs::File::create(temp).await.map_err(local)?,
        );
        let (mut hasher, mut written) = (Sha256::new(), 0u64);
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            written += chunk.len() as u64;
            if written > desc.size {
                return Err(FetchError::SizeMismatch {
                    digest: desc.digest.clone(),
                    expected: desc.size,
                    actual: written,
                });
            }
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(local)?;
        }
        if written != desc.size {
            return Err(FetchError::SizeMismatch {
                digest: desc.digest.clone(),
                expected: desc.size,
                actual: written,
            });
        }
        let actual = format!("sha256:{:x}", hasher.finalize());
        if actual != desc.digest {
            return Err(FetchError::DigestMismatch {
                expected: desc.digest.clone(),
                actual,
            });
        }
        file.flush().await.map_err(local)?;
        file.get_ref().sync_all().await.map_err(local)?;
        Ok(())
    }
}

/// Digests name files in the store, so they must be well formed before anything is fetched.
fn validate_digests(manifest: &ImageManifest) -> Result<(), ManifestError> {
    std::iter::once(&manifest.config)
        .chain(&manifest.layers)
        .try_for_each(|d| parse_digest(&d.digest).map(drop))
        .map_err(|e| ManifestError::Invalid(e.to_string()))
}
