//! Baseline: a minimal tokio SSE + WebSocket broadcaster with no web
//! framework, serving the workbench's feed byte for byte, to show how close
//! the actix server comes to bare metal.
//!
//! A fair ceiling, not a strawman: each event is encoded once (with the
//! server's own encoder) and its bytes shared by every subscriber; a
//! subscriber that is behind gets everything pending in one `writev`; one
//! that falls further behind than a bounded queue is closed and counted,
//! never skipped silently. HTTP/1.1 only (httparse for request heads,
//! tungstenite for the WebSocket protocol); no TLS, no HTTP/2.
//!
//! ```text
//! feed (the server's) ──► fanout (broadcast + replay ring) ──► subscriber task per stream
//!                                                 framing: sse | ws
//!                                                 outbox: pending frames, one writev
//! listener: accept, request head, route (/sse, /ws, /stats)
//! ```

pub mod config;
pub mod fanout;
pub mod listener;
pub mod outbox;
pub mod request;
pub mod sse;
pub mod state;
pub mod stats;
pub mod stop;
pub mod subscriber;
pub mod ws;
pub mod wsframe;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpSocket;
use tokio::sync::mpsc;

pub use config::BareConfig;
pub use stats::StatsSnapshot;

use fanout::FeedEvent;
use state::State;

/// Pending connections the kernel queues while the accept loop catches up:
/// a run opening thousands of connections at once must not see refusals.
const LISTEN_BACKLOG: u32 = 4096;

#[derive(Debug, thiserror::Error)]
pub enum BareError {
    #[error("binding {addr}: {source} (is another server on that port? try --port 0)")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("connections were still open {0:?} after shutdown began")]
    StopTimeout(Duration),
}

/// A started server: its address, its counters, and the means to stop it.
#[derive(Debug)]
pub struct RunningBare {
    pub addr: SocketAddr,
    state: Arc<State>,
    /// Ends (yields `None`) once the feed, the accept loop and every
    /// connection task have dropped their sender.
    done: mpsc::Receiver<()>,
}

/// Binds and starts serving on the current tokio runtime.
pub async fn start(config: BareConfig) -> Result<RunningBare, BareError> {
    let addr = config.listen_addr();
    let bind_error = |source| BareError::Bind { addr, source };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(bind_error)?;
    socket.set_reuseaddr(true).map_err(bind_error)?;
    socket.bind(addr).map_err(bind_error)?;
    let listener = socket.listen(LISTEN_BACKLOG).map_err(bind_error)?;
    let addr = listener.local_addr().map_err(bind_error)?;
    let state = Arc::new(State::new(config));
    let (done_tx, done) = mpsc::channel(1);
    let feed_done = done_tx.clone();
    // The server's own producer: the same schedule, stamps and encoding.
    let (fanout, rate, payload, stop) = (
        state.fanout.clone(),
        state.config.rate,
        state.config.payload_bytes,
        state.stop.clone(),
    );
    tokio::spawn(async move {
        server::feed::tick(rate, payload, stop, |event| {
            fanout.publish(Arc::new(FeedEvent::new(Arc::new(event))));
        })
        .await;
        drop(feed_done);
    });
    tokio::spawn(listener::accept_loop(listener, state.clone(), done_tx));
    tracing::info!(%addr, rate_hz = state.config.rate, "bare baseline listening");
    Ok(RunningBare { addr, state, done })
}

impl RunningBare {
    /// The counters `/stats` serves.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.state.snapshot()
    }

    /// Stops: the feed and the accept loop end, every stream is closed
    /// (WebSockets get a 1001 close), then waits up to the shutdown timeout
    /// for the tasks. Returns the final counters.
    pub async fn shutdown(mut self) -> Result<StatsSnapshot, BareError> {
        self.state.stop.cancel();
        let limit = self.state.config.shutdown_timeout;
        tokio::time::timeout(limit, self.done.recv())
            .await
            .map_err(|_| BareError::StopTimeout(limit))?;
        Ok(self.state.snapshot())
    }
}

impl Drop for RunningBare {
    /// Not shut down explicitly (a test that failed, say): stop anyway.
    fn drop(&mut self) {
        self.state.stop.cancel();
    }
}
