//! What tells the open streams to stop or to speak: shutdown, drop-all, a
//! dropped fraction of the streams, and the keep-alive tick; and the list
//! of subscriptions waiting to hear it.
//!
//! Stopping is a token per stream (tokens shared by buckets of streams), so
//! the WebSocket and chat loops can select on it. The feed's subscriptions
//! do not hold a future on it: they look at it only after a drop was
//! signalled ([`StreamSignals::drops`] moved), which costs one atomic load
//! per poll, and they are woken through the [`WaitList`] they already wait in.

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Mutex;

use tokio_util::sync::CancellationToken;

use crate::wait_list::WaitList;

/// Buckets of streams for [`StreamSignals::drop_fraction`]: the fraction's granularity.
pub const DROP_BUCKETS: usize = 64;

/// The signals every stream listens to.
#[derive(Debug)]
pub struct StreamSignals {
    shutdown: CancellationToken,
    /// Cancelled by "drop all connections"; replaced by a fresh child each time.
    drop_all: Mutex<CancellationToken>,
    /// Streams are dealt round-robin into these buckets at connect (children
    /// of `drop_all`, remade lazily once cancelled), so a fraction of them can
    /// be dropped by cancelling whole buckets: O(1) per stream, nothing per event.
    buckets: Vec<Mutex<CancellationToken>>,
    next_bucket: AtomicUsize,
    next_drop: AtomicUsize,
    /// Subscriptions with nothing to send, woken by every publish and signal.
    pub waiting: WaitList,
    /// Bumped after stop tokens were cancelled.
    drops: AtomicU32,
    /// Keep-alive periods gone by.
    ticks: AtomicU32,
    /// The latest tick that found the feed idle.
    idle_tick: AtomicU32,
}

impl Default for StreamSignals {
    fn default() -> Self {
        let shutdown = CancellationToken::new();
        let drop_all = shutdown.child_token();
        StreamSignals {
            buckets: (0..DROP_BUCKETS)
                .map(|_| Mutex::new(drop_all.child_token()))
                .collect(),
            drop_all: Mutex::new(drop_all),
            next_bucket: AtomicUsize::new(0),
            next_drop: AtomicUsize::new(0),
            shutdown,
            waiting: WaitList::default(),
            drops: AtomicU32::new(0),
            ticks: AtomicU32::new(0),
            idle_tick: AtomicU32::new(u32::MAX),
        }
    }
}

impl StreamSignals {
    /// A token cancelled when the server shuts down.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// A token cancelled when every stream must close: shutdown, or the next
    /// "drop all connections". Take it when a stream starts.
    pub fn stream_token(&self) -> CancellationToken {
        let i = self.next_bucket.fetch_add(1, Ordering::Relaxed) % DROP_BUCKETS;
        let mut bucket = self.buckets[i].lock().unwrap_or_else(|p| p.into_inner());
        if bucket.is_cancelled() {
            // Dropped (or never made): a fresh child of today's drop-all token.
            *bucket = self
                .drop_all
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .child_token();
        }
        bucket.clone()
    }

    /// Cancels about `fraction` of the stream tokens (whole buckets of
    /// [`DROP_BUCKETS`], dealt round-robin at connect; a rotating start picks
    /// different buckets each time). Returns the buckets dropped.
    pub fn drop_fraction(&self, fraction: f64) -> usize {
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let n = (fraction * DROP_BUCKETS as f64).round() as usize;
        let start = self.next_drop.fetch_add(n.max(1), Ordering::Relaxed);
        for k in 0..n {
            let i = (start + k) % DROP_BUCKETS;
            self.buckets[i]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .cancel();
        }
        if n > 0 {
            self.signal_drop();
        }
        n
    }

    /// Cancels every stream token taken so far.
    pub fn drop_all(&self) {
        let mut token = self.drop_all.lock().unwrap_or_else(|p| p.into_inner());
        token.cancel();
        *token = self.shutdown.child_token();
        drop(token);
        self.signal_drop();
    }

    /// Cancels every token, the shutdown token included.
    pub fn shut_down(&self) {
        self.shutdown.cancel();
        self.signal_drop();
    }

    /// Tells every subscription to look at its stop token.
    fn signal_drop(&self) {
        self.drops.fetch_add(1, Ordering::AcqRel);
        self.waiting.wake_all();
    }

    /// How many drops were signalled (wrapping): a subscription that saw
    /// this value need not look at its token.
    pub fn drops(&self) -> u32 {
        self.drops.load(Ordering::Acquire)
    }

    /// How many keep-alive periods went by (wrapping).
    pub fn ticks(&self) -> u32 {
        self.ticks.load(Ordering::Acquire)
    }

    /// Whether `tick` (a value of [`ticks`](Self::ticks)) found the feed idle.
    pub fn was_idle(&self, tick: u32) -> bool {
        self.idle_tick.load(Ordering::Acquire) == tick
    }

    /// One keep-alive period went by; when the feed was `idle` during it,
    /// every waiting subscription is woken to send its keep-alive (on a busy
    /// feed they see the tick at their next event). One caller only.
    pub fn tick(&self, idle: bool) {
        // The idle mark is set first, so a subscription that sees the new
        // tick sees its mark.
        let tick = self.ticks().wrapping_add(1);
        if idle {
            self.idle_tick.store(tick, Ordering::Release);
        }
        self.ticks.store(tick, Ordering::Release);
        if idle {
            self.waiting.wake_all();
        }
    }
}
