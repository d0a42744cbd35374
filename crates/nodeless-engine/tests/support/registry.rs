//! A throwaway Debian `docker-registry` (distribution 2.8) on 127.0.0.1:<free port>, with its
//! storage in a temporary directory and optional htpasswd (basic) auth. Stopped on drop.

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;

use super::http;

const BINARY: &str = "/usr/bin/docker-registry";

pub struct Registry {
    pub addr: SocketAddr,
    credentials: Option<(String, String)>,
    child: Child,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// An anonymous registry.
    pub fn start() -> Registry {
        Self::spawn(None)
    }

    /// A registry that demands basic auth with this user and password.
    pub fn start_with_auth(user: &str, password: &str) -> Registry {
        Self::spawn(Some((user.to_string(), password.to_string())))
    }

    /// `127.0.0.1:port`, as used in image references and `--insecure-registry`.
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `http://127.0.0.1:port`, as used in `--registry-mirror docker.io=URL`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn credentials(&self) -> Option<(&str, &str)> {
        self.credentials
            .as_ref()
            .map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The `Authorization` header value for the registry's credentials, if any.
    pub fn authorization(&self) -> Option<String> {
        let (user, password) = self.credentials()?;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Some(format!("Basic {token}"))
    }

    fn spawn(credentials: Option<(String, String)>) -> Registry {
        assert!(
            Path::new(BINARY).exists(),
            "{BINARY} missing: run scripts/engine-deps.sh"
        );
        let dir = tempfile::tempdir().expect("registry temp dir");
        // The port is free now; the registry binds it a few milliseconds later. Another process
        // could take it in between, which the readiness check would then report.
        let addr = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port");
        let config = write_config(dir.path(), addr, credentials.as_ref());
        let child = Command::new(BINARY)
            .arg("serve")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(
                std::fs::File::create(dir.path().join("registry.log")).expect("registry log"),
            ))
            .spawn()
            .expect("start docker-registry");
        let registry = Registry {
            addr,
            credentials,
            child,
            _dir: dir,
        };
        registry.wait_ready();
        registry
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            // 200 when anonymous, 401 when auth is on: either way it serves the API.
            if let Ok(r) = http::request(self.addr, "GET", "/v2/", &[], &[]) {
                if r.status == 200 || r.status == 401 {
                    return;
                }
            }
            let log =
                std::fs::read_to_string(self._dir.path().join("registry.log")).unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "docker-registry on {} did not start: {log}",
                self.addr
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(
    dir: &Path,
    addr: SocketAddr,
    credentials: Option<&(String, String)>,
) -> std::path::PathBuf {
    let storage = dir.join("storage");
    let mut yaml = format!(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    \
         rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
        storage.display()
    );
    if let Some((user, password)) = credentials {
        // Low cost: the test only needs a valid bcrypt entry, not a strong one.
        let hash = bcrypt::hash(password, 4).expect("bcrypt");
        let htpasswd = dir.join("htpasswd");
        std::fs::write(&htpasswd, format!("{user}:{hash}\n")).expect("write htpasswd");
        yaml.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: nodeless-test\n    path: {}\n",
            htpasswd.display()
        ));
    }
    let path = dir.join("config.yml");
    std::fs::write(&path, yaml).expect("write registry config");
    path
}
