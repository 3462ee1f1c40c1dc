//! One client connection: HTTP/1.1 with keep-alive, under the server's limits.
//!
//! - **Connection cap**: past `max_connections` open connections a new one is answered 503 with
//!   `Retry-After` and closed (never queued).
//! - **Header read timeout**: a connection that has started a request must complete its headers
//!   within `header_read_timeout` (a new connection must send one within it too): slow-loris
//!   sockets are closed.
//! - **Keep-alive timeout**: an idle connection between requests is closed after
//!   `keep_alive_timeout`.
//! - **Write timeout**: a write that cannot make progress for `write_timeout` (a client that
//!   stopped reading its stream, its socket buffers full) fails the connection; the response
//!   and with it the upstream call are dropped.
//!
//! The body read timeout is the handlers' (`api::read_body`: 408).
//!
//! [`TimedIo`] implements the read and write timers around the socket; it knows whether a
//! request is in flight from [`Activity`], which the service updates (a request starts when
//! hyper hands it over, ends when its response body is finished or dropped).

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::config::ServerLimits;
use crate::guard::hold;

/// One open connection, counted while it lives.
pub struct Slot {
    open: Arc<AtomicUsize>,
    count: usize,
}

impl Slot {
    pub fn take(open: &Arc<AtomicUsize>) -> Slot {
        let count = open.fetch_add(1, Ordering::AcqRel) + 1;
        Slot {
            open: open.clone(),
            count,
        }
    }

    /// Open connections when this one was accepted (itself included).
    pub fn count(&self) -> usize {
        self.count
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Longest a refused connection is kept to read its request and answer 503.
const REFUSE_WITHIN: Duration = Duration::from_secs(1);

/// Past the connection cap: read what the client sent (so closing does not reset the answer
/// away), answer 503 with `Retry-After`, close.
pub async fn refuse(mut stream: TcpStream, slot: Slot) {
    let body = r#"{"error":{"message":"The gateway is at its limit of open connections; retry shortly","type":"server_error","param":null,"code":"overloaded"}}"#;
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSE_WITHIN, async {
        let mut buf = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_millis(200), stream.read(&mut buf)).await;
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
    drop(slot);
}

/// Serves one connection until it closes, its timers close it, or shutdown (graceful: the
/// request in flight finishes; `kill` ends it after the grace period).
pub async fn serve(
    stream: TcpStream,
    slot: Slot,
    router: Router,
    limits: Arc<ServerLimits>,
    mut stop: tokio::sync::watch::Receiver<bool>,
    kill: tokio_util::sync::CancellationToken,
) {
    let _slot = slot;
    let _ = stream.set_nodelay(true);
    let activity = Arc::new(Activity::default());
    let io = TokioIo::new(TimedIo::new(stream, activity.clone(), limits));
    let service = ConnService { router, activity };
    let conn = hyper::server::conn::http1::Builder::new()
        .keep_alive(true)
        // Sluice times headers itself (`TimedIo`), with the keep-alive timeout apart.
        .header_read_timeout(None)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        () = kill.cancelled() => return,
        _ = stop.wait_for(|s| *s) => conn.as_mut().graceful_shutdown(),
    }
    tokio::select! {
        _ = conn.as_mut() => {}
        () = kill.cancelled() => {}
    }
}

/// Whether a request is in flight on the connection, and since when it has been idle.
#[derive(Default)]
struct Activity {
    in_flight: AtomicUsize,
    /// Requests started so far.
    started: AtomicU64,
    /// When the last response ended (milliseconds since `EPOCH`).
    ended_ms: AtomicU64,
    /// The connection's task, when it waits on a read during a request: the end of the request
    /// wakes it, so that the idle timer is armed (hyper may have polled the read last while the
    /// response body was still alive).
    reader: futures::task::AtomicWaker,
}

fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    Instant::now().duration_since(epoch()).as_millis() as u64
}

/// A request in flight; ends with its response body.
struct InFlight(Arc<Activity>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.ended_ms.store(now_ms(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.0.reader.wake();
    }
}

#[derive(Clone)]
struct ConnService {
    router: Router,
    activity: Arc<Activity>,
}

impl hyper::service::Service<hyper::Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: hyper::Request<Incoming>) -> Self::Future {
        self.activity.in_flight.fetch_add(1, Ordering::AcqRel);
        self.activity.started.fetch_add(1, Ordering::AcqRel);
        let guard = InFlight(self.activity.clone());
        let mut router = self.router.clone();
        Box::pin(async move {
            // A Router is always ready: `poll_ready` has nothing to wait for.
            let resp = tower_service::Service::call(&mut router, req.map(Body::new)).await?;
            Ok(hold(resp, guard))
        })
    }
}

