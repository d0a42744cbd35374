//! The node endpoints over real TCP against the fake engine, driven by minimal clients that
//! speak the wire protocols as kubectl (client-go) does.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use nodeless_engine::fake::FakeEngine;
use nodeless_engine::instance::{Engine, InstanceSpec};
use nodeless_engine::sandbox::logs::LogStreamKind;
use nodeless_stream::spdy::client::SpdyClient;
use nodeless_stream::spdy::Frame;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "s3cret";
const POD: &str = "default/web/uid-1";

struct Node {
    addr: SocketAddr,
    engine: Arc<FakeEngine>,
    shutdown: CancellationToken,
}

impl Drop for Node {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn node() -> Node {
    let engine = Arc::new(FakeEngine::new());
    engine
        .create(InstanceSpec::single("uid-1", "web", "nginx"))
        .await
        .expect("create");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let shutdown = CancellationToken::new();
    tokio::spawn(nodeless_agent::server::serve(
        listener,
        None,
        engine.clone(),
        Arc::from(TOKEN),
        shutdown.clone(),
    ));
    Node {
        addr,
        engine,
        shutdown,
    }
}

/// Sends a request and reads the response head byte by byte, so nothing after it (the
/// upgraded protocol) is consumed. Returns the connection, status and headers.
async fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
) -> (TcpStream, u16, HashMap<String, String>) {
    let mut conn = TcpStream::connect(addr).await.expect("connect");
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: node\r\n");
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await.expect("send");
    let mut raw = Vec::new();
    while !raw.ends_with(b"\r\n\r\n") {
        let byte = conn.read_u8().await.expect("response head");
        raw.push(byte);
    }
    let text = String::from_utf8(raw).expect("ascii head");
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("status");
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(n, v)| (n.to_ascii_lowercase(), v.to_string()))
        .collect();
    (conn, status, headers)
}

fn auth() -> (&'static str, String) {
    ("Authorization", format!("Bearer {TOKEN}"))
}

async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let (name, value) = auth();
    let (mut conn, status, headers) = request(
        addr,
        "GET",
        path,
        &[(name, &value), ("Connection", "close")],
    )
    .await;
    let mut body = Vec::new();
    conn.read_to_end(&mut body).await.expect("body");
    if headers.get("transfer-encoding").map(String::as_str) == Some("chunked") {
        body = dechunk(&body);
    }
    (status, String::from_utf8(body).expect("utf8"))
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(pos) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..pos]).expect("size"), 16)
            .expect("hex");
        if size == 0 {
            break;
        }
        out.extend_from_slice(&raw[pos + 2..pos + 2 + size]);
        raw = &raw[pos + 4 + size..];
    }
    out
}

fn status_json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).expect("a Status")
}

#[tokio::test]
async fn requests_without_the_token_are_refused_with_a_401_status() {
    let node = node().await;
    let (mut conn, status, _) = request(
        node.addr,
        "GET",
        &format!("/containerLogs/{POD}/web"),
        &[("Authorization", "Bearer nope"), ("Connection", "close")],
    )
    .await;
    let mut body = String::new();
    conn.read_to_string(&mut body).await.expect("body");
    assert_eq!(status, 401);
    assert_eq!(status_json(&body)["reason"], "Unauthorized");
}

#[tokio::test]
async fn unknown_pods_and_containers_are_404_and_bad_queries_400() {
    let node = node().await;
    let (status, body) = get(node.addr, "/containerLogs/default/ghost/uid-2/web").await;
    assert_eq!(status, 404);
    assert_eq!(status_json(&body)["message"], "pods \"ghost\" not found");
    let (status, _) = get(node.addr, &format!("/containerLogs/{POD}/sidecar")).await;
    assert_eq!(status, 404);
    let (status, body) = get(node.addr, &format!("/containerLogs/{POD}/web?tailLines=-3")).await;
    assert_eq!(status, 400, "{body}");
}

