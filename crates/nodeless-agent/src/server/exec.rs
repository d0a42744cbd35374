//! `exec` and `attach`: run a command in a container, or watch one's output, over the
//! remote command protocols.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use nodeless_core::status::StatusError;
use nodeless_engine::instance::attach::Attachment;
use nodeless_engine::instance::{Engine, ExecIo};
use nodeless_engine::sandbox::logs::{LogOptions, LogStreamKind};
use nodeless_stream::handshake::Upgrade;
use nodeless_stream::remotecommand::spdy::accept_spdy;
use nodeless_stream::remotecommand::websocket::accept_websocket;
use nodeless_stream::remotecommand::{
    ExecStreams, Outcome, Protocol, StreamOptions, SPDY_PROTOCOLS, WEBSOCKET_PROTOCOLS,
};
use nodeless_stream::spdy::SpdyConnection;
use tokio::io::AsyncWriteExt;

use super::response::{Body, Target};
use super::route::Query;
use super::upgrade::{negotiate_upgrade, websocket, Agreed, Supported};
use super::Ctx;

/// How long the client has to open its streams after the upgrade (upstream's default).
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

const SUPPORTED: Supported = Supported {
    spdy: SPDY_PROTOCOLS,
    spdy_default: "channel.k8s.io",
    websocket: WEBSOCKET_PROTOCOLS,
};

pub enum Mode {
    Exec(Vec<String>),
    Attach(Attachment),
}

/// Checks the request, answers 101 and serves the session once the connection is handed over.
pub async fn exec_or_attach(
    ctx: &Ctx,
    target: Target,
    q: &Query,
    headers: &http::HeaderMap,
    on_upgrade: OnUpgrade,
    attach: bool,
) -> Result<http::Response<Body>, StatusError> {
    let opts = StreamOptions {
        stdin: q.flag("stdin")?,
        stdout: q.flag("stdout")?,
        stderr: q.flag("stderr")?,
        tty: q.flag("tty")?,
    };
    if !(opts.stdin || opts.stdout || opts.stderr) {
        return Err(StatusError::bad_request(
            "you must specify at least 1 of stdin, stdout, stderr",
        ));
    }
    let mode = if attach {
        super::require_running(ctx, &target).await?;
        // Opened before the upgrade, so a container without stdin is a plain 400.
        let attachment = ctx
            .engine
            .attach(&target.uid, &target.container, opts.stdin)
            .await
            .map_err(|e| target.engine_error(&e))?;
        Mode::Attach(attachment)
    } else {
        let command = q.all("command");
        if command.is_empty() {
            return Err(StatusError::bad_request(
                "you must specify at least one command for the container",
            ));
        }
        super::require_running(ctx, &target).await?;
        Mode::Exec(command)
    };
    let (agreed, response) = negotiate_upgrade(headers, &SUPPORTED)?;
    let engine = ctx.engine.clone();
    let shutdown = ctx.shutdown.clone();
    ctx.tasks.spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(u) => u,
            Err(e) => return tracing::debug!(error = %e, "exec upgrade failed"),
        };
        tokio::select! {
            _ = session(engine, target, mode, agreed, opts, TokioIo::new(upgraded)) => {}
            _ = shutdown.cancelled() => {}
        }
    });
    Ok(response)
}

async fn session(
    engine: Arc<dyn Engine>,
    target: Target,
    mode: Mode,
    agreed: Agreed,
    opts: StreamOptions,
    io: super::upgrade::UpgradedIo,
) {
    let protocol = Protocol::from_name(agreed.protocol).unwrap_or(Protocol::V1);
    let streams = match agreed.upgrade {
        Upgrade::Spdy => {
            match accept_spdy(
                SpdyConnection::server(io),
                protocol,
                opts,
                STREAM_CREATION_TIMEOUT,
            )
            .await
            {
                Ok(s) => s,
                Err(e) => return tracing::debug!(pod = %target.pod, error = %e, "exec streams"),
            }
        }
        Upgrade::WebSocket => accept_websocket(websocket(io).await, protocol, opts),
    };
    let ExecStreams {
        stdin,
        stdout,
        stderr,
        resize,
        finisher,
    } = streams;
    let closed = finisher.closed();
    let run = async {
        match mode {
            Mode::Exec(command) => {
                let io = ExecIo {
                    stdin,
                    stdout: stdout.unwrap_or_else(|| Box::new(tokio::io::sink())),
                    stderr,
                    tty: opts.tty,
                    resize,
                };
                match engine
                    .exec(&target.uid, &target.container, command, io)
                    .await
                {
                    Ok(code) => Outcome::Exited(code),
                    Err(e) => Outcome::Failed(e.to_string()),
                }
            }
            Mode::Attach(attachment) => {
                // Input runs beside the output; the session lasts as long as the output.
                let output = attach(engine.as_ref(), &target, stdout, stderr);
                tokio::pin!(output);
                tokio::select! {
                    outcome = &mut output => outcome,
                    _ = attachment.run(stdin, resize) => output.await,
                }
            }
        }
    };
    let outcome = tokio::select! {
        outcome = run => outcome,
        // The client is gone: dropping the command's I/O ends it.
        _ = closed.cancelled() => return,
    };
    finisher.finish(outcome).await;
}

/// Follows the container's output from now until it ends: its log, where the shim writes
/// everything the container prints (a terminal's output as stdout).
async fn attach(
    engine: &dyn Engine,
    target: &Target,
    mut stdout: Option<nodeless_stream::remotecommand::BoxWrite>,
    mut stderr: Option<nodeless_stream::remotecommand::BoxWrite>,
) -> Outcome {
    let opts = LogOptions {
        follow: true,
        since: Some(Utc::now()),
        ..LogOptions::default()
    };
    let mut logs = match engine.logs(&target.uid, &target.container, opts).await {
        Ok(logs) => logs,
        Err(e) => return Outcome::Failed(e.to_string()),
    };
    while let Some(line) = logs.next().await {
        let out = match line.stream {
            LogStreamKind::Stderr if stderr.is_some() => stderr.as_mut(),
            _ => stdout.as_mut(),
        };
        if let Some(out) = out {
            if out.write_all(&line.text(false)).await.is_err() {
                break;
            }
        }
    }
    Outcome::Exited(0)
}
