//! HTTP/1.1 upgrades (SPDY/3.1 and WebSocket) through the API server: which request headers
//! the agent must see, and the byte splice between the two upgraded connections.

use http::header::{self, HeaderMap, HeaderName};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;

/// Headers that negotiate the upgrade; every value is passed on, as clients send several
/// `X-Stream-Protocol-Version` and `Sec-WebSocket-Protocol` lines.
const UPGRADE_HEADERS: &[HeaderName] = &[
    header::UPGRADE,
    header::CONNECTION,
    header::SEC_WEBSOCKET_KEY,
    header::SEC_WEBSOCKET_VERSION,
    header::SEC_WEBSOCKET_PROTOCOL,
    header::SEC_WEBSOCKET_EXTENSIONS,
];
const STREAM_PROTOCOL_VERSION: &str = "x-stream-protocol-version";

/// Whether the client asks to switch protocols (`Connection: Upgrade` plus `Upgrade: ...`).
pub fn is_upgrade(headers: &HeaderMap) -> bool {
    let connection_upgrade = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    connection_upgrade && headers.contains_key(header::UPGRADE)
}

/// Copies the upgrade negotiation headers from the client's request to the agent's.
pub fn copy_request_headers(from: &HeaderMap, to: &mut HeaderMap) {
    let stream_version = HeaderName::from_static(STREAM_PROTOCOL_VERSION);
    for name in UPGRADE_HEADERS.iter().chain([&stream_version]) {
        for v in from.get_all(name) {
            to.append(name.clone(), v.clone());
        }
    }
}

/// Once both sides have switched protocols, copies bytes both ways until both are done
/// (a side that closes its writing half is passed on as a half-close).
pub async fn splice(client: OnUpgrade, agent: OnUpgrade, host: String) {
    let (client, agent) = match tokio::try_join!(client, agent) {
        Ok(both) => both,
        Err(e) => {
            tracing::debug!(host, error = %e, "upgrade did not complete");
            return;
        }
    };
    let mut client = TokioIo::new(client);
    let mut agent = CleanEof(TokioIo::new(agent));
    match tokio::io::copy_bidirectional(&mut client, &mut agent).await {
        Ok((up, down)) => tracing::debug!(host, up, down, "upgraded stream closed"),
        Err(e) => tracing::debug!(host, error = %e, "upgraded stream broke"),
    }
}

/// Reads a TLS peer's close without `close_notify` as the end of the stream. An agent that
/// drops its upgraded connection sends none, and taking that as an error would abort the
/// other direction too, cutting off the client instead of half-closing it. The streams
/// carried (WebSocket, SPDY) end by their own framing, so nothing relies on the TLS close.
struct CleanEof<T>(T);

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for CleanEof<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match std::pin::Pin::new(&mut self.0).poll_read(cx, buf) {
            std::task::Poll::Ready(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                std::task::Poll::Ready(Ok(()))
            }
            other => other,
        }
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for CleanEof<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn an_upgrade_needs_both_connection_and_upgrade_headers() {
        let mut h = HeaderMap::new();
        h.insert(header::UPGRADE, HeaderValue::from_static("SPDY/3.1"));
        assert!(!is_upgrade(&h));
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(is_upgrade(&h));
    }

    #[test]
    fn every_stream_protocol_version_is_passed_on() {
        let mut from = HeaderMap::new();
        for v in ["v4.channel.k8s.io", "v3.channel.k8s.io"] {
            from.append(STREAM_PROTOCOL_VERSION, HeaderValue::from_static(v));
        }
        from.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer user"),
        );
        let mut to = HeaderMap::new();
        copy_request_headers(&from, &mut to);
        assert_eq!(to.get_all(STREAM_PROTOCOL_VERSION).iter().count(), 2);
        assert!(!to.contains_key(header::AUTHORIZATION));
    }
}