#[tokio::test]
async fn logs_honour_tail_lines_and_timestamps() {
    let node = node().await;
    for line in ["one", "two", "three"] {
        node.engine
            .push_log("uid-1", "web", LogStreamKind::Stdout, line);
    }
    let (status, body) = get(node.addr, &format!("/containerLogs/{POD}/web?tailLines=2")).await;
    assert_eq!((status, body.as_str()), (200, "two\nthree\n"));
    let (_, body) = get(
        node.addr,
        &format!("/containerLogs/{POD}/web?timestamps=true&limitBytes=40"),
    )
    .await;
    assert_eq!(body.len(), 40);
    assert!(body.contains("Z one\n"), "{body}");
}

#[tokio::test]
async fn followed_logs_stream_new_lines_until_the_container_exits() {
    let node = node().await;
    node.engine
        .push_log("uid-1", "web", LogStreamKind::Stdout, "before");
    let (name, value) = auth();
    let (mut conn, status, _) = request(
        node.addr,
        "GET",
        &format!("/containerLogs/{POD}/web?follow=true"),
        &[(name, &value), ("Connection", "close")],
    )
    .await;
    assert_eq!(status, 200);
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("before") {
        let n = conn.read(&mut buf).await.expect("read");
        seen.extend_from_slice(&buf[..n]);
    }
    node.engine
        .push_log("uid-1", "web", LogStreamKind::Stderr, "after");
    node.engine.exit("uid-1", "web", 0, false);
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut rest))
        .await
        .expect("the stream ends when the container exits")
        .expect("read");
    seen.extend_from_slice(&rest);
    assert_eq!(dechunk(&seen), b"before\nafter\n");
}

fn spdy_upgrade(protocol: &'static str) -> Vec<(&'static str, String)> {
    let (name, value) = auth();
    vec![
        (name, value),
        ("Connection", "Upgrade".into()),
        ("Upgrade", "SPDY/3.1".into()),
        ("X-Stream-Protocol-Version", protocol.into()),
    ]
}

async fn spdy_session(node: &Node, path: &str, protocol: &'static str) -> SpdyClient<TcpStream> {
    let headers = spdy_upgrade(protocol);
    let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (conn, status, response) = request(node.addr, "POST", path, &refs).await;
    assert_eq!(status, 101);
    assert_eq!(
        response
            .get("x-stream-protocol-version")
            .map(String::as_str),
        Some(protocol)
    );
    SpdyClient::new(conn)
}

/// Data per stream until the server closes the connection.
async fn read_all(client: &mut SpdyClient<TcpStream>) -> HashMap<u32, Vec<u8>> {
    let mut data: HashMap<u32, Vec<u8>> = HashMap::new();
    while let Some(frame) = tokio::time::timeout(Duration::from_secs(5), client.read_frame())
        .await
        .expect("in time")
        .expect("frame")
    {
        if let Frame::Data {
            stream_id,
            data: bytes,
            ..
        } = frame
        {
            data.entry(stream_id).or_default().extend_from_slice(&bytes);
        }
    }
    data
}

#[tokio::test]
async fn spdy_exec_carries_stdin_stdout_stderr_and_the_exit_code() {
    let node = node().await;
    node.engine.set_exec_result(3);
    node.engine.set_exec_stderr("on stderr\n");
    let path = format!(
        "/exec/{POD}/web?command=sh&command=-c&command=exit+3&stdin=true&stdout=true&stderr=true"
    );
    let mut client = spdy_session(&node, &path, "v4.channel.k8s.io").await;
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
    client
        .data(stdin, b"typed input", true)
        .await
        .expect("stdin");
    let data = read_all(&mut client).await;
    assert_eq!(data[&stdout], b"typed input");
    assert_eq!(data[&stderr], b"on stderr\n");
    let status: serde_json::Value = serde_json::from_slice(&data[&error]).expect("status");
    assert_eq!(status["reason"], "NonZeroExitCode");
    assert_eq!(status["details"]["causes"][0]["message"], "3");
    assert!(node
        .engine
        .calls()
        .contains(&"exec uid-1 web sh -c exit 3".to_string()));
}

