//! [`DelayLine`]: the packets of one direction that are on their way,
//! ordered by departure time, with the buffers they travel in.
//!
//! Buffers are recycled: a packet's buffer goes back to a free list when it
//! leaves, so the per-packet path allocates nothing once the line has warmed
//! up. The line is bounded by the memory its buffers take (every packet,
//! however small, holds a whole MTU-sized buffer): the kernel's TCP windows
//! normally bound what is in flight, but a misbehaving sender must not grow
//! the emulator's memory without bound, so beyond the limit packets are
//! dropped (and the forwarder counts them as queue drops).

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::Instant;

/// Free buffers kept for reuse; beyond this a burst's buffers are freed.
const MAX_FREE_BUFFERS: usize = 4096;

/// A packet waiting for its departure time.
#[derive(Debug)]
struct Queued {
    due: Instant,
    /// Arrival order: equal departure times leave in arrival order.
    seq: u64,
    buf: Vec<u8>,
    len: usize,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Queued {}
impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Queued {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.due, self.seq).cmp(&(other.due, other.seq))
    }
}

/// A packet that is due, handed out by [`DelayLine::pop_due`]; give the
/// buffer back with [`DelayLine::recycle`].
#[derive(Debug)]
pub(crate) struct Departure {
    pub(crate) buf: Vec<u8>,
    pub(crate) len: usize,
}

impl Departure {
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

#[derive(Debug)]
pub(crate) struct DelayLine {
    heap: BinaryHeap<Reverse<Queued>>,
    seq: u64,
    max_packets: usize,
    buf_size: usize,
    free: Vec<Vec<u8>>,
}

impl DelayLine {
    /// A line whose buffers of `buf_size` bytes (at least the device MTU)
    /// take at most `max_memory` bytes.
    pub(crate) fn new(max_memory: usize, buf_size: usize) -> Self {
        Self {
            heap: BinaryHeap::new(),
            seq: 0,
            max_packets: (max_memory / buf_size.max(1)).max(1),
            buf_size,
            free: Vec::new(),
        }
    }

    /// A buffer to read the next packet into.
    pub(crate) fn buffer(&mut self) -> Vec<u8> {
        self.free.pop().unwrap_or_else(|| vec![0; self.buf_size])
    }

    /// Returns a buffer for reuse.
    pub(crate) fn recycle(&mut self, buf: Vec<u8>) {
        if self.free.len() < MAX_FREE_BUFFERS {
            self.free.push(buf);
        }
    }

    /// Whether one more packet fits under the memory limit.
    pub(crate) fn has_room(&self) -> bool {
        self.heap.len() < self.max_packets
    }

    /// Queues a packet (the first `len` bytes of `buf`) to leave at `due`.
    pub(crate) fn push(&mut self, due: Instant, buf: Vec<u8>, len: usize) {
        self.seq += 1;
        self.heap.push(Reverse(Queued {
            due,
            seq: self.seq,
            buf,
            len,
        }));
    }

    /// When the next packet is due, if any is queued.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse(q)| q.due)
    }

    /// The next packet whose time has come by `now`.
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<Departure> {
        if self.next_due()? > now {
            return None;
        }
        let Reverse(q) = self.heap.pop()?;
        Some(Departure {
            buf: q.buf,
            len: q.len,
        })
    }

    /// Packets queued.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.heap.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn leaves_in_due_order_then_arrival_order() {
        let mut line = DelayLine::new(10_000, 16);
        let t0 = Instant::now();
        for (i, offset) in [30u64, 10, 20, 10].iter().enumerate() {
            let mut buf = line.buffer();
            buf[0] = i as u8;
            line.push(t0 + Duration::from_millis(*offset), buf, 1);
        }
        assert_eq!(line.next_due(), Some(t0 + Duration::from_millis(10)));
        assert!(line.pop_due(t0).is_none(), "nothing due yet");
        let order: Vec<u8> = std::iter::from_fn(|| line.pop_due(t0 + Duration::from_secs(1)))
            .map(|d| d.bytes()[0])
            .collect();
        assert_eq!(order, vec![1, 3, 2, 0]);
        assert_eq!(line.len(), 0);
    }

    #[test]
    fn memory_limit_counts_whole_buffers_and_they_are_reused() {
        // Two 64-byte buffers fit in 150 bytes, whatever the packets' sizes.
        let mut line = DelayLine::new(150, 64);
        let t0 = Instant::now();
        for _ in 0..2 {
            assert!(line.has_room());
            let buf = line.buffer();
            line.push(t0, buf, 1);
        }
        assert!(!line.has_room());
        let d = line.pop_due(t0).unwrap();
        let ptr = d.buf.as_ptr();
        line.recycle(d.buf);
        assert!(line.has_room());
        let again = line.buffer();
        assert_eq!(again.as_ptr(), ptr, "the buffer is reused");
    }
}
