//! [`LinkReport`]: a run's link as result.json records it: the settings in
//! plain units and the emulator's own figures.

use serde::{Deserialize, Serialize};

use crate::spec::LinkSpec;
use crate::stats::EmulatorReport;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LinkReport {
    /// One-way delay per direction (RTT = 2 × this).
    pub delay_ms: f64,
    pub jitter_ms: f64,
    /// Per-packet loss per direction, as a fraction (0.01 = 1 %).
    pub loss: f64,
    /// Bottleneck rate per direction; absent when unlimited.
    pub rate_bps: Option<u64>,
    /// Longest wait at the bottleneck before a tail drop.
    pub queue_ms: f64,
    pub reorder: bool,
    pub outages: Vec<OutageReport>,
    pub emulator: EmulatorReport,
}

/// An outage: the link was down from `start_s` after the schedule began,
/// for `duration_s`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OutageReport {
    pub start_s: f64,
    pub duration_s: f64,
}

impl LinkReport {
    pub fn new(spec: &LinkSpec, emulator: EmulatorReport) -> Self {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
        LinkReport {
            delay_ms: ms(spec.delay),
            jitter_ms: ms(spec.jitter),
            loss: spec.loss_fraction(),
            rate_bps: spec.rate_bps,
            queue_ms: ms(spec.queue),
            reorder: spec.reorder,
            outages: spec
                .outages
                .iter()
                .map(|o| OutageReport {
                    start_s: o.start.as_secs_f64(),
                    duration_s: o.duration.as_secs_f64(),
                })
                .collect(),
            emulator,
        }
    }
}
