//! The seam in front of registries: fetch a manifest, stream a blob. The real implementation is
//! oci-client (OCI distribution protocol with anonymous, basic and bearer-token auth); tests use
//! an in-memory fake.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth as OciAuth;
use oci_client::{Client, Reference};

use super::auth::RegistryAuth;
use super::manifest::ACCEPTED_MANIFEST_TYPES;
use super::reference::ImageReference;
use super::registry::Endpoint;

/// A registry's answer, or the reason there was none.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    #[error("{message} (registry answered {status})")]
    Registry { status: u16, message: String },
    #[error("cannot reach the registry: {0}")]
    Unreachable(String),
    #[error("content does not match its digest {expected} (got {actual})")]
    DigestMismatch { expected: String, actual: String },
    #[error("content of {digest} is {actual} bytes, the manifest says {expected}")]
    SizeMismatch {
        digest: String,
        expected: u64,
        actual: u64,
    },
    #[error("{0}")]
    Protocol(String),
}

impl FetchError {
    /// Worth another try: the network, a registry fault or rate limit, or corrupted transfer.
    pub fn is_retryable(&self) -> bool {
        match self {
            FetchError::Registry { status, .. } => {
                *status >= 500 || *status == 429 || *status == 408
            }
            FetchError::Unreachable(_) | FetchError::DigestMismatch { .. } => true,
            FetchError::SizeMismatch { .. } | FetchError::Protocol(_) => false,
        }
    }
}

pub(crate) struct FetchedManifest {
    pub bytes: Bytes,
    /// The digest the registry served it under, verified against the bytes.
    pub digest: String,
}

pub(crate) type BlobStream = BoxStream<'static, Result<Bytes, FetchError>>;

