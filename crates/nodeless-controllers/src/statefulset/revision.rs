//! A StatefulSet's history as apps/v1 ControllerRevisions, as upstream keeps it: each
//! distinct Pod template is stored once as a revision named `<set>-<hash>` (its data is the
//! patch that restores that template), numbered in the order it was last used. Pods carry
//! the revision name in `controller-revision-hash`.

use k8s_openapi::api::apps::v1::{ControllerRevision, StatefulSet};
use k8s_openapi::api::core::v1::PodTemplateSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::{json, Value};

use crate::pods::controller_ref;

/// The label of a revision holding its hash.
pub const HASH_LABEL: &str = "controller.kubernetes.io/hash";

/// The data a revision stores for `set`'s current template.
pub fn data_of(set: &StatefulSet) -> Value {
    let template = set
        .spec
        .as_ref()
        .map(|s| serde_json::to_value(&s.template).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    let mut template = template;
    if let Some(obj) = template.as_object_mut() {
        obj.insert("$patch".into(), json!("replace"));
    }
    json!({"spec": {"template": template}})
}

/// The Pod template a revision restores.
pub fn template_of(revision: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut template = revision.data.as_ref()?.0.pointer("/spec/template")?.clone();
    if let Some(obj) = template.as_object_mut() {
        obj.remove("$patch");
    }
    serde_json::from_value(template).ok()
}

/// FNV-1 over the data (and the collision count, when there is one), spelled with the
/// vowel-less alphabet upstream uses so a hash never forms a word.
pub fn hash(data: &Value, collision_count: Option<i32>) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut h: u32 = 0x811c_9dc5;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h = h.wrapping_mul(0x0100_0193);
            h ^= u32::from(*b);
        }
    };
    feed(data.to_string().as_bytes());
    if let Some(c) = collision_count {
        feed(&c.to_le_bytes());
    }
    h.to_string()
        .bytes()
        .map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()]))
        .collect()
}

/// A new revision of `set` numbered `number`; None if the set has no name or uid yet.
pub fn new_revision(
    set: &StatefulSet,
    number: i64,
    collision_count: Option<i32>,
) -> Option<ControllerRevision> {
    let name = set.metadata.name.as_deref()?;
    let data = data_of(set);
    let hash = hash(&data, collision_count);
    let mut labels = set
        .spec
        .as_ref()
        .and_then(|s| s.template.metadata.as_ref())
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    labels.insert(HASH_LABEL.into(), hash.clone());
    Some(ControllerRevision {
        metadata: ObjectMeta {
            name: Some(format!("{name}-{hash}")),
            namespace: set.metadata.namespace.clone(),
            labels: Some(labels),
            owner_references: Some(vec![controller_ref(set)?]),
            ..Default::default()
        },
        data: Some(RawExtension(data)),
        revision: number,
    })
}

/// Whether two revisions restore the same template.
pub fn same_data(a: &ControllerRevision, data: &Value) -> bool {
    a.data.as_ref().is_some_and(|d| d.0 == *data)
}

/// The revisions to delete so at most `limit` unused ones remain, oldest first. `in_use`
/// says whether a revision is current, the update, or worn by a Pod.
pub fn surplus_history(
    revisions: &[ControllerRevision],
    limit: i32,
    in_use: impl Fn(&str) -> bool,
) -> Vec<&ControllerRevision> {
    let mut unused: Vec<&ControllerRevision> = revisions
        .iter()
        .filter(|r| !in_use(r.metadata.name.as_deref().unwrap_or("")))
        .collect();
    let keep = usize::try_from(limit.max(0)).unwrap_or(0);
    if unused.len() <= keep {
        return Vec::new();
    }
    unused.sort_by_key(|r| r.revision);
    let n = unused.len() - keep;
    unused.truncate(n);
    unused
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(image: &str) -> StatefulSet {
        serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "u1"},
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "serviceName": "web",
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}
        }))
        .expect("set")
    }

    #[test]
    fn a_revision_restores_the_template_it_was_made_from() {
        let s = set("nginx:1");
        let r = new_revision(&s, 1, None).expect("revision");
        let name = r.metadata.name.clone().expect("name");
        assert!(name.starts_with("web-"));
        assert_eq!(r.metadata.labels.as_ref().expect("labels")["app"], "web");
        let template = template_of(&r).expect("template");
        assert_eq!(Some(template), s.spec.map(|s| s.template));
    }

    #[test]
    fn the_hash_follows_the_template_and_the_collision_count() {
        let a = hash(&data_of(&set("nginx:1")), None);
        assert_eq!(a, hash(&data_of(&set("nginx:1")), None));
        assert_ne!(a, hash(&data_of(&set("nginx:2")), None));
        assert_ne!(a, hash(&data_of(&set("nginx:1")), Some(1)));
        assert!(a
            .bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)));
    }

    #[test]
    fn history_beyond_the_limit_goes_oldest_first_sparing_revisions_in_use() {
        let revs: Vec<ControllerRevision> = (1..=5)
            .map(|n| {
                let mut r = new_revision(&set(&format!("nginx:{n}")), n, None).expect("rev");
                r.metadata.name = Some(format!("r{n}"));
                r
            })
            .collect();
        let doomed: Vec<_> = surplus_history(&revs, 2, |n| n == "r1" || n == "r5")
            .iter()
            .map(|r| r.metadata.name.clone().expect("name"))
            .collect();
        assert_eq!(doomed, ["r2"]);
        assert!(surplus_history(&revs, 10, |_| false).is_empty());
    }
}
