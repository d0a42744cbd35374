//! list and watch: selectors, pagination and resourceVersion semantics.

use super::{cache_error, store_error, Api};
use base64::Engine as _;
use nodeless_core::resource::ResourceType;
use nodeless_core::selector::{FieldSelector, LabelSelector};
use nodeless_core::{meta, StatusError};
use nodeless_store::{ListOptions, Revision, WatchFilter, WatchStart, Watcher};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// The query parameters of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: Option<usize>,
    pub continue_token: Option<String>,
    pub resource_version: Option<String>,
    pub resource_version_match: Option<String>,
    pub send_initial_events: Option<bool>,
}

impl ListQuery {
    pub fn from_query(q: &HashMap<String, String>) -> Result<Self, StatusError> {
        let nonempty = |k: &str| q.get(k).filter(|v| !v.is_empty()).cloned();
        let limit = match nonempty("limit") {
            Some(l) => {
                let n: i64 = l
                    .parse()
                    .map_err(|_| StatusError::bad_request(format!("invalid limit: {l:?}")))?;
                (n > 0).then_some(n as usize)
            }
            None => None,
        };
        let send_initial_events = match nonempty("sendInitialEvents").as_deref() {
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(o) => {
                return Err(StatusError::bad_request(format!(
                    "invalid sendInitialEvents: {o:?}"
                )))
            }
            None => None,
        };
        Ok(Self {
            label_selector: nonempty("labelSelector"),
            field_selector: nonempty("fieldSelector"),
            limit,
            continue_token: nonempty("continue"),
            resource_version: nonempty("resourceVersion"),
            resource_version_match: nonempty("resourceVersionMatch"),
            send_initial_events,
        })
    }
}

pub struct ListResult {
    pub items: Vec<Arc<Value>>,
    pub resource_version: Revision,
    pub continue_token: Option<String>,
    pub remaining: Option<usize>,
}

fn parse_rv(rv: &str) -> Result<Revision, StatusError> {
    rv.parse::<Revision>()
        .ok()
        .filter(|r| *r >= 0)
        .ok_or_else(|| StatusError::bad_request(format!("invalid resource version: {rv:?}")))
}

fn encode_continue(key: &str, rev: Revision) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rev, "start": key});
    base64::engine::general_purpose::URL_SAFE.encode(token.to_string())
}

fn decode_continue(token: &str) -> Result<(String, Revision), StatusError> {
    let bad = || StatusError::bad_request(format!("continue key is not valid: {token}"));
    let raw = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .map_err(|_| bad())?;
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let key = v.get("start").and_then(Value::as_str).ok_or_else(bad)?;
    let rev = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    Ok((key.to_string(), rev))
}

impl Api {
    /// Builds the object filter for selectors; `None` when nothing is filtered.
    pub fn filter(
        &self,
        rt: &ResourceType,
        q: &ListQuery,
    ) -> Result<Option<WatchFilter>, StatusError> {
        let labels = q
            .label_selector
            .as_deref()
            .map(LabelSelector::parse)
            .transpose()?;
        let fields = q
            .field_selector
            .as_deref()
            .map(|s| FieldSelector::parse(&rt.group, &rt.kind, s))
            .transpose()?;
        if labels.is_none() && fields.is_none() {
            return Ok(None);
        }
        Ok(Some(Arc::new(move |obj: &Value| {
            labels
                .as_ref()
                .is_none_or(|l| l.matches(&meta::labels(obj)))
                && fields.as_ref().is_none_or(|f| f.matches(obj))
        })))
    }

    pub async fn list(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        q: &ListQuery,
    ) -> Result<ListResult, StatusError> {
        let filter = self.filter(rt, q)?;
        let continue_from = match &q.continue_token {
            Some(t) => {
                if q.resource_version.as_deref().is_some_and(|rv| rv != "0") {
                    return Err(StatusError::bad_request(
                        "specifying resource version is not allowed when using continue",
                    ));
                }
                let (key, rev) = decode_continue(t)?;
                Some((key, rev))
            }
            None => {
                self.wait_for_read(q).await?;
                None
            }
        };
        let opts = ListOptions {
            prefix: rt.namespace_prefix(ns),
            limit: q.limit,
            continue_from,
            filter,
        };
        let page = self.cache.list(&opts).map_err(cache_error)?;
        Ok(ListResult {
            items: page.items.into_iter().map(|o| o.value).collect(),
            resource_version: page.revision,
            continue_token: page.next.map(|(k, r)| encode_continue(&k, r)),
            remaining: page.remaining,
        })
    }

    /// Makes the cache at least as new as the request's resourceVersion semantics demand.
    async fn wait_for_read(&self, q: &ListQuery) -> Result<(), StatusError> {
        match (q.resource_version.as_deref(), q.resource_version_match.as_deref()) {
            (None, Some(_)) => Err(StatusError::bad_request("resourceVersionMatch is forbidden unless resourceVersion is provided")),
            (None, None) => {
                // A consistent read: everything committed before the request is visible.
                let rev = self.backend().current_revision().await.map_err(store_error)?;
                self.cache.wait_for(rev).await.map_err(cache_error)
            }
            (Some("0"), _) => Ok(()),
            (Some(rv), Some("Exact")) => {
                let rev = parse_rv(rv)?;
                if rev > self.cache.revision() {
                    return self.cache.wait_for(rev).await.map_err(cache_error);
                }
                if rev != self.cache.revision() {
                    return Err(StatusError::gone(format!(
                        "too old resource version: {rev} ({}); exact reads of past versions are not served",
                        self.cache.revision()
                    )));
                }
                Ok(())
            }
            (Some(rv), Some("NotOlderThan") | None) => self.cache.wait_for(parse_rv(rv)?).await.map_err(cache_error),
            (Some(_), Some(other)) => Err(StatusError::bad_request(format!(
                "resourceVersionMatch: Unsupported value: \"{other}\": supported values: \"Exact\", \"NotOlderThan\""
            ))),
        }
    }

    /// Starts a watch. The caller streams `initial` and then the live events.
    pub async fn watch(
        &self,
        rt: &ResourceType,
        ns: Option<&str>,
        q: &ListQuery,
    ) -> Result<Watcher, StatusError> {
        let filter = self.filter(rt, q)?;
        let start = match (q.resource_version.as_deref(), q.send_initial_events) {
            (_, Some(true)) => {
                if let Some(rv) = q.resource_version.as_deref().filter(|rv| *rv != "0") {
                    self.cache
                        .wait_for(parse_rv(rv)?)
                        .await
                        .map_err(cache_error)?;
                }
                WatchStart::Now
            }
            (None | Some("0"), _) => WatchStart::Now,
            (Some(rv), _) => WatchStart::After(parse_rv(rv)?),
        };
        if let WatchStart::After(rev) = start {
            if rev > self.cache.revision() {
                self.cache.wait_for(rev).await.map_err(cache_error)?;
            }
        }
        self.cache
            .watch(&rt.namespace_prefix(ns), start, filter)
            .map_err(cache_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue("/registry/core/pods/default/web-7", 42);
        assert_eq!(
            decode_continue(&t).expect("valid"),
            ("/registry/core/pods/default/web-7".to_string(), 42)
        );
        assert!(decode_continue("not-a-token").is_err());
    }
}
