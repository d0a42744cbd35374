//! The node-side endpoints (placeholder: being written).

use std::sync::Arc;

use nodeless_engine::instance::Engine;
use tokio_util::sync::CancellationToken;

/// Serves the node-side endpoints the API server proxies to, until `shutdown`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    engine: Arc<dyn Engine>,
    token: Arc<str>,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let _ = (listener, engine, token);
    shutdown.cancelled().await;
    Ok(())
}
