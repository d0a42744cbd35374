//! A fake host agent node endpoint on 127.0.0.1:0: checks the bearer token, streams a few log
//! lines (the last only when the test releases it), and echoes bytes over an upgraded
//! connection. It records every request so tests can see what the API server sent.

use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderMap, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioIo;
use parking_lot::Mutex;
use serde_json::json;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

type Body = BoxBody<Bytes, Infallible>;

/// What the endpoint received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
}

struct Shared {
    token: String,
    seen: Mutex<Vec<Seen>>,
    late_line: Notify,
}

impl Shared {
    fn new(token: &str) -> Arc<Shared> {
        Arc::new(Shared {
            token: token.into(),
            seen: Mutex::default(),
            late_line: Notify::new(),
        })
    }
}

pub struct FakeNode {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: JoinHandle<()>,
    /// The certificate it serves over TLS, PEM; `None` for plain HTTP.
    pub cert_pem: Option<String>,
}

impl FakeNode {
    pub async fn start(token: &str) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Shared::new(token);
        let task = tokio::spawn(accept(listener, shared.clone(), None));
        Ok(Self {
            addr,
            shared,
            task,
            cert_pem: None,
        })
    }

    /// The same over TLS with a fresh self-signed certificate, as a host agent serves.
    pub async fn start_tls(token: &str) -> anyhow::Result<Self> {
        let key = rcgen::KeyPair::generate()?;
        let cert =
            rcgen::CertificateParams::new(vec!["fake-agent".to_string()])?.self_signed(&key)?;
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![rustls::pki_types::CertificateDer::from(cert.der().to_vec())],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Shared::new(token);
        let task = tokio::spawn(accept(listener, shared.clone(), Some(acceptor)));
        Ok(Self {
            addr,
            shared,
            task,
            cert_pem: Some(cert.pem()),
        })
    }

    pub fn endpoint(&self) -> String {
        match self.cert_pem {
            Some(_) => format!("https://{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }

    /// Lets a followed log stream send its last line.
    pub fn release_late_line(&self) {
        self.shared.late_line.notify_one();
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().clone()
    }
}

impl Drop for FakeNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept(
    listener: TcpListener,
    shared: Arc<Shared>,
    tls: Option<tokio_rustls::TlsAcceptor>,
) {
    while let Ok((tcp, _)) = listener.accept().await {
        let shared = shared.clone();
        let service = hyper::service::service_fn(move |req| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(answer(&shared, req)) }
        });
        let http = hyper::server::conn::http1::Builder::new();
        match &tls {
            None => {
                tokio::spawn(
                    http.serve_connection(TokioIo::new(tcp), service)
                        .with_upgrades(),
                );
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A client that does not trust the certificate ends here.
                    if let Ok(stream) = acceptor.accept(tcp).await {
                        let _ = http
                            .serve_connection(TokioIo::new(stream), service)
                            .with_upgrades()
                            .await;
                    }
                });
            }
        }
    }
}

fn answer(shared: &Arc<Shared>, mut req: Request<Incoming>) -> Response<Body> {
    let path_and_query = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    shared.seen.lock().push(Seen {
        method: req.method().to_string(),
        path_and_query: path_and_query.clone(),
        headers: req.headers().clone(),
    });
    let expected = format!("Bearer {}", shared.token);
    if req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.as_bytes())
        != Some(expected.as_bytes())
    {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "bad token");
    }
    let upgrade = req.headers().get(header::UPGRADE).cloned();
    match (path_and_query.split('/').nth(1), upgrade) {
        (Some("containerLogs"), _) if path_and_query.contains("follow=true") => {
            followed_logs(shared.clone())
        }
        (Some("containerLogs"), _) => text(Full::new(Bytes::from("line 1\nline 2\n")).boxed()),
        (Some("attach"), Some(_)) => status(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "attach is refused here",
        ),
        (Some(_), Some(protocol)) => {
            let on = hyper::upgrade::on(&mut req);
            tokio::spawn(echo(on));
            let mut r = Response::new(Full::new(Bytes::new()).boxed());
            *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            r.headers_mut()
                .insert(header::CONNECTION, "Upgrade".parse().expect("value"));
            r.headers_mut().insert(header::UPGRADE, protocol);
            if let Some(v) = req.headers().get("x-stream-protocol-version") {
                r.headers_mut()
                    .insert("x-stream-protocol-version", v.clone());
            }
            r
        }
        _ => status(StatusCode::BAD_REQUEST, "BadRequest", "upgrade required"),
    }
}

fn followed_logs(shared: Arc<Shared>) -> Response<Body> {
    let (tx, rx) = mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        for line in ["line 1\n", "line 2\n"] {
            let _ = tx.send(Bytes::from(line)).await;
        }
        shared.late_line.notified().await;
        let _ = tx.send(Bytes::from("line 3\n")).await;
    });
    let frames = tokio_stream::wrappers::ReceiverStream::new(rx)
        .map(|b| Ok::<_, Infallible>(Frame::data(b)));
    text(BodyExt::boxed(StreamBody::new(frames)))
}

async fn echo(on: hyper::upgrade::OnUpgrade) {
    let Ok(upgraded) = on.await else { return };
    let (mut r, mut w) = tokio::io::split(TokioIo::new(upgraded));
    let _ = tokio::io::copy(&mut r, &mut w).await;
}

fn text(body: Body) -> Response<Body> {
    let mut r = Response::new(body);
    r.headers_mut()
        .insert(header::CONTENT_TYPE, "text/plain".parse().expect("value"));
    r
}

fn status(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    let body = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                      "message": message, "reason": reason, "code": code.as_u16()});
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = code;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("value"),
    );
    r
}
