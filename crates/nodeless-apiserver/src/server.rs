//! The HTTPS listener: TLS, HTTP/1.1 and HTTP/2, authentication, request limits, and the
//! endpoints that are not resources (health, version, OpenAPI, discovery roots).

use crate::handlers;
use crate::respond::{self, error_response, Body};
use crate::rest::Api;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use nodeless_core::StatusError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

/// Limits on concurrent requests, as kube-apiserver's max-requests-inflight settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_inflight: usize,
    pub max_mutating: usize,
    pub max_body_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_inflight: 400,
            max_mutating: 200,
            max_body_bytes: 3 * 1024 * 1024,
        }
    }
}

/// What every request handler shares.
pub struct State {
    pub api: Api,
    pub token: String,
    pub server_address: String,
    pub limits: Limits,
    readonly: Semaphore,
    mutating: Semaphore,
    pub openapi: crate::openapi_cache::OpenApiCache,
}

impl State {
    pub fn new(api: Api, token: String, server_address: String, limits: Limits) -> Self {
        Self {
            readonly: Semaphore::new(limits.max_inflight),
            mutating: Semaphore::new(limits.max_mutating),
            openapi: crate::openapi_cache::OpenApiCache::default(),
            api,
            token,
            server_address,
            limits,
        }
    }
}

/// Serves until `shutdown` turns true; connections in flight get a moment to finish.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    state: Arc<State>,
    mut shutdown: watch::Receiver<bool>,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let acceptor = acceptor.clone();
        let state = state.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls =
                match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                    Ok(Ok(s)) => s,
                    Ok(Err(e)) => {
                        tracing::debug!(%peer, error = %e, "TLS handshake failed");
                        return;
                    }
                    Err(_) => return,
                };
            let service = hyper::service::service_fn(move |req| {
                let state = state.clone();
                async move { Ok::<_, std::convert::Infallible>(route(state, req).await) }
            });
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder.http2().max_concurrent_streams(1000);
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
            let _ = watcher.watch(conn.into_owned()).await;
        });
    }
    drop(listener);
    // Watches never end by themselves; give ordinary requests a moment, then go.
    let _ = tokio::time::timeout(Duration::from_secs(2), graceful.shutdown()).await;
}

async fn route(state: Arc<State>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    match path.as_str() {
        "/healthz" | "/livez" | "/readyz" => return respond::text(StatusCode::OK, "ok"),
        p if p.starts_with("/healthz/")
            || p.starts_with("/livez/")
            || p.starts_with("/readyz/") =>
        {
            return respond::text(StatusCode::OK, "ok")
        }
        "/version" => return respond::json_response(StatusCode::OK, &crate::version::info()),
        _ => {}
    }
    if !authenticated(&state, &req) {
        return error_response(&StatusError::unauthorized());
    }
    if req.method() == Method::GET {
        if path == "/metrics" {
            return crate::billing::serve_metrics(&state.api);
        }
        if path == crate::billing::REPORT_PATH {
            let query = handlers::query_of(&req);
            return crate::billing::serve_report(&state.api, &query);
        }
    }
    let mutating = matches!(
        *req.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let long_running = handlers::is_long_running(&req);
    let _permit = if long_running {
        None
    } else {
        let sem = if mutating {
            &state.mutating
        } else {
            &state.readonly
        };
        match sem.try_acquire() {
            Ok(p) => Some(p),
            Err(_) => return error_response(&StatusError::too_many_requests(1)),
        }
    };
    handlers::handle(state.clone(), req).await
}

fn authenticated(state: &State, req: &Request<Incoming>) -> bool {
    let Some(h) = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(token) = h.strip_prefix("Bearer ") else {
        return false;
    };
    constant_time_eq(token.trim().as_bytes(), state.token.as_bytes())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Reads a request body, refusing more than the limit with 413.
pub async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, StatusError> {
    use http_body_util::BodyExt;
    match http_body_util::Limited::new(body, limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(StatusError::request_entity_too_large(format!(
                "Request entity too large: limit is {limit}"
            )))
        }
        Err(e) => Err(StatusError::bad_request(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

pub fn socket_display(addr: SocketAddr) -> String {
    let ip = if addr.ip().is_unspecified() {
        "127.0.0.1".to_string()
    } else {
        addr.ip().to_string()
    };
    if addr.is_ipv6() && !addr.ip().is_unspecified() {
        format!("[{ip}]:{}", addr.port())
    } else {
        format!("{ip}:{}", addr.port())
    }
}
