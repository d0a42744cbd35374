//! The image service's error type. It is `Clone` (sources are shared behind `Arc`) so that one
//! pull's outcome can be handed to every caller that waited on it.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::Arc;

use super::manifest::ManifestError;
use super::reference::ReferenceError;
use super::transport::FetchError;
use super::unpack::UnpackError;

#[derive(Debug, Clone, thiserror::Error)]
pub enum ImageError {
    #[error("invalid image reference {reference:?}: {source}")]
    InvalidReference {
        reference: String,
        #[source]
        source: ReferenceError,
    },
    #[error("invalid registry configuration: {0}")]
    InvalidConfig(String),
    #[error("image {reference:?} is not present and the pull policy is Never")]
    NotPresent { reference: String },
    #[error("image {reference:?} not found")]
    NotFound { reference: String },
    #[error("pulling image {reference:?}: {failures}")]
    Pull {
        reference: String,
        failures: PullFailures,
    },
    #[error("pulling image {reference:?}: {source}")]
    Manifest {
        reference: String,
        #[source]
        source: ManifestError,
    },
    #[error("pulling image {reference:?}: unpacking layer {layer}: {source}")]
    Unpack {
        reference: String,
        layer: String,
        #[source]
        source: UnpackError,
    },
    #[error("{op} {}: {source}", path.display())]
    Storage {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: Arc<io::Error>,
    },
    #[error("image record {} is unreadable: {reason}", path.display())]
    CorruptRecord { path: PathBuf, reason: String },
}

impl ImageError {
    pub(crate) fn storage(
        op: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(io::Error) -> Self {
        let path = path.into();
        move |source| ImageError::Storage {
            op,
            path,
            source: Arc::new(source),
        }
    }

    /// The registry's answers, when the pull failed talking to registries.
    pub fn pull_failures(&self) -> Option<&PullFailures> {
        match self {
            ImageError::Pull { failures, .. } => Some(failures),
            _ => None,
        }
    }
}

/// Where a registry request went and what came back.
#[derive(Debug, Clone)]
pub struct PullFailure {
    /// `127.0.0.1:5000`, or `mirror http://127.0.0.1:5000/` for a mirror.
    pub endpoint: String,
    /// Empty for the image's manifest, else e.g. `blob sha256:…`.
    pub object: String,
    pub error: FetchError,
}

/// One failure per registry endpoint tried (mirrors first, then the registry itself).
#[derive(Debug, Clone, Default)]
pub struct PullFailures(pub Vec<PullFailure>);

impl fmt::Display for PullFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name_endpoints =
            self.0.len() > 1 || self.0.iter().any(|p| p.endpoint.starts_with("mirror"));
        for (i, failure) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            if !failure.object.is_empty() {
                write!(f, "{}: ", failure.object)?;
            }
            write!(f, "{}", failure.error)?;
            if name_endpoints {
                write!(f, " (from {})", failure.endpoint)?;
            }
        }
        if self.0.is_empty() {
            f.write_str("no registry endpoint to try")?;
        }
        Ok(())
    }
}
