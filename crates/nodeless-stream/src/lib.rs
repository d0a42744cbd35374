//! Kubernetes streaming protocols, server side: what a kubelet speaks to `kubectl exec`,
//! `attach`, `cp` and `port-forward` (through the API server's proxy).
//!
//! - [`spdy`]: SPDY/3.1 framing and a server connection over any byte stream.
//! - [`remotecommand`]: the exec/attach channel protocols (`v1`..`v4.channel.k8s.io` over
//!   SPDY, `v4`/`v5.channel.k8s.io` over WebSocket) behind one [`remotecommand::ExecStreams`].
//! - [`portforward`]: `portforward.k8s.io` over SPDY, plain or tunneled in WebSocket.
//! - [`handshake`]: protocol negotiation for the HTTP upgrade.

pub mod chunk;
pub mod handshake;
pub mod portforward;
pub mod remotecommand;
pub mod spdy;
mod task;
pub mod tunnel;
