//! A latency histogram with the recorder's precision, for the scenarios'
//! own figures (round trips, time to first token, reconnect time...).

use std::time::Duration;

use hdrhistogram::Histogram;

use crate::result::{new_histogram, summarize, HistogramSummary, HIGHEST_US};

/// Durations in µs, 3 significant figures; one per task, merged at the end.
#[derive(Debug, Clone)]
pub struct Timing(Histogram<u64>);

impl Default for Timing {
    fn default() -> Self {
        Timing(new_histogram())
    }
}

impl Timing {
    pub fn record(&mut self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.record_us(us);
    }

    pub fn record_us(&mut self, us: u64) {
        // Auto-resizing histogram, values clamped: recording cannot fail.
        let _ = self.0.record(us.clamp(1, HIGHEST_US));
    }

    pub fn merge(&mut self, other: &Timing) {
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// Headline figures plus the encoded histogram, for `result.json`.
    pub fn summary(&self) -> HistogramSummary {
        summarize(&self.0).unwrap_or_else(|_| {
            summarize(&new_histogram()).expect("an empty histogram always serializes")
        })
    }
}
