//! Negotiating the HTTP upgrade of exec, attach and port-forward requests.

use http::HeaderMap;

/// Which upgrade the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upgrade {
    Spdy,
    WebSocket,
}

/// The upgrade in the `Upgrade` header, if one of ours.
pub fn requested_upgrade(headers: &HeaderMap) -> Option<Upgrade> {
    let value = headers.get(http::header::UPGRADE)?.to_str().ok()?;
    value.split(',').map(str::trim).find_map(|v| {
        if v.eq_ignore_ascii_case("SPDY/3.1") {
            Some(Upgrade::Spdy)
        } else if v.eq_ignore_ascii_case("websocket") {
            Some(Upgrade::WebSocket)
        } else {
            None
        }
    })
}

/// The protocols the client offers, in its order: `X-Stream-Protocol-Version` for SPDY,
/// `Sec-WebSocket-Protocol` for WebSocket (each possibly repeated or comma-separated).
pub fn offered_protocols(headers: &HeaderMap, upgrade: Upgrade) -> Vec<String> {
    let name = match upgrade {
        Upgrade::Spdy => "x-stream-protocol-version",
        Upgrade::WebSocket => "sec-websocket-protocol",
    };
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

/// The first protocol in the client's order that the server supports (the client lists
/// its preferred first, as upstream's handshake assumes).
pub fn negotiate(offered: &[String], supported: &[&'static str]) -> Option<&'static str> {
    offered
        .iter()
        .find_map(|o| supported.iter().copied().find(|s| s == o))
}

/// `Sec-WebSocket-Accept` for the request's `Sec-WebSocket-Key`.
pub fn websocket_accept(headers: &HeaderMap) -> Option<String> {
    let key = headers.get("sec-websocket-key")?;
    Some(tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(*n, http::HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn the_clients_first_supported_protocol_wins() {
        let h = headers(&[
            ("upgrade", "SPDY/3.1"),
            ("x-stream-protocol-version", "v4.channel.k8s.io"),
            (
                "x-stream-protocol-version",
                "v3.channel.k8s.io, channel.k8s.io",
            ),
        ]);
        assert_eq!(requested_upgrade(&h), Some(Upgrade::Spdy));
        let offered = offered_protocols(&h, Upgrade::Spdy);
        assert_eq!(offered.len(), 3);
        assert_eq!(
            negotiate(&offered, &["channel.k8s.io", "v3.channel.k8s.io"]),
            Some("v3.channel.k8s.io")
        );
        assert_eq!(negotiate(&offered, &["v5.channel.k8s.io"]), None);
    }

    #[test]
    fn websocket_accept_key_follows_rfc6455() {
        let h = headers(&[
            ("upgrade", "websocket"),
            ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ]);
        assert_eq!(requested_upgrade(&h), Some(Upgrade::WebSocket));
        assert_eq!(
            websocket_accept(&h).as_deref(),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
    }
}
