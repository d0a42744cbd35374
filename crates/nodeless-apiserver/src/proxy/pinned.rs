//! TLS from the API server to the peers it proxies to.
//! - A host agent's node endpoint: exactly the certificate the agent stored beside its token
//!   (`Secret kube-system/<host token secret>`, key `tls.crt`) is trusted. Each agent start
//!   makes a new self-signed one, so there is no CA and no name to check: the pin is the
//!   identity. Its validity dates are not checked, as they mean nothing for a pinned key.
//! - An instance, for `https:` pods/proxy and services/proxy: any certificate, as
//!   kube-apiserver's proxy transport does (`InsecureSkipVerify`): instances serve whatever
//!   certificates their images bring, and nothing names the one to expect.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, SignatureScheme};

/// The DER of the first certificate in `pem`.
pub fn certificate_der(pem: &str) -> Option<Vec<u8>> {
    rustls_pemfile::certs(&mut pem.as_bytes())
        .next()?
        .ok()
        .map(|c| c.as_ref().to_vec())
}

/// A client configuration that accepts only the server presenting `cert` (DER).
pub fn client_config(cert: &[u8]) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    config(Some(CertificateDer::from(cert.to_vec())))
}

/// A client configuration that accepts any server certificate (instances).
pub fn unverified_client_config() -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    config(None)
}

fn config(
    pin: Option<CertificateDer<'static>>,
) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(Pinned {
        cert: pin,
        provider: provider.clone(),
    });
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

#[derive(Debug)]
struct Pinned {
    /// `None`: any certificate.
    cert: Option<CertificateDer<'static>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        // The handshake's signature is still checked against this certificate's key below.
        if self
            .cert
            .as_ref()
            .is_none_or(|pin| end_entity.as_ref() == pin.as_ref())
        {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn self_signed() -> (Vec<u8>, Vec<u8>) {
        let key = rcgen::KeyPair::generate().expect("key");
        let params = rcgen::CertificateParams::new(vec!["agent".to_string()]).expect("params");
        let cert = params.self_signed(&key).expect("cert");
        (cert.der().to_vec(), key.serialize_der())
    }

    /// A TLS server presenting `cert`; answers "hi" to whoever completes a handshake.
    async fn server(cert: Vec<u8>, key: Vec<u8>) -> std::net::SocketAddr {
        let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .expect("server config");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let _ = tls.write_all(b"hi").await;
                    let _ = tls.shutdown().await;
                }
            }
        });
        addr
    }

    async fn talk(addr: std::net::SocketAddr, pin: &[u8]) -> std::io::Result<String> {
        talk_with(addr, client_config(pin).expect("config")).await
    }

    async fn talk_with(
        addr: std::net::SocketAddr,
        cfg: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<String> {
        let connector = tokio_rustls::TlsConnector::from(cfg);
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        let name = ServerName::IpAddress(addr.ip().into());
        let mut tls = connector.connect(name, tcp).await?;
        let mut got = String::new();
        tls.read_to_string(&mut got).await?;
        Ok(got)
    }

    #[tokio::test]
    async fn only_the_pinned_certificate_is_accepted() {
        let (cert, key) = self_signed();
        let (other, _) = self_signed();
        let addr = server(cert.clone(), key).await;
        assert_eq!(talk(addr, &cert).await.expect("pinned"), "hi");
        let err = talk(addr, &other).await.expect_err("another certificate");
        assert!(err.to_string().contains("certificate"), "{err}");
        let any = unverified_client_config().expect("config");
        assert_eq!(talk_with(addr, any).await.expect("unverified"), "hi");
    }

    #[test]
    fn the_first_certificate_of_a_pem_is_pinned() {
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = rcgen::CertificateParams::new(vec!["a".to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("cert");
        assert_eq!(certificate_der(&cert.pem()), Some(cert.der().to_vec()));
        assert_eq!(certificate_der("not a certificate"), None);
    }
}
