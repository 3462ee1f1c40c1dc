//! Connections with a kill switch, so a handler can reset its own TCP connection.
//!
//! `axum::serve` owns each connection, so a handler cannot close it directly. Instead the
//! listener wraps every accepted stream in a [`KillableStream`] and hands a clone of its
//! [`KillSwitch`] to the handler as `ConnectInfo`. After `kill()`, the next read, write or flush
//! fails (hyper polls flush on every wake-up, and the switch wakes the connection task), hyper
//! drops the stream, and dropping a killed stream closes it with `SO_LINGER` 0: the peer gets a
//! RST instead of a response.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use futures::task::AtomicWaker;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

/// Resets the connection it was handed out for.
#[derive(Clone, Debug, Default)]
pub(super) struct KillSwitch(Arc<Switch>);

#[derive(Debug, Default)]
struct Switch {
    killed: AtomicBool,
    waker: AtomicWaker,
}

impl KillSwitch {
    pub(super) fn kill(&self) {
        self.0.killed.store(true, Ordering::Release);
        self.0.waker.wake();
    }

    fn is_killed(&self) -> bool {
        self.0.killed.load(Ordering::Acquire)
    }

    /// Registers the connection task for a wake-up on `kill()`; true if already killed.
    fn poll_killed(&self, cx: &Context<'_>) -> bool {
        self.0.waker.register(cx.waker());
        self.is_killed()
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for KillSwitch {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        stream.io().switch.clone()
    }
}

/// A TCP listener whose connections carry a [`KillSwitch`]; sets `TCP_NODELAY`, because the mock
/// writes many small SSE frames and is the baseline of latency benchmarks.
pub(super) struct KillableListener(pub(super) TcpListener);

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((inner, addr)) => {
                    let _ = inner.set_nodelay(true);
                    let switch = KillSwitch::default();
                    return (KillableStream { inner, switch }, addr);
                }
                // Per-connection errors (peer gone before accept) need no pause; others (out
                // of file descriptors) would spin, so back off briefly.
                Err(e) if is_connection_error(&e) => {}
                Err(e) => {
                    tracing::warn!("mock: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

pub(super) struct KillableStream {
    inner: TcpStream,
    switch: KillSwitch,
}

fn killed() -> io::Error {
    io::Error::new(io::ErrorKind::ConnectionReset, "mock: connection killed")
}

impl Drop for KillableStream {
    fn drop(&mut self) {
        // Zero linger turns the close that follows (when `inner` drops) into a RST. It does not
        // block, unlike a non-zero linger.
        if self.switch.is_killed() {
            let _ = self.inner.set_zero_linger();
        }
    }
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.switch.poll_killed(cx) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.switch.poll_killed(cx) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if self.switch.poll_killed(cx) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.switch.poll_killed(cx) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.switch.poll_killed(cx) {
            return Poll::Ready(Err(killed()));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