#[async_trait]
pub(crate) trait Transport: Send + Sync + 'static {
    /// Fetches the manifest (or index) `reference` (a tag or digest) of `image`'s repository.
    async fn manifest(
        &self,
        endpoint: &Endpoint,
        image: &ImageReference,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<FetchedManifest, FetchError>;

    /// Streams blob `digest` of `image`'s repository. The caller verifies the content.
    async fn blob(
        &self,
        endpoint: &Endpoint,
        image: &ImageReference,
        digest: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<BlobStream, FetchError>;
}

const MAX_CLIENTS: usize = 64;

/// oci-client keeps the first credentials it sees per registry, so one client is kept per
/// endpoint and credentials.
#[derive(Hash, PartialEq, Eq)]
struct ClientKey {
    host: String,
    plain_http: bool,
    auth: Option<(String, String, Option<String>)>,
}

#[derive(Default)]
pub(crate) struct OciTransport {
    clients: Mutex<HashMap<ClientKey, Client>>,
}

impl OciTransport {
    pub fn new() -> Self {
        // reqwest is built without a bundled crypto provider; use the workspace's (ring). An
        // error only means some provider is already installed, which is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        OciTransport::default()
    }

    fn client(
        &self,
        endpoint: &Endpoint,
        auth: Option<&RegistryAuth>,
    ) -> Result<Client, FetchError> {
        let key = ClientKey {
            host: endpoint.host.clone(),
            plain_http: endpoint.plain_http,
            auth: auth.map(|a| {
                (
                    a.username.clone(),
                    a.password.clone(),
                    a.registry_token.clone(),
                )
            }),
        };
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = clients.get(&key) {
            return Ok(client.clone());
        }
        let config = ClientConfig {
            protocol: if endpoint.plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            connect_timeout: Some(Duration::from_secs(10)),
            read_timeout: Some(Duration::from_secs(60)),
            // Platform selection is ours (it knows variants); the client only fetches.
            platform_resolver: None,
            ..ClientConfig::default()
        };
        let client = Client::try_from(config).map_err(map_error)?;
        // Each distinct credential gets a client; forget them all rather than grow without end.
        if clients.len() >= MAX_CLIENTS {
            clients.clear();
        }
        clients.insert(key, client.clone());
        Ok(client)
    }
}

/// The reference oci-client addresses: the image's registry, or a mirror of it (which gets the
/// original registry in the `ns` query parameter, as containerd sends it).
fn oci_reference(endpoint: &Endpoint, image: &ImageReference, reference: &str) -> Reference {
    let (registry, repository) = (image.registry().to_string(), image.repository().to_string());
    let mut oci = if reference.starts_with("sha256:") {
        Reference::with_digest(registry, repository, reference.to_string())
    } else {
        Reference::with_tag(registry, repository, reference.to_string())
    };
    if endpoint.is_mirror() {
        oci.set_mirror_registry(endpoint.host.clone());
    }
    oci
}

/// Credentials go only to the image's own registry, never to a mirror.
fn oci_auth(endpoint: &Endpoint, auth: Option<&RegistryAuth>) -> OciAuth {
    match auth {
        Some(_) if endpoint.is_mirror() => OciAuth::Anonymous,
        Some(RegistryAuth {
            registry_token: Some(token),
            ..
        }) => OciAuth::Bearer(token.clone()),
        Some(a) => OciAuth::Basic(a.username.clone(), a.password.clone()),
        None => OciAuth::Anonymous,
    }
}

#[async_trait]
impl Transport for OciTransport {
    async fn manifest(
        &self,
        endpoint: &Endpoint,
        image: &ImageReference,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<FetchedManifest, FetchError> {
        let client = self.client(endpoint, auth)?;
        let oci = oci_reference(endpoint, image, reference);
        let (bytes, digest) = client
            .pull_manifest_raw(&oci, &oci_auth(endpoint, auth), ACCEPTED_MANIFEST_TYPES)
            .await
            .map_err(map_error)?;
        Ok(FetchedManifest { bytes, digest })
    }

    async fn blob(
        &self,
        endpoint: &Endpoint,
        image: &ImageReference,
        digest: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<BlobStream, FetchError> {
        let client = self.client(endpoint, auth)?;
        let oci = oci_reference(endpoint, image, digest);
        client
            .store_auth_if_needed(oci.resolve_registry(), &oci_auth(endpoint, auth))
            .await;
        let stream = client
            .pull_blob_stream(&oci, digest)
            .await
            .map_err(map_error)?;
        Ok(stream.map_err(map_io_error).boxed())
    }
}

/// The HTTP status the distribution spec gives each error code; oci-client keeps the code and
/// drops the status.
fn spec_status(code: &OciErrorCode) -> u16 {
    use OciErrorCode::*;
    match code {
        BlobUnknown | BlobUploadUnknown | ManifestBlobUnknown | ManifestUnknown | NameUnknown
        | NotFound => 404,
        Unauthorized => 401,
        Denied => 403,
        Unsupported => 405,
        Toomanyrequests => 429,
        _ => 400,
    }
}

fn map_error(error: OciDistributionError) -> FetchError {
    match error {
        OciDistributionError::RegistryError { envelope, .. } => {
            let first = envelope.errors.first();
            let status = first.map_or(400, |e| spec_status(&e.code));
            let message = first
                .map(|e| {
                    if e.message.is_empty() {
                        format!("{:?}", e.code)
                    } else {
                        e.message.clone()
                    }
                })
                .unwrap_or_else(|| "registry error".to_string());
            FetchError::Registry { status, message }
        }
        OciDistributionError::UnauthorizedError { .. } => FetchError::Registry {
            status: 401,
            message: "authentication required".into(),
        },
        OciDistributionError::AuthenticationFailure(reason) => FetchError::Registry {
            status: 401,
            message: format!("authentication failed: {}", first_line(&reason)),
        },
        OciDistributionError::ServerError { code, message, .. } => {
            let message = first_line(&message);
            let message = if message.is_empty() {
                "no explanation".to_string()
            } else {
                message
            };
            FetchError::Registry {
                status: code,
                message,
            }
        }
        OciDistributionError::DigestError(oci_client::errors::DigestError::VerificationError {
            expected,
            actual,
        }) => FetchError::DigestMismatch { expected, actual },
        OciDistributionError::RequestError(e) => FetchError::Unreachable(error_chain(&e)),
        OciDistributionError::IoError(e) => map_io_error(e),
        other => FetchError::Protocol(error_chain(&other)),
    }
}

fn map_io_error(error: std::io::Error) -> FetchError {
    if let Some(oci_client::errors::DigestError::VerificationError { expected, actual }) =
        error.get_ref().and_then(|e| e.downcast_ref())
    {
        return FetchError::DigestMismatch {
            expected: expected.clone(),
            actual: actual.clone(),
        };
    }
    FetchError::Unreachable(error_chain(&error))
}

/// reqwest's top-level message hides the cause ("connection refused") in its sources.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text = format!("{text}: {part}");
        }
        source = s.source();
    }
    text
}

fn first_line(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("").trim();
    line.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_codes_keep_their_spec_status() {
        let envelope: oci_client::errors::OciEnvelope = serde_json::from_str(
            r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#,
        )
        .expect("envelope");
        let err = map_error(OciDistributionError::RegistryError {
            envelope,
            url: "u".into(),
        });
        assert_eq!(err.to_string(), "manifest unknown (registry answered 404)");
        assert!(!err.is_retryable());
    }

    #[test]
    fn server_faults_and_rate_limits_are_retried_but_not_found_is_not() {
        let status = |status| FetchError::Registry {
            status,
            message: String::new(),
        };
        assert!(status(503).is_retryable());
        assert!(status(429).is_retryable());
        assert!(!status(404).is_retryable());
        assert!(!status(401).is_retryable());
        assert!(FetchError::Unreachable("refused".into()).is_retryable());
    }

    #[test]
    fn credentials_are_not_sent_to_mirrors() {
        let mirror = Endpoint {
            host: "m".into(),
            plain_http: true,
            mirror_url: url::Url::parse("http://m").ok(),
        };
        let auth = RegistryAuth::basic("u", "p");
        assert_eq!(oci_auth(&mirror, Some(&auth)), OciAuth::Anonymous);
        let upstream = Endpoint {
            mirror_url: None,
            ..mirror
        };
        assert_eq!(
            oci_auth(&upstream, Some(&auth)),
            OciAuth::Basic("u".into(), "p".into())
        );
    }
}
