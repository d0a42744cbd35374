//! The node-side endpoints the API server proxies `pods/log`, `exec`, `attach` and
//! `portforward` to (the kubelet's paths, HTTP/1.1 over TLS with a certificate the API server
//! pins (`tls.rs`), bearer token). The instance id is
//! the Pod UID from the path; exec, attach and port-forward upgrade the connection to
//! SPDY/3.1 or WebSocket and are served by `nodeless-stream`.

#![allow(
    clippy::result_large_err,
    reason = "handlers return the StatusError the client sees, by value, as the API server does"
)]

mod exec;
mod logs;
mod portforward;
mod response;
mod route;
pub mod tls;
mod upgrade;

use std::sync::Arc;
use std::time::Duration;

use http::{Method, Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use nodeless_core::status::StatusError;
use nodeless_engine::instance::{ContainerState, ContainerView, Engine, InstanceStatus};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use logs::log_options;
use response::{status_response, Body, Target};
use route::{parse_path, Endpoint, Query};

/// What every request handler shares.
#[derive(Clone)]
struct Ctx {
    engine: Arc<dyn Engine>,
    token: Arc<str>,
    /// Connections and upgraded sessions; all end at `shutdown`.
    tasks: TaskTracker,
    shutdown: CancellationToken,
}

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves the node-side endpoints the API server proxies to, until `shutdown`: over TLS with
/// `tls` (what the agent does), else plain HTTP (tests of the handlers).
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    engine: Arc<dyn Engine>,
    token: Arc<str>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let ctx = Ctx {
        engine,
        token,
        tasks: TaskTracker::new(),
        shutdown: shutdown.clone(),
    };
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(error = %e, "node endpoint accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = shutdown.cancelled() => break,
        };
        // Small frames go out at once: with Nagle, a TLS session ticket still unacknowledged
        // would hold back the upgrade's 101 and the first frames by a delayed ACK (~40 ms).
        let _ = stream.set_nodelay(true);
        let conn_ctx = ctx.clone();
        let tls = tls.clone();
        ctx.tasks.spawn(async move {
            let Some(acceptor) = tls else {
                return serve_connection(conn_ctx, TokioIo::new(stream), peer).await;
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(stream)) => serve_connection(conn_ctx, TokioIo::new(stream), peer).await,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "node endpoint TLS handshake failed")
                }
                Err(_) => tracing::debug!(%peer, "node endpoint TLS handshake timed out"),
            }
        });
    }
    ctx.tasks.close();
    let _ = tokio::time::timeout(Duration::from_secs(5), ctx.tasks.wait()).await;
    Ok(())
}

async fn serve_connection<IO>(ctx: Ctx, io: IO, peer: std::net::SocketAddr)
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let shutdown = ctx.shutdown.clone();
    let service = service_fn(move |req| {
        let ctx = ctx.clone();
        async move { Ok::<_, std::convert::Infallible>(handle(&ctx, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service)
        .with_upgrades();
    tokio::select! {
        result = conn => if let Err(e) = result {
            tracing::debug!(%peer, error = %e, "node endpoint connection ended");
        },
        _ = shutdown.cancelled() => {}
    }
}

async fn handle(ctx: &Ctx, req: Request<Incoming>) -> Response<Body> {
    match route(ctx, req).await {
        Ok(response) => response,
        Err(err) => status_response(&err),
    }
}

async fn route(ctx: &Ctx, mut req: Request<Incoming>) -> Result<Response<Body>, StatusError> {
    authorize(ctx, req.headers())?;
    let (endpoint, target) = parse_path(req.uri().path()).ok_or_else(|| {
        StatusError::new(
            404,
            "NotFound",
            "the server could not find the requested resource",
        )
    })?;
    let query = Query::parse(req.uri().query());
    let method = req.method().clone();
    let allowed = match endpoint {
        Endpoint::ContainerLogs => method == Method::GET,
        _ => method == Method::GET || method == Method::POST,
    };
    if !allowed {
        return Err(StatusError::new(
            405,
            "MethodNotAllowed",
            format!("method {method} is not allowed here"),
        ));
    }
    let span = tracing::debug_span!("node_endpoint", object.ref = %format!("{}/{}", target.namespace, target.pod), ?endpoint);
    let _entered = span.enter();
    match endpoint {
        Endpoint::ContainerLogs => logs::container_logs(ctx, &target, &query).await,
        Endpoint::Exec | Endpoint::Attach => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            let attach = endpoint == Endpoint::Attach;
            exec::exec_or_attach(ctx, target, &query, req.headers(), on_upgrade, attach).await
        }
        Endpoint::PortForward => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            portforward::port_forward(ctx, target, req.headers(), on_upgrade).await
        }
    }
}

fn authorize(ctx: &Ctx, headers: &http::HeaderMap) -> Result<(), StatusError> {
    let presented = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if constant_time_eq(token.as_bytes(), ctx.token.as_bytes()) => Ok(()),
        _ => Err(StatusError::unauthorized()),
    }
}

/// Compares without an early exit, so timing does not leak how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn find_container<'a>(status: &'a InstanceStatus, name: &str) -> Option<&'a ContainerView> {
    status
        .containers
        .iter()
        .chain(&status.init_containers)
        .find(|c| c.status.name == name)
}

fn waiting(target: &Target, reason: &str) -> StatusError {
    StatusError::bad_request(format!(
        "container \"{}\" in pod \"{}\" is waiting to start: {reason}",
        target.container, target.pod
    ))
}

/// The container exists and runs (exec and attach need a live process).
async fn require_running(ctx: &Ctx, target: &Target) -> Result<(), StatusError> {
    let status = ctx
        .engine
        .status(&target.uid)
        .await
        .map_err(|e| target.engine_error(&e))?;
    let view =
        find_container(&status, &target.container).ok_or_else(|| target.container_not_found())?;
    match &view.status.state {
        ContainerState::Running { .. } => Ok(()),
        ContainerState::Waiting { reason, .. } => Err(waiting(target, reason)),
        ContainerState::Terminated(_) => Err(StatusError::bad_request(format!(
            "container \"{}\" in pod \"{}\" is not running",
            target.container, target.pod
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_equal_only_when_identical() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
    }
}
