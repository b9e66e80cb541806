//! What a connection measures while it runs: the feed's [`Recorder`]
//! (latency, connect and first-event histograms, counters, events per
//! second), each connection's [`IdTracker`] (lost, late, duplicated ids) and
//! [`Timing`], a plain duration histogram for the scenarios' own figures
//! (round trips, time to first token, reconnect time).
//!
//! Everything here merges exactly and turns into the `result` layer's
//! serialisable snapshots; nothing here knows how connections are opened.

mod ids;
mod process;
mod recorder;
mod timing;

pub use ids::{GapOutcome, IdOutcome, IdTracker, MAX_HOLES};
pub use process::{ProcessFigures, ProcessProbe};
pub use recorder::{Arrival, Recorder, DEFAULT_STALL, MAX_SECONDS};
pub use timing::Timing;
