//! The streamed body shared by both endpoints: pre-rendered SSE frames, played with the pacing
//! and mid-stream faults of the request.

use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio_util::sync::CancellationToken;

use super::faults::Faults;
use super::pause;

/// A stream in three parts; faults count and cut in `content`.
pub(super) struct Frames {
    /// Sent at once with the headers (role chunk / message_start, block start, ping).
    pub head: Vec<Bytes>,
    /// One frame per answer piece.
    pub content: Vec<Bytes>,
    /// The finish frames; the last one is the terminator (`[DONE]` / `message_stop`).
    pub tail: Vec<Bytes>,
    /// What `malformed-after-<n>` and `malformed-at-<n>` send: a frame whose data is not valid
    /// JSON.
    pub malformed: &'static str,
    /// What `unknown-at-<n>` sends: a well-formed frame the protocol does not define.
    pub unknown: &'static str,
}

/// Timing and mid-stream faults of one stream.
pub(super) struct Playback {
    pub pace: Duration,
    pub first_token: Duration,
    pub cut_after: Option<usize>,
    pub stall_after: Option<usize>,
    pub malformed_after: Option<usize>,
    /// (after how many content chunks, how many in a row)
    pub malformed_at: Option<(usize, usize)>,
    pub unknown_at: Option<usize>,
    pub no_done: bool,
}

impl Playback {
    pub fn new(faults: &Faults, default_pace_ms: u64) -> Self {
        let pace = Duration::from_millis(faults.pace_ms.unwrap_or(default_pace_ms));
        Playback {
            pace,
            first_token: faults
                .slow_first_token_ms
                .map_or(pace, Duration::from_millis),
            cut_after: faults.cut_after,
            stall_after: faults.stall_after,
            malformed_after: faults.malformed_after,
            malformed_at: faults.malformed_at,
            unknown_at: faults.unknown_at,
            no_done: faults.no_done,
        }
    }
}

/// One stream being played (`MockHandle::streams_open`).
struct OpenStream(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl OpenStream {
    fn new(open: &std::sync::Arc<std::sync::atomic::AtomicUsize>) -> OpenStream {
        open.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        OpenStream(open.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

fn aborted(why: &'static str) -> io::Error {
    io::Error::other(why)
}

/// A `200 text/event-stream` response playing `frames`.
///
/// An aborted body (cut, stall ended by shutdown) is an `Err` item, on which hyper closes the
/// connection without the terminating chunk: the client sees an incomplete body, never a clean
/// end. Before each abort the stream yields once, so hyper flushes what was sent so far.
pub(super) fn sse(
    mut frames: Frames,
    play: Playback,
    shutdown: CancellationToken,
    open: &std::sync::Arc<std::sync::atomic::AtomicUsize>,
) -> Response {
    if play.no_done {
        frames.tail.pop();
    }
    let open = OpenStream::new(open);
    let body = async_stream::stream! {
        // Counted while the body lives: a client (the gateway) that lets go ends it.
        let _open = open;
        for frame in frames.head {
            yield Ok(frame);
        }
        let total = frames.content.len();
        let mut content = frames.content.into_iter();
        for i in 0..=total {
            if play.cut_after == Some(i) {
                tokio::task::yield_now().await;
                yield Err(aborted("mock: cut-after"));
                return;
            }
            if play.stall_after == Some(i) {
                shutdown.cancelled().await;
                yield Err(aborted("mock: stall-after ended by shutdown"));
                return;
            }
            if play.malformed_after == Some(i) {
                yield Ok(Bytes::from_static(frames.malformed.as_bytes()));
                return;
            }
            if let Some((_, run)) = play.malformed_at.filter(|(at, _)| *at == i) {
                for _ in 0..run {
                    yield Ok(Bytes::from_static(frames.malformed.as_bytes()));
                }
            }
            if play.unknown_at == Some(i) {
                yield Ok(Bytes::from_static(frames.unknown.as_bytes()));
            }
            pause(if i == 0 { play.first_token } else { play.pace }, &shutdown).await;
            if let Some(frame) = content.next() {
                yield Ok(frame);
            }
        }
        for frame in frames.tail {
            yield Ok::<Bytes, io::Error>(frame);
        }
    };
    let mut res = Body::from_stream(body).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    res
}

/// A JSON response whose body stops halfway (`cut-after` on a non-streaming request): the
/// headers promise the full length, the connection closes after half of it.
pub(super) fn cut_json(status: StatusCode, json: Vec<u8>) -> Response {
    let len = json.len();
    let mut json = Bytes::from(json);
    let half = json.split_to(len / 2);
    let body = async_stream::stream! {
        yield Ok(half);
        tokio::task::yield_now().await;
        yield Err::<Bytes, io::Error>(aborted("mock: cut-after"));
    };
    let mut res = (status, Body::from_stream(body)).into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    res
}
