//! One task per stream: feed events to one socket, batching when behind.
//!
//! The loop is the same for SSE and WebSocket; a [`Framing`] says how each
//! transport frames the feed and what it does with bytes the client sends.
//!
//! Writes are non-blocking first (`try_write_vectored`): a subscriber that
//! keeps up costs one `writev` per event and no timer. Only when its socket
//! is full does it wait, and while it waits the feed goes on: whatever
//! arrived meanwhile goes out in the next write, in one batch. A subscriber
//! that falls more than `--queue` events behind is closed and counted: its
//! memory stays bounded and nothing is dropped silently (the client sees
//! the stream end and can resume from the replay ring).

use std::io;

use bytes::Bytes;
use server::event::{EncodedEvent, Gap, Hello};
use server::hub::LastId;
use tokio::net::TcpStream;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::time::MissedTickBehavior;

use crate::fanout::FeedEvent;
use crate::outbox::Outbox;
use crate::state::State;
use crate::stats::Transport;

/// How a transport frames the feed.
pub trait Framing {
    const TRANSPORT: Transport;

    /// A live tick: shared bytes, encoded once by the feed.
    fn event(&self, event: &FeedEvent) -> Bytes;
    /// A tick replayed from the ring on resume.
    fn replayed(&self, event: &EncodedEvent) -> Bytes;
    /// Ids too old to replay.
    fn gap(&self, gap: Gap) -> Bytes;
    /// The first message: what the server negotiated and how it resumed.
    fn hello(&self, hello: &Hello) -> Bytes;
    /// Sent when nothing else was for a keep-alive period.
    fn keepalive(&self) -> Bytes;
    /// Bytes the client sent; replies (pong, close) go to `outbox`.
    fn incoming(&mut self, bytes: &[u8], outbox: &mut Outbox) -> Incoming;
    /// Sent on shutdown, if anything.
    fn farewell(&self) -> Option<Bytes>;
}

/// What the client's bytes mean for the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Incoming {
    Continue,
    /// Write what is queued (a close reply), then end the stream.
    End,
}

/// Why a stream ended.
#[derive(Debug)]
enum Ending {
    /// Fell more than the queue behind.
    Lagged,
    /// The client closed (EOF, WebSocket close, protocol error).
    ClientClosed,
    Shutdown,
    Failed(io::Error),
}

/// How a pending write ended.
enum Flush {
    Done,
    Lagged,
    Stopped,
}

/// Serves one stream until it ends: `preamble` (the response head) and
/// the hello first, then the missed events, then live ones.
pub async fn serve<F: Framing>(
    socket: TcpStream,
    framing: F,
    preamble: Bytes,
    last: LastId,
    state: &State,
) {
    let _open = state.stats.open_stream(F::TRANSPORT);
    let ending = run(&socket, framing, preamble, last, state).await;
    match ending {
        Ending::Lagged => {
            state.stats.lagged();
            tracing::debug!(queue = state.config.queue, "closed a lagging subscriber");
        }
        Ending::ClientClosed => state.stats.client_closed(),
        Ending::Shutdown => {}
        Ending::Failed(e) => {
            state.stats.client_closed();
            tracing::debug!(error = %e, "stream ended");
        }
    }
}

