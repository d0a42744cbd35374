//! `ImageService`: the images part of the engine as the rest of it sees it.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, FutureExt, Shared};

use super::auth::RegistryAuth;
use super::config::ImageConfig;
use super::error::ImageError;
use super::gc::{self, GcReport, Leases};
use super::manifest::host_platform;
use super::pull::{Puller, RetryPolicy};
use super::reference::{parse_digest, ImageReference};
use super::registry::RegistryConfig;
use super::store::{ImageRecord, Store};
use super::transport::{OciTransport, Transport};

/// Kubernetes' `imagePullPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PullPolicy {
    /// Ask the registry every time; fetch only what changed.
    Always,
    #[default]
    IfNotPresent,
    /// Use only what is already here.
    Never,
}

impl FromStr for PullPolicy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "Always" => Ok(PullPolicy::Always),
            "IfNotPresent" => Ok(PullPolicy::IfNotPresent),
            "Never" => Ok(PullPolicy::Never),
            other => Err(format!("unknown pull policy {other:?}")),
        }
    }
}

/// A pulled, unpacked image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// Normalized, e.g. `docker.io/library/busybox:latest`.
    pub reference: String,
    /// What the reference resolved to in the registry (the index digest for multi-platform
    /// images): `reference`'s repository `@digest` pulls the same image again.
    pub digest: String,
    /// The config digest, which container runtimes show as the image ID.
    pub id: String,
    pub config: ImageConfig,
    /// Unpacked layer directories, lowest first: an overlay mount's lower layers, in reverse.
    pub layers: Vec<PathBuf>,
    /// Bytes of the config and the (compressed) layers, as registries count it.
    pub size: u64,
}

type PullFuture = Shared<BoxFuture<'static, Result<Image, ImageError>>>;

/// Pulls, stores and unpacks images under one root directory. Cheap to clone.
#[derive(Clone)]
pub struct ImageService {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    puller: Puller,
    leases: Arc<Leases>,
    in_flight: Mutex<HashMap<String, PullFuture>>,
    /// When each image (by digest) was last handed out, so collection spares fresh ones.
    last_used: Mutex<HashMap<String, Instant>>,
    gc_grace: Mutex<Duration>,
}

