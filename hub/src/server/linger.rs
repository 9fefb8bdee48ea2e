//! Lingering close for request bodies the hub stops reading. A client that writes its whole body
//! before reading anything (Python `requests`, most scripts) can only read a refusal (413, 401…)
//! if the hub keeps reading what it sends: a socket closed with unread data makes the kernel send
//! a reset, and the reset destroys the answer still waiting in the client's receive buffer (the
//! client sees `SSLEOFError` or "connection reset", never the 413). So when a request body is
//! dropped before its end, `LingeringBody` hands the rest to a background task that reads and
//! discards it, up to `Linger::cap` bytes of the body in all and for at most `Linger::deadline`
//! (what other servers call a lingering close). Then the body is dropped, and hyper closes the
//! connection (HTTP/1.1) or, the answer having been sent, resets the stream with `NO_ERROR`
//! (HTTP/2, RFC 9113 §8.1: the client is told to stop sending and keeps the answer).
//!
//! Invariant (bounded linger): an abandoned body makes the hub read at most `cap` bytes of it
//! (counting what the handler read) and keeps its task at most `deadline`; a client that sends
//! forever, or slowly, is cut off by whichever comes first.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};

/// How much of an abandoned request body the hub reads and discards, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Linger {
    /// Most bytes of one request body read in all (by the handler and then discarded).
    pub cap: u64,
    /// Longest time spent discarding one abandoned body.
    pub deadline: Duration,
}

/// Set when a request's body was dropped before its end (the answer did not need all of it).
#[derive(Debug, Default, Clone)]
pub struct Abandoned(Arc<AtomicBool>);

impl Abandoned {
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }

    fn set(&self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A request body that, dropped before its end, is discarded in the background within `Linger`.
pub struct LingeringBody {
    /// Invariant: `None` once the body ended (or failed), so nothing is left to discard.
    inner: Option<Incoming>,
    read: u64,
    linger: Linger,
    abandoned: Abandoned,
}

impl LingeringBody {
    pub fn new(inner: Incoming, linger: Linger, abandoned: Abandoned) -> LingeringBody {
        LingeringBody {
            inner: Some(inner),
            read: 0,
            linger,
            abandoned,
        }
    }
}

impl Body for LingeringBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read = this.read.saturating_add(data.len() as u64);
                }
            }
            Poll::Ready(None | Some(Err(_))) => this.inner = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for LingeringBody {
    fn drop(&mut self) {
        let Some(rest) = self.inner.take() else {
            return;
        };
        if rest.is_end_stream() {
            return;
        }
        self.abandoned.set();
        let budget = self.linger.cap.saturating_sub(self.read);
        // Bodies are dropped inside the server's runtime; outside one there is no connection
        // left to keep open, and dropping `rest` closes it as before.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(discard(rest, budget, self.linger.deadline));
        }
    }
}

/// How discarding an abandoned body ended (for the debug log).
#[derive(Debug)]
enum Discarded {
    /// The client finished its body: the connection ends cleanly (or stays open, HTTP/1.1
    /// keep-alive without `Connection: close`).
    Finished,
    CapReached,
    DeadlinePassed,
    /// The client went away or broke the framing.
    Failed,
}

/// Read and drop `body` until its end, `budget` bytes, or `deadline`, whichever comes first.
async fn discard(mut body: Incoming, budget: u64, deadline: Duration) {
    let reading = async {
        let mut bytes = 0u64;
        loop {
            match std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
                None => return Discarded::Finished,
                Some(Err(_)) => return Discarded::Failed,
                Some(Ok(frame)) => {
                    if let Some(data) = frame.data_ref() {
                        bytes = bytes.saturating_add(data.len() as u64);
                        if bytes > budget {
                            return Discarded::CapReached;
                        }
                    }
                }
            }
        }
    };
    let outcome = tokio::time::timeout(deadline, reading)
        .await
        .unwrap_or(Discarded::DeadlinePassed);
    tracing::debug!(?outcome, "abandoned request body discarded");
}
