//! `GET /containerLogs/...`: a container's log as text/plain, streamed while `follow`.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use nodeless_core::status::StatusError;
use nodeless_engine::instance::ContainerState;
use nodeless_engine::sandbox::logs::LogOptions;

use super::response::{Body, Target};
use super::route::Query;
use super::Ctx;

/// The engine's options from the request's query (names as in `PodLogOptions`).
pub fn log_options(q: &Query) -> Result<LogOptions, StatusError> {
    let since_seconds = q.int("sinceSeconds", 1)?;
    let since_time = match q.get("sinceTime").filter(|v| !v.is_empty()) {
        Some(raw) => Some(
            DateTime::parse_from_rfc3339(raw)
                .map_err(|_| {
                    StatusError::bad_request(format!("invalid sinceTime {raw:?}: not RFC 3339"))
                })?
                .with_timezone(&Utc),
        ),
        None => None,
    };
    let since = match (since_seconds, since_time) {
        (Some(_), Some(_)) => {
            return Err(StatusError::bad_request(
                "at most one of sinceTime or sinceSeconds may be specified",
            ))
        }
        (Some(secs), None) => Some(Utc::now() - chrono::Duration::seconds(secs)),
        (None, time) => time,
    };
    Ok(LogOptions {
        follow: q.flag("follow")?,
        previous: q.flag("previous")?,
        timestamps: q.flag("timestamps")?,
        tail_lines: q.int("tailLines", 0)?.map(|n| n as usize),
        since,
        limit_bytes: q.int("limitBytes", 1)?.map(|n| n as u64),
    })
}

pub async fn container_logs(
    ctx: &Ctx,
    target: &Target,
    q: &Query,
) -> Result<Response<Body>, StatusError> {
    let opts = log_options(q)?;
    let status = ctx
        .engine
        .status(&target.uid)
        .await
        .map_err(|e| target.engine_error(&e))?;
    let view = super::find_container(&status, &target.container)
        .ok_or_else(|| target.container_not_found())?;
    if let ContainerState::Waiting { reason, .. } = &view.status.state {
        if !opts.previous && view.status.restart_count == 0 {
            return Err(super::waiting(target, reason));
        }
    }
    let timestamps = opts.timestamps;
    let limit = opts.limit_bytes.unwrap_or(u64::MAX);
    let logs = ctx
        .engine
        .logs(&target.uid, &target.container, opts)
        .await
        .map_err(|e| target.engine_error(&e))?;
    let shutdown = ctx.shutdown.clone();
    // Cut at exactly limitBytes, as upstream does, whatever the engine's granularity.
    let body = futures::stream::unfold(
        (logs, limit, shutdown),
        move |(mut logs, left, shutdown)| async move {
            if left == 0 {
                return None;
            }
            let line = tokio::select! {
                line = logs.next() => line?,
                _ = shutdown.cancelled() => return None,
            };
            let mut text = line.text(timestamps);
            text.truncate(usize::try_from(left).unwrap_or(usize::MAX));
            let left = left - text.len() as u64;
            Some((
                Ok(hyper::body::Frame::data(Bytes::from(text))),
                (logs, left, shutdown),
            ))
        },
    );
    Response::builder()
        .header(http::header::CONTENT_TYPE, "text/plain")
        .body(StreamBody::new(body).boxed())
        .map_err(|e| StatusError::internal(e.to_string()))
}
