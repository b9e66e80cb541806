//! A subscriber's frames waiting for its socket, written in one `writev`.
//!
//! Frames are shared `Bytes` (the feed's encoding, never copied per
//! subscriber). When a subscriber is behind, everything pending goes out in
//! one vectored write instead of one write per event: the batching that lets
//! a server keep up with many slow-ish readers, which actix does too.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::Bytes;

/// The most frames one write call carries (well under the kernel's IOV_MAX
/// of 1024; at this many frames per call the syscall cost is amortised).
pub const MAX_FRAMES_PER_WRITE: usize = 64;

/// Above this many slots an empty queue gives its memory back: a spike of
/// lag must not leave every connection holding a large buffer.
const KEEP_CAPACITY: usize = 16;

#[derive(Debug, Default)]
pub struct Outbox {
    frames: VecDeque<Bytes>,
    /// Bytes of the front frame already written (a partial write).
    written: usize,
}

impl Outbox {
    pub fn push(&mut self, frame: Bytes) {
        if !frame.is_empty() {
            self.frames.push_back(frame);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// One write of the pending frames through `write` (given the slices,
    /// returns how many bytes it took). Returns how many whole frames that
    /// completed; a `WouldBlock` is passed on with nothing consumed.
    pub fn write_with(
        &mut self,
        write: impl FnOnce(&[IoSlice<'_>]) -> io::Result<usize>,
    ) -> io::Result<usize> {
        let mut slices = [IoSlice::new(&[]); MAX_FRAMES_PER_WRITE];
        let mut count = 0;
        for (slot, frame) in slices.iter_mut().zip(&self.frames) {
            let start = if count == 0 { self.written } else { 0 };
            *slot = IoSlice::new(&frame[start..]);
            count += 1;
        }
        if count == 0 {
            return Ok(0);
        }
        let mut taken = write(&slices[..count])?;
        if taken == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "the socket took no bytes",
            ));
        }
        let mut completed = 0;
        while let Some(front) = self.frames.front() {
            let left = front.len() - self.written;
            if taken < left {
                self.written += taken;
                break;
            }
            taken -= left;
            self.written = 0;
            self.frames.pop_front();
            completed += 1;
        }
        if self.frames.is_empty() && self.frames.capacity() > KEEP_CAPACITY {
            self.frames.shrink_to(KEEP_CAPACITY);
        }
        Ok(completed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket that takes at most `limit` bytes per call.
    fn take_up_to<'a>(
        sink: &'a mut Vec<u8>,
        limit: usize,
        calls: &'a mut Vec<usize>,
    ) -> impl FnOnce(&[IoSlice<'_>]) -> io::Result<usize> + 'a {
        move |slices| {
            calls.push(slices.len());
            let mut left = limit;
            for s in slices {
                let n = s.len().min(left);
                sink.extend_from_slice(&s[..n]);
                left -= n;
            }
            Ok(limit - left)
        }
    }

    #[test]
    fn pending_frames_go_out_in_one_call() {
        let mut out = Outbox::default();
        for f in ["one ", "two ", "three"] {
            out.push(Bytes::from_static(f.as_bytes()));
        }
        let (mut sink, mut calls) = (Vec::new(), Vec::new());
        let done = out
            .write_with(take_up_to(&mut sink, 1000, &mut calls))
            .unwrap();
        assert_eq!((done, calls.as_slice()), (3, &[3][..]));
        assert_eq!(sink, b"one two three");
        assert!(out.is_empty());
    }

    #[test]
    fn a_partial_write_resumes_mid_frame() {
        let mut out = Outbox::default();
        out.push(Bytes::from_static(b"abcdef"));
        out.push(Bytes::from_static(b"gh"));
        let (mut sink, mut calls) = (Vec::new(), Vec::new());
        assert_eq!(
            out.write_with(take_up_to(&mut sink, 4, &mut calls))
                .unwrap(),
            0
        );
        assert_eq!(
            out.write_with(take_up_to(&mut sink, 3, &mut calls))
                .unwrap(),
            1
        );
        assert_eq!(out.len(), 1);
        assert_eq!(
            out.write_with(take_up_to(&mut sink, 9, &mut calls))
                .unwrap(),
            1
        );
        assert_eq!(sink, b"abcdefgh");
    }

    #[test]
    fn a_long_backlog_takes_several_calls_of_bounded_size() {
        let mut out = Outbox::default();
        for _ in 0..150 {
            out.push(Bytes::from_static(b"x"));
        }
        let (mut sink, mut calls) = (Vec::new(), Vec::new());
        while !out.is_empty() {
            out.write_with(take_up_to(&mut sink, usize::MAX, &mut calls))
                .unwrap();
        }
        assert_eq!(calls, [64, 64, 22]);
        assert_eq!(sink.len(), 150);
        assert!(out.frames.capacity() <= KEEP_CAPACITY);
    }

    #[test]
    fn would_block_and_zero_consume_nothing() {
        let mut out = Outbox::default();
        out.push(Bytes::from_static(b"abc"));
        out.push(Bytes::new());
        assert_eq!(out.len(), 1, "empty frames are not queued");
        let err = out
            .write_with(|_| Err(io::ErrorKind::WouldBlock.into()))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        let err = out.write_with(|_| Ok(0)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
        assert_eq!(out.len(), 1);
    }
}
