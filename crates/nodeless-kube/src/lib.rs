//! What nodeless's components (scheduler, host agent, API server) share over the Kubernetes
//! API. They talk only through the API, so they can run in one process (`nodeless up`) or on
//! different machines against any Kubernetes API server.
//!
//! - [`names`]: annotation keys, the virtual node's name, the gVisor RuntimeClass.
//! - [`host`]: the `Host` resource (`hosts.nodeless.dev`) through which a host agent offers
//!   its capacity and its node-side endpoint to the scheduler and the API server.
//! - [`billing`]: the ledger (`UsageRecord`) and the spot market (`SpotMarket`) resources.
//! - [`events`]: a small core/v1 Event recorder that folds repeats as client-go does.

pub mod billing;
pub mod events;
pub mod host;
pub mod names;

pub use events::{EventRecorder, EventType};
pub use host::{Host, HostSpec, HostStatus};
