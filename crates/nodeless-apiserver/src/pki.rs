//! The cluster's credentials: a CA and serving certificate generated on first start, an admin
//! bearer token, and the admin kubeconfig that points kubectl at the server.

use base64::Engine as _;
use rand::Rng;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("cannot {action} {path}: {source}")]
    File {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot generate a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the TLS configuration is invalid: {0}")]
    Tls(#[from] rustls::Error),
    #[error("{path} holds no usable key or certificate")]
    Unusable { path: PathBuf },
}

/// Everything a server and its admin need to talk securely.
pub struct Credentials {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
    pub admin_token: String,
}

fn read(path: &Path) -> Result<Option<String>, PkiError> {
    match std::fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(PkiError::File {
            action: "read",
            path: path.into(),
            source,
        }),
    }
}

/// Writes a secret file readable by its owner only, atomically.
fn write_private(path: &Path, contents: &str) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let err = |action, source| PkiError::File {
        action,
        path: path.into(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(|e| err("write", e))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| err("write", e))?;
    f.sync_all().map_err(|e| err("sync", e))?;
    std::fs::rename(&tmp, path).map_err(|e| err("rename", e))
}

impl Credentials {
    /// Loads the CA and token from `dir/pki`, creating them on first start, and issues a
    /// fresh serving certificate for `listen` (so a new address never needs manual steps).
    pub fn load_or_create(dir: &Path, listen: SocketAddr) -> Result<Self, PkiError> {
        let pki = dir.join("pki");
        std::fs::create_dir_all(&pki).map_err(|source| PkiError::File {
            action: "create",
            path: pki.clone(),
            source,
        })?;
        let (ca_pem, ca_key_pem) = match (read(&pki.join("ca.crt"))?, read(&pki.join("ca.key"))?) {
            (Some(c), Some(k)) => (c, k),
            _ => {
                let (c, k) = new_ca()?;
                write_private(&pki.join("ca.key"), &k)?;
                write_private(&pki.join("ca.crt"), &c)?;
                (c, k)
            }
        };
        let admin_token = match read(&pki.join("admin.token"))? {
            Some(t) if !t.trim().is_empty() => t.trim().to_string(),
            _ => {
                let t = random_token();
                write_private(&pki.join("admin.token"), &t)?;
                t
            }
        };
        let ca_key = KeyPair::from_pem(&ca_key_pem).map_err(|_| PkiError::Unusable {
            path: pki.join("ca.key"),
        })?;
        let issuer = Issuer::from_ca_cert_pem(&ca_pem, ca_key).map_err(|_| PkiError::Unusable {
            path: pki.join("ca.crt"),
        })?;
        let (cert_pem, key_pem) = serving_cert(&issuer, listen.ip())?;
        write_private(&pki.join("apiserver.crt"), &cert_pem)?;
        write_private(&pki.join("apiserver.key"), &key_pem)?;
        Ok(Self {
            ca_pem,
            cert_pem,
            key_pem,
            admin_token,
        })
    }

    /// A rustls server configuration offering HTTP/2 and HTTP/1.1, as kube-apiserver does.
    pub fn server_config(&self) -> Result<Arc<rustls::ServerConfig>, PkiError> {
        let certs = rustls_pemfile::certs(&mut self.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| PkiError::Unusable {
                path: "apiserver.crt".into(),
            })?;
        let key = rustls_pemfile::private_key(&mut self.key_pem.as_bytes())
            .ok()
            .flatten()
            .ok_or(PkiError::Unusable {
                path: "apiserver.key".into(),
            })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(certs, key)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(cfg))
    }

    /// The admin kubeconfig for a server reachable at `server` (e.g. `https://127.0.0.1:6443`).
    pub fn kubeconfig(&self, server: &str) -> String {
        let ca = base64::engine::general_purpose::STANDARD.encode(&self.ca_pem);
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: nodeless\n  cluster:\n    server: {server}\n    certificate-authority-data: {ca}\n\
             users:\n- name: nodeless-admin\n  user:\n    token: {}\ncontexts:\n- name: nodeless\n  context:\n    cluster: nodeless\n    user: nodeless-admin\n    namespace: default\n\
             current-context: nodeless\n",
            self.admin_token
        )
    }

    pub fn write_kubeconfig(&self, path: &Path, server: &str) -> Result<(), PkiError> {
        write_private(path, &self.kubeconfig(server))
    }
}

fn new_ca() -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params
        .distinguished_name
        .push(DnType::CommonName, "nodeless-ca");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_after = rcgen::date_time_ymd(2036, 1, 1);
    let cert = params.self_signed(&key)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn serving_cert(issuer: &Issuer<'_, KeyPair>, ip: IpAddr) -> Result<(String, String), PkiError> {
    let key = KeyPair::generate()?;
    let mut names = vec![
        "localhost".to_string(),
        "kubernetes".into(),
        "kubernetes.default".into(),
        "kubernetes.default.svc".into(),
    ];
    if let Ok(h) = std::fs::read_to_string("/etc/hostname") {
        let h = h.trim();
        if !h.is_empty() {
            names.push(h.to_string());
        }
    }
    let mut params = CertificateParams::new(names)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "nodeless-apiserver");
    let mut ips: Vec<IpAddr> = vec![[127, 0, 0, 1].into(), std::net::Ipv6Addr::LOCALHOST.into()];
    if !ip.is_unspecified() && !ips.contains(&ip) {
        ips.push(ip);
    }
    params
        .subject_alt_names
        .extend(ips.into_iter().map(SanType::IpAddress));
    params.not_after = rcgen::date_time_ymd(2035, 1, 1);
    let cert = params.signed_by(&key, issuer)?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
