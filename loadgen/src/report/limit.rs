//! EXTENSION POINT: the connection-limit scenario.
//!
//! When the run holds a connection-limit scenario (its own issue), its
//! section goes here: a table with one row per wire or configuration
//! (connections or streams reached, what stalled, memory at the limit) and
//! its chart (draw it in `charts.rs` with the same helpers). Return those
//! blocks, starting with a level-2 heading, from [`blocks`]:
//! `report::document_of` already calls it for every scenario, after the
//! feed sections, and both renderers handle every [`Block`] kind. Then add
//! the section's name to `extras::SHOWN`, so the "Not shown in this report"
//! list stops naming it, and add a fixture holding such a scenario to the
//! golden tests.
//!
//! Until then this returns nothing, and the report lists the section as not
//! shown.

use super::document::Block;
use crate::result::ScenarioResult;

/// The connection-limit blocks for a scenario: none yet (see the module doc).
pub fn blocks(_scenario: &ScenarioResult) -> Vec<Block> {
    Vec::new()
}