async fn run<F: Framing>(
    socket: &TcpStream,
    mut framing: F,
    preamble: Bytes,
    last: LastId,
    state: &State,
) -> Ending {
    let sub = state.fanout.subscribe(last);
    let mut outbox = Outbox::default();
    outbox.push(preamble);
    outbox.push(framing.hello(&Hello {
        kind: "hello".into(),
        transport: match F::TRANSPORT {
            Transport::Sse => "sse".into(),
            Transport::Ws => "ws".into(),
        },
        protocol: "http/1.1".into(),
        edge_protocol: None,
        resume: sub.resume,
        last_id: sub.last_id,
        rate_hz: state.config.rate,
    }));
    if let Some(gap) = sub.backlog.gap {
        outbox.push(framing.gap(gap));
    }
    for event in &sub.backlog.events {
        outbox.push(framing.replayed(event));
    }
    let mut rx = sub.rx;
    // The newest id taken from the channel: how far behind this subscriber
    // is, without touching the channel's lock.
    let mut received = sub.last_id;
    let period = state.config.keepalive;
    let mut keepalive = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    keepalive.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut wrote_since_tick = false;
    let mut ending_after_flush = false;
    let mut scratch = [0u8; 512];
    // Registered with the token once, not on every turn of the loop: the
    // token's waiter list is shared by every connection, and registering
    // and leaving it per event would contend on its lock.
    let stopped = state.stop.cancelled();
    tokio::pin!(stopped);
    loop {
        if !outbox.is_empty() {
            match flush(socket, &mut outbox, received, state).await {
                Ok(Flush::Done) => wrote_since_tick = true,
                Ok(Flush::Lagged) => return Ending::Lagged,
                Ok(Flush::Stopped) => return Ending::Shutdown,
                Err(e) => return Ending::Failed(e),
            }
        }
        if ending_after_flush {
            return Ending::ClientClosed;
        }
        tokio::select! {
            biased;
            _ = &mut stopped => {
                if let Some(bye) = framing.farewell() {
                    outbox.push(bye);
                    // Best effort: a full socket does not hold up shutdown.
                    let _ = outbox.write_with(|slices| socket.try_write_vectored(slices));
                }
                return Ending::Shutdown;
            }
            next = rx.recv() => match next {
                Ok(event) => {
                    received = event.id();
                    outbox.push(framing.event(&event));
                    // Everything else already published goes in the same write.
                    // The feed's newest id says whether there is more without
                    // taking the channel's lock, as an empty `try_recv` would.
                    while received < state.fanout.latest_id() {
                        match rx.try_recv() {
                            Ok(event) => {
                                received = event.id();
                                outbox.push(framing.event(&event));
                            }
                            Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                            Err(TryRecvError::Lagged(_)) => return Ending::Lagged,
                        }
                    }
                }
                Err(RecvError::Lagged(_)) => return Ending::Lagged,
                Err(RecvError::Closed) => return Ending::Shutdown,
            },
            ready = socket.readable() => {
                if let Err(e) = ready {
                    return Ending::Failed(e);
                }
                match socket.try_read(&mut scratch) {
                    Ok(0) => return Ending::ClientClosed,
                    Ok(n) => {
                        if framing.incoming(&scratch[..n], &mut outbox) == Incoming::End {
                            ending_after_flush = true;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Ending::Failed(e),
                }
            }
            _ = keepalive.tick() => {
                if !wrote_since_tick {
                    outbox.push(framing.keepalive());
                }
                wrote_since_tick = false;
            }
        }
    }
}

/// Writes everything in `outbox`, each call carrying as many frames as are
/// pending. Gives up when the subscriber falls more than the queue behind
/// while its socket is full, or when the server stops.
async fn flush(
    socket: &TcpStream,
    outbox: &mut Outbox,
    received: u64,
    state: &State,
) -> io::Result<Flush> {
    loop {
        match outbox.write_with(|slices| socket.try_write_vectored(slices)) {
            Ok(frames) => {
                state.stats.wrote(frames);
                if outbox.is_empty() {
                    return Ok(Flush::Done);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                tokio::select! {
                    biased;
                    _ = state.stop.cancelled() => return Ok(Flush::Stopped),
                    _ = lagging(received, state) => return Ok(Flush::Lagged),
                    ready = socket.writable() => ready?,
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Resolves once the feed is more than `--queue` events past `received`.
/// Polled only while a socket is full, every `lag_check_every`.
async fn lagging(received: u64, state: &State) {
    let every = state.config.lag_check_every();
    loop {
        if state.fanout.latest_id().saturating_sub(received) > state.config.queue as u64 {
            return;
        }
        tokio::time::sleep(every).await;
    }
}
