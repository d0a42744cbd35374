//! nodeless-engine: the per-host instance engine.
//!
//! It turns an [`instance::InstanceSpec`] (a Pod's worth of containers, volumes and limits)
//! into isolated containers: images are pulled and unpacked into snapshots (`image`), each
//! instance gets a network namespace and IP from CNI (`network`), and each container runs
//! under runc or runsc on an overlay root filesystem (`sandbox`), supervised by a small
//! per-container shim process that survives engine restarts (`instance`).

pub mod fake;
pub mod image;
pub mod instance;
pub mod network;
pub mod sandbox;

pub use instance::supervisor::shim_main;
