//! The node endpoint's TLS. Each agent start makes a self-signed certificate and stores its
//! PEM beside the bearer token, in the Host's token Secret (key `tls.crt`); the API server
//! pins that exact certificate. So the token and every stream travel encrypted, and the API
//! server talks to this agent and no other, with no CA to run for the hosts. (The kubelet's
//! default is a self-signed certificate the API server does not check at all.)

use std::net::IpAddr;
use std::sync::Arc;

use rcgen::{CertificateParams, DnType, KeyPair, SanType};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot make the node endpoint's certificate: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("the node endpoint's TLS configuration is invalid: {0}")]
    Config(#[from] rustls::Error),
}

/// The certificate the endpoint serves, and what serves it.
pub struct ServingCert {
    pub pem: String,
    pub acceptor: tokio_rustls::TlsAcceptor,
}

/// A certificate for `host_name` at `addresses`, good for ten years: it lives as long as the
/// agent process, and the next start makes another.
pub fn self_signed(host_name: &str, addresses: &[IpAddr]) -> Result<ServingCert, TlsError> {
    let key = KeyPair::generate()?;
    let mut params = CertificateParams::new(vec![host_name.to_string()])?;
    params
        .distinguished_name
        .push(DnType::CommonName, format!("nodeless-agent {host_name}"));
    params.subject_alt_names.extend(
        addresses
            .iter()
            .filter(|a| !a.is_unspecified())
            .map(|a| SanType::IpAddress(*a)),
    );
    set_validity(&mut params);
    let cert = params.self_signed(&key)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert.der().to_vec())],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )?;
    // Upgrades (SPDY, WebSocket) are HTTP/1.1's.
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(ServingCert {
        pem: cert.pem(),
        acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(cfg)),
    })
}

/// From yesterday, so a clock a little behind ours still accepts it, for ten years.
fn set_validity(params: &mut CertificateParams) {
    use chrono::Datelike;
    let from = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    let to = from + chrono::Months::new(120);
    let ymd = |d: chrono::NaiveDate| rcgen::date_time_ymd(d.year(), d.month() as u8, d.day() as u8);
    params.not_before = ymd(from);
    params.not_after = ymd(to);
}
