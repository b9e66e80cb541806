//! Memory given back after load: the system allocator (glibc's malloc) and
//! a trimmer thread that returns its free pages to the OS once a load has
//! gone away.
//!
//! Why: glibc keeps what a load made it allocate. Freed chunks stay in each
//! thread's arena, and only the top of an arena is ever shrunk on its own,
//! so a server that held 10,000 connections kept their 230 MiB after they
//! closed. `malloc_trim(0)` walks every arena and gives back each whole free
//! page (`madvise(MADV_DONTNEED)`), wherever it lies. The trimmer thread
//! calls it when a quarter or more of the heap is free and the program
//! holds at least 1 MiB less than at its peak since the last trim: a steady
//! load (memory freed and reused at once) does not reach that, and a load
//! going away does at once.
//!
//! Measured on this 2-core machine, one server, sse-h1 then ws-h1 at 20 Hz
//! for 10 s each (`loadgen run --target …`), RSS from `/proc`:
//!
//! | allocator | idle | after the last close, settled | after ÷ idle |
//! |---|---|---|---|
//! | glibc malloc | 9.7 MiB | 231 MiB (10,000 conns) | 23.8× |
//! | jemalloc, 1 s background purge | 10.6 MiB | 14.4–15.2 MiB (5,000) | 1.36–1.41× |
//! | glibc + this trimmer | 9.7 MiB | 10.7 MiB (5,000), 11.8 MiB (10,000) | 1.11–1.21× |
//!
//! jemalloc gave its free pages back but not its own metadata: the records
//! of every extent it made at the peak (`stats.metadata` went from 2.3 to
//! 4.3–5.4 MiB), never unmapped, and partly used slabs. mimalloc (0.1,
//! defaults) came back to 1.14× idle, but of an idle size twice glibc's.
//! What glibc keeps after a trim is the pages its arenas still have live
//! chunks in (about 0.4 MiB per worker arena after HTTP/1.1 loads; HTTP/2
//! loads leave more, about 1.5× idle: see the README, "Memory after load").
//!
//! Per connection, glibc and jemalloc held the same (13.0 KB sse-h1, 18.6
//! KB ws-h1 at 5,000). No global allocator is declared, so every binary
//! linking the server (the load generator, the `bare` baseline) uses the
//! system's, like the stacks it is compared with; only a running server
//! starts the trimmer ([`start_trimmer`], called by [`run`](crate::run)).
//! Its figures are in `/stats` (`process.allocator`).
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use serde::Serialize;

/// How often the trimmer looks at the heap.
pub const TRIM_CHECK: Duration = Duration::from_millis(500);
/// Free bytes below this are not worth a trim (a few pages per arena).
pub const TRIM_MIN_FREE: usize = 1 << 20;
/// A trim runs when at least 1/`TRIM_FREE_SHARE` of the heap is free.
pub const TRIM_FREE_SHARE: usize = 4;

static TRIMS: AtomicU64 = AtomicU64::new(0);
static TRIMMED_FREE_BYTES: AtomicU64 = AtomicU64::new(0);
static TRIMMER: OnceLock<Result<(), String>> = OnceLock::new();

/// The allocator's figures, for `/stats`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct AllocatorStats {
    /// Bytes the program holds (chunks in use, plus those mapped on their own).
    pub allocated_bytes: usize,
    /// Free bytes the arenas keep (resident until trimmed or reused).
    pub free_bytes: usize,
    /// Bytes of the arenas' heaps (in use and free).
    pub arena_bytes: usize,
    /// Bytes in chunks mapped on their own (large allocations).
    pub mmapped_bytes: usize,
    /// Trims made since the process started.
    pub trims: u64,
    /// Free bytes the arenas held when those trims ran, summed.
    pub trimmed_free_bytes: u64,
}

