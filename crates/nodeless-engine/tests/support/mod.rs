//! Shared helpers for the engine's root-only integration tests (`mod support;` in each test file):
//! a throwaway Debian `docker-registry` on loopback and small OCI test images built from Debian's
//! static busybox. `scripts/test-images.sh` is the shell twin of the image builder.
//!
//! ```ignore
//! if support::skip_unless_root("pull_from_registry") { return; }
//! let registry = support::Registry::start();
//! let dir = tempfile::tempdir().unwrap();
//! support::push(&support::build_busybox_image(dir.path()), &registry, "library/busybox:latest");
//! ```
#![allow(dead_code, unused_imports)] // each test binary uses a different part

mod http;
mod image;
pub mod network;
mod registry;

pub use image::{
    build_busybox_image, build_httpd_image, build_image, push, Blob, LayerEntry, TestImage,
    BUSYBOX_APPLETS,
};
pub use registry::Registry;

/// Whether the tests run as root (they need it for mounts, namespaces, runc and CNI).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// True (and says why on stderr) when a root-only test must be skipped.
pub fn skip_unless_root(test: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipping {test}: needs root (namespaces, mounts, runc, CNI)");
    true
}
