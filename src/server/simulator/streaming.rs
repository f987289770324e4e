//! Paced streaming bodies shared by every simulated provider, with the stream faults
//! (stall, cut, malformed) applied after a few tokens.

use std::convert::Infallible;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::SimStats;

/// A streamed answer as frames (already framed: SSE events or NDJSON lines).
pub(crate) struct Script {
    /// Response content type.
    pub content_type: &'static str,
    /// Frames before the first token.
    pub head: Vec<String>,
    /// One frame per token, paced at the token rate.
    pub tokens: Vec<String>,
    /// Frames after the last token, including the end marker.
    pub tail: Vec<String>,
    /// A broken frame for the `malformed` fault.
    pub malformed: String,
}

/// How the stream ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    /// Every frame, end marker included.
    Complete,
    /// A few tokens, then silence forever.
    Stall,
    /// A few tokens, then the connection closes without the end marker.
    Cut,
    /// A few tokens, then a broken frame, then close.
    Malformed,
    /// Headers only: no frame at all, and the connection stays open.
    Silent,
}

/// Decrements the open-stream counter when the body is dropped (finished or abandoned).
struct OpenGuard(Arc<SimStats>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open_streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Builds the streaming response.
pub(crate) fn response(
    script: Script,
    ttft: Duration,
    interval: Duration,
    ending: Ending,
    stats: Arc<SimStats>,
) -> Response {
    let content_type = script.content_type;
    let frames = paced_frames(script, ttft, interval, ending);
    stats.open_streams.fetch_add(1, Ordering::Relaxed);
    let guard = OpenGuard(stats);
    let stall = matches!(ending, Ending::Stall | Ending::Silent);
    let body = futures::stream::unfold(
        (frames.into_iter(), guard),
        move |(mut frames, guard)| async move {
            match frames.next() {
                Some((delay, frame)) => {
                    if !delay.is_zero() {
                        tokio::time::sleep(delay).await;
                    }
                    Some((Ok::<_, Infallible>(Bytes::from(frame)), (frames, guard)))
                }
                None if stall => std::future::pending().await,
                None => None,
            }
        },
    );
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    let headers = response.headers_mut();
    headers.insert("content-type", HeaderValue::from_static(content_type));
    headers.insert("cache-control", HeaderValue::from_static("no-cache"));
    response
}

/// The frames of a script to send for `ending`, each with the delay before it.
fn paced_frames(
    script: Script,
    ttft: Duration,
    interval: Duration,
    ending: Ending,
) -> Vec<(Duration, String)> {
    if ending == Ending::Silent {
        return Vec::new();
    }
    let mut frames: Vec<(Duration, String)> = Vec::new();
    frames.extend(script.head.into_iter().map(|f| (Duration::ZERO, f)));
    let keep = match ending {
        Ending::Complete => script.tokens.len(),
        _ => script.tokens.len().min(2).max(script.tokens.len() / 2),
    };
    frames.extend(script.tokens.into_iter().take(keep).map(|f| (interval, f)));
    match ending {
        Ending::Complete => frames.extend(script.tail.into_iter().map(|f| (Duration::ZERO, f))),
        Ending::Malformed => frames.push((Duration::ZERO, script.malformed)),
        Ending::Stall | Ending::Cut | Ending::Silent => {}
    }
    if let Some(first) = frames.first_mut() {
        first.0 += ttft;
    }
    frames
}

/// Formats an SSE frame with an optional event name (`\n` line ends).
pub(crate) fn sse(event: Option<&str>, data: &str) -> String {
    match event {
        Some(name) => format!("event: {name}\ndata: {data}\n\n"),
        None => format!("data: {data}\n\n"),
    }
}
