//! Live figures of a running wire, for a progress view: read by the
//! monitor while the connection tasks (or worker processes) update them.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::measure::Recorder;
use crate::result::new_histogram;

/// The recorder shards of one wire run.
pub type Shards = Arc<Vec<Mutex<Recorder>>>;

/// Numbers the threads that record, in the order they first do.
static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// This thread's number among those that record.
    static THREAD_NUMBER: usize = NEXT_THREAD.fetch_add(1, Ordering::Relaxed);
}

/// The shard the current thread records into. Each runtime thread has a
/// shard of its own (up to the number of shards), so its lock is never
/// contended and its histograms stay in that core's cache: sharding by
/// connection had both threads take every shard's lock in turn, moving
/// the lock and the histograms between cores at every event. A task that
/// moves to another thread records there from then on; the merge at the
/// end adds every shard, so where an event landed changes nothing. The
/// lock remains for the readers (the live view, the hold's counters); a
/// connection takes it once per batch of events (`measure::RecordBatch`),
/// so those readers see events up to about 100 ms late.
pub fn local_shard(shards: &[Mutex<Recorder>]) -> &Mutex<Recorder> {
    let n = THREAD_NUMBER.with(|n| *n);
    &shards[n % shards.len()]
}

/// Locks a mutex whose data stays valid even if a holder panicked:
/// recorders hold plain counters, so a panic elsewhere leaves them usable.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Live figures for a progress view.
#[derive(Debug, Default)]
pub struct Live {
    pub target: AtomicUsize,
    pub connected: AtomicUsize,
    pub errors: AtomicU64,
    /// Events and p99 reported by worker processes (when there are no shards here).
    pub remote_events: AtomicU64,
    pub remote_p99_us: AtomicU64,
    shards: Mutex<Option<Shards>>,
}

/// A moment of [`Live`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LiveSnapshot {
    pub target: usize,
    pub connected: usize,
    pub errors: u64,
    pub events: u64,
    pub p99_us: u64,
}

impl Live {
    /// Shows these shards' figures from now on (`None`: stop showing them).
    pub fn watch(&self, shards: Option<Shards>) {
        *lock(&self.shards) = shards;
    }

    pub fn snapshot(&self) -> LiveSnapshot {
        let mut s = LiveSnapshot {
            target: self.target.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            events: self.remote_events.load(Ordering::Relaxed),
            p99_us: self.remote_p99_us.load(Ordering::Relaxed),
        };
        let shards = lock(&self.shards).clone();
        if let Some(shards) = shards {
            let mut h = new_histogram();
            for shard in shards.iter() {
                let r = lock(shard);
                s.events += r.counters().events;
                // Same bounds everywhere, so adding cannot fail.
                let _ = h.add(r.latency_us());
            }
            s.p99_us = h.value_at_quantile(0.99);
        }
        s
    }
}
