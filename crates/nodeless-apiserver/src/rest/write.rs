//! create, update and patch.

use super::decode::check_type;
use super::{Api, Change};
use crate::strategy::{self, Part};
use nodeless_core::patch::{self, PatchType};
use nodeless_core::resource::ResourceType;
use nodeless_core::{meta, FieldError, StatusError};
use serde_json::Value;
use std::sync::Arc;

/// The `fieldValidation` query parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FieldValidation {
    Ignore,
    #[default]
    Warn,
    Strict,
}

impl FieldValidation {
    pub fn parse(s: Option<&str>) -> Result<Self, StatusError> {
        match s {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Ignore") => Ok(Self::Ignore),
            Some("Strict") => Ok(Self::Strict),
            Some(other) => Err(StatusError::bad_request(format!(
                "fieldValidation parameter unsupported: {other}; must be one of Ignore, Warn, Strict"
            ))),
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: FieldValidation,
}

/// A successful write: the object as stored (or as it would be, on a dry run).
#[derive(Debug, Clone)]
pub struct Outcome {
    pub object: Arc<Value>,
    pub warnings: Vec<String>,
    /// True when the write created the object (HTTP 201).
    pub created: bool,
}

impl Api {
    pub async fn create(
        &self,
        rt: &ResourceType,
        url_ns: Option<&str>,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Outcome, StatusError> {
        check_type(rt, &body)?;
        let mut body = body;
        set_namespace(rt, url_ns, &mut body)?;
        if meta::name(&body).is_none() {
            match meta::meta_str(&body, "generateName").filter(|s| !s.is_empty()) {
                Some(prefix) => {
                    let name = strategy::generate_name(prefix);
                    meta::set_str(&mut body, "name", name);
                }
                None => {
                    let e =
                        FieldError::required("metadata.name", "name or generateName is required");
                    return Err(StatusError::invalid(&rt.group, &rt.kind, "", &vec![e]));
                }
            }
        }
        let (mut obj, warnings) = self.normalize(rt, body, opts.field_validation)?;
        stamp_type(rt, &mut obj);
        strategy::prepare_for_create(rt, &mut obj);
        self.on_create(rt, &mut obj)?;
        // What nodeless cannot run is refused with 403, as upstream's admission denials are;
        // see nodeless_core::admission::admit for why not 422.
        nodeless_core::admission::admit(rt, &obj, None)?;
        self.validate(rt, &obj, None)?;
        self.admit_namespace(rt, &obj)?;
        let name = meta::name(&obj).unwrap_or_default().to_string();
        let key = rt.key(meta::namespace(&obj), &name);
        if opts.dry_run {
            if self.cache.get(&key).is_some() {
                return Err(StatusError::already_exists(&rt.group, &rt.plural, &name));
            }
            return Ok(Outcome {
                object: Arc::new(obj),
                warnings,
                created: true,
            });
        }
        let object = self.insert(rt, &key, &name, &obj).await?;
        Ok(Outcome {
            object,
            warnings,
            created: true,
        })
    }

    /// PUT: replaces the object (or its status), with optimistic concurrency when the body
    /// carries a resourceVersion.
    pub async fn update(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        part: Part,
        body: Value,
        opts: &WriteOptions,
    ) -> Result<Outcome, StatusError> {
        check_type(rt, &body)?;
        let mut body = body;
        set_namespace(rt, ns, &mut body)?;
        match meta::name(&body) {
            Some(n) if n != name => {
                return Err(StatusError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )))
            }
            Some(_) => {}
            None => meta::set_str(&mut body, "name", name),
        }
        let (mut obj, warnings) = self.normalize(rt, body, opts.field_validation)?;
        stamp_type(rt, &mut obj);
        let want_rv = meta::resource_version(&obj).map(String::from);
        self.replace(rt, ns, name, part, opts, warnings, move |_| {
            Ok((obj.clone(), want_rv.clone()))
        })
        .await
    }

    /// PATCH in any of the three formats (server-side apply is refused with a clear message).
    pub async fn patch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        part: Part,
        patch_type: PatchType,
        patch_body: &[u8],
        opts: &WriteOptions,
    ) -> Result<Outcome, StatusError> {
        if patch_type == PatchType::Strategic && rt.custom {
            return Err(StatusError::unsupported_media_type("application/strategic-merge-patch+json").with_message(
                "strategic merge patch is not supported for custom resources; use a JSON merge patch (kubectl patch --type=merge) or a JSON patch",
            ));
        }
        let fv = opts.field_validation;
        let this = self.clone();
        let rt2 = rt.clone();
        let warnings_cell = parking_lot::Mutex::new(Vec::new());
        let out = self
            .replace(rt, ns, name, part, opts, Vec::new(), |cur| {
                let patched =
                    patch::apply_patch(patch_type, &rt2.group, &rt2.kind, cur, patch_body)?;
                check_type(&rt2, &patched)?;
                if meta::name(&patched) != Some(name) {
                    return Err(StatusError::bad_request(
                        "the patch may not change the object's name",
                    ));
                }
                // A resourceVersion in the patch is a precondition; the current one is not.
                let patch_rv = meta::resource_version(&patched)
                    .filter(|rv| Some(*rv) != meta::resource_version(cur))
                    .map(String::from);
                let (obj, warnings) = this.normalize(&rt2, patched, fv)?;
                *warnings_cell.lock() = warnings;
                Ok((obj, patch_rv))
            })
            .await?;
        Ok(Outcome {
            warnings: warnings_cell.into_inner(),
            ..out
        })
    }