/// The socket with Sluice's read and write timers (see the module doc).
struct TimedIo {
    io: TcpStream,
    activity: Arc<Activity>,
    limits: Arc<ServerLimits>,
    read_timer: Pin<Box<Sleep>>,
    /// The deadline `read_timer` is set to, if armed.
    read_deadline: Option<Instant>,
    write_timer: Pin<Box<Sleep>>,
    write_armed: bool,
    /// When the first bytes of the next request arrived (while none was in flight).
    head_started: Option<Instant>,
    /// `Activity::started` when last looked at.
    seen_started: u64,
    /// When the connection became idle (accepted, or its last response ended).
    idle_since: Instant,
}

impl TimedIo {
    fn new(io: TcpStream, activity: Arc<Activity>, limits: Arc<ServerLimits>) -> TimedIo {
        let now = Instant::now();
        TimedIo {
            io,
            activity,
            limits,
            read_timer: Box::pin(tokio::time::sleep_until(now)),
            read_deadline: None,
            write_timer: Box::pin(tokio::time::sleep_until(now)),
            write_armed: false,
            head_started: None,
            seen_started: 0,
            idle_since: now,
        }
    }

    /// When a pending read must have completed: `None` while a request is in flight (its body
    /// is timed by the handler, and hyper reads meanwhile only to notice a closed connection).
    fn read_deadline(&mut self) -> Option<Instant> {
        if self.activity.in_flight.load(Ordering::Acquire) > 0 {
            self.head_started = None;
            return None;
        }
        let started = self.activity.started.load(Ordering::Acquire);
        if started != self.seen_started {
            // A request came and went since we last looked: idle since its end.
            self.seen_started = started;
            self.head_started = None;
            let ended = self.activity.ended_ms.load(Ordering::Acquire);
            self.idle_since = epoch() + Duration::from_millis(ended);
        }
        Some(match self.head_started {
            Some(t) => t + self.limits.header_read_timeout,
            // A fresh connection owes its first request within the header timeout.
            None if started == 0 => self.idle_since + self.limits.header_read_timeout,
            None => self.idle_since + self.limits.keep_alive_timeout,
        })
    }

    fn timed_out(what: &str) -> io::Error {
        io::Error::new(io::ErrorKind::TimedOut, format!("{what} timeout"))
    }

    /// A write that is pending: armed on the first `Pending`, failed once it runs out.
    fn poll_write_timer(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if !self.write_armed {
            self.write_armed = true;
            let at = Instant::now() + self.limits.write_timeout;
            self.write_timer.as_mut().reset(at);
        }
        ready!(self.write_timer.as_mut().poll(cx));
        Poll::Ready(Self::timed_out("write"))
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(r) => {
                if buf.filled().len() > before
                    && this.head_started.is_none()
                    && this.activity.in_flight.load(Ordering::Acquire) == 0
                {
                    this.head_started = Some(Instant::now());
                }
                Poll::Ready(r)
            }
            Poll::Pending => {
                let Some(deadline) = this.read_deadline() else {
                    this.read_deadline = None;
                    this.activity.reader.register(cx.waker());
                    // The request may have ended since `read_deadline` looked.
                    if this.activity.in_flight.load(Ordering::Acquire) == 0 {
                        cx.waker().wake_by_ref();
                    }
                    return Poll::Pending;
                };
                if this.read_deadline != Some(deadline) {
                    this.read_deadline = Some(deadline);
                    this.read_timer.as_mut().reset(deadline);
                }
                match this.read_timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Err(Self::timed_out(
                        if this.head_started.is_some() || this.seen_started == 0 {
                            "header read"
                        } else {
                            "keep-alive"
                        },
                    ))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(r) => {
                this.write_armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_write_timer(cx).map(Err),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => {
                this.write_armed = false;
                Poll::Ready(r)
            }
            Poll::Pending => this.poll_write_timer(cx).map(Err),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
