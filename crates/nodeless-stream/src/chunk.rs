//! Byte-stream adapters over message channels: a multiplexed stream's incoming side is a
//! channel of chunks read as an `AsyncRead`, its outgoing side an `AsyncWrite` that wraps
//! each write as a message (a SPDY DATA frame, a WebSocket channel message) for the one task
//! that owns the connection's write half.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

/// Writes larger than this are split, so one stream cannot hog the connection.
pub(crate) const MAX_CHUNK: usize = 32 * 1024;

/// Reads a channel of chunks; the channel closing is end of file.
pub struct ChunkReader {
    rx: mpsc::Receiver<Bytes>,
    pending: Bytes,
}

impl ChunkReader {
    pub(crate) fn new(rx: mpsc::Receiver<Bytes>) -> Self {
        ChunkReader {
            rx,
            pending: Bytes::new(),
        }
    }

    /// The next chunk as it arrived, or `None` at end of stream.
    pub async fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.pending.is_empty() {
            return Some(std::mem::take(&mut self.pending));
        }
        self.rx.recv().await
    }
}

impl AsyncRead for ChunkReader {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        while self.pending.is_empty() {
            match ready!(self.rx.poll_recv(cx)) {
                Some(chunk) => self.pending = chunk,
                None => return Poll::Ready(Ok(())),
            }
        }
        let n = self.pending.len().min(buf.remaining());
        let chunk = self.pending.split_to(n);
        buf.put_slice(&chunk);
        Poll::Ready(Ok(()))
    }
}

/// Whether the local side of a stream may still write.
#[derive(Debug, Default)]
pub(crate) struct WriteState {
    /// The end-of-stream marker was sent.
    pub(crate) finished: AtomicBool,
    /// The peer reset the stream or the connection is gone.
    pub(crate) broken: AtomicBool,
}

impl WriteState {
    pub(crate) fn is_closed(&self) -> bool {
        self.finished.load(Ordering::Acquire) || self.broken.load(Ordering::Acquire)
    }
}

type Wrap<T> = Arc<dyn Fn(Bytes) -> T + Send + Sync>;

/// Sends each write as a message; shutting down sends `finish` once (if any).
pub struct ChunkWriter<T: Send + 'static> {
    tx: PollSender<T>,
    wrap: Wrap<T>,
    finish: Option<Wrap<T>>,
    state: Arc<WriteState>,
}

impl<T: Send + 'static> ChunkWriter<T> {
    pub(crate) fn new(
        tx: mpsc::Sender<T>,
        wrap: Wrap<T>,
        finish: Option<Wrap<T>>,
        state: Arc<WriteState>,
    ) -> Self {
        ChunkWriter {
            tx: PollSender::new(tx),
            wrap,
            finish,
            state,
        }
    }
}

fn broken_pipe() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "stream closed")
}

impl<T: Send + 'static> AsyncWrite for ChunkWriter<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        if self.state.is_closed() {
            return Poll::Ready(Err(broken_pipe()));
        }
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        if ready!(self.tx.poll_reserve(cx)).is_err() {
            return Poll::Ready(Err(broken_pipe()));
        }
        let n = buf.len().min(MAX_CHUNK);
        let message = (self.wrap)(Bytes::copy_from_slice(&buf[..n]));
        match self.tx.send_item(message) {
            Ok(()) => Poll::Ready(Ok(n)),
            Err(_) => Poll::Ready(Err(broken_pipe())),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let Some(finish) = self.finish.clone() else {
            self.state.finished.store(true, Ordering::Release);
            return Poll::Ready(Ok(()));
        };
        if self.state.is_closed() {
            return Poll::Ready(Ok(()));
        }
        if ready!(self.tx.poll_reserve(cx)).is_err() {
            return Poll::Ready(Ok(()));
        }
        if self.state.finished.swap(true, Ordering::AcqRel) {
            self.tx.abort_send();
            return Poll::Ready(Ok(()));
        }
        let _ = self.tx.send_item(finish(Bytes::new()));
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn writes_become_messages_and_shutdown_sends_the_end_marker_once() {
        let (tx, mut rx) = mpsc::channel::<(bool, Bytes)>(8);
        let state = Arc::new(WriteState::default());
        let mut w = ChunkWriter::new(
            tx,
            Arc::new(|b| (false, b)),
            Some(Arc::new(|b| (true, b))),
            state.clone(),
        );
        w.write_all(b"abc").await.expect("write");
        w.shutdown().await.expect("shutdown");
        w.shutdown().await.expect("again");
        assert!(w.write_all(b"late").await.is_err());
        drop(w);
        assert_eq!(rx.recv().await, Some((false, Bytes::from_static(b"abc"))));
        assert_eq!(rx.recv().await, Some((true, Bytes::new())));
        assert_eq!(rx.recv().await, None);
    }

    #[tokio::test]
    async fn reads_span_chunks_and_end_when_the_channel_closes() {
        let (tx, rx) = mpsc::channel(4);
        tx.send(Bytes::from_static(b"hel")).await.expect("send");
        tx.send(Bytes::from_static(b"lo")).await.expect("send");
        drop(tx);
        let mut text = String::new();
        ChunkReader::new(rx)
            .read_to_string(&mut text)
            .await
            .expect("read");
        assert_eq!(text, "hello");
    }
}
