//! A feed connection of a wire run: the connection core's reconnect loop
//! with a hook that records every message, and stops once the connection
//! has read up to the final id. Events go into the connection's own
//! [`RecordBatch`] without a lock, and the batch into its thread's recorder
//! shard under one lock when it is full or about 100 ms old, when a stream
//! ends or the drain starts, and when the hook is dropped (also when the
//! task is cancelled): every event reaches a shard before the driver
//! merges them, and the live view and the hold see events at most about
//! 100 ms plus one event period late. Over an
//! emulated link the hook also judges each event for stalls and outage
//! recovery (`measure::LinkWatch`), handing findings to a link shard.
//!
//! The same hook reads the feed server and any other server: the feed's
//! ticks carry an id and a send time; another server's events carry what
//! its settings point at (either may be missing), and the protocol comes
//! from the handshake when the server sends no hello.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::connection::{hold, ConnectionHook, Ended, Flow, OnMessage, Reconnect};
use server::event::unix_now_ns;

use super::live::{local_shard, lock, Live, Shards};
use crate::client::{ClientError, Msg, Opener, Stamp};
use crate::measure::{Arrival, IdTracker, LinkRecorder, LinkWatch, RecordBatch, Recorder};
use crate::result::LinkTiming;
use crate::wire::Wire;

/// Events at the start of a stream that may lack a usable stamp before the
/// settings are taken to be wrong (a hello, a welcome message...). Once
/// one event had a good stamp, later bad ones are only counted.
pub const STAMP_GRACE: u32 = 10;

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
    /// Over an emulated link: its timing, and one link recorder per shard.
    pub link: Option<LinkTiming>,
    pub link_shards: Vec<Mutex<LinkRecorder>>,
    /// When the hold started (Unix ns; 0 before): events count for stalls
    /// and outages from then on.
    pub hold_start_ns: AtomicU64,
    /// Numbers the TCP connections that carry streams: this process's base
    /// (connection numbers of several processes never collide), and the
    /// next number for a connection of its own (every wire but HTTP/2).
    pub carrier_base: u64,
    pub next_carrier: AtomicU64,
    /// The highest id any connection has seen: the final id of a server
    /// that does not say its newest.
    pub highest_id: AtomicU64,
    /// Connections asked for in this process.
    pub connections: usize,
    /// When the first connection started.
    pub started: Instant,
    /// µs from `started` until all `connections` were open (0: not yet).
    pub all_open_after_us: AtomicU64,
    /// The configured stamp of any server's events, for messages.
    pub stamp_shown: Option<String>,
}

impl FeedCtx {
    /// This thread's recorder shard.
    fn shard(&self) -> &Mutex<Recorder> {
        local_shard(&self.shards)
    }

    fn error(&self, e: &ClientError) {
        let kind = e.kind();
        lock(self.shard()).record_error(kind);
        self.live.errors.fetch_add(1, Ordering::Relaxed);
        lock(&self.first_errors)
            .entry(kind.to_string())
            .or_insert_with(|| format!("{}: {e}", self.wire));
    }

    fn link_shard(&self, index: usize) -> Option<&Mutex<LinkRecorder>> {
        match self.link_shards.len() {
            0 => None,
            n => Some(&self.link_shards[index % n]),
        }
    }

    /// The number of the TCP connection that carries stream `index`, just
    /// opened: the HTTP/2 pool's connection, or a new one of its own.
    fn carrier_of(&self, index: usize) -> u64 {
        let local = self
            .opener
            .h2_connection_of(index)
            .unwrap_or_else(|| self.next_carrier.fetch_add(1, Ordering::Relaxed));
        self.carrier_base + local
    }

    /// Notes an id seen: the shared maximum is written only when it grows,
    /// so connections mostly read a line no one writes.
    fn saw_id(&self, id: u64) {
        if id > self.highest_id.load(Ordering::Relaxed) {
            self.highest_id.fetch_max(id, Ordering::Relaxed);
        }
    }

    fn caught_up(&self, ids: &IdTracker) -> bool {
        let to = self.drain_to.load(Ordering::Acquire);
        to > 0 && ids.last_seen().is_some_and(|l| l >= to)
    }
}