/// Starts the trimmer thread, once per process (every later call returns
/// the first one's result).
pub fn start_trimmer() -> Result<(), String> {
    TRIMMER
        .get_or_init(|| {
            if heap().is_none() {
                return Err(
                    "this C library has no malloc_trim: RSS may stay high after load".into(),
                );
            }
            std::thread::Builder::new()
                .name("memory-trim".into())
                .spawn(|| loop {
                    std::thread::sleep(TRIM_CHECK);
                    trim_if_worth_it();
                })
                .map(drop)
                .map_err(|e| format!("could not start the memory trimmer: {e}"))
        })
        .clone()
}

/// What the trimmer remembers between looks: the most the program held
/// since the last trim. A trim runs only once that much has come down by
/// [`TRIM_MIN_FREE`] or more, so free memory that one trim could not give
/// back (pages a live chunk still pins) is not walked again every look.
static PEAK_SINCE_TRIM: AtomicUsize = AtomicUsize::new(0);

/// One look at the heap; trims it when enough of it is free and the
/// program holds less than it did at its peak since the last trim. True
/// when a trim ran.
pub fn trim_if_worth_it() -> bool {
    let Some(h) = heap() else { return false };
    let peak = PEAK_SINCE_TRIM
        .fetch_max(h.allocated_bytes, Ordering::Relaxed)
        .max(h.allocated_bytes);
    if !worth_trimming(h.free_bytes, h.arena_bytes, peak - h.allocated_bytes) {
        return false;
    }
    let released = trim();
    PEAK_SINCE_TRIM.store(h.allocated_bytes, Ordering::Relaxed);
    TRIMS.fetch_add(1, Ordering::Relaxed);
    TRIMMED_FREE_BYTES.fetch_add(h.free_bytes as u64, Ordering::Relaxed);
    tracing::debug!(
        free_bytes = h.free_bytes,
        arena_bytes = h.arena_bytes,
        released,
        "memory trimmed"
    );
    true
}

/// The rule: enough free bytes, a large enough share of the heap, and
/// enough freed since the peak.
fn worth_trimming(free: usize, arena: usize, freed_since_peak: usize) -> bool {
    free >= TRIM_MIN_FREE
        && free.saturating_mul(TRIM_FREE_SHARE) >= arena
        && freed_since_peak >= TRIM_MIN_FREE
}

/// The allocator's figures now (`None` where the C library cannot say).
pub fn stats() -> Option<AllocatorStats> {
    let h = heap()?;
    Some(AllocatorStats {
        trims: TRIMS.load(Ordering::Relaxed),
        trimmed_free_bytes: TRIMMED_FREE_BYTES.load(Ordering::Relaxed),
        ..h
    })
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap() -> Option<AllocatorStats> {
    // SAFETY: mallinfo2 takes no arguments and returns a plain struct by
    // value; it only reads the allocator's state under its own locks.
    let m = unsafe { libc::mallinfo2() };
    Some(AllocatorStats {
        allocated_bytes: m.uordblks + m.hblkhd,
        free_bytes: m.fordblks,
        arena_bytes: m.arena,
        mmapped_bytes: m.hblkhd,
        ..AllocatorStats::default()
    })
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap() -> Option<AllocatorStats> {
    None
}

/// Gives every whole free page of every arena back; true if any was.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim() -> bool {
    // SAFETY: malloc_trim(0) has no preconditions: it takes each arena's
    // lock and only releases pages no allocation uses.
    unsafe { libc::malloc_trim(0) == 1 }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim() -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heap_mostly_free_is_trimmed_and_a_busy_one_is_not() {
        let m = TRIM_MIN_FREE;
        assert!(!worth_trimming(0, 0, 0));
        assert!(!worth_trimming(m - 1, m, m), "too little free");
        assert!(worth_trimming(m, 4 * m, m));
        assert!(!worth_trimming(m, 4 * m + 1, m), "too small a share");
        assert!(
            !worth_trimming(m, 4 * m, m - 1),
            "nothing freed since the last trim"
        );
        assert!(worth_trimming(usize::MAX, usize::MAX, usize::MAX));
    }
}