#[tokio::test]
async fn websocket_v5_exec_carries_output_and_the_exit_code() {
    let node = node().await;
    node.engine.set_exec_result(0);
    let url = format!(
        "ws://{}/exec/{POD}/web?command=cat&stdin=true&stdout=true",
        node.addr
    );
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "v5.channel.k8s.io".parse().expect("header"),
    );
    let tcp = TcpStream::connect(node.addr).await.expect("connect");
    let (mut ws, response) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("websocket");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "v5.channel.k8s.io"
    );
    ws.send(Message::Binary(Bytes::from_static(b"\x00meow")))
        .await
        .expect("stdin");
    ws.send(Message::Binary(Bytes::from_static(b"\xff\x00")))
        .await
        .expect("close stdin");
    let mut channels: HashMap<u8, Vec<u8>> = HashMap::new();
    while let Some(Ok(message)) = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("in time")
    {
        if let Message::Binary(data) = message {
            channels
                .entry(data[0])
                .or_default()
                .extend_from_slice(&data[1..]);
        }
    }
    assert_eq!(channels[&1], b"meow");
    let status: serde_json::Value = serde_json::from_slice(&channels[&3]).expect("status");
    assert_eq!(status["status"], "Success");
}

#[tokio::test]
async fn exec_needs_a_running_container_and_a_command() {
    let node = node().await;
    let headers = spdy_upgrade("v4.channel.k8s.io");
    let refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    let (_, status, _) = request(
        node.addr,
        "POST",
        &format!("/exec/{POD}/web?stdout=true"),
        &refs,
    )
    .await;
    assert_eq!(status, 400);
    node.engine
        .stop("uid-1", Duration::ZERO)
        .await
        .expect("stop");
    let (_, status, _) = request(
        node.addr,
        "POST",
        &format!("/exec/{POD}/web?command=ls&stdout=true"),
        &refs,
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn attach_with_stdin_to_a_container_without_stdin_is_refused_with_a_clear_status() {
    let node = node().await;
    let headers = spdy_upgrade("v4.channel.k8s.io");
    let mut refs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
    refs.push(("Connection", "close"));
    let (mut conn, status, _) = request(
        node.addr,
        "POST",
        &format!("/attach/{POD}/web?stdin=true&stdout=true"),
        &refs,
    )
    .await;
    let mut body = String::new();
    conn.read_to_string(&mut body).await.expect("body");
    assert_eq!(status, 400);
    assert!(status_json(&body)["message"]
        .as_str()
        .is_some_and(|m| m.contains("was not created with stdin: true")));
}

#[tokio::test]
async fn attach_streams_the_containers_output_until_it_exits() {
    let node = node().await;
    node.engine
        .push_log("uid-1", "web", LogStreamKind::Stdout, "old line");
    let mut client = spdy_session(
        &node,
        &format!("/attach/{POD}/web?stdout=true&stderr=true"),
        "v4.channel.k8s.io",
    )
    .await;
    let error = client.open(&[("streamType", "error")]).await.expect("open");
    let stdout = client
        .open(&[("streamType", "stdout")])
        .await
        .expect("open");
    let stderr = client
        .open(&[("streamType", "stderr")])
        .await
        .expect("open");
    // Wait until the session is set up (the replies arrive) before the container writes.
    for _ in 0..3 {
        let frame = client.read_frame().await.expect("frame");
        assert!(matches!(frame, Some(Frame::SynReply { .. })), "{frame:?}");
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    node.engine
        .push_log("uid-1", "web", LogStreamKind::Stdout, "new out");
    node.engine
        .push_log("uid-1", "web", LogStreamKind::Stderr, "new err");
    node.engine.exit("uid-1", "web", 0, false);
    let data = read_all(&mut client).await;
    assert_eq!(data[&stdout], b"new out\n");
    assert_eq!(data[&stderr], b"new err\n");
    let status: serde_json::Value = serde_json::from_slice(&data[&error]).expect("status");
    assert_eq!(status["status"], "Success");
}

async fn echo_server() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = conn.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

async fn forward_one<IO>(mut client: SpdyClient<IO>) -> Vec<u8>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    client
        .open(&[("streamType", "error"), ("port", "80"), ("requestID", "0")])
        .await
        .expect("open");
    let data = client
        .open(&[("streamType", "data"), ("port", "80"), ("requestID", "0")])
        .await
        .expect("open");
    client
        .data(data, b"GET / HTTP/1.0\r\n\r\n", false)
        .await
        .expect("send");
    let mut echoed = Vec::new();
    while echoed.len() < 18 {
        let frame = tokio::time::timeout(Duration::from_secs(5), client.read_frame())
            .await
            .expect("in time")
            .expect("frame")
            .expect("open");
        if let Frame::Data {
            stream_id,
            data: bytes,
            ..
        } = frame
        {
            if stream_id == data {
                echoed.extend_from_slice(&bytes);
            }
        }
    }
    echoed
}

#[tokio::test]
async fn spdy_port_forward_reaches_the_instance_port() {
    let node = node().await;
    node.engine
        .forward_port_to("uid-1", 80, echo_server().await);
    let client = spdy_session(&node, &format!("/portForward/{POD}"), "portforward.k8s.io").await;
    assert_eq!(forward_one(client).await, b"GET / HTTP/1.0\r\n\r\n");
}

#[tokio::test]
async fn port_forward_over_the_websocket_tunnel_reaches_the_instance_port() {
    let node = node().await;
    node.engine
        .forward_port_to("uid-1", 80, echo_server().await);
    let url = format!("ws://{}/portForward/{POD}", node.addr);
    let mut request = url.into_client_request().expect("request");
    request.headers_mut().insert(
        "Authorization",
        format!("Bearer {TOKEN}").parse().expect("header"),
    );
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        "SPDY/3.1+portforward.k8s.io".parse().expect("header"),
    );
    let tcp = TcpStream::connect(node.addr).await.expect("connect");
    let (ws, response) = tokio_tungstenite::client_async(request, tcp)
        .await
        .expect("websocket");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "SPDY/3.1+portforward.k8s.io"
    );
    let client = SpdyClient::new(nodeless_stream::tunnel::WebSocketIo::new(ws));
    assert_eq!(forward_one(client).await, b"GET / HTTP/1.0\r\n\r\n");
}

