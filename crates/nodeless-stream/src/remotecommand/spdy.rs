//! Exec and attach over SPDY: the client opens one stream per channel, each naming itself
//! in its `streamType` header; the server waits until all it expects are there.

use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;

use super::{
    AcceptError, ExecStreams, Finisher, Protocol, ResizeDecoder, StreamOptions, Transport,
};
use crate::spdy::frame::RST_PROTOCOL_ERROR;
use crate::spdy::{SpdyConnection, SpdyReader, SpdyStream, SpdyWriter, StreamCloser};
use crate::task::AbortOnDrop;

/// Waits for the streams `opts` calls for (upstream waits 30 s) and returns them.
pub async fn accept_spdy(
    mut conn: SpdyConnection,
    protocol: Protocol,
    opts: StreamOptions,
    timeout: Duration,
) -> Result<ExecStreams, AcceptError> {
    let opts = opts.normalized();
    let want_resize = opts.tty && protocol.supports_resize();
    let expected = 1 + [opts.stdin, opts.stdout, opts.stderr, want_resize]
        .iter()
        .filter(|b| **b)
        .count();
    let mut got = Got::default();
    let deadline = tokio::time::Instant::now() + timeout;
    while got.count() < expected {
        let stream = tokio::time::timeout_at(deadline, conn.accept())
            .await
            .map_err(|_| AcceptError::Timeout)?
            .ok_or(AcceptError::Closed)?;
        got.add(stream).await;
    }
    let error = got.error.take().ok_or(AcceptError::Closed)?;
    let mut closers = Vec::new();
    let stdout = got.stdout.take().map(|s| {
        let (_, w) = s.split();
        closers.push(w.closer());
        Box::new(w) as super::BoxWrite
    });
    let stderr = got.stderr.take().map(|s| {
        let (_, w) = s.split();
        closers.push(w.closer());
        Box::new(w) as super::BoxWrite
    });
    let stdin = got
        .stdin
        .take()
        .map(|s| Box::new(s.split().0) as super::BoxRead);
    let (resize, resize_task) = match got.resize.take() {
        Some(stream) => {
            let (tx, rx) = mpsc::channel(8);
            (
                Some(rx),
                Some(tokio::spawn(read_resizes(stream.split().0, tx))),
            )
        }
        None => (None, None),
    };
    let closed = conn.closed();
    Ok(ExecStreams {
        stdin,
        stdout,
        stderr,
        resize,
        finisher: Finisher {
            protocol,
            closed,
            transport: Transport::Spdy(SpdyFinish {
                conn,
                error: error.split().1,
                closers,
                _resize_task: resize_task.map(AbortOnDrop),
            }),
        },
    })
}

#[derive(Default)]
struct Got {
    error: Option<SpdyStream>,
    stdin: Option<SpdyStream>,
    stdout: Option<SpdyStream>,
    stderr: Option<SpdyStream>,
    resize: Option<SpdyStream>,
}

impl Got {
    fn count(&self) -> usize {
        [
            &self.error,
            &self.stdin,
            &self.stdout,
            &self.stderr,
            &self.resize,
        ]
        .iter()
        .filter(|s| s.is_some())
        .count()
    }

    async fn add(&mut self, stream: SpdyStream) {
        let kind = stream
            .headers()
            .get("streamType")
            .unwrap_or_default()
            .to_string();
        let slot = match kind.as_str() {
            "error" => &mut self.error,
            "stdin" => &mut self.stdin,
            "stdout" => &mut self.stdout,
            "stderr" => &mut self.stderr,
            "resize" => &mut self.resize,
            _ => {
                tracing::debug!(stream_type = %kind, "refusing an unknown exec stream");
                return stream.split().1.closer().reset(RST_PROTOCOL_ERROR).await;
            }
        };
        if slot.is_some() {
            return stream.split().1.closer().reset(RST_PROTOCOL_ERROR).await;
        }
        *slot = Some(stream);
    }
}

async fn read_resizes(mut stream: SpdyReader, tx: mpsc::Sender<(u16, u16)>) {
    let mut decoder = ResizeDecoder::default();
    while let Some(chunk) = stream.next_chunk().await {
        let Ok(sizes) = decoder.push(&chunk) else {
            return;
        };
        for size in sizes {
            if tx.send(size).await.is_err() {
                return;
            }
        }
    }
}

pub(crate) struct SpdyFinish {
    conn: SpdyConnection,
    error: SpdyWriter,
    closers: Vec<StreamCloser>,
    _resize_task: Option<AbortOnDrop>,
}

impl SpdyFinish {
    pub(crate) async fn finish(mut self, message: Vec<u8>) {
        // Output first: the client reads stdout and stderr to their end before the status.
        for closer in &self.closers {
            closer.finish().await;
        }
        if !message.is_empty() {
            let _ = self.error.write_all(&message).await;
        }
        let _ = self.error.shutdown().await;
        self.conn.close().await;
    }
}
