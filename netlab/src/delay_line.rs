//! [`DelayLine`]: the packets of one direction that are on their way,
//! ordered by departure time, with the buffers they travel in.
//!
//! Buffers are recycled: a packet's buffer goes back to a free list when it
//! leaves, so the per-packet path allocates nothing once the line has warmed
//! up. The line is bounded in bytes: the kernel's TCP windows normally bound
//! what is in flight, but a misbehaving sender must not grow the emulator's
//! memory without bound, so beyond the limit packets are dropped (and the
//! forwarder counts them as queue drops).

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
    bytes: usize,
    max_bytes: usize,
    buf_size: usize,
    free: Vec<Vec<u8>>,
}

impl DelayLine {
    /// A line holding at most `max_bytes` of packets, in buffers of
    /// `buf_size` bytes (at least the device MTU).
    pub(crate) fn new(max_bytes: usize, buf_size: usize) -> Self {
        Self {
            heap: BinaryHeap::new(),
            seq: 0,
            bytes: 0,
            max_bytes,
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

    /// Whether a packet of `len` bytes still fits under the byte limit.
    pub(crate) fn has_room(&self, len: usize) -> bool {
        self.bytes + len <= self.max_bytes
    }

    /// Queues a packet (the first `len` bytes of `buf`) to leave at `due`.
    pub(crate) fn push(&mut self, due: Instant, buf: Vec<u8>, len: usize) {
        self.bytes += len;
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
        self.bytes -= q.len;
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
    fn byte_limit_and_recycling() {
        let mut line = DelayLine::new(100, 64);
        let t0 = Instant::now();
        assert!(line.has_room(100));
        let buf = line.buffer();
        line.push(t0, buf, 60);
        assert!(!line.has_room(41));
        assert!(line.has_room(40));
        let d = line.pop_due(t0).unwrap();
        let ptr = d.buf.as_ptr();
        line.recycle(d.buf);
        assert!(line.has_room(100));
        let again = line.buffer();
        assert_eq!(again.as_ptr(), ptr, "the buffer is reused");
    }
}
