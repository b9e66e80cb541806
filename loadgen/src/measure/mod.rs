//! What a connection measures while it runs: the feed's [`Recorder`]
//! (latency, connect and first-event histograms, counters, events per
//! second), each connection's [`IdTracker`] (lost, late, duplicated ids) and
//! [`Timing`], a plain duration histogram for the scenarios' own figures
//! (round trips, time to first token, reconnect time). Over an emulated
//! link, a [`LinkWatch`] per stream and a [`LinkRecorder`] per shard add
//! stalls (`stalls`: head-of-line blocking) and recovery from outages
//! (`recovery`).
//!
//! A connection gathers its events in a [`RecordBatch`] and hands it to a
//! shared recorder once per batch, not once per event.
//!
//! Everything here merges exactly and turns into the `result` layer's
//! serialisable snapshots; nothing here knows how connections are opened.

mod batch;
mod ids;
mod network;
mod process;
mod recorder;
mod recovery;
mod stalls;
mod timing;

pub use batch::{Arrival, RecordBatch, BATCH_EVENTS, FLUSH_AFTER_NS};
pub use ids::{GapOutcome, IdOutcome, IdTracker, MAX_HOLES};
pub use network::{add_network, LinkRecorder, LinkWatch};
pub use process::{ProcessFigures, ProcessProbe};
pub use recorder::{Recorder, DEFAULT_STALL, MAX_SECONDS};
pub use recovery::{OutageTally, OutageWatch, Recovered};
pub use stalls::{add_summaries, Stall, StallLog, StallSpan, StallWatch, MAX_KEPT_STALLS};
pub use timing::Timing;
