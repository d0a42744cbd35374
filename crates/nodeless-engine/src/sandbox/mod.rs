//! Sandboxes: the OS-facing mechanics of running one container.
//!
//! - [`bundle`]: OCI runtime `config.json` from image config + overrides + limits ([`security`] profile, [`user`] lookup).
//! - [`rootfs`]: overlay root filesystems and tmpfs volumes ([`rootfs::Mounter`]).
//! - [`runtime`]: runc / runsc driver ([`runtime::Runtime`], faked in unit tests).
//! - [`cgroups`]: cgroup v1 and v2 paths, usage and OOM counters.
//! - [`logs`]: CRI-format log files with rotation, and their reader.
//! - [`exec`]: processes started in running containers, with stdin and TTY.

pub mod bundle;
pub mod cgroups;
pub mod exec;
pub mod logs;
pub mod rootfs;
pub mod runtime;
pub mod security;
pub mod start_gate;
pub mod user;

pub use runtime::{CliRuntime, Runtime, RuntimeBinary, RuntimeError, RuntimeKind, RuntimeState};
