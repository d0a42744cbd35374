//! SPDY/3.1, the multiplexing protocol `kubectl` speaks for exec, attach and port-forward
//! when WebSocket is not available (and, tunneled in WebSocket, for port-forward).

pub mod client;
pub mod dictionary;
pub mod frame;
pub mod headers;
pub mod session;

pub use frame::{Frame, FrameCodec, FrameError};
pub use headers::{HeaderError, Headers};
pub use session::{SpdyConnection, SpdyReader, SpdyStream, SpdyWriter, StreamCloser};
