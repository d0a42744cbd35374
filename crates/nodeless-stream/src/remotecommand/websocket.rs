//! Exec and attach over WebSocket (`v4`/`v5.channel.k8s.io`): every binary message starts
//! with its channel (0 stdin, 1 stdout, 2 stderr, 3 error, 4 resize); v5 adds 255, "the
//! sender closed channel N", which is how stdin reaches end of file.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use tokio_util::sync::CancellationToken;

use super::{ExecStreams, Finisher, Protocol, ResizeDecoder, StreamOptions, Transport};
use crate::chunk::{ChunkReader, ChunkWriter, WriteState};
use crate::task::AbortOnDrop;

pub const CHANNEL_STDIN: u8 = 0;
pub const CHANNEL_STDOUT: u8 = 1;
pub const CHANNEL_STDERR: u8 = 2;
pub const CHANNEL_ERROR: u8 = 3;
pub const CHANNEL_RESIZE: u8 = 4;
pub const CHANNEL_CLOSE: u8 = 255;

pub(crate) enum WsOut {
    Data(u8, Bytes),
    Close(oneshot::Sender<()>),
}

/// Serves the channels `opts` calls for on an accepted WebSocket.
pub fn accept_websocket<S>(
    ws: WebSocketStream<S>,
    protocol: Protocol,
    opts: StreamOptions,
) -> ExecStreams
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let opts = opts.normalized();
    let (sink, stream) = ws.split();
    let (out, out_rx) = mpsc::channel(64);
    let closed = CancellationToken::new();
    let (stdin_tx, stdin_rx) = mpsc::channel(16);
    let (resize_tx, resize_rx) = mpsc::channel(8);
    let writer = tokio::spawn(write_loop(sink, out_rx, closed.clone()));
    let reader = tokio::spawn(read_loop(
        stream,
        opts.stdin.then_some(stdin_tx),
        opts.tty.then_some(resize_tx),
        closed.clone(),
    ));
    let channel = |ch: u8| {
        let writer = ChunkWriter::new(
            out.clone(),
            Arc::new(move |b| WsOut::Data(ch, b)),
            None,
            Arc::new(WriteState::default()),
        );
        Box::new(writer) as super::BoxWrite
    };
    ExecStreams {
        stdin: opts
            .stdin
            .then(|| Box::new(ChunkReader::new(stdin_rx)) as super::BoxRead),
        stdout: opts.stdout.then(|| channel(CHANNEL_STDOUT)),
        stderr: opts.stderr.then(|| channel(CHANNEL_STDERR)),
        resize: opts.tty.then_some(resize_rx),
        finisher: Finisher {
            protocol,
            closed,
            transport: Transport::WebSocket(WsFinish {
                out,
                _reader: AbortOnDrop(reader),
                _writer: AbortOnDrop(writer),
            }),
        },
    }
}

async fn write_loop<S>(
    mut sink: futures::stream::SplitSink<WebSocketStream<S>, Message>,
    mut rx: mpsc::Receiver<WsOut>,
    closed: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    while let Some(item) = rx.recv().await {
        match item {
            WsOut::Data(ch, data) => {
                let mut msg = BytesMut::with_capacity(data.len() + 1);
                msg.put_u8(ch);
                msg.extend_from_slice(&data);
                if sink.send(Message::Binary(msg.freeze())).await.is_err() {
                    break;
                }
            }
            WsOut::Close(done) => {
                let frame = CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                };
                let _ = sink.send(Message::Close(Some(frame))).await;
                let _ = done.send(());
                break;
            }
        }
    }
    closed.cancel();
}

async fn read_loop<S>(
    mut stream: futures::stream::SplitStream<WebSocketStream<S>>,
    mut stdin: Option<mpsc::Sender<Bytes>>,
    resize: Option<mpsc::Sender<(u16, u16)>>,
    closed: CancellationToken,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut decoder = ResizeDecoder::default();
    loop {
        let message = tokio::select! {
            m = stream.next() => m,
            _ = closed.cancelled() => None,
        };
        let data = match message {
            Some(Ok(Message::Binary(data))) if !data.is_empty() => data,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
            Some(Ok(_)) => continue, // pings are answered by the library; text is not ours
        };
        let payload = data.slice(1..);
        match data[0] {
            CHANNEL_STDIN => {
                if let Some(tx) = &stdin {
                    if !payload.is_empty() && tx.send(payload).await.is_err() {
                        stdin = None;
                    }
                }
            }
            CHANNEL_RESIZE => {
                let (Some(tx), Ok(sizes)) = (&resize, decoder.push(&payload)) else {
                    continue;
                };
                for size in sizes {
                    let _ = tx.try_send(size);
                }
            }
            CHANNEL_CLOSE if payload.first() == Some(&CHANNEL_STDIN) => stdin = None,
            _ => {}
        }
    }
    closed.cancel();
}

pub(crate) struct WsFinish {
    out: mpsc::Sender<WsOut>,
    _reader: AbortOnDrop,
    _writer: AbortOnDrop,
}

impl WsFinish {
    pub(crate) async fn finish(self, message: Vec<u8>) {
        if !message.is_empty() {
            let _ = self
                .out
                .send(WsOut::Data(CHANNEL_ERROR, message.into()))
                .await;
        }
        let (done_tx, done) = oneshot::channel();
        if self.out.send(WsOut::Close(done_tx)).await.is_ok() {
            let _ = tokio::time::timeout(Duration::from_secs(5), done).await;
        }
    }
}
