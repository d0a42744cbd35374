//! The workload controllers, written against the Kubernetes API with kube-rs's runtime
//! (reflectors, level-triggered reconcilers, requeue with backoff). `nodeless up` runs them in
//! process; `nodeless controllers` runs them on their own, and several copies may run: a
//! Lease elects the one that acts.
//!
//! Modules (one per controller, each exposing `pub async fn run(ctx: Context) -> Result<(), ControllerError>`):
//! - [`pods`]: what controllers share about the Pods they own (templates, owner references,
//!   readiness and availability).
//! - being written: `replicaset`, `deployment`, `statefulset`, `job`, `cronjob`,
//!   `endpoints` (Endpoints and EndpointSlices), `pdb`, `leader`.

pub mod deployment;
pub mod job;
pub mod pods;
pub mod replicaset;

use std::time::Duration;

/// What every controller gets.
#[derive(Clone)]
pub struct Context {
    pub client: kube::Client,
    pub events: nodeless_kube::EventRecorder,
    pub shutdown: tokio_util::sync::CancellationToken,
}

#[derive(Debug, Clone)]
pub struct ControllersConfig {
    /// Name of the leader-election Lease in `kube-system`.
    pub lease_name: String,
    /// This copy's identity in the Lease.
    pub identity: String,
    pub lease_duration: Duration,
}

impl Default for ControllersConfig {
    fn default() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|s| s.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        ControllersConfig {
            lease_name: "nodeless-controllers".into(),
            identity: format!("{host}_{}", std::process::id()),
            lease_duration: Duration::from_secs(15),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("{controller}: {source}")]
    Kube {
        controller: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("{controller}: {message}")]
    Other {
        controller: &'static str,
        message: String,
    },
}
