//! Which latency a report shows for a wire.

use crate::result::{HistogramSummary, WireResult};

/// The latency a report shows for a wire: of the events received during
/// the hold when the result has it (the ramp's connection storm is not the
/// steady state), else of every event.
pub fn latency_of(w: &WireResult) -> &HistogramSummary {
    w.latency_hold_us.as_ref().unwrap_or(&w.latency_us)
}
