//! The remote command protocols of exec and attach: which streams exist, how the outcome
//! is reported, and [`ExecStreams`], the same shape whichever transport carried them.
//!
//! The error stream carries the outcome. From `v4.channel.k8s.io` on it is a JSON
//! `metav1.Status`: `Success`, or `Failure` with reason `NonZeroExitCode` and the code in a
//! cause of reason `ExitCode` (client-go turns that into the exit code kubectl exits with).
//! Older versions carry the error message as text.

mod resize;
pub mod spdy;
pub mod websocket;

use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use resize::ResizeDecoder;

/// Protocol versions, oldest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    V1,
    V2,
    V3,
    V4,
    V5,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V1 => "channel.k8s.io",
            Protocol::V2 => "v2.channel.k8s.io",
            Protocol::V3 => "v3.channel.k8s.io",
            Protocol::V4 => "v4.channel.k8s.io",
            Protocol::V5 => "v5.channel.k8s.io",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [
            Protocol::V1,
            Protocol::V2,
            Protocol::V3,
            Protocol::V4,
            Protocol::V5,
        ]
        .into_iter()
        .find(|p| p.name() == name)
    }

    /// A resize stream exists from v3 on.
    pub fn supports_resize(self) -> bool {
        self >= Protocol::V3
    }
}

/// What SPDY clients may negotiate, preferred first (v5 exists only over WebSocket).
pub const SPDY_PROTOCOLS: &[&str] = &[
    "v4.channel.k8s.io",
    "v3.channel.k8s.io",
    "v2.channel.k8s.io",
    "channel.k8s.io",
];
/// What WebSocket clients may negotiate, preferred first.
pub const WEBSOCKET_PROTOCOLS: &[&str] = &["v5.channel.k8s.io", "v4.channel.k8s.io"];

/// Which streams the client asked for (the request's stdin/stdout/stderr/tty).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOptions {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

impl StreamOptions {
    /// With a terminal, stderr is merged into stdout (as the kubelet does).
    pub fn normalized(mut self) -> Self {
        if self.tty {
            self.stderr = false;
        }
        self
    }
}

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Exited(i32),
    /// It could not run or was cut short; the message is shown to the user.
    Failed(String),
}

/// The bytes written to the error stream for `outcome`.
pub fn error_stream_message(protocol: Protocol, outcome: &Outcome) -> Vec<u8> {
    let status = match (protocol >= Protocol::V4, outcome) {
        (_, Outcome::Exited(0)) if protocol >= Protocol::V4 => {
            json!({"metadata": {}, "status": "Success"})
        }
        (_, Outcome::Exited(0)) => return Vec::new(),
        (true, Outcome::Exited(code)) => json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure",
            "message": format!("command terminated with non-zero exit code: exit status {code}"),
            "reason": "NonZeroExitCode",
            "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]},
        }),
        (false, Outcome::Exited(code)) => {
            return format!("command terminated with non-zero exit code: exit status {code}")
                .into_bytes()
        }
        (true, Outcome::Failed(message)) => json!({
            "kind": "Status", "apiVersion": "v1", "metadata": {},
            "status": "Failure", "message": message, "reason": "InternalError", "code": 500,
        }),
        (false, Outcome::Failed(message)) => return message.clone().into_bytes(),
    };
    serde_json::to_vec(&status).unwrap_or_default()
}

pub type BoxRead = Box<dyn AsyncRead + Send + Unpin>;
pub type BoxWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// The client's streams of one exec or attach, ready to hand to a process.
pub struct ExecStreams {
    pub stdin: Option<BoxRead>,
    pub stdout: Option<BoxWrite>,
    pub stderr: Option<BoxWrite>,
    /// Terminal size changes as (columns, rows).
    pub resize: Option<mpsc::Receiver<(u16, u16)>>,
    pub finisher: Finisher,
}

/// Reports the outcome and closes the connection; dropping it just closes.
pub struct Finisher {
    pub(crate) protocol: Protocol,
    pub(crate) closed: CancellationToken,
    pub(crate) transport: Transport,
}

pub(crate) enum Transport {
    Spdy(spdy::SpdyFinish),
    WebSocket(websocket::WsFinish),
}

impl Finisher {
    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Cancelled when the client goes away.
    pub fn closed(&self) -> CancellationToken {
        self.closed.clone()
    }

    pub async fn finish(self, outcome: Outcome) {
        let message = error_stream_message(self.protocol, &outcome);
        match self.transport {
            Transport::Spdy(t) => t.finish(message).await,
            Transport::WebSocket(t) => t.finish(message).await,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AcceptError {
    #[error("timed out waiting for the client's streams")]
    Timeout,
    #[error("the client closed the connection before opening its streams")]
    Closed,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status(protocol: Protocol, outcome: Outcome) -> serde_json::Value {
        serde_json::from_slice(&error_stream_message(protocol, &outcome)).expect("json")
    }

    #[test]
    fn a_non_zero_exit_is_reported_as_an_exit_code_cause() {
        let s = status(Protocol::V4, Outcome::Exited(3));
        assert_eq!(s["status"], "Failure");
        assert_eq!(s["reason"], "NonZeroExitCode");
        assert_eq!(
            s["details"]["causes"][0],
            json!({"reason": "ExitCode", "message": "3"})
        );
        assert_eq!(
            status(Protocol::V5, Outcome::Exited(0))["status"],
            "Success"
        );
    }

    #[test]
    fn old_protocols_carry_text_and_nothing_on_success() {
        assert!(error_stream_message(Protocol::V3, &Outcome::Exited(0)).is_empty());
        let text = error_stream_message(Protocol::V2, &Outcome::Failed("boom".into()));
        assert_eq!(text, b"boom");
        assert_eq!(
            status(Protocol::V4, Outcome::Failed("boom".into()))["code"],
            500
        );
    }

    #[test]
    fn protocol_names_round_trip_and_tty_drops_stderr() {
        for name in SPDY_PROTOCOLS.iter().chain(WEBSOCKET_PROTOCOLS) {
            assert_eq!(Protocol::from_name(name).map(Protocol::name), Some(*name));
        }
        let o = StreamOptions {
            stdout: true,
            stderr: true,
            tty: true,
            ..Default::default()
        };
        assert!(!o.normalized().stderr);
    }
}
