//! Instances: a Pod's worth of containers on this host, behind the [`Engine`] trait.
//!
//! - [`spec`]: what the agent asks for ([`InstanceSpec`]).
//! - [`engine`]: the [`Engine`] trait, its types, and [`LocalEngine`]; `create.rs`, `teardown.rs`,
//!   `ops.rs` and `probes.rs` hold its verbs.
//! - [`supervisor`]: the per-instance shim process (`nodeless shim`) that owns container stdio,
//!   runs init containers in order and applies the restart policy.
//! - [`lifecycle`]: the container and instance state machines; [`restart`]: policy and backoff.
//! - [`state`]: the on-disk layout under `ROOT/instances/<id>/`; `liveness.rs`: whether each
//!   shim is alive, held by pidfd once recognised.
//! - [`deps`]: the traits in front of images and networking.
//!
//! Using it (host agent):
//! ```ignore
//! let images = ImageService::open(&root.join("images"), registry)?;
//! let net = Network::new(NetworkConfig::new(root.join("network")))?;
//! let engine = LocalEngine::open(EngineParts::host(EngineConfig::new(root), Arc::new(images), Arc::new(net)))?;
//! engine.recover().await?;            // adopt running instances, clean orphans (once, at start)
//! engine.watch(Duration::from_millis(500)); // status-file changes become InstanceEvents
//! let mut events = engine.events();
//! engine.create(spec).await?;         // returns once the supervisor runs; containers start behind it
//! ```
//! `EngineConfig::shim_command` defaults to `<current exe> shim`: the binary must hand
//! `shim <config>` to [`crate::shim_main`] before starting an async runtime.
//!
//! Behaviours to know: a restarted container keeps its writable layer (the kubelet gives a
//! fresh one); containers of an instance share the network namespace, hostname and /etc
//! files but not IPC; under runsc each container is its own sandbox in the instance's
//! namespace (runsc `--network=host` inside it, see `sandbox::runtime`).

mod adapters;
pub mod attach;
mod create;
pub use create::validate;
pub mod deps;
pub mod engine;
pub mod lifecycle;
mod liveness;
mod ops;
mod probes;
pub mod reaper;
pub mod restart;
pub mod shim_stdio;
pub mod spec;
pub mod state;
pub mod supervisor;
mod teardown;

pub use deps::{
    DepError, ImageSource, LocalImages, NetAttachment, NetworkProvider, NoNetwork, PulledImage,
};
pub use engine::{
    ContainerStats, ContainerView, Engine, EngineError, EngineParts, ExecIo, HostRuntimes,
    InstanceEvent, InstanceStatus, LocalEngine, LogStream, RuntimeLocator,
};
pub use lifecycle::{ContainerState, ContainerStatus, InstancePhase, Termination};
pub use restart::{Backoff, RestartPolicy};
pub use spec::*;
pub use teardown::RecoveryReport;