/// One connection, reconnecting with resume until the run stops. Returns
/// how many ids up to the final one it never received.
pub async fn connection(ctx: Arc<FeedCtx>, index: usize) -> u64 {
    let mut hook = Recording {
        ctx: &ctx,
        index,
        link: ctx
            .link
            .as_ref()
            .map(|t| Box::new(LinkWatch::new(t, index as u64))),
        ids: IdTracker::new(),
        batch: RecordBatch::new(),
        last_recv_ns: None,
        started: Instant::now(),
        first_tick: true,
        draining: false,
        connected_before: false,
        broke_at: None,
        protocol_noted: false,
        good_stamp: false,
        bad_stamps: 0,
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
    hook.flush();
    if let (Some(watch), Some(link_shard)) = (&mut hook.link, ctx.link_shard(index)) {
        watch.finish(unix_now_ns(), &mut lock(link_shard));
    }
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
    index: usize,
    /// Over an emulated link: this stream's judge of stalls and outages
    /// (boxed: inline, its 256 bytes would sit in every connection's task,
    /// link or not).
    link: Option<Box<LinkWatch>>,
    ids: IdTracker,
    /// Events not yet in a shard (see the module documentation).
    batch: RecordBatch,
    /// When the previous event arrived (across reconnects: a reconnect is
    /// a stall the user sees).
    last_recv_ns: Option<u64>,
    /// When the current stream's open attempt started.
    started: Instant,
    first_tick: bool,
    /// The drain signal fired while this stream was open.
    draining: bool,
    connected_before: bool,
    /// When the last stream broke (closed or failed), until one resumes.
    broke_at: Option<Instant>,
    /// The current stream's protocol is counted (from its hello, or from
    /// the handshake at its first event).
    protocol_noted: bool,
    /// The current stream had an event with a usable stamp.
    good_stamp: bool,
    /// Events of the current stream without a usable stamp while a stamp
    /// field is configured.
    bad_stamps: u32,
}

impl<'a> Recording<'a> {
    fn done_draining(&self) -> bool {
        self.draining && self.ctx.caught_up(&self.ids)
    }

    /// The thread's shard, locked, with this connection's batch handed to it.
    fn shard(&mut self) -> MutexGuard<'a, Recorder> {
        let ctx: &'a FeedCtx = self.ctx;
        let mut r = lock(ctx.shard());
        if !self.batch.is_empty() {
            r.absorb(&mut self.batch);
        }
        r
    }

    /// Hands the batch to the thread's shard.
    fn flush(&mut self) {
        if !self.batch.is_empty() {
            lock(self.ctx.shard()).absorb(&mut self.batch);
        }
    }

    /// Records one event (a tick or another server's event).
    fn arrival(&mut self, e: Arrival) {
        if let Some(id) = e.id {
            self.ctx.saw_id(id);
        }
        let due = self.batch.add(&mut self.ids, &mut self.last_recv_ns, e);
        if self.first_tick {
            self.first_tick = false;
            self.shard().record_first_event(self.started.elapsed());
        } else if due {
            self.flush();
        }
        if let (Some(watch), Some(sent)) = (&mut self.link, e.sent_unix_ns) {
            let hold_start = self.ctx.hold_start_ns.load(Ordering::Relaxed);
            if watch.event(hold_start, sent, e.recv_unix_ns) {
                if let Some(link_shard) = self.ctx.link_shard(self.index) {
                    watch.hand_over(&mut lock(link_shard));
                }
            }
        }
        if !self.protocol_noted {
            // No hello came first: the handshake says what was negotiated.
            self.protocol_noted = true;
            let protocol = self.ctx.opener.protocol().to_string();
            *lock(&self.ctx.protocols).entry(protocol).or_default() += 1;
        }
    }

    /// A usable stamp, or none; `Err` when the start of the stream shows
    /// the stamp settings do not fit this server's events.
    fn stamp(&mut self, stamp: Stamp) -> Result<Option<u64>, ClientError> {
        match stamp {
            Stamp::Sent(ns) => {
                self.good_stamp = true;
                Ok(Some(ns))
            }
            Stamp::Unstamped => Ok(None),
            Stamp::Bad(why) => {
                self.bad_stamps += 1;
                if !self.good_stamp && self.bad_stamps >= STAMP_GRACE {
                    let field = self.ctx.stamp_shown.as_deref().unwrap_or("the stamp field");
                    return Err(ClientError::protocol(
                        self.ctx.opener.url(),
                        format!(
                            "the first {STAMP_GRACE} events of the stream have no usable stamp at {field}: {why}; check --stamp-field, --stamp-unit and --event (after one good stamp, bad ones are only counted)"
                        ),
                    ));
                }
                Ok(None)
            }
        }
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
            } => self.arrival(Arrival {
                id: Some(id),
                sent_unix_ns: Some(sent_unix_ns),
                recv_unix_ns,
                bytes,
            }),
            Msg::Event {
                id,
                stamp,
                recv_unix_ns,
                bytes,
            } => {
                let sent_unix_ns = match self.stamp(stamp) {
                    Ok(sent) => sent,
                    Err(e) => return Flow::Fail(e),
                };
                self.arrival(Arrival {
                    id,
                    sent_unix_ns,
                    recv_unix_ns,
                    bytes,
                });
            }
            Msg::Gap { from, to } => self.shard().record_gap(&mut self.ids, from, to),
            Msg::KeepAlive => self.shard().record_keepalive(),
            // The reconnect loop takes `retry:` itself.
            Msg::Retry(_) => {}
            Msg::Hello { protocol, .. } => {
                let want = self.ctx.hello_protocol;
                if protocol != want {
                    let e = ClientError::protocol(
                        self.ctx.opener.url(),
                        format!("the server negotiated {protocol}, expected {want}"),
                    );
                    self.ctx.error(&e);
                }
                self.protocol_noted = true;
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
        self.flush();
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
            let mut r = self.shard();
            r.record_connect(attempt_started.elapsed());
            if self.connected_before {
                // Resumed: the tracker carries on, so a replay fills holes.
                // Reopened live (no way to resume): the ids in between were
                // never asked for, so they are not holes.
                r.record_reconnect();
                if let Some(broke) = self.broke_at.take() {
                    r.record_reconnect_time(broke.elapsed());
                }
                if !self.ctx.opener.resumes() {
                    self.ids.reset();
                }
            }
        }
        *lock(&self.ctx.client_protocols)
            .entry(self.ctx.opener.protocol().to_string())
            .or_default() += 1;
        self.connected_before = true;
        if let (Some(watch), Some(link_shard)) = (&mut self.link, self.ctx.link_shard(self.index)) {
            let carrier = self.ctx.carrier_of(self.index);
            watch.opened(carrier, unix_now_ns(), &mut lock(link_shard));
        }
        self.started = attempt_started;
        self.first_tick = true;
        self.draining = false;
        self.protocol_noted = false;
        self.good_stamp = false;
        self.bad_stamps = 0;
        let open = self.ctx.live.connected.fetch_add(1, Ordering::Relaxed) + 1;
        if open == self.ctx.connections {
            let us = u64::try_from(self.ctx.started.elapsed().as_micros()).unwrap_or(u64::MAX);
            let _ = self.ctx.all_open_after_us.compare_exchange(
                0,
                us.max(1),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
        }
    }

    fn open_failed(&mut self, error: ClientError) {
        self.ctx.error(&error);
    }

    fn ended(&mut self, how: Ended) -> Flow {
        self.flush();
        self.ctx.live.connected.fetch_sub(1, Ordering::Relaxed);
        if let (Some(watch), Some(link_shard)) = (&mut self.link, self.ctx.link_shard(self.index)) {
            watch.stream_ended(&mut lock(link_shard));
        }
        self.broke_at = Some(Instant::now());
        match how {
            Ended::Done | Ended::Stopped => Flow::Stop,
            Ended::Closed if self.done_draining() => Flow::Stop,
            Ended::Closed => {
                let e = ClientError::Closed {
                    url: self.ctx.opener.url().clone(),
                };
                self.ctx.error(&e);
                Flow::Continue
            }
            Ended::Failed(e) => {
                self.ctx.error(&e);
                Flow::Continue
            }
        }
    }
}

/// A task cancelled mid-stream (its future dropped) still hands over what
/// it received: nothing recorded is lost with it.
impl Drop for Recording<'_> {
    fn drop(&mut self) {
        self.flush();
    }
}
