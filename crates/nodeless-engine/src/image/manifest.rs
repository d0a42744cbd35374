//! Image manifests and indexes (OCI and Docker v2 schema 2), and choosing the host's platform
//! from an index.

use serde::Deserialize;

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_MANIFEST_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
const DOCKER_SCHEMA1: &str = "application/vnd.docker.distribution.manifest.v1";

pub(crate) const ACCEPTED_MANIFEST_TYPES: &[&str] = &[
    OCI_MANIFEST,
    OCI_INDEX,
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
];

const CONFIG_TYPES: &[&str] = &[
    "application/vnd.oci.image.config.v1+json",
    "application/vnd.docker.container.image.v1+json",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    #[error("the manifest is not valid: {0}")]
    Invalid(String),
    #[error(
        "docker schema 1 manifests are not supported (push the image again with a current tool)"
    )]
    Schema1,
    #[error("unsupported manifest media type {0:?}")]
    UnsupportedMediaType(String),
    #[error("the image index has no manifest for {wanted} (it has: {available})")]
    NoMatchingPlatform { wanted: String, available: String },
    #[error("image indexes nested more than {0} deep are not supported")]
    TooDeep(usize),
    #[error("not a container image: {0}")]
    NotAnImage(String),
    #[error("the image config is not valid: {0}")]
    InvalidConfig(String),
    #[error("the manifest has {layers} layers but the image config lists {diff_ids}")]
    LayerCountMismatch { layers: usize, diff_ids: usize },
    #[error("the manifest's digest is {actual}, the reference pins {expected}")]
    PinnedDigestMismatch { expected: String, actual: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
    #[serde(default)]
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        match &self.variant {
            Some(v) if !v.is_empty() => write!(f, "/{v}"),
            _ => Ok(()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageManifest {
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Manifest {
    Image(ImageManifest),
    Index(Vec<Descriptor>),
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawManifest {
    #[serde(default)]
    schema_version: Option<i64>,
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
}

/// Parses a manifest or index. The media type field is optional in OCI documents, so its shape
/// decides when the field is absent.
pub fn parse_manifest(bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let raw: RawManifest =
        serde_json::from_slice(bytes).map_err(|e| ManifestError::Invalid(e.to_string()))?;
    let media_type = raw.media_type.unwrap_or_default();
    if raw.schema_version == Some(1) || media_type.starts_with(DOCKER_SCHEMA1) {
        return Err(ManifestError::Schema1);
    }
    let is_index = media_type == OCI_INDEX || media_type == DOCKER_MANIFEST_LIST;
    let is_image = media_type == OCI_MANIFEST || media_type == DOCKER_MANIFEST;
    if !media_type.is_empty() && !is_index && !is_image {
        return Err(ManifestError::UnsupportedMediaType(media_type));
    }
    match (raw.manifests, raw.config, raw.layers) {
        (Some(manifests), _, _) if !is_image => Ok(Manifest::Index(manifests)),
        (_, Some(config), Some(layers)) if !is_index => {
            check_image(&config, &layers)?;
            Ok(Manifest::Image(ImageManifest { config, layers }))
        }
        _ => Err(ManifestError::Invalid(
            "neither an image manifest nor an index".into(),
        )),
    }
}

fn check_image(config: &Descriptor, layers: &[Descriptor]) -> Result<(), ManifestError> {
    if !config.media_type.is_empty() && !CONFIG_TYPES.contains(&config.media_type.as_str()) {
        return Err(ManifestError::NotAnImage(format!(
            "config media type {:?}",
            config.media_type
        )));
    }
    for layer in layers {
        if !is_layer_type(&layer.media_type) {
            return Err(ManifestError::NotAnImage(format!(
                "layer media type {:?}",
                layer.media_type
            )));
        }
    }
    Ok(())
}

/// Tar layers, plain, gzip or zstd, OCI or Docker (non-distributable ones included: their blob
/// is still fetched from the registry, never from the URLs they list).
fn is_layer_type(media_type: &str) -> bool {
    let base = media_type.split('+').next().unwrap_or("");
    matches!(
        base,
        "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    ) && matches!(
        media_type.split_once('+').map(|(_, c)| c),
        None | Some("gzip") | Some("zstd")
    )
}

/// The platform images are chosen for on this host.
pub fn host_platform() -> Platform {
    let (architecture, variant) = match std::env::consts::ARCH {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "arm" => ("arm", Some("v7")),
        "x86" => ("386", None),
        "powerpc64" if cfg!(target_endian = "little") => ("ppc64le", None),
        "loongarch64" => ("loong64", None),
        other => (other, None),
    };
    Platform {
        os: "linux".into(),
        architecture: architecture.into(),
        variant: variant.map(Into::into),
    }
}

/// Picks `wanted`'s entry from an index: same OS and architecture, the same variant preferred,
/// then one without a variant (arm64 images rarely set `v8`). An index whose only entry has no
/// platform is taken as is.
pub fn select_platform(
    entries: &[Descriptor],
    wanted: &Platform,
) -> Result<Descriptor, ManifestError> {
    if let [only] = entries {
        if only.platform.is_none() {
            return Ok(only.clone());
        }
    }
    let same_arch = |d: &&Descriptor| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == wanted.os && p.architecture == wanted.architecture)
    };
    let variant = |d: &Descriptor| {
        d.platform
            .as_ref()
            .and_then(|p| p.variant.clone())
            .filter(|v| !v.is_empty())
    };
    let candidates: Vec<&Descriptor> = entries.iter().filter(same_arch).collect();
    let pick = candidates
        .iter()
        .find(|d| variant(d) == wanted.variant)
        .or_else(|| candidates.iter().find(|d| variant(d).is_none()))
        .or_else(|| candidates.first().filter(|_| wanted.variant.is_none()));
    match pick {
        Some(d) => Ok((*d).clone()),
        None => Err(ManifestError::NoMatchingPlatform {
            wanted: wanted.to_string(),
            available: entries
                .iter()
                .filter_map(|d| d.platform.as_ref().map(ToString::to_string))
                .collect::<Vec<_>>()
                .join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(platform: &str, digest: &str) -> String {
        let parts: Vec<&str> = platform.split('/').collect();
        let variant = parts
            .get(2)
            .map(|v| format!(r#","variant":"{v}""#))
            .unwrap_or_default();
        format!(
            r#"{{"mediaType":"{OCI_MANIFEST}","digest":"{digest}","size":1,"platform":{{"os":"{}","architecture":"{}"{variant}}}}}"#,
            parts[0], parts[1]
        )
    }

    fn index(entries: &[(&str, &str)]) -> Vec<Descriptor> {
        let list: Vec<String> = entries.iter().map(|(p, d)| entry(p, d)).collect();
        let json = format!(r#"{{"schemaVersion":2,"manifests":[{}]}}"#, list.join(","));
        match parse_manifest(json.as_bytes()).expect("index") {
            Manifest::Index(entries) => entries,
            other => panic!("not an index: {other:?}"),
        }
    }

    fn platform(s: &str) -> Platform {
        let p: Vec<&str> = s.split('/').collect();
        Platform {
            os: p[0].into(),
            architecture: p[1].into(),
            variant: p.get(2).map(|v| v.to_string()),
        }
    }

    #[test]
    fn the_host_architecture_is_chosen_and_attestations_are_ignored() {
        let entries = index(&[
            ("unknown/unknown", "sha256:att"),
            ("linux/arm64/v8", "sha256:arm"),
            ("linux/amd64", "sha256:amd"),
        ]);
        assert_eq!(
            select_platform(&entries, &platform("linux/amd64"))
                .expect("amd")
                .digest,
            "sha256:amd"
        );
        assert_eq!(
            select_platform(&entries, &platform("linux/arm64/v8"))
                .expect("arm")
                .digest,
            "sha256:arm"
        );
    }

    #[test]
    fn arm_variants_are_matched_exactly_or_fall_back_to_no_variant() {
        let entries = index(&[
            ("linux/arm/v6", "sha256:v6"),
            ("linux/arm/v7", "sha256:v7"),
            ("linux/arm64", "sha256:a64"),
        ]);
        assert_eq!(
            select_platform(&entries, &platform("linux/arm/v7"))
                .expect("v7")
                .digest,
            "sha256:v7"
        );
        assert_eq!(
            select_platform(&entries, &platform("linux/arm64/v8"))
                .expect("arm64")
                .digest,
            "sha256:a64"
        );
    }

    #[test]
    fn a_missing_platform_is_reported_with_what_the_index_has() {
        let entries = index(&[("linux/arm64", "sha256:a"), ("windows/amd64", "sha256:w")]);
        let err = select_platform(&entries, &platform("linux/amd64")).expect_err("should fail");
        assert_eq!(
            err.to_string(),
            "the image index has no manifest for linux/amd64 (it has: linux/arm64, windows/amd64)"
        );
    }

    #[test]
    fn docker_and_oci_manifests_parse_and_artifacts_are_refused() {
        let docker = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:c","size":2}},"layers":[{{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:l","size":3}}]}}"#
        );
        assert!(
            matches!(parse_manifest(docker.as_bytes()), Ok(Manifest::Image(m)) if m.layers.len() == 1)
        );
        let oci_no_type = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:c","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"sha256:l","size":3}]}"#;
        assert!(matches!(
            parse_manifest(oci_no_type.as_bytes()),
            Ok(Manifest::Image(_))
        ));
        let wasm = r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.wasm.config.v1+json","digest":"sha256:c","size":2},"layers":[]}"#;
        assert!(matches!(
            parse_manifest(wasm.as_bytes()),
            Err(ManifestError::NotAnImage(_))
        ));
    }

    #[test]
    fn schema1_and_garbage_are_rejected() {
        assert_eq!(
            parse_manifest(br#"{"schemaVersion":1,"fsLayers":[]}"#),
            Err(ManifestError::Schema1)
        );
        assert!(matches!(
            parse_manifest(b"<html>"),
            Err(ManifestError::Invalid(_))
        ));
        assert!(matches!(
            parse_manifest(br#"{"schemaVersion":2}"#),
            Err(ManifestError::Invalid(_))
        ));
    }
}
