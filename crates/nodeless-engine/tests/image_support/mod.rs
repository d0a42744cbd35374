//! Test helpers of the image tests: an HTTP/1.1 reverse proxy in front of the test registry that
//! records every request and can corrupt chosen blobs on their way to the client.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

#[derive(Default)]
struct State {
    requests: Vec<String>,
    corrupt: Vec<String>,
}

/// Forwards to `upstream`, one upstream connection per request; stops when dropped.
pub struct Proxy {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let server = tokio::spawn(async move {
            // Connection tasks live in the set, so aborting the server ends them too.
            let mut connections = JoinSet::new();
            while let Ok((client, _)) = listener.accept().await {
                connections.spawn(serve(client, upstream, Arc::clone(&shared)));
            }
        });
        Proxy {
            addr,
            state,
            server,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `METHOD /path?query` of every request so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.lock().expect("lock").requests.clone()
    }

    pub fn count(&self, needle: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.contains(needle))
            .count()
    }

    pub fn reset(&self) {
        self.state.lock().expect("lock").requests.clear();
    }

    /// Flip a byte of every successful GET whose path ends with `digest`.
    pub fn corrupt(&self, digest: &str) {
        self.state
            .lock()
            .expect("lock")
            .corrupt
            .push(digest.to_string());
    }

    pub fn stop_corrupting(&self) {
        self.state.lock().expect("lock").corrupt.clear();
    }
}

async fn serve(client: TcpStream, upstream: SocketAddr, state: Arc<Mutex<State>>) {
    let (read, mut write) = client.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let Some((method, path, headers, body)) = read_request(&mut reader).await else {
            return;
        };
        let corrupt = {
            let mut s = state.lock().expect("lock");
            s.requests.push(format!("{method} {path}"));
            method == "GET"
                && s.corrupt.iter().any(|d| {
                    path.split('?')
                        .next()
                        .is_some_and(|p| p.ends_with(d.as_str()))
                })
        };
        let Some(mut response) = forward(upstream, &method, &path, &headers, &body).await else {
            return;
        };
        if corrupt && response.status == 200 {
            if let Some(last) = response.body.last_mut() {
                *last ^= 0xff;
            }
        }
        let mut head = format!("HTTP/1.1 {} X\r\n", response.status);
        for (k, v) in &response.headers {
            let skip = ["connection", "content-length", "transfer-encoding"]
                .contains(&k.to_ascii_lowercase().as_str());
            if !skip {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", response.body.len()));
        let wrote = write.write_all(head.as_bytes()).await.is_ok()
            && (method == "HEAD" || write.write_all(&response.body).await.is_ok());
        if !wrote {
            return;
        }
    }
}

type Request = (String, String, Vec<(String, String)>, Vec<u8>);

async fn read_request<R: tokio::io::AsyncBufRead + Unpin>(reader: &mut R) -> Option<Request> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).await.ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some((method, path, headers, body))
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

async fn forward(
    upstream: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> Option<Response> {
    let mut conn = TcpStream::connect(upstream).await.ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {upstream}\r\nConnection: close\r\n");
    for (k, v) in headers {
        if !["host", "connection"].contains(&k.to_ascii_lowercase().as_str()) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str("\r\n");
    conn.write_all(head.as_bytes()).await.ok()?;
    conn.write_all(body).await.ok()?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).await.ok()?;
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let text = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = text.split("\r\n");
    let status = lines.next()?.split(' ').nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut body = raw[end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body)?;
    }
    Some(Response {
        status,
        headers,
        body,
    })
}

fn dechunk(mut raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(
            std::str::from_utf8(&raw[..line_end])
                .ok()?
                .split(';')
                .next()?
                .trim(),
            16,
        )
        .ok()?;
        raw = &raw[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(raw.get(..size)?);
        raw = raw.get(size + 2..)?;
    }
}
