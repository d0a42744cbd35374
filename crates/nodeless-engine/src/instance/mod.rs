//! Instances: a Pod's worth of containers on this host, behind the [`Engine`] trait.
//!
//! - [`spec`]: what the agent asks for ([`InstanceSpec`]).
//! - [`engine`]: the [`Engine`] trait, its types, and [`LocalEngine`]; `create.rs`, `teardown.rs`,
//!   `ops.rs` and `probes.rs` hold its verbs.
//! - [`supervisor`]: the per-instance shim process (`nodeless shim`) that owns container stdio,
//!   runs init containers in order and applies the restart policy.
//! - [`lifecycle`]: the container and instance state machines; [`restart`]: policy and backoff.
//! - [`state`]: the on-disk layout under `ROOT/instances/<id>/`.
//! - [`deps`]: the traits in front of images and networking.
//!
//! Contract notes for the image and network owners: the engine uses `ImageService::ensure`
//! (layers lowest first, config entrypoint/cmd/env/workingDir/user/stopSignal) and
//! `Network::{attach, detach, cleanup_orphans}` + `connect_in_netns` through `adapters.rs`.

mod adapters;
mod create;
pub use create::validate;
pub mod deps;
pub mod engine;
pub mod lifecycle;
mod ops;
mod probes;
pub mod reaper;
pub mod restart;
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
