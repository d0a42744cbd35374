//! The HTTP/1.1 upgrade of exec, attach and port-forward to SPDY or WebSocket.

use http::{HeaderMap, Response, StatusCode};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use nodeless_core::status::StatusError;
use nodeless_stream::handshake::{
    negotiate, offered_protocols, requested_upgrade, websocket_accept, Upgrade,
};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use super::response::{empty, Body};

/// The transport and subprotocol agreed with the client.
#[derive(Debug, Clone, Copy)]
pub struct Agreed {
    pub upgrade: Upgrade,
    pub protocol: &'static str,
}

/// What an endpoint supports: SPDY subprotocols and WebSocket subprotocols, preferred
/// first; `spdy_default` is used when a SPDY client names none (as old clients do).
pub struct Supported {
    pub spdy: &'static [&'static str],
    pub spdy_default: &'static str,
    pub websocket: &'static [&'static str],
}

/// Agrees on a protocol and builds the 101 response, or says why not.
pub fn negotiate_upgrade(
    headers: &HeaderMap,
    supported: &Supported,
) -> Result<(Agreed, Response<Body>), StatusError> {
    let upgrade = requested_upgrade(headers).ok_or_else(|| {
        StatusError::bad_request(
            "upgrade request required: use Upgrade: SPDY/3.1 or Upgrade: websocket",
        )
    })?;
    let offered = offered_protocols(headers, upgrade);
    let (choices, header) = match upgrade {
        Upgrade::Spdy => (supported.spdy, "X-Stream-Protocol-Version"),
        Upgrade::WebSocket => (supported.websocket, "Sec-WebSocket-Protocol"),
    };
    let protocol = match (negotiate(&offered, choices), upgrade) {
        (Some(p), _) => p,
        (None, Upgrade::Spdy) if offered.is_empty() => supported.spdy_default,
        (None, _) => {
            return Err(StatusError::new(
                403,
                "Forbidden",
                format!(
                    "unable to upgrade: unable to negotiate protocol: client supports {offered:?}, server supports {choices:?}"
                ),
            ))
        }
    };
    let mut response = Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(http::header::CONNECTION, "Upgrade");
    response = match upgrade {
        Upgrade::Spdy => response.header(http::header::UPGRADE, "SPDY/3.1"),
        Upgrade::WebSocket => {
            let accept = websocket_accept(headers).ok_or_else(|| {
                StatusError::bad_request("websocket upgrade without Sec-WebSocket-Key")
            })?;
            response
                .header(http::header::UPGRADE, "websocket")
                .header("Sec-WebSocket-Accept", accept)
        }
    };
    if !(upgrade == Upgrade::Spdy && offered.is_empty()) {
        response = response.header(header, protocol);
    }
    let response = response
        .body(empty())
        .map_err(|e| StatusError::internal(e.to_string()))?;
    Ok((Agreed { upgrade, protocol }, response))
}

pub type UpgradedIo = TokioIo<Upgraded>;

/// The server side of the WebSocket on an upgraded connection.
pub async fn websocket(io: UpgradedIo) -> WebSocketStream<UpgradedIo> {
    WebSocketStream::from_raw_socket(io, Role::Server, None).await
}
