//! Recording core/v1 Events, the ones `kubectl describe` and `kubectl get events` show.
//!
//! Like client-go's recorder, a repeat of the same (object, type, reason, message) bumps the
//! first Event's `count` and `lastTimestamp` instead of creating another. Recording never
//! fails the caller: an Event that cannot be written is logged and dropped, as upstream.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::Utc;
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio::sync::Mutex;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Normal,
    Warning,
}

impl EventType {
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        }
    }
}

/// Bounds the memory of folded Events; beyond it the oldest are forgotten (a repeat then
/// starts a new Event, which is harmless).
const MAX_REMEMBERED: usize = 4096;

#[derive(Hash, PartialEq, Eq, Clone)]
struct Key {
    uid: String,
    kind: EventType,
    reason: String,
    message: String,
}

struct Seen {
    namespace: String,
    name: String,
    count: i32,
}

/// Writes Events as `component` (e.g. `nodeless-scheduler`), optionally naming a host.
#[derive(Clone)]
pub struct EventRecorder {
    client: kube::Client,
    component: String,
    host: Option<String>,
    seen: Arc<Mutex<HashMap<Key, Seen>>>,
}

impl EventRecorder {
    pub fn new(client: kube::Client, component: &str, host: Option<&str>) -> Self {
        EventRecorder {
            client,
            component: component.to_string(),
            host: host.map(str::to_string),
            seen: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Records an Event about `object` (its namespace, name, uid, kind and apiVersion).
    pub async fn record(
        &self,
        object: &ObjectReference,
        kind: EventType,
        reason: &str,
        message: &str,
    ) {
        let key = Key {
            uid: object.uid.clone().unwrap_or_default(),
            kind,
            reason: reason.to_string(),
            message: message.to_string(),
        };
        // The lock is never held across an API call: recording is on hot paths (the
        // scheduler's binds, the agent's status), and Events of different objects must not
        // queue behind each other. Two identical Events racing may both be created; harmless.
        let repeat = {
            let seen = self.seen.lock().await;
            seen.get(&key)
                .map(|s| (s.namespace.clone(), s.name.clone(), s.count))
        };
        if let Some((namespace, name, count)) = repeat {
            let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
            let patch = json!({"count": count + 1, "lastTimestamp": Time(Utc::now())});
            match api
                .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => {
                    if let Some(s) = self.seen.lock().await.get_mut(&key) {
                        s.count = s.count.max(count + 1);
                    }
                    return;
                }
                // Gone (expired or deleted): write a fresh one below.
                Err(e) => tracing::debug!(error = %e, "event repeat not folded"),
            }
            self.seen.lock().await.remove(&key);
        }
        let namespace = object
            .namespace
            .clone()
            .unwrap_or_else(|| "default".to_string());
        let event = self.event(object, &namespace, kind, reason, message);
        let api: Api<Event> = Api::namespaced(self.client.clone(), &namespace);
        match api.create(&PostParams::default(), &event).await {
            Ok(created) => {
                let mut seen = self.seen.lock().await;
                if seen.len() >= MAX_REMEMBERED {
                    seen.clear();
                }
                let name = created.metadata.name.unwrap_or_default();
                seen.insert(
                    key,
                    Seen {
                        namespace,
                        name,
                        count: 1,
                    },
                );
            }
            Err(e) => tracing::warn!(reason, error = %e, "could not record an event"),
        }
    }

    fn event(
        &self,
        object: &ObjectReference,
        namespace: &str,
        kind: EventType,
        reason: &str,
        message: &str,
    ) -> Event {
        let now = Utc::now();
        let base = object.name.clone().unwrap_or_else(|| "object".into());
        let suffix = format!("{:x}", now.timestamp_nanos_opt().unwrap_or_default());
        Event {
            metadata: ObjectMeta {
                name: Some(format!("{base}.{suffix}")),
                namespace: Some(namespace.to_string()),
                ..Default::default()
            },
            involved_object: object.clone(),
            reason: Some(reason.to_string()),
            message: Some(message.to_string()),
            type_: Some(kind.as_str().to_string()),
            count: Some(1),
            first_timestamp: Some(Time(now)),
            last_timestamp: Some(Time(now)),
            event_time: None::<MicroTime>,
            source: Some(EventSource {
                component: Some(self.component.clone()),
                host: self.host.clone(),
            }),
            reporting_component: Some(self.component.clone()),
            reporting_instance: Some(self.host.clone().unwrap_or_else(|| self.component.clone())),
            ..Default::default()
        }
    }
}

/// The reference an Event names for a Pod (optionally one of its containers, as the kubelet
/// sets `fieldPath: spec.containers{name}`).
pub fn pod_reference(
    pod: &k8s_openapi::api::core::v1::Pod,
    container: Option<&str>,
) -> ObjectReference {
    ObjectReference {
        api_version: Some("v1".into()),
        kind: Some("Pod".into()),
        namespace: pod.metadata.namespace.clone(),
        name: pod.metadata.name.clone(),
        uid: pod.metadata.uid.clone(),
        resource_version: pod.metadata.resource_version.clone(),
        field_path: container.map(|c| format!("spec.containers{{{c}}}")),
    }
}
