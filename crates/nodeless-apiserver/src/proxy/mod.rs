//! pods/log, exec, attach and portforward, proxied to the node endpoint of the host agent that
//! runs the Pod's instance, as kube-apiserver proxies them to the kubelet; and pods/proxy and
//! services/proxy, HTTP to a port of the Pod or of one of the Service's endpoints
//! (`direct.rs`). Responses stream through unbuffered, and upgrades (SPDY/3.1, WebSocket)
//! become a byte splice.

mod direct;
mod pinned;
mod pod;
mod service;
mod target;
mod upgrade;

pub use pod::serve as serve_pod_proxy;
pub use service::serve as serve_service_proxy;

use target::NodeTarget;

use crate::respond::Body;
use bytes::Bytes;
use futures::{future, StreamExt};
use http::header::{self, HeaderMap, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, BodyStream, Empty, StreamBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use nodeless_core::StatusError;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// How long an agent may take to accept a connection, and then to answer with headers.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// Response headers that describe one hop, not the relayed response.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "trailer",
];

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("{peer} cannot be reached at {authority}: {source}")]
    Connect {
        peer: String,
        authority: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{peer} at {authority} did not answer: {source}")]
    Exchange {
        peer: String,
        authority: String,
        #[source]
        source: hyper::Error,
    },
    #[error("{peer} at {authority} did not answer in time")]
    Timeout { peer: String, authority: String },
    #[error("cannot build the request to {peer}: {source}")]
    Request {
        peer: String,
        #[source]
        source: http::Error,
    },
}

