//! A feed connection of a wire run: the connection core's reconnect loop
//! with a hook that records every message into a shared recorder shard,
//! and stops once the connection has read up to the final id.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::connection::{hold, ConnectionHook, Ended, Flow, OnMessage, Reconnect};
use super::live::{lock, Live, Shards};
use crate::client::{ClientError, Msg, Opener};
use crate::measure::{IdTracker, Recorder};
use crate::wire::Wire;

/// Shared by the connection tasks of one wire run.
pub struct FeedCtx {
    pub wire: Wire,
    pub opener: Opener,
    pub shards: Shards,
    pub live: Arc<Live>,
    pub stop: CancellationToken,
    /// Fired at the end of the hold: read up to `drain_to`, then stop.
    pub drain: CancellationToken,
    pub drain_to: AtomicU64,
    pub retry: Duration,
    pub first_errors: Mutex<BTreeMap<String, String>>,
    /// What the server's hellos said it negotiated.
    pub protocols: Mutex<BTreeMap<String, u64>>,
    /// What the hello must say: the wire's protocol, or behind an edge the
    /// proxy's upstream hop (`http/1.1`).
    pub hello_protocol: &'static str,
    /// What this process's own streams negotiated (the opener's ALPN).
    pub client_protocols: Mutex<BTreeMap<String, u64>>,
    /// Connection tasks not yet finished, between streams included.
    pub running: AtomicUsize,
}

impl FeedCtx {
    fn error(&self, shard: &Mutex<Recorder>, e: &ClientError) {
        let kind = e.kind();
        lock(shard).record_error(kind);
        self.live.errors.fetch_add(1, Ordering::Relaxed);
        lock(&self.first_errors)
            .entry(kind.to_string())
            .or_insert_with(|| format!("{}: {e}", self.wire));
    }

    fn caught_up(&self, ids: &IdTracker) -> bool {
        let to = self.drain_to.load(Ordering::Acquire);
        to > 0 && ids.last_seen().is_some_and(|l| l >= to)
    }
}

/// One connection, reconnecting with resume until the run stops. Returns
/// how many ids up to the final one it never received.
pub async fn connection(ctx: Arc<FeedCtx>, index: usize) -> u64 {
    let shard = &ctx.shards[index % ctx.shards.len()];
    let mut hook = Recording {
        ctx: &ctx,
        shard,
        ids: IdTracker::new(),
        started: Instant::now(),
        first_tick: true,
        draining: false,
        connected_before: false,
    };
    let policy = Reconnect {
        reopen: true,
        retry: ctx.retry,
        backoff: true,
        close_on_stop: false,
    };
    hold(
        &ctx.opener,
        index,
        &mut hook,
        policy,
        &ctx.stop,
        Some(&ctx.drain),
    )
    .await;
    ctx.running.fetch_sub(1, Ordering::AcqRel);
    let to = ctx.drain_to.load(Ordering::Acquire);
    match hook.ids.last_seen() {
        Some(last) if to > last => to - last,
        None if to > 0 => 1, // never received anything: at least the final id is missing
        _ => 0,
    }
}

/// Records what one connection receives.
struct Recording<'a> {
    ctx: &'a FeedCtx,
    shard: &'a Mutex<Recorder>,
    ids: IdTracker,
    /// When the current stream's open attempt started.
    started: Instant,
    first_tick: bool,
    /// The drain signal fired while this stream was open.
    draining: bool,
    connected_before: bool,
}

impl Recording<'_> {
    fn done_draining(&self) -> bool {
        self.draining && self.ctx.caught_up(&self.ids)
    }
}

impl OnMessage<Msg> for Recording<'_> {
    fn message(&mut self, msg: Msg) -> Flow {
        match msg {
            Msg::Tick {
                id,
                sent_unix_ns,
                recv_unix_ns,
                bytes,
            } => {
                let mut r = lock(self.shard);
                r.record_event(&mut self.ids, id, sent_unix_ns, recv_unix_ns, bytes);
                if self.first_tick {
                    self.first_tick = false;
                    r.record_first_event(self.started.elapsed());
                }
            }
            Msg::Gap { from, to } => lock(self.shard).record_gap(&mut self.ids, from, to),
            Msg::KeepAlive => lock(self.shard).record_keepalive(),
            // The reconnect loop takes `retry:` itself.
            Msg::Retry(_) => {}
            Msg::Hello { protocol, .. } => {
                let want = self.ctx.hello_protocol;
                if protocol != want {
                    let e = ClientError::protocol(
                        self.ctx.opener.url(),
                        format!("the server negotiated {protocol}, expected {want}"),
                    );
                    self.ctx.error(self.shard, &e);
                }
                *lock(&self.ctx.protocols).entry(protocol).or_default() += 1;
            }
        }
        if self.done_draining() {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    fn woken(&mut self) -> Flow {
        self.draining = true;
        if self.ctx.caught_up(&self.ids) {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }
}

impl ConnectionHook for Recording<'_> {
    fn finished(&self) -> bool {
        self.ctx.caught_up(&self.ids)
    }

    fn resume_id(&self) -> Option<u64> {
        self.ids.last_seen()
    }

    fn opened(&mut self, attempt_started: Instant) {
        {
            let mut r = lock(self.shard);
            r.record_connect(attempt_started.elapsed());
            if self.connected_before {
                // Resumed: the tracker carries on, so a replay fills holes.
                r.record_reconnect();
            }
        }
        *lock(&self.ctx.client_protocols)
            .entry(self.ctx.opener.client_protocol().to_string())
            .or_default() += 1;
        self.connected_before = true;
        self.started = attempt_started;
        self.first_tick = true;
        self.draining = false;
        self.ctx.live.connected.fetch_add(1, Ordering::Relaxed);
    }

    fn open_failed(&mut self, error: ClientError) {
        self.ctx.error(self.shard, &error);
    }

    fn ended(&mut self, how: Ended) -> Flow {
        self.ctx.live.connected.fetch_sub(1, Ordering::Relaxed);
        match how {
            Ended::Done | Ended::Stopped => Flow::Stop,
            Ended::Closed if self.done_draining() => Flow::Stop,
            Ended::Closed => {
                let e = ClientError::Closed {
                    url: self.ctx.opener.url().clone(),
                };
                self.ctx.error(self.shard, &e);
                Flow::Continue
            }
            Ended::Failed(e) => {
                self.ctx.error(self.shard, &e);
                Flow::Continue
            }
        }
    }
}
