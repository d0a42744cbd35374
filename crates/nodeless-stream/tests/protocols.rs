//! The protocols end to end over in-memory connections, driven the way client-go drives them.

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use nodeless_stream::portforward::serve_port_forward;
use nodeless_stream::remotecommand::spdy::accept_spdy;
use nodeless_stream::remotecommand::websocket::accept_websocket;
use nodeless_stream::remotecommand::{Outcome, Protocol, StreamOptions};
use nodeless_stream::spdy::client::SpdyClient;
use nodeless_stream::spdy::{Frame, SpdyConnection};
use nodeless_stream::tunnel::WebSocketIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// Everything the server sent, per stream, until it closed the connection.
#[derive(Default, Debug)]
struct Received {
    data: HashMap<u32, Vec<u8>>,
    fin: Vec<u32>,
    replies: Vec<u32>,
    goaway: bool,
}

async fn drain(client: &mut SpdyClient<DuplexStream>) -> Received {
    let mut got = Received::default();
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(5), client.read_frame())
        .await
        .expect("server answers in time")
        .expect("frames decode")
    {
        match frame {
            Frame::SynReply { stream_id, .. } => got.replies.push(stream_id),
            Frame::Data {
                stream_id,
                fin,
                data,
            } => {
                got.data
                    .entry(stream_id)
                    .or_default()
                    .extend_from_slice(&data);
                if fin {
                    got.fin.push(stream_id);
                }
            }
            Frame::GoAway { .. } => got.goaway = true,
            _ => {}
        }
    }
    got
}

fn all_streams() -> StreamOptions {
    StreamOptions {
        stdin: true,
        stdout: true,
        stderr: true,
        tty: false,
    }
}

#[tokio::test]
async fn spdy_exec_carries_stdin_stdout_stderr_and_the_exit_code() {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let conn = SpdyConnection::server(server_io);
        let mut streams = accept_spdy(conn, Protocol::V4, all_streams(), Duration::from_secs(5))
            .await
            .expect("streams arrive");
        let mut input = String::new();
        let mut stdin = streams.stdin.take().expect("stdin");
        stdin
            .read_to_string(&mut input)
            .await
            .expect("stdin reads to its end");
        let mut stdout = streams.stdout.take().expect("stdout");
        stdout
            .write_all(input.to_uppercase().as_bytes())
            .await
            .expect("stdout");
        let mut stderr = streams.stderr.take().expect("stderr");
        stderr.write_all(b"warning\n").await.expect("stderr");
        streams.finisher.finish(Outcome::Exited(3)).await;
    });
    let mut client = SpdyClient::new(client_io);
    let error = client.open(&[("streamType", "error")]).await.expect("open");
    let stdin = client.open(&[("streamType", "stdin")]).await.expect("open");
    let stdout = client
        .open(&[("streamType", "stdout")])
        .await
        .expect("open");
    let stderr = client
        .open(&[("streamType", "stderr")])
        .await
        .expect("open");
    client.data(stdin, b"hello ", false).await.expect("send");
    client.data(stdin, b"world", true).await.expect("send");
    let got = drain(&mut client).await;
    server.await.expect("server");

    assert_eq!(got.replies, [error, stdin, stdout, stderr]);
    assert_eq!(got.data[&stdout], b"HELLO WORLD");
    assert_eq!(got.data[&stderr], b"warning\n");
    let status: serde_json::Value = serde_json::from_slice(&got.data[&error]).expect("status json");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");
    for id in [error, stdout, stderr] {
        assert!(got.fin.contains(&id), "stream {id} finished: {got:?}");
    }
    assert!(got.goaway);
}

#[tokio::test]
async fn spdy_exec_with_a_terminal_delivers_resizes_and_answers_pings() {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let opts = StreamOptions {
            stdout: true,
            tty: true,
            ..Default::default()
        };
        let conn = SpdyConnection::server(server_io);
        let mut streams = accept_spdy(conn, Protocol::V4, opts, Duration::from_secs(5))
            .await
            .expect("streams arrive");
        let size = streams.resize.as_mut().expect("resize").recv().await;
        streams.finisher.finish(Outcome::Exited(0)).await;
        size
    });
    let mut client = SpdyClient::new(client_io);
    let error = client.open(&[("streamType", "error")]).await.expect("open");
    client
        .open(&[("streamType", "stdout")])
        .await
        .expect("open");
    let resize = client
        .open(&[("streamType", "resize")])
        .await
        .expect("open");
    client.send(Frame::Ping { id: 1 }).await.expect("ping");
    client
        .data(resize, br#"{"Width":132,"Height":43}"#, false)
        .await
        .expect("resize");
    let mut pong = false;
    let mut status = Vec::new();
    while let Some(frame) = client.read_frame().await.expect("frame") {
        match frame {
            Frame::Ping { id: 1 } => pong = true,
            Frame::Data {
                stream_id, data, ..
            } if stream_id == error => status.extend_from_slice(&data),
            _ => {}
        }
    }
    assert_eq!(server.await.expect("server"), Some((132, 43)));
    assert!(pong);
    let status: serde_json::Value = serde_json::from_slice(&status).expect("json");
    assert_eq!(status["status"], "Success");
}

