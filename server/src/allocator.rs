//! The memory allocator of every process that links the server: jemalloc,
//! with freed pages purged by a background thread after [`DIRTY_DECAY_MS`].
//!
//! Why: with glibc's malloc the server kept whatever a load had made it
//! allocate: freed chunks stay in each worker thread's arena until something
//! trims it. Measured on this 2-core machine (busy with other builds, so
//! indicative), one server, 5,000 sse-h1 then 5,000 ws-h1 connections at
//! 20 Hz for 10 s each, RSS from `/stats`:
//!
//! | allocator | idle | after the last close | 2 s later | 10 s later |
//! |---|---|---|---|---|
//! | glibc malloc | 9.6 MiB | 121 MiB | 119 MiB | 119 MiB |
//! | mimalloc 0.1, defaults | 18.8 MiB | 140 MiB | 142 MiB | 21.5 MiB |
//! | jemalloc, background purge, 10 s decay | 8.6 MiB | 97 MiB | 94 MiB | 13 MiB |
//! | jemalloc, background purge, 1 s decay (this) | 9.4 MiB | 55 MiB | 13.2 MiB | 13.1 MiB |
//!
//! ("idle" is with the replay ring full.) What jemalloc keeps then is its
//! own metadata, which grows with the peak and is never unmapped (1.8 MiB
//! idle, 4 MiB after), and partly used slabs: the program itself holds
//! less than when idle (`allocated_bytes` 2.8 MiB against 3.1). mimalloc
//! gave memory back only once its threads allocated again, and doubled the
//! idle size.
//!
//! The allocator is declared in the library, not the binary, so that every
//! process that runs the server gets it: the `server` binary, the load
//! generator's `serve` child (the embedded server the benchmarks measure)
//! and the tests. [`configure`] sets the purging up; [`run`](crate::run)
//! calls it. jemalloc's own view of its memory is in `/stats`
//! (`process.allocator`).

use serde::Serialize;
use tikv_jemalloc_ctl::{arenas, background_thread, epoch, stats, Access as _, AsName as _};

#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// How long a freed page may stay dirty before it is given back to the OS.
/// Shorter costs more `madvise` calls under churn; longer keeps RSS up.
pub const DIRTY_DECAY_MS: isize = 1000;

/// Starts jemalloc's background purging thread and sets the decay times,
/// for arenas made from now on and for those that exist. Idempotent.
pub fn configure() -> Result<(), tikv_jemalloc_ctl::Error> {
    let dirty = DIRTY_DECAY_MS;
    // Muzzy pages (freed, not yet returned) are skipped: purge straight away.
    let muzzy: isize = 0;
    b"arenas.dirty_decay_ms\0".name().write(dirty)?;
    b"arenas.muzzy_decay_ms\0".name().write(muzzy)?;
    // The arenas made before this call (jemalloc makes them lazily, as
    // threads first allocate): one by one, since `arena.<i>.*_decay_ms`
    // refuses "every arena" (EFAULT), and an index not made yet too.
    for i in 0..arenas::narenas::read()? {
        for (what, ms) in [("dirty", dirty), ("muzzy", muzzy)] {
            let key = format!("arena.{i}.{what}_decay_ms\0");
            let _ = key.as_bytes().name().write(ms);
        }
    }
    background_thread::write(true)
}

/// jemalloc's figures, for `/stats`.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct AllocatorStats {
    /// Bytes the program has allocated and not freed.
    pub allocated_bytes: usize,
    /// Bytes in pages holding allocations.
    pub active_bytes: usize,
    /// Bytes jemalloc keeps resident (data, metadata, dirty pages not yet
    /// purged).
    pub resident_bytes: usize,
    pub metadata_bytes: usize,
}

/// jemalloc's figures now (`None` if it cannot say).
pub fn stats() -> Option<AllocatorStats> {
    epoch::advance().ok()?;
    Some(AllocatorStats {
        allocated_bytes: stats::allocated::read().ok()?,
        active_bytes: stats::active::read().ok()?,
        resident_bytes: stats::resident::read().ok()?,
        metadata_bytes: stats::metadata::read().ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purging_is_configured_and_figures_are_read() {
        configure().expect("jemalloc accepts the settings");
        configure().expect("twice too");
        let dirty: isize = b"arenas.dirty_decay_ms\0".name().read().expect("reads");
        assert_eq!(dirty, DIRTY_DECAY_MS);
        assert!(background_thread::read().expect("reads"));
        let s = stats().expect("stats are compiled in");
        assert!(s.allocated_bytes > 0 && s.resident_bytes >= s.active_bytes);
    }
}
