//! The set of served resource types: the built-ins plus those defined by established CRDs.

use nodeless_core::resource::{builtins, ResourceType};
use parking_lot::RwLock;
use serde_json::Value;
use std::sync::Arc;

/// Printer columns and schema of a custom resource version, kept beside its type.
#[derive(Debug, Clone)]
pub struct CustomInfo {
    /// The version's `additionalPrinterColumns`, as written in the CRD.
    pub printer_columns: Value,
    /// The version's `schema.openAPIV3Schema`.
    pub schema_json: Value,
    /// The storage version: objects of other versions are converted (apiVersion only) to it.
    pub storage_version: String,
}

#[derive(Default)]
struct Inner {
    types: Vec<ResourceType>,
    custom: Vec<(ResourceType, CustomInfo)>,
    /// Bumped on every change so discovery and OpenAPI caches know to rebuild.
    generation: u64,
}

/// Shared, cheaply readable registry of what the server serves.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<RwLock<Inner>>,
}

impl Registry {
    pub fn with_builtins() -> Self {
        let r = Registry::default();
        r.inner.write().types = builtins();
        r
    }

    pub fn generation(&self) -> u64 {
        self.inner.read().generation
    }

    /// The type served at `group/version/plural`.
    pub fn lookup(&self, group: &str, version: &str, plural: &str) -> Option<ResourceType> {
        let inner = self.inner.read();
        inner
            .types
            .iter()
            .chain(inner.custom.iter().map(|(t, _)| t))
            .find(|t| t.group == group && t.version == version && t.plural == plural)
            .cloned()
    }

    /// The type of a kind in a group/version (for ownerReferences and object bodies).
    pub fn lookup_kind(&self, group: &str, version: &str, kind: &str) -> Option<ResourceType> {
        let inner = self.inner.read();
        inner
            .types
            .iter()
            .chain(inner.custom.iter().map(|(t, _)| t))
            .find(|t| t.group == group && t.version == version && t.kind == kind)
            .cloned()
    }

    pub fn custom_info(&self, rt: &ResourceType) -> Option<CustomInfo> {
        let inner = self.inner.read();
        inner
            .custom
            .iter()
            .find(|(t, _)| t == rt)
            .map(|(_, i)| i.clone())
    }

    /// Every served type, built-ins first.
    pub fn all(&self) -> Vec<ResourceType> {
        let inner = self.inner.read();
        inner
            .types
            .iter()
            .cloned()
            .chain(inner.custom.iter().map(|(t, _)| t.clone()))
            .collect()
    }

    pub fn custom(&self) -> Vec<(ResourceType, CustomInfo)> {
        self.inner.read().custom.clone()
    }

    /// Distinct types by storage prefix: one per group/resource, whatever the versions.
    pub fn storage_types(&self) -> Vec<ResourceType> {
        let mut seen = std::collections::HashSet::new();
        self.all()
            .into_iter()
            .filter(|t| seen.insert(t.key_prefix()))
            .collect()
    }

    /// Replaces the custom types defined by one CRD (empty = the CRD is gone).
    pub fn set_custom(&self, group: &str, plural: &str, types: Vec<(ResourceType, CustomInfo)>) {
        let mut inner = self.inner.write();
        inner
            .custom
            .retain(|(t, _)| !(t.group == group && t.plural == plural));
        inner.custom.extend(types);
        inner.generation += 1;
    }
}
