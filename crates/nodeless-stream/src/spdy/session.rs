//! The server side of a SPDY/3.1 connection as Kubernetes clients use it (moby/spdystream):
//! the client opens every stream, the server answers each SYN_STREAM with an empty
//! SYN_REPLY, either side half-closes with a FIN, the client resets streams it is done with.
//! spdystream implements no flow control (it ignores WINDOW_UPDATE and never waits for
//! window), so neither does this; a slow reader applies back-pressure by not being read.
//!
//! Two tasks own the connection: the reader routes frames to streams, the writer is the
//! only one to touch the write half, fed by one ordered channel (so a FIN never overtakes
//! the data before it).

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::frame::{Frame, FrameCodec, FLAG_FIN, RST_PROTOCOL_ERROR, RST_REFUSED_STREAM};
use super::headers::Headers;
use crate::chunk::{ChunkReader, ChunkWriter, WriteState};

/// Streams not yet taken by [`SpdyConnection::accept`]; more are refused.
const ACCEPT_BACKLOG: usize = 64;
/// Chunks buffered per stream before the connection's reader waits for the stream's.
const STREAM_BUFFER: usize = 16;
const OUTGOING_BUFFER: usize = 64;

pub(crate) enum Outgoing {
    Frame(Frame),
    /// Flush, shut the write half down and say so.
    Shutdown(oneshot::Sender<()>),
}

/// A server-side SPDY connection; dropping it stops both of its tasks.
pub struct SpdyConnection {
    incoming: mpsc::Receiver<SpdyStream>,
    out: mpsc::Sender<Outgoing>,
    closed: CancellationToken,
    reader: JoinHandle<u32>,
    writer: JoinHandle<()>,
}

impl Drop for SpdyConnection {
    fn drop(&mut self) {
        self.reader.abort();
        self.writer.abort();
    }
}

impl SpdyConnection {
    /// Starts serving the client end of `io` (an upgraded HTTP connection or a tunnel).
    pub fn server<IO>(io: IO) -> Self
    where
        IO: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read_half, write_half) = tokio::io::split(io);
        let (out, out_rx) = mpsc::channel(OUTGOING_BUFFER);
        let (incoming_tx, incoming) = mpsc::channel(ACCEPT_BACKLOG);
        let closed = CancellationToken::new();
        let writer = tokio::spawn(write_loop(write_half, out_rx, closed.clone()));
        let reader = tokio::spawn(read_loop(
            read_half,
            incoming_tx,
            out.clone(),
            closed.clone(),
        ));
        SpdyConnection {
            incoming,
            out,
            closed,
            reader,
            writer,
        }
    }

    /// The next stream the client opened, or `None` once the connection is gone.
    pub async fn accept(&mut self) -> Option<SpdyStream> {
        tokio::select! {
            stream = self.incoming.recv() => stream,
            _ = self.closed.cancelled() => self.incoming.try_recv().ok(),
        }
    }

    /// Cancelled when the connection drops (read error, end of file, write failure).
    pub fn closed(&self) -> CancellationToken {
        self.closed.clone()
    }

    /// Says GOAWAY, sends everything queued and shuts the connection down.
    pub async fn close(self) {
        let _ = self
            .out
            .send(Outgoing::Frame(Frame::GoAway {
                last_good_stream_id: 0,
                status: 0,
            }))
            .await;
        let (done_tx, done) = oneshot::channel();
        if self.out.send(Outgoing::Shutdown(done_tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
        }
    }
}

/// One stream the client opened.
pub struct SpdyStream {
    id: u32,
    headers: Headers,
    reader: SpdyReader,
    writer: SpdyWriter,
}

impl SpdyStream {
    pub fn id(&self) -> u32 {
        self.id
    }

    pub fn headers(&self) -> &Headers {
        &self.headers
    }

    pub fn split(self) -> (SpdyReader, SpdyWriter) {
        (self.reader, self.writer)
    }
}

/// The client-to-server half of a stream; end of file at the client's FIN or reset.
pub type SpdyReader = ChunkReader;

/// The server-to-client half of a stream; `shutdown` sends FIN.
pub struct SpdyWriter {
    inner: ChunkWriter<Outgoing>,
    closer: StreamCloser,
}

impl SpdyWriter {
    /// A handle that can finish the stream after the writer itself was given away.
    pub fn closer(&self) -> StreamCloser {
        self.closer.clone()
    }
}

impl AsyncWrite for SpdyWriter {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Finishes (FIN) or resets one stream.
#[derive(Clone)]
pub struct StreamCloser {
    id: u32,
    out: mpsc::Sender<Outgoing>,
    state: Arc<WriteState>,
}

impl StreamCloser {
    /// Sends FIN unless it was sent already or the stream is gone.
    pub async fn finish(&self) {
        if self.state.is_closed() || self.state.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.out.send(data(self.id, true, Bytes::new())).await;
    }

