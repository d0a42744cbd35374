//! `portForward`: connections into the instance's network namespace, one per stream pair.

use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use nodeless_core::status::StatusError;
use nodeless_stream::handshake::Upgrade;
use nodeless_stream::portforward::{serve_port_forward, PROTOCOL, WEBSOCKET_TUNNEL_PROTOCOL};
use nodeless_stream::spdy::SpdyConnection;
use nodeless_stream::tunnel::WebSocketIo;

use super::response::{Body, Target};
use super::upgrade::{negotiate_upgrade, websocket, Supported};
use super::Ctx;

const SUPPORTED: Supported = Supported {
    spdy: &[PROTOCOL],
    spdy_default: PROTOCOL,
    websocket: &[WEBSOCKET_TUNNEL_PROTOCOL],
};

pub async fn port_forward(
    ctx: &Ctx,
    target: Target,
    headers: &http::HeaderMap,
    on_upgrade: OnUpgrade,
) -> Result<http::Response<Body>, StatusError> {
    ctx.engine
        .status(&target.uid)
        .await
        .map_err(|e| target.engine_error(&e))?;
    let (agreed, response) = negotiate_upgrade(headers, &SUPPORTED)?;
    let engine = ctx.engine.clone();
    let shutdown = ctx.shutdown.clone();
    ctx.tasks.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => TokioIo::new(u),
            Err(e) => return tracing::debug!(error = %e, "port-forward upgrade failed"),
        };
        let conn = match agreed.upgrade {
            Upgrade::Spdy => SpdyConnection::server(upgraded),
            Upgrade::WebSocket => {
                SpdyConnection::server(WebSocketIo::new(websocket(upgraded).await))
            }
        };
        let uid = target.uid.clone();
        let dial = move |port: u16| {
            let engine = engine.clone();
            let uid = uid.clone();
            async move {
                engine
                    .port_forward(&uid, port)
                    .await
                    .map_err(|e| e.to_string())
            }
        };
        tokio::select! {
            _ = serve_port_forward(conn, target.pod.clone(), dial) => {}
            _ = shutdown.cancelled() => {}
        }
    });
    Ok(response)
}
