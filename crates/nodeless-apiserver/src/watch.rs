//! Streaming watch responses: one JSON event per line, bookmarks, and 410 as an ERROR event.

use crate::handlers::Query;
use crate::respond::{Body, Representation};
use crate::rest::ListQuery;
use crate::server::State;
use crate::tables;
use bytes::Bytes;
use futures::StreamExt;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use nodeless_core::resource::ResourceType;
use nodeless_core::StatusError;
use nodeless_store::{WatchEvent, Watcher};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How often an idle watch that asked for bookmarks gets one.
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

/// Converts a stored object to the version the watcher asked for.
pub type Outbound = Arc<dyn Fn(&Value) -> Value + Send + Sync>;

/// Streams watch events for `rt`; `outbound` converts each object when the client asked for
/// another version than the stored one (`None` sends objects as stored).
pub async fn serve(
    state: &Arc<State>,
    rt: &ResourceType,
    ns: Option<&str>,
    lq: &ListQuery,
    q: &Query,
    rep: Representation,
    outbound: Option<Outbound>,
) -> Result<Response<Body>, StatusError> {
    let bookmarks = matches!(
        q.get("allowWatchBookmarks").map(String::as_str),
        Some("true" | "1")
    );
    let timeout = q
        .get("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map(Duration::from_secs);
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    match state.api.watch(rt, ns, lq).await {
        Ok(watcher) => {
            let ctx = Ctx {
                state: state.clone(),
                rt: rt.clone(),
                rep,
                bookmarks,
                initial_end: lq.send_initial_events == Some(true),
                outbound,
            };
            tokio::spawn(pump(ctx, watcher, tx, timeout));
        }
        Err(e) if e.code == 410 => {
            // Upstream reports an expired resourceVersion inside the stream, not as the HTTP status.
            let line = line_of("ERROR", &e.to_status());
            let _ = tx.try_send(line);
        }
        Err(e) => return Err(e),
    }
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx)
        .map(|b| Ok::<_, std::convert::Infallible>(Frame::data(b)));
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    *r.status_mut() = StatusCode::OK;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, private"),
    );
    Ok(r)
}

struct Ctx {
    state: Arc<State>,
    rt: ResourceType,
    rep: Representation,
    bookmarks: bool,
    initial_end: bool,
    outbound: Option<Outbound>,
}

fn line_of(kind: &str, object: &Value) -> Bytes {
    let mut v = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

impl Ctx {
    fn event_line(&self, e: &WatchEvent) -> Bytes {
        match self.rep {
            Representation::Table => {
                let t = tables::table_of(
                    &self.state,
                    &self.rt,
                    &[e.object.as_ref()],
                    json!({"resourceVersion": e.revision.to_string()}),
                );
                line_of(e.kind.as_str(), &t)
            }
            Representation::PartialMetadata => line_of(
                e.kind.as_str(),
                &json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": e.object["metadata"]}),
            ),
            _ => match &self.outbound {
                Some(convert) => line_of(e.kind.as_str(), &convert(&e.object)),
                None => line_of(e.kind.as_str(), &e.object),
            },
        }
    }

    fn bookmark(&self, revision: i64, initial_end: bool) -> Bytes {
        let mut md = json!({"resourceVersion": revision.to_string()});
        if initial_end {
            md["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line_of(
            "BOOKMARK",
            &json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": md}),
        )
    }
}

async fn pump(ctx: Ctx, mut w: Watcher, tx: mpsc::Sender<Bytes>, timeout: Option<Duration>) {
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    for e in std::mem::take(&mut w.initial) {
        if tx.send(ctx.event_line(&e)).await.is_err() {
            return;
        }
    }
    if ctx.initial_end && tx.send(ctx.bookmark(w.revision, true)).await.is_err() {
        return;
    }
    let mut tick = tokio::time::interval(BOOKMARK_EVERY);
    tick.tick().await;
    loop {
        let sleep_until =
            deadline.unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(3600));
        tokio::select! {
            ev = w.live.recv() => match ev {
                Some(e) => {
                    if tx.send(ctx.event_line(&e)).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
            _ = tick.tick(), if ctx.bookmarks => {
                if let Some(rev) = ctx.state.api.cache.quiescent_revision(&w.live) {
                    if tx.send(ctx.bookmark(rev, false)).await.is_err() {
                        return;
                    }
                }
            }
            _ = tokio::time::sleep_until(sleep_until) => {
                if deadline.is_some() { return; }
            }
            _ = tx.closed() => return,
        }
    }
}