/// Where a proxied request goes: `authority` (`ip:port`), over TLS with `tls`, named `label`
/// in errors and logs ("host h1", "pod default/web").
pub(crate) struct Peer {
    pub label: String,
    pub authority: String,
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

impl From<ProxyError> for StatusError {
    fn from(e: ProxyError) -> Self {
        StatusError::service_unavailable(e.to_string())
    }
}

/// Forwards `req` (a `sub` request on `pod`) to the Pod's host agent and relays its answer.
pub async fn serve(
    api: &crate::rest::Api,
    mut req: Request<Incoming>,
    pod: &Value,
    sub: &str,
    container: Option<&str>,
) -> Result<Response<Body>, StatusError> {
    let target = target::resolve(api, pod, sub, container, req.uri().query())?;
    let client_upgrade = upgrade::is_upgrade(req.headers()).then(|| hyper::upgrade::on(&mut req));
    let tls = match &target.pinned_cert {
        Some(cert) => Some(pinned::client_config(cert).map_err(|e| {
            StatusError::internal(format!("cannot set up TLS to host {}: {e}", target.host))
        })?),
        None => None,
    };
    let peer = Peer {
        label: format!("host {}", target.host),
        authority: target.authority.clone(),
        tls,
    };
    let outbound = outbound_request(&target, &peer, req, client_upgrade.is_some())?;
    exchange(peer, outbound, client_upgrade).await
}

/// Sends `outbound` to `peer` and answers the client: the peer's response relayed, or the
/// two upgraded connections spliced when both sides switched protocols.
pub(crate) async fn exchange(
    peer: Peer,
    outbound: Request<OutBody>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
) -> Result<Response<Body>, StatusError> {
    let mut resp = send(&peer, outbound).await?;
    match (resp.status(), client_upgrade) {
        (StatusCode::SWITCHING_PROTOCOLS, Some(client)) => {
            let upstream = hyper::upgrade::on(&mut resp);
            // Owned by the two connections: it ends when they do.
            tokio::spawn(upgrade::splice(client, upstream, peer.label));
            let mut switching = Response::new(empty());
            *switching.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            *switching.headers_mut() = resp.headers().clone();
            Ok(switching)
        }
        _ => Ok(relay(resp)),
    }
}

pub(crate) type OutBody = BoxBody<Bytes, hyper::Error>;

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

/// The agent's request: same method, node path with the client's query, the agent's token,
/// and the upgrade negotiation when the client asked to switch protocols.
fn outbound_request(
    target: &NodeTarget,
    peer: &Peer,
    req: Request<Incoming>,
    upgrading: bool,
) -> Result<Request<OutBody>, ProxyError> {
    let (parts, body) = req.into_parts();
    let mut builder = Request::builder()
        .method(parts.method)
        .uri(target.path_and_query.as_str());
    if let Some(headers) = builder.headers_mut() {
        headers_for_agent(target, &parts.headers, headers, upgrading);
    }
    let body = match upgrading {
        true => Empty::new().map_err(|never| match never {}).boxed(),
        false => body.boxed(),
    };
    builder.body(body).map_err(|source| ProxyError::Request {
        peer: peer.label.clone(),
        source,
    })
}

fn headers_for_agent(target: &NodeTarget, from: &HeaderMap, to: &mut HeaderMap, upgrading: bool) {
    if let Ok(h) = HeaderValue::from_str(&target.authority) {
        to.insert(header::HOST, h);
    }
    if let Ok(auth) = HeaderValue::from_str(&format!("Bearer {}", target.token)) {
        to.insert(header::AUTHORIZATION, auth);
    }
    for name in [header::ACCEPT, header::CONTENT_TYPE] {
        if let Some(v) = from.get(&name) {
            to.insert(name, v.clone());
        }
    }
    if upgrading {
        upgrade::copy_request_headers(from, to);
    }
}

/// One HTTP/1.1 connection per request (over TLS to a host agent): streams are long-lived
/// and upgrades consume it.
async fn send(peer: &Peer, req: Request<OutBody>) -> Result<Response<Incoming>, ProxyError> {
    let label = || peer.label.clone();
    let authority = || peer.authority.clone();
    let connect = tokio::net::TcpStream::connect(peer.authority.as_str());
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(r) => r,
        Err(elapsed) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, elapsed)),
    }
    .map_err(|source| ProxyError::Connect {
        peer: label(),
        authority: authority(),
        source,
    })?;
    let _ = tcp.set_nodelay(true);
    let exchange = |source| ProxyError::Exchange {
        peer: label(),
        authority: authority(),
        source,
    };
    let mut sender = match &peer.tls {
        None => handshake(TokioIo::new(tcp)).await.map_err(exchange)?,
        Some(cfg) => {
            let connect_err = |source| ProxyError::Connect {
                peer: label(),
                authority: authority(),
                source,
            };
            let host = peer.authority.rsplit_once(':').map_or("", |(h, _)| h);
            let name = rustls::pki_types::ServerName::try_from(host.trim_matches(['[', ']']))
                .map_err(|e| connect_err(std::io::Error::other(e)))?
                .to_owned();
            let connector = tokio_rustls::TlsConnector::from(cfg.clone());
            let tls = tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::new(std::io::ErrorKind::TimedOut, e)))
                .map_err(connect_err)?;
            handshake(TokioIo::new(tls)).await.map_err(exchange)?
        }
    };
    match tokio::time::timeout(RESPONSE_TIMEOUT, sender.send_request(req)).await {
        Ok(r) => r.map_err(exchange),
        Err(_) => Err(ProxyError::Timeout {
            peer: label(),
            authority: authority(),
        }),
    }
}

/// An HTTP/1.1 client connection over `io`, driven by a task of its own: it ends when the
/// relayed body or the upgraded stream is dropped.
async fn handshake<IO>(
    io: IO,
) -> Result<hyper::client::conn::http1::SendRequest<OutBody>, hyper::Error>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(async move {
        if let Err(e) = conn.with_upgrades().await {
            tracing::debug!(error = %e, "proxied connection ended");
        }
    });
    Ok(sender)
}

/// The agent's response as the client's: status, end-to-end headers, and the body frame by
/// frame as it arrives (`kubectl logs -f` sees each line when the agent sends it).
fn relay(resp: Response<Incoming>) -> Response<Body> {
    let (parts, body) = resp.into_parts();
    let frames = BodyStream::new(body)
        .take_while(|frame| {
            if let Err(e) = frame {
                tracing::debug!(error = %e, "node endpoint response broke off");
            }
            future::ready(frame.is_ok())
        })
        .filter_map(|frame| future::ready(frame.ok()))
        .map(Ok::<_, std::convert::Infallible>);
    let mut out = Response::new(BodyExt::boxed(StreamBody::new(frames)));
    *out.status_mut() = parts.status;
    for (name, value) in &parts.headers {
        if !HOP_BY_HOP.contains(&name.as_str()) {
            out.headers_mut().append(name.clone(), value.clone());
        }
    }
    out
}
