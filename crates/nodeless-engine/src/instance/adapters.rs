//! The real images and network parts behind the engine's [`ImageSource`] and [`NetworkProvider`].

use async_trait::async_trait;

use super::deps::{DepError, ImageSource, PulledImage};
use super::spec::{PullPolicy, RegistryAuth};
use crate::image::{self, ImageService};

#[async_trait]
impl ImageSource for ImageService {
    async fn ensure(
        &self,
        reference: &str,
        policy: PullPolicy,
        auth: Option<&RegistryAuth>,
    ) -> Result<PulledImage, DepError> {
        let policy = match policy {
            PullPolicy::Always => image::PullPolicy::Always,
            PullPolicy::IfNotPresent => image::PullPolicy::IfNotPresent,
            PullPolicy::Never => image::PullPolicy::Never,
        };
        let img = ImageService::ensure(self, reference, policy, auth)
            .await
            .map_err(|e| DepError(e.to_string()))?;
        Ok(PulledImage {
            reference: img.reference,
            digest: img.digest,
            entrypoint: img.config.entrypoint,
            cmd: img.config.cmd,
            env: img.config.env,
            working_dir: img.config.working_dir,
            user: img.config.user,
            stop_signal: img.config.stop_signal,
            layers: img.layers,
        })
    }
}