#[tokio::test]
async fn spdy_exec_gives_up_when_streams_never_come() {
    let (_client_io, server_io) = tokio::io::duplex(1024);
    let conn = SpdyConnection::server(server_io);
    let result = accept_spdy(conn, Protocol::V4, all_streams(), Duration::from_millis(50)).await;
    assert!(result.is_err());
}

async fn echo_target() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let n = conn.read(&mut buf).await.unwrap_or(0);
                let _ = conn
                    .write_all(format!("echo:{}", String::from_utf8_lossy(&buf[..n])).as_bytes())
                    .await;
            });
        }
    });
    addr
}

fn dialer(
    target: std::net::SocketAddr,
) -> impl Fn(u16) -> futures::future::BoxFuture<'static, Result<tokio::net::TcpStream, String>> {
    move |port| {
        Box::pin(async move {
            if port != 8080 {
                return Err(format!("nothing listens on port {port}"));
            }
            tokio::net::TcpStream::connect(target)
                .await
                .map_err(|e| e.to_string())
        })
    }
}

async fn port_forward_round_trip<IO>(client_io: IO) -> (Vec<u8>, Vec<u8>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let mut client = SpdyClient::new(client_io);
    let e1 = client
        .open(&[
            ("streamType", "error"),
            ("port", "8080"),
            ("requestID", "0"),
        ])
        .await
        .expect("open");
    let d1 = client
        .open(&[("streamType", "data"), ("port", "8080"), ("requestID", "0")])
        .await
        .expect("open");
    let e2 = client
        .open(&[("streamType", "error"), ("port", "9"), ("requestID", "1")])
        .await
        .expect("open");
    client
        .open(&[("streamType", "data"), ("port", "9"), ("requestID", "1")])
        .await
        .expect("open");
    client.data(d1, b"ping", false).await.expect("send");
    let (mut data, mut refused) = (Vec::new(), Vec::new());
    let mut finished = Vec::new();
    while finished.len() < 3 || !finished.contains(&e1) {
        let frame = tokio::time::timeout(Duration::from_secs(5), client.read_frame())
            .await
            .expect("in time")
            .expect("frame")
            .expect("not closed");
        if let Frame::Data {
            stream_id,
            fin,
            data: bytes,
        } = frame
        {
            if stream_id == d1 {
                data.extend_from_slice(&bytes);
            } else if stream_id == e2 {
                refused.extend_from_slice(&bytes);
            }
            if fin {
                finished.push(stream_id);
            }
        }
    }
    (data, refused)
}

#[tokio::test]
async fn spdy_port_forward_pairs_streams_by_request_and_reports_dial_errors() {
    let target = echo_target().await;
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(serve_port_forward(
        SpdyConnection::server(server_io),
        "web".into(),
        dialer(target),
    ));
    let (data, refused) = port_forward_round_trip(client_io).await;
    assert_eq!(data, b"echo:ping");
    assert_eq!(
        String::from_utf8_lossy(&refused),
        "error forwarding port 9 to pod web: nothing listens on port 9"
    );
    server.abort();
}

#[tokio::test]
async fn port_forward_works_through_the_websocket_tunnel() {
    let target = echo_target().await;
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let ws = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
        let conn = SpdyConnection::server(WebSocketIo::new(ws));
        serve_port_forward(conn, "web".into(), dialer(target)).await;
    });
    let ws = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    let (data, _) = port_forward_round_trip(WebSocketIo::new(ws)).await;
    assert_eq!(data, b"echo:ping");
    server.abort();
}

#[tokio::test]
async fn websocket_v5_exec_multiplexes_channels_and_closes_stdin_on_signal() {
    let (client_io, server_io) = tokio::io::duplex(64 * 1024);
    let server = tokio::spawn(async move {
        let ws = WebSocketStream::from_raw_socket(server_io, Role::Server, None).await;
        let mut streams = accept_websocket(ws, Protocol::V5, all_streams());
        let mut input = Vec::new();
        streams
            .stdin
            .take()
            .expect("stdin")
            .read_to_end(&mut input)
            .await
            .expect("stdin ends");
        let mut stdout = streams.stdout.take().expect("stdout");
        stdout.write_all(&input).await.expect("stdout");
        streams
            .stderr
            .take()
            .expect("stderr")
            .write_all(b"oops")
            .await
            .expect("stderr");
        streams.finisher.finish(Outcome::Exited(7)).await;
    });
    let mut ws = WebSocketStream::from_raw_socket(client_io, Role::Client, None).await;
    ws.send(Message::Binary(Bytes::from_static(b"\x00abc")))
        .await
        .expect("stdin");
    ws.send(Message::Binary(Bytes::from_static(b"\xff\x00")))
        .await
        .expect("close stdin");
    let mut channels: HashMap<u8, Vec<u8>> = HashMap::new();
    while let Some(Ok(message)) = ws.next().await {
        if let Message::Binary(data) = message {
            channels
                .entry(data[0])
                .or_default()
                .extend_from_slice(&data[1..]);
        }
    }
    server.await.expect("server");
    assert_eq!(channels[&1], b"abc");
    assert_eq!(channels[&2], b"oops");
    let status: serde_json::Value = serde_json::from_slice(&channels[&3]).expect("json");
    assert_eq!(status["details"]["causes"][0]["message"], "7");
}