/// How long after its last use an image is spared by `gc`: an `ensure` returns before the
/// caller has an instance that keeps the image in use.
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(120);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ImageService {
    /// Opens (creating if needed) the image store at `root`.
    pub fn open(root: &Path, cfg: RegistryConfig) -> Result<Self, ImageError> {
        Self::with_transport(
            root,
            cfg,
            Arc::new(OciTransport::new()),
            RetryPolicy::default(),
        )
    }

    pub(crate) fn with_transport(
        root: &Path,
        cfg: RegistryConfig,
        transport: Arc<dyn Transport>,
        retry: RetryPolicy,
    ) -> Result<Self, ImageError> {
        cfg.validate()?;
        let store = Store::open(root)?;
        let leases = Arc::new(Leases::default());
        let puller = Puller {
            transport,
            registries: cfg,
            store: store.clone(),
            leases: Arc::clone(&leases),
            retry,
            platform: host_platform(),
        };
        let inner = Inner {
            store,
            puller,
            leases,
            in_flight: Mutex::default(),
            last_used: Mutex::default(),
            gc_grace: Mutex::new(DEFAULT_GC_GRACE),
        };
        Ok(ImageService {
            inner: Arc::new(inner),
        })
    }

    /// Sets how long `gc` spares an image after it was last ensured (default two minutes).
    pub fn set_gc_grace(&self, grace: Duration) {
        *lock(&self.inner.gc_grace) = grace;
    }

    pub fn root(&self) -> &Path {
        self.inner.store.root()
    }

    /// Returns the image, pulling it as `policy` says. Concurrent calls for the same image (and
    /// credentials) share one pull. With `IfNotPresent` a present image costs no network and no
    /// unpacking.
    pub async fn ensure(
        &self,
        reference: &str,
        policy: PullPolicy,
        auth: Option<&RegistryAuth>,
    ) -> Result<Image, ImageError> {
        let image = parse(reference)?;
        if policy != PullPolicy::Always {
            if let Some(found) = self.local(&image)? {
                return Ok(found);
            }
            if policy == PullPolicy::Never {
                return Err(ImageError::NotPresent {
                    reference: image.to_string(),
                });
            }
        }
        self.shared_pull(image, auth).await
    }

    fn shared_pull(&self, image: ImageReference, auth: Option<&RegistryAuth>) -> PullFuture {
        let key = format!("{image}\0{}", auth.map_or("", |a| a.username.as_str()));
        let mut in_flight = lock(&self.inner.in_flight);
        if let Some(pull) = in_flight.get(&key) {
            return pull.clone();
        }
        let inner = Arc::clone(&self.inner);
        let (auth, flight_key) = (auth.cloned(), key.clone());
        let pull = async move {
            let result = inner.pull(&image, auth.as_ref()).await;
            lock(&inner.in_flight).remove(&flight_key);
            result
        }
        .boxed()
        .shared();
        in_flight.insert(key, pull.clone());
        pull
    }

    /// The image if it is here, complete; never touches the network.
    pub fn get(&self, reference: &str) -> Result<Option<Image>, ImageError> {
        self.local(&parse(reference)?)
    }

    fn local(&self, image: &ImageReference) -> Result<Option<Image>, ImageError> {
        let store = &self.inner.store;
        let record = match (store.read_record(&image.to_string())?, image.digest()) {
            (Some(record), _) => Some(record),
            (None, Some(digest)) => self.adopt_pinned(image, digest)?,
            (None, None) => None,
        };
        match record {
            Some(record) if self.inner.puller.is_complete(&record) => {
                self.inner.mark_used(&record.digest);
                Ok(Some(self.inner.image(&record)?))
            }
            _ => Ok(None),
        }
    }

    /// `repo@sha256:…` is already here when another reference of the same repository resolved
    /// to that digest: the content is the same by definition. It gets its own record. (Only the
    /// same repository: its credentials were checked when it was pulled.)
    fn adopt_pinned(
        &self,
        image: &ImageReference,
        digest: &str,
    ) -> Result<Option<ImageRecord>, ImageError> {
        let name = image.name();
        let same_repository = |r: &ImageRecord| {
            r.reference
                .parse::<ImageReference>()
                .is_ok_and(|other| other.name() == name)
        };
        let found =
            self.inner.store.records()?.into_iter().find(|r| {
                (r.digest == digest || r.manifest_digest == digest) && same_repository(r)
            });
        let Some(mut record) = found else {
            return Ok(None);
        };
        record.reference = image.to_string();
        if record.manifest_digest == digest {
            record.digest = digest.to_string();
        }
        self.inner.store.write_record(&record)?;
        Ok(Some(record))
    }

    /// All image records, by reference.
    pub fn list(&self) -> Result<Vec<Image>, ImageError> {
        let records = self.inner.store.records()?;
        records.iter().map(|r| self.inner.image(r)).collect()
    }

    /// Forgets an image, by reference or by digest (`sha256:…`, every reference with that
    /// digest or ID). Its blobs and snapshots go at the next `gc`.
    pub fn remove(&self, reference: &str) -> Result<(), ImageError> {
        let store = &self.inner.store;
        let removed = if parse_digest(reference).is_ok() {
            let mut any = false;
            for record in store.records()? {
                if [
                    &record.digest,
                    &record.manifest_digest,
                    &record.config_digest,
                ]
                .contains(&&reference.to_string())
                {
                    any |= store.remove_record(&record.reference)?;
                }
            }
            any
        } else {
            store.remove_record(&parse(reference)?.to_string())?
        };
        if removed {
            Ok(())
        } else {
            Err(ImageError::NotFound {
                reference: reference.to_string(),
            })
        }
    }

    /// Removes every image not in `in_use` (by digest, ID or reference) and not used within the
    /// grace period, then every blob and snapshot no remaining image needs.
    pub fn gc(&self, in_use: &HashSet<String>) -> Result<GcReport, ImageError> {
        let grace = *lock(&self.inner.gc_grace);
        let last_used = lock(&self.inner.last_used).clone();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let keep = |r: &ImageRecord| {
            let used = [
                &r.digest,
                &r.manifest_digest,
                &r.config_digest,
                &r.reference,
            ]
            .iter()
            .any(|k| in_use.contains(*k));
            let recently = last_used
                .get(&r.digest)
                .is_some_and(|t| t.elapsed() < grace)
                || now.saturating_sub(r.pulled_at) < grace.as_secs();
            used || recently
        };
        let report = gc::collect(&self.inner.store, &self.inner.leases, keep)?;
        tracing::info!(
            images = report.images_removed.len(),
            snapshots = report.snapshots_removed,
            blobs = report.blobs_removed,
            bytes = report.bytes_freed,
            "image garbage collection"
        );
        Ok(report)
    }
}

impl Inner {
    async fn pull(
        &self,
        image: &ImageReference,
        auth: Option<&RegistryAuth>,
    ) -> Result<Image, ImageError> {
        let started = Instant::now();
        let local = self.store.read_record(&image.to_string())?;
        let record = self.puller.pull(image, auth, local.as_ref()).await?;
        tracing::info!(image = %image, digest = %record.digest, elapsed = ?started.elapsed(), "image ready");
        self.mark_used(&record.digest);
        self.image(&record)
    }

    fn mark_used(&self, digest: &str) {
        lock(&self.last_used).insert(digest.to_string(), Instant::now());
    }

    fn image(&self, record: &ImageRecord) -> Result<Image, ImageError> {
        Ok(Image {
            reference: record.reference.clone(),
            digest: record.digest.clone(),
            id: record.config_digest.clone(),
            config: record.config.clone(),
            layers: record
                .layers
                .iter()
                .map(|l| self.store.snapshot_fs(&l.diff_id))
                .collect::<Result<_, _>>()?,
            size: record.size,
        })
    }
}

fn parse(reference: &str) -> Result<ImageReference, ImageError> {
    reference
        .parse()
        .map_err(|source| ImageError::InvalidReference {
            reference: reference.to_string(),
            source,
        })
}
