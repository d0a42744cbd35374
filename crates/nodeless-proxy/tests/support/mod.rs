//! A throwaway instance network for root-only tests: a bridge with the host as gateway and
//! network namespaces on it, wired the way the CNI bridge plugin wires instances (veth,
//! default route through the bridge, hairpin on), plus tiny servers and clients running
//! inside the namespaces.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Why a root-only test cannot run here, if it cannot.
pub fn skip_reason() -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return Some("not root".into());
    }
    if Command::new("nft").arg("--version").output().is_err() {
        return Some("nft is not installed (apt-get install nftables)".into());
    }
    if !std::path::Path::new("/proc/sys/net/bridge/bridge-nf-call-iptables").exists() {
        return Some("br_netfilter is not loaded".into());
    }
    None
}

pub fn sh(args: &[&str]) {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sh_quiet(args: &[&str]) {
    let _ = Command::new(args[0]).args(&args[1..]).output();
}

pub struct Netns {
    pub name: String,
    pub ip: Ipv4Addr,
}

impl Netns {
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/run/netns").join(&self.name)
    }

    /// Runs `f` on a thread of its own inside the namespace (threads it spawns stay there).
    pub fn spawn<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        let path = self.path();
        std::thread::spawn(move || {
            let file = std::fs::File::open(&path).expect("open netns");
            rustix::thread::move_into_link_name_space(
                file.as_fd(),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .expect("setns");
            f()
        })
    }

    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        self.spawn(f).join().expect("netns thread")
    }
}

/// A bridge `nlpx<tag>` on 10.232.<n>.0/24 with gateway .1 and namespaces at .10, .11, ...
pub struct TestNet {
    pub tag: String,
    pub bridge: String,
    pub gateway: Ipv4Addr,
    pub subnet: ipnet::Ipv4Net,
    pub namespaces: Vec<Netns>,
}

impl TestNet {
    pub fn create(count: u8) -> TestNet {
        let pid = std::process::id();
        let third = (pid % 200 + 20) as u8;
        let tag = format!("{}", pid % 100_000);
        let bridge = format!("nlpx{tag}");
        let gateway = Ipv4Addr::new(10, 232, third, 1);
        let subnet = ipnet::Ipv4Net::new(Ipv4Addr::new(10, 232, third, 0), 24).expect("prefix");
        let mut net = TestNet {
            tag: tag.clone(),
            bridge: bridge.clone(),
            gateway,
            subnet,
            namespaces: Vec::new(),
        };
        sh(&["ip", "link", "add", &bridge, "type", "bridge"]);
        sh(&[
            "ip",
            "addr",
            "add",
            &format!("{gateway}/24"),
            "dev",
            &bridge,
        ]);
        sh(&["ip", "link", "set", &bridge, "up"]);
        // Hosts with Docker drop forwarded traffic by default; the engine adds the same.
        for dir in ["-i", "-o"] {
            sh(&[
                "iptables", "-w", "-I", "FORWARD", dir, &bridge, "-j", "ACCEPT",
            ]);
        }
        for i in 0..count {
            let name = format!("nlpx-{tag}-{i}");
            let host_if = format!("nlpx{tag}v{i}");
            let ip = Ipv4Addr::new(10, 232, third, 10 + i);
            sh(&["ip", "netns", "add", &name]);
            sh(&[
                "ip", "link", "add", &host_if, "type", "veth", "peer", "name", "eth0", "netns",
                &name,
            ]);
            sh(&["ip", "link", "set", &host_if, "master", &bridge, "up"]);
            sh(&[
                "ip",
                "link",
                "set",
                &host_if,
                "type",
                "bridge_slave",
                "hairpin",
                "on",
            ]);
            sh(&[
                "ip",
                "-n",
                &name,
                "addr",
                "add",
                &format!("{ip}/24"),
                "dev",
                "eth0",
            ]);
            sh(&["ip", "-n", &name, "link", "set", "eth0", "up"]);
            sh(&["ip", "-n", &name, "link", "set", "lo", "up"]);
            sh(&[
                "ip",
                "-n",
                &name,
                "route",
                "add",
                "default",
                "via",
                &gateway.to_string(),
            ]);
            net.namespaces.push(Netns { name, ip });
        }
        net
    }
}

impl Drop for TestNet {
    fn drop(&mut self) {
        for ns in &self.namespaces {
            sh_quiet(&["ip", "netns", "del", &ns.name]);
        }
        for dir in ["-i", "-o"] {
            sh_quiet(&[
                "iptables",
                "-w",
                "-D",
                "FORWARD",
                dir,
                &self.bridge,
                "-j",
                "ACCEPT",
            ]);
        }
        sh_quiet(&["ip", "link", "del", &self.bridge]);
    }
}

/// Serves minimal HTTP/1.1 on `port` of every address (keep-alive unless the client asks
/// to close): the body is `name`. Sixteen threads each accept and serve one connection at a
/// time (no thread start per connection to blur the network's share of a request). Runs for
/// the rest of the process.
pub fn http_server(port: u16, name: String) -> std::net::SocketAddr {
    let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind http server");
    let addr = listener.local_addr().expect("local addr");
    for _ in 0..16 {
        let listener = listener.try_clone().expect("clone listener");
        let name = name.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                serve(conn, &name);
            }
        });
    }
    addr
}

fn serve(mut conn: TcpStream, body: &str) {
    let _ = conn.set_nodelay(true);
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let Some(end) = find_head_end(&buf) else {
            match conn.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let close = head.contains("connection: close");
        buf.drain(..end);
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n{}\r\n{body}",
            body.len(),
            if close { "Connection: close\r\n" } else { "" }
        );
        if conn.write_all(response.as_bytes()).is_err() || close {
            return;
        }
    }
}

fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// One `GET /` with `Connection: close`: the body, or why it failed.
pub fn http_get(addr: SocketAddr) -> Result<String, String> {
    let mut conn =
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))
        .map_err(|e| e.to_string())?;
    conn.write_all(b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut out = String::new();
    conn.read_to_string(&mut out).map_err(|e| e.to_string())?;
    out.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .ok_or_else(|| format!("no HTTP response: {out:?}"))
}

/// Echoes UDP datagrams on `port` of every address, prefixed with `name`.
pub fn udp_echo(port: u16, name: String) {
    let socket = UdpSocket::bind(("0.0.0.0", port)).expect("bind udp");
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            let reply = [name.as_bytes(), b":", &buf[..n]].concat();
            let _ = socket.send_to(&reply, from);
        }
    });
}

pub fn udp_ask(addr: SocketAddr, message: &str) -> Result<String, String> {
    udp_ask_from(0, addr, message)
}

/// Asks from local port `from` (0: any), as a client that keeps its port does.
pub fn udp_ask_from(from: u16, addr: SocketAddr, message: &str) -> Result<String, String> {
    let socket = UdpSocket::bind(("0.0.0.0", from)).map_err(|e| e.to_string())?;
    socket
        .set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;
    socket
        .send_to(message.as_bytes(), addr)
        .map_err(|e| e.to_string())?;
    let mut buf = [0u8; 1500];
    let (n, _) = socket.recv_from(&mut buf).map_err(|e| e.to_string())?;
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}
