//! Port forwarding (`portforward.k8s.io`): for each local connection the client opens an
//! error stream and a data stream, both with headers `port` and `requestID`; the server
//! pairs them, connects to the port and copies bytes until either side is done (as the
//! container runtimes do), then half-closes both streams. A failure to connect is written
//! to the error stream as text, which kubectl prints.

use std::collections::HashMap;
use std::future::Future;

use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::spdy::frame::RST_PROTOCOL_ERROR;
use crate::spdy::{SpdyConnection, SpdyStream};

/// The SPDY subprotocol (`X-Stream-Protocol-Version`).
pub const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol of the SPDY-in-WebSocket tunnel.
pub const WEBSOCKET_TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";

#[derive(Default)]
struct Pair {
    error: Option<SpdyStream>,
    data: Option<SpdyStream>,
}

/// Serves forwarding requests until the client closes the connection; `dial(port)` opens
/// the connection into the pod (its error text is shown to the user).
pub async fn serve_port_forward<D, F, C>(mut conn: SpdyConnection, pod: String, dial: D)
where
    D: Fn(u16) -> F,
    F: Future<Output = Result<C, String>> + Send + 'static,
    C: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    let mut forwards = JoinSet::new();
    loop {
        let stream = tokio::select! {
            s = conn.accept() => s,
            Some(_) = forwards.join_next(), if !forwards.is_empty() => continue,
        };
        let Some(stream) = stream else { break };
        let Some((port, is_data, request)) = classify(&stream) else {
            stream.split().1.closer().reset(RST_PROTOCOL_ERROR).await;
            continue;
        };
        let pair = pairs.entry(request.clone()).or_default();
        let slot = if is_data {
            &mut pair.data
        } else {
            &mut pair.error
        };
        if slot.is_some() {
            stream.split().1.closer().reset(RST_PROTOCOL_ERROR).await;
            continue;
        }
        *slot = Some(stream);
        if pair.error.is_none() || pair.data.is_none() {
            continue; // wait for the other half
        }
        if let Some(Pair {
            error: Some(error),
            data: Some(data),
        }) = pairs.remove(&request)
        {
            forwards.spawn(forward(error, data, port, pod.clone(), dial(port)));
        }
    }
    // The connection is gone: whatever still forwards is aborted with the JoinSet.
}

/// (port, is data stream, request id), or `None` for a stream that is not one of ours.
fn classify(stream: &SpdyStream) -> Option<(u16, bool, String)> {
    let headers = stream.headers();
    let port: u16 = headers.get("port")?.parse().ok().filter(|p| *p > 0)?;
    let is_data = match headers.get("streamType")? {
        "data" => true,
        "error" => false,
        _ => return None,
    };
    // Old clients send no request id: their error and data streams have consecutive ids.
    let request = match headers.get("requestID") {
        Some(id) if !id.is_empty() => id.to_string(),
        _ if is_data => stream.id().saturating_sub(2).to_string(),
        _ => stream.id().to_string(),
    };
    Some((port, is_data, request))
}

async fn forward<F, C>(error: SpdyStream, data: SpdyStream, port: u16, pod: String, dial: F)
where
    F: Future<Output = Result<C, String>>,
    C: AsyncRead + AsyncWrite + Unpin,
{
    let (_, mut error) = error.split();
    let (mut from_client, mut to_client) = data.split();
    match dial.await {
        Err(why) => {
            let message = format!("error forwarding port {port} to pod {pod}: {why}");
            let _ = error.write_all(message.as_bytes()).await;
        }
        Ok(target) => {
            let (mut from_pod, mut to_pod) = tokio::io::split(target);
            tokio::select! {
                _ = tokio::io::copy(&mut from_client, &mut to_pod) => {}
                _ = tokio::io::copy(&mut from_pod, &mut to_client) => {}
            }
            let _ = to_pod.shutdown().await;
        }
    }
    let _ = to_client.shutdown().await;
    let _ = error.shutdown().await;
}