/// Serves a fake node on `NODELESS_NODE_ADDR` for a while, for trying real clients by hand
/// (kubectl through a proxy that adds the token): exec echoes stdin and exits with
/// `NODELESS_EXEC_CODE`, port 80 echoes.
#[tokio::test]
#[ignore = "manual: serves until NODELESS_NODE_SECONDS pass"]
async fn serve_a_fake_node_for_manual_clients() {
    let addr = std::env::var("NODELESS_NODE_ADDR").unwrap_or_else(|_| "127.0.0.1:10250".into());
    let seconds = std::env::var("NODELESS_NODE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let engine = Arc::new(FakeEngine::new());
    engine
        .create(InstanceSpec::single("uid-1", "web", "nginx"))
        .await
        .expect("create");
    engine.set_exec_result(
        std::env::var("NODELESS_EXEC_CODE")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
    );
    engine.forward_port_to("uid-1", 80, echo_server().await);
    engine.push_log("uid-1", "web", LogStreamKind::Stdout, "hello from the log");
    let listener = tokio::net::TcpListener::bind(&addr).await.expect("bind");
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(nodeless_agent::server::serve(
        listener,
        None,
        engine.clone(),
        Arc::from(TOKEN),
        shutdown.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    shutdown.cancel();
    let _ = server.await;
}
