//! Images: pulling OCI images from registries, a content-addressed store, and one unpacked
//! snapshot per layer that an instance's overlay root filesystem stacks.
//!
//! # Contract with the rest of the engine (images owner; refinements of notes/engine-contract.md)
//!
//! ```text
//! ImageService::open(root: &Path, cfg: RegistryConfig) -> Result<ImageService, ImageError>  // sync, no runtime needed
//! ImageService::ensure(&self, reference: &str, policy: PullPolicy, auth: Option<&RegistryAuth>) -> Result<Image, ImageError>
//! ImageService::get(&self, reference: &str) -> Result<Option<Image>, ImageError>   // local only
//! ImageService::list(&self) -> Result<Vec<Image>, ImageError>
//! ImageService::remove(&self, reference_or_digest: &str) -> Result<(), ImageError> // record only; space comes back at gc
//! ImageService::gc(&self, in_use: &HashSet<String>) -> Result<GcReport, ImageError>
//! ImageService::set_gc_grace(&self, Duration)   // images ensured more recently are kept (default 120 s)
//! ```
//! - `Image { reference, digest, id, config, layers, size }`: `layers` are the snapshot `fs`
//!   directories, lowest first. Overlay wants the top-most first: `lowerdir=` them reversed.
//!   Whiteouts in them are overlayfs's own (0/0 character devices, `trusted.overlay.opaque`),
//!   so they work as lower layers as they are. Never write into them: they are shared.
//!   Each path is ~`ROOT/snapshots/<64 hex>/fs`; overlay's mount data is one page (4096 bytes),
//!   so an image of more than ~30 layers needs short paths (e.g. mount from inside
//!   `ROOT/snapshots` with relative `lowerdir`s, or bind-mount aliases), as containerd does.
//! - `digest` is what `in_use` for `gc` should hold (ids and references are accepted too).
//!   `gc` removes every image not in use and not ensured within the grace period, so call it
//!   when disk is short (or periodically), not after every instance.
//! - `RegistryAuth { username, password, registry_token }`; build it with
//!   `RegistryAuth::from_docker_config_json(secret_bytes, image_registry)`, where the registry is
//!   `ImageReference::registry()` of the parsed image (`"docker.io"` for `busybox`).
//! - `RegistryConfig { mirrors: Vec<(String, Url)>, insecure: Vec<String> }`;
//!   `RegistryConfig::parse_mirror("docker.io=http://127.0.0.1:5000")` parses the CLI flag.
//!   Loopback registries are always plain HTTP, as in Docker.
//! - `ImageError` is `Clone`; `NotPresent` (policy Never) and `Pull` (registry answers, see
//!   `pull_failures()`) are the client-facing ones (kubelet's ErrImageNeverPull / ErrImagePull).
//!
//! Layout on disk: see [`store`]. Hostile-layer safety: see [`unpack`].

mod auth;
mod config;
mod error;
mod gc;
mod manifest;
mod pull;
mod reference;
mod registry;
mod service;
pub(crate) mod store;
mod transport;
pub(crate) mod unpack;

#[cfg(test)]
mod fake;
#[cfg(test)]
mod tests;

pub use auth::RegistryAuth;
pub use config::ImageConfig;
pub use error::{ImageError, PullFailure, PullFailures};
pub use gc::GcReport;
pub use manifest::{host_platform, ManifestError, Platform};
pub use reference::{ImageReference, ReferenceError, DOCKER_HUB};
pub use registry::RegistryConfig;
pub use service::{Image, ImageService, PullPolicy, DEFAULT_GC_GRACE};
pub use transport::FetchError;
pub use unpack::{unpack_layer, UnpackError, UnpackStats};
