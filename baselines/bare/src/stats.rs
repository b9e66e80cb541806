//! Counters, served as JSON on `/stats` and logged at exit.
//!
//! Atomics updated once per connection or once per `write` call, never per
//! event per subscriber: a write that carries a batch of events counts once.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Which transport a stream uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Sse,
    Ws,
}

#[derive(Debug, Default)]
pub struct Stats {
    sse_open: AtomicU64,
    ws_open: AtomicU64,
    streams_total: AtomicU64,
    lagged_closed: AtomicU64,
    client_closed: AtomicU64,
    bad_requests: AtomicU64,
    writes: AtomicU64,
    frames_written: AtomicU64,
    max_frames_per_write: AtomicU64,
}

/// What `/stats` answers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatsSnapshot {
    /// Always `bare`: which stack answered.
    pub stack: &'static str,
    pub rate_hz: f64,
    /// The newest tick id.
    pub last_id: u64,
    pub sse_open: u64,
    pub ws_open: u64,
    /// Streams ever opened (SSE and WebSocket).
    pub streams_total: u64,
    /// Subscribers closed because they fell more than `--queue` events behind.
    pub lagged_closed: u64,
    /// Streams the client ended (EOF, WebSocket close, reset).
    pub client_closed: u64,
    /// Requests answered with an error status (400, 404, 405, 408, 431).
    pub bad_requests: u64,
    /// `write`/`writev` calls that sent stream bytes.
    pub writes: u64,
    /// Frames those calls completed (events, hellos, keep-alives, control frames).
    pub frames_written: u64,
    /// The most frames one call completed: above 1 when a subscriber that
    /// was behind got its backlog in one write.
    pub max_frames_per_write: u64,
}

impl Stats {
    /// Counts an open stream until the returned guard drops.
    pub fn open_stream(&self, transport: Transport) -> OpenStream<'_> {
        self.streams_total.fetch_add(1, Ordering::Relaxed);
        self.open_counter(transport).fetch_add(1, Ordering::Relaxed);
        OpenStream {
            stats: self,
            transport,
        }
    }

    fn open_counter(&self, transport: Transport) -> &AtomicU64 {
        match transport {
            Transport::Sse => &self.sse_open,
            Transport::Ws => &self.ws_open,
        }
    }

    pub fn lagged(&self) {
        self.lagged_closed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn client_closed(&self) {
        self.client_closed.fetch_add(1, Ordering::Relaxed);
    }

    pub fn bad_request(&self) {
        self.bad_requests.fetch_add(1, Ordering::Relaxed);
    }

    /// One write call that completed `frames` whole frames.
    pub fn wrote(&self, frames: usize) {
        let frames = frames as u64;
        self.writes.fetch_add(1, Ordering::Relaxed);
        self.frames_written.fetch_add(frames, Ordering::Relaxed);
        // A load first: the maximum rarely changes, and a read-modify-write
        // on every call would bounce the cache line between cores.
        if frames > self.max_frames_per_write.load(Ordering::Relaxed) {
            self.max_frames_per_write
                .fetch_max(frames, Ordering::Relaxed);
        }
    }

    pub fn snapshot(&self, rate_hz: f64, last_id: u64) -> StatsSnapshot {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StatsSnapshot {
            stack: "bare",
            rate_hz,
            last_id,
            sse_open: get(&self.sse_open),
            ws_open: get(&self.ws_open),
            streams_total: get(&self.streams_total),
            lagged_closed: get(&self.lagged_closed),
            client_closed: get(&self.client_closed),
            bad_requests: get(&self.bad_requests),
            writes: get(&self.writes),
            frames_written: get(&self.frames_written),
            max_frames_per_write: get(&self.max_frames_per_write),
        }
    }
}

/// An open stream, counted until dropped.
#[derive(Debug)]
pub struct OpenStream<'a> {
    stats: &'a Stats,
    transport: Transport,
}

impl Drop for OpenStream<'_> {
    fn drop(&mut self) {
        self.stats
            .open_counter(self.transport)
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_streams_and_batches() {
        let stats = Stats::default();
        {
            let _sse = stats.open_stream(Transport::Sse);
            let _ws = stats.open_stream(Transport::Ws);
            let s = stats.snapshot(1.0, 0);
            assert_eq!((s.sse_open, s.ws_open, s.streams_total), (1, 1, 2));
            assert_eq!(s.max_frames_per_write, 0);
        }
        stats.wrote(1);
        stats.wrote(5);
        stats.wrote(0);
        let s = stats.snapshot(1.0, 9);
        assert_eq!((s.sse_open, s.ws_open, s.streams_total), (0, 0, 2));
        assert_eq!(
            (s.writes, s.frames_written, s.max_frames_per_write),
            (3, 6, 5)
        );
        assert_eq!(s.last_id, 9);
    }
}