    /// The shared read-modify-write of update and patch. `build` makes the requested object
    /// from the current one and says which resourceVersion the client required, if any.
    #[allow(clippy::too_many_arguments)]
    async fn replace(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        name: &str,
        part: Part,
        opts: &WriteOptions,
        warnings: Vec<String>,
        mut build: impl FnMut(&Value) -> Result<(Value, Option<String>), StatusError>,
    ) -> Result<Outcome, StatusError> {
        let key = rt.key(ns, name);
        let mut dry = None;
        let (object, _) = self
            .modify(rt, &key, name, |cur| {
                let (mut new, want_rv) = build(cur)?;
                if let Some(rv) = want_rv {
                    if Some(rv.as_str()) != meta::resource_version(cur) {
                        return Err(StatusError::conflict_modified(&rt.group, &rt.plural, name));
                    }
                }
                stamp_type(rt, &mut new);
                strategy::prepare_for_update(rt, part, &mut new, cur);
                meta::set_str(
                    &mut new,
                    "resourceVersion",
                    meta::resource_version(cur).unwrap_or_default(),
                );
                if new == **cur {
                    return Ok(Change::Unchanged);
                }
                nodeless_core::admission::admit(rt, &new, Some(cur))?;
                self.validate(rt, &new, Some(cur))?;
                if opts.dry_run {
                    dry = Some(new);
                    return Ok(Change::Unchanged);
                }
                if super::delete::finished_deleting(rt, &new) {
                    return Ok(Change::Delete(Some(new)));
                }
                Ok(Change::Put(new))
            })
            .await?;
        let object = dry.map(Arc::new).unwrap_or(object);
        Ok(Outcome {
            object,
            warnings,
            created: false,
        })
    }

    /// Kind-specific work on create that needs the final object (e.g. the Job's selector).
    fn on_create(&self, rt: &ResourceType, obj: &mut Value) -> Result<(), StatusError> {
        if rt.group == "batch" && rt.kind == "Job" {
            let uid = meta::uid(obj).unwrap_or_default().to_string();
            nodeless_core::defaults::job_selector_on_create(obj, &uid);
        }
        if rt.group.is_empty() && rt.kind == "Namespace" {
            nodeless_core::defaults::namespace_on_create(obj);
        }
        if rt.group == "apiextensions.k8s.io" && rt.kind == "CustomResourceDefinition" {
            let mut f = meta::finalizers(obj);
            if !f
                .iter()
                .any(|x| x == crate::controllers::crd::CLEANUP_FINALIZER)
            {
                f.push(crate::controllers::crd::CLEANUP_FINALIZER.into());
                meta::set_finalizers(obj, &f);
            }
        }
        if rt.group.is_empty() && rt.kind == "Service" {
            crate::services::allocate_cluster_ip(self, obj)?;
        }
        Ok(())
    }

    /// New objects need a namespace that exists and is not being deleted.
    fn admit_namespace(&self, rt: &ResourceType, obj: &Value) -> Result<(), StatusError> {
        let Some(ns) = meta::namespace(obj).filter(|_| rt.namespaced) else {
            return Ok(());
        };
        let ns_type = self
            .registry
            .lookup("", "v1", "namespaces")
            .ok_or_else(|| StatusError::internal("namespaces are not served"))?;
        let namespace = self.get(&ns_type, None, ns)?;
        if meta::deletion_timestamp(&namespace).is_some() {
            return Err(StatusError::forbidden(
                &rt.group,
                &rt.plural,
                meta::name(obj).unwrap_or(""),
                &format!(
                    "unable to create new content in namespace {ns} because it is being terminated"
                ),
            ));
        }
        Ok(())
    }
}

/// Objects always carry their type, whatever the client left out.
fn stamp_type(rt: &ResourceType, obj: &mut Value) {
    if let Some(o) = obj.as_object_mut() {
        o.insert("apiVersion".into(), Value::String(rt.api_version()));
        o.insert("kind".into(), Value::String(rt.kind.clone()));
    }
}

fn set_namespace(
    rt: &ResourceType,
    url_ns: Option<&str>,
    obj: &mut Value,
) -> Result<(), StatusError> {
    if !rt.namespaced {
        return Ok(());
    }
    let Some(url_ns) = url_ns else {
        return Err(StatusError::bad_request(format!(
            "{} must be created in a namespace",
            rt.group_resource()
        )));
    };
    match meta::namespace(obj) {
        Some(ns) if ns != url_ns => Err(StatusError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        Some(_) => Ok(()),
        None => {
            meta::set_str(obj, "namespace", url_ns);
            Ok(())
        }
    }
}

trait WithMessage {
    fn with_message(self, m: &str) -> Self;
}

impl WithMessage for StatusError {
    fn with_message(mut self, m: &str) -> Self {
        self.message = m.to_string();
        self
    }
}