    pub async fn reset(&self, status: u32) {
        if self.state.broken.swap(true, Ordering::AcqRel) {
            return;
        }
        let frame = Frame::RstStream {
            stream_id: self.id,
            status,
        };
        let _ = self.out.send(Outgoing::Frame(frame)).await;
    }
}

fn data(stream_id: u32, fin: bool, data: Bytes) -> Outgoing {
    Outgoing::Frame(Frame::Data {
        stream_id,
        fin,
        data,
    })
}

struct Entry {
    data: Option<mpsc::Sender<Bytes>>,
    state: Arc<WriteState>,
}

async fn write_loop<W: AsyncWrite>(
    io: W,
    mut rx: mpsc::Receiver<Outgoing>,
    closed: CancellationToken,
) {
    let mut codec = FrameCodec::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    tokio::pin!(io);
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        let mut shutdown = None;
        // Batch what is queued into one write.
        while let Some(item) = next.take() {
            match item {
                Outgoing::Frame(frame) => {
                    if let Err(e) = codec.encode(&frame, &mut buf) {
                        tracing::warn!(error = %e, "dropping a SPDY frame that cannot be encoded");
                    }
                }
                Outgoing::Shutdown(done) => {
                    shutdown = Some(done);
                    break;
                }
            }
            if buf.len() < 256 * 1024 {
                next = rx.try_recv().ok();
            }
        }
        let written = async {
            io.write_all(&buf).await?;
            io.flush().await
        }
        .await;
        buf.clear();
        if written.is_err() {
            break;
        }
        if let Some(done) = shutdown {
            let _ = io.shutdown().await;
            let _ = done.send(());
            break;
        }
    }
    closed.cancel();
}

async fn read_loop<R: AsyncRead>(
    io: R,
    incoming: mpsc::Sender<SpdyStream>,
    out: mpsc::Sender<Outgoing>,
    closed: CancellationToken,
) -> u32 {
    let mut conn = ReadSide {
        codec: FrameCodec::new(),
        streams: HashMap::new(),
        last_id: 0,
        incoming,
        out,
        going_away: false,
    };
    tokio::pin!(io);
    let mut buf = BytesMut::with_capacity(64 * 1024);
    'read: loop {
        loop {
            match conn.codec.decode(&mut buf) {
                Ok(Some(frame)) => conn.handle(frame).await,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!(error = %e, "closing a SPDY connection on a bad frame");
                    break 'read;
                }
            }
        }
        tokio::select! {
            n = io.read_buf(&mut buf) => match n {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            },
            _ = closed.cancelled() => break,
        }
    }
    for entry in conn.streams.values() {
        entry.state.broken.store(true, Ordering::Release);
    }
    closed.cancel();
    conn.last_id
}

struct ReadSide {
    codec: FrameCodec,
    streams: HashMap<u32, Entry>,
    last_id: u32,
    incoming: mpsc::Sender<SpdyStream>,
    out: mpsc::Sender<Outgoing>,
    going_away: bool,
}

impl ReadSide {
    async fn send(&self, frame: Frame) {
        let _ = self.out.send(Outgoing::Frame(frame)).await;
    }

    async fn handle(&mut self, frame: Frame) {
        match frame {
            Frame::SynStream {
                stream_id,
                flags,
                headers,
                ..
            } => self.open(stream_id, flags, headers).await,
            Frame::Data {
                stream_id,
                fin,
                data,
            } => self.data(stream_id, fin, data).await,
            Frame::RstStream { stream_id, .. } => {
                if let Some(entry) = self.streams.remove(&stream_id) {
                    entry.state.broken.store(true, Ordering::Release);
                }
            }
            Frame::Ping { id } if id & 1 == 1 => self.send(Frame::Ping { id }).await,
            Frame::GoAway { .. } => self.going_away = true,
            Frame::Headers {
                stream_id,
                fin: true,
                ..
            } => self.data(stream_id, true, Bytes::new()).await,
            // Replies to server pushes (none), window updates (no flow control), settings.
            _ => {}
        }
    }

    async fn open(&mut self, id: u32, flags: u8, headers: Headers) {
        if id & 1 == 0 || id <= self.last_id || self.going_away {
            let status = if self.going_away {
                RST_REFUSED_STREAM
            } else {
                RST_PROTOCOL_ERROR
            };
            self.send(Frame::RstStream {
                stream_id: id,
                status,
            })
            .await;
            return;
        }
        self.last_id = id;
        self.send(Frame::SynReply {
            stream_id: id,
            fin: false,
            headers: Headers::new(),
        })
        .await;
        let (data_tx, data_rx) = mpsc::channel(STREAM_BUFFER);
        let state = Arc::new(WriteState::default());
        let writer = SpdyWriter {
            inner: ChunkWriter::new(
                self.out.clone(),
                Arc::new(move |b| data(id, false, b)),
                Some(Arc::new(move |b| data(id, true, b))),
                state.clone(),
            ),
            closer: StreamCloser {
                id,
                out: self.out.clone(),
                state: state.clone(),
            },
        };
        let stream = SpdyStream {
            id,
            headers,
            reader: ChunkReader::new(data_rx),
            writer,
        };
        let remote_done = flags & FLAG_FIN != 0;
        if self.incoming.try_send(stream).is_err() {
            self.send(Frame::RstStream {
                stream_id: id,
                status: RST_REFUSED_STREAM,
            })
            .await;
            return;
        }
        let data = (!remote_done).then_some(data_tx);
        self.streams.insert(id, Entry { data, state });
    }

    async fn data(&mut self, id: u32, fin: bool, chunk: Bytes) {
        let Some(entry) = self.streams.get_mut(&id) else {
            return;
        };
        if let Some(tx) = &entry.data {
            if !chunk.is_empty() && tx.send(chunk).await.is_err() {
                entry.data = None; // nobody reads this stream any more
            }
        }
        if fin {
            entry.data = None;
            if entry.state.is_closed() {
                self.streams.remove(&id);
            }
        }
    }
}
