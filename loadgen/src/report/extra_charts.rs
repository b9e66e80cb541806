//! Charts of the scenarios beyond the feed: chat (time to first token and
//! the gap between tokens), echo (round-trip time per wire at each client
//! count) and faults (reconnect and recovery time per wire, within the
//! replay ring and beyond it). Grouped bars, one group per wire, each value
//! written on its bar, so a reader gets the figure without the table.

use super::charts::{bars, labelled_bars_under};
use super::document::Chart;
use super::error::{drawn, ReportError};
use super::format::us;
use crate::result::{ChatResult, EchoResult, FaultWire, FaultsResult, HistogramSummary};
use crate::wire::Wire;

fn shown(v: f64) -> String {
    us(v as u64)
}

fn p50_p99(h: &HistogramSummary) -> Vec<Option<f64>> {
    vec![Some(h.p50 as f64), Some(h.p99 as f64)]
}

/// Time to first token and inter-token gap per wire.
pub fn chat(c: &ChatResult, stem: &str) -> Result<Vec<Chart>, ReportError> {
    let of = |f: fn(&crate::result::ChatWire) -> &HistogramSummary| {
        c.wires
            .iter()
            .map(|w| (w.wire, p50_p99(f(w))))
            .collect::<Vec<_>>()
    };
    Ok(vec![
        drawn(
            format!("{stem}-ttft.svg"),
            "Chat: time to first token per wire (p50, p99)".into(),
            bars(
                &["p50", "p99"],
                "question sent to first token",
                &of(|w| &w.ttft_us),
                shown,
            ),
        )?,
        drawn(
            format!("{stem}-inter-token.svg"),
            "Chat: gap between tokens per wire (p50, p99)".into(),
            bars(
                &["p50", "p99"],
                "inter-token gap",
                &of(|w| &w.inter_token_us),
                shown,
            ),
        )?,
    ])
}

/// Round-trip time per wire, one chart per client count.
pub fn echo(e: &EchoResult, stem: &str) -> Result<Vec<Chart>, ReportError> {
    let mut levels: Vec<usize> = e.levels.iter().map(|l| l.clients).collect();
    levels.sort_unstable();
    levels.dedup();
    levels
        .into_iter()
        .map(|clients| {
            let groups: Vec<(Wire, Vec<Option<f64>>)> = e
                .levels
                .iter()
                .filter(|l| l.clients == clients)
                .map(|l| (l.wire, p50_p99(&l.rtt_us)))
                .collect();
            drawn(
                format!("{stem}-rtt-{clients}.svg"),
                format!("Echo: round-trip time per wire at {clients} clients (p50, p99)"),
                bars(&["p50", "p99"], "round-trip time", &groups, shown),
            )
        })
        .collect()
}

/// Reconnect and recovery time per wire, within the ring and beyond it.
pub fn faults(f: &FaultsResult, stem: &str) -> Result<Vec<Chart>, ReportError> {
    let mut wires: Vec<Wire> = f.wires.iter().map(|w| w.wire).collect();
    wires.dedup();
    let phase =
        |wire: Wire, phase: &str| f.wires.iter().find(|w| w.wire == wire && w.phase == phase);
    // The medians only: within and beyond differ tenfold, and p99 sits
    // beside p50 in the table.
    let series = ["within the replay ring", "beyond it"];
    let of = |h: fn(&FaultWire) -> &HistogramSummary| {
        wires
            .iter()
            .map(|wire| {
                let values = ["within", "beyond"]
                    .iter()
                    .map(|p| phase(*wire, p).map(|w| h(w).p50 as f64))
                    .collect();
                (wire.name(), values)
            })
            .collect::<Vec<(&str, Vec<Option<f64>>)>>()
    };
    Ok(vec![
        drawn(
            format!("{stem}-reconnect.svg"),
            "Faults: reconnect time per wire (p50), within the replay ring and beyond it".into(),
            labelled_bars_under(
                &series,
                "break to the resumed stream",
                &of(|w| &w.reconnect_us),
                shown,
                1.5,
            ),
        )?,
        drawn(
            format!("{stem}-recovery.svg"),
            "Faults: recovery time per wire (p50, break to the first event after it)".into(),
            labelled_bars_under(
                &series,
                "break to the first event after it",
                &of(|w| &w.recovery_us),
                shown,
                1.5,
            ),
        )?,
    ])
}
