//! The six-connection limit: a browser model that opens SSE streams the way
//! Chromium does, against the real server, so its counts can be trusted at
//! scales no browser can be driven to.
//!
//! What Chromium does (measured here with Chromium 156): over HTTP/1.1 at most
//! 6 connections per group (profile, scheme, host, port), shared by every
//! tab of a profile, the rest queued first come first served, silently,
//! fetches included; over HTTP/2 one connection per origin carrying up to
//! the server's SETTINGS_MAX_CONCURRENT_STREAMS (none announced: 100; at
//! most 256); WebSockets outside the pools (at most 255 per page), each on
//! a connection of its own, unless the page's h2 origin announced
//! SETTINGS_ENABLE_CONNECT_PROTOCOL (HAProxy at the edge does): then a
//! `wss://` WebSocket is a stream on that connection (RFC 8441).
//!
//! The model keeps exactly that bookkeeping ([`pool`]) and really connects
//! ([`origin`]): a stream holds its slot while open, a queued request has
//! no socket, and a closed stream hands its slot to the oldest waiter. Per
//! configuration (`result::LimitCase`) it reports streams asked, opened, pending;
//! the time to first event per stream; what a plain GET to the same origin
//! costs while the streams are held; and WebSockets opened alongside.

mod model;
pub mod origin;
pub mod pool;

use std::time::Duration;

pub use model::{host_names, run_case, Limits, WS_PER_PAGE};

use crate::result::{
    LimitCase, LimitResult, LimitSpec, Protocol, RunResult, Scenario, ScenarioResult, Section,
    BROWSER_H2_STREAM_CAP,
};
use crate::run::{RunOptions, ServerSettings, StartedServer};
use crate::wire::Wire;

/// Runs every case of `spec` against one server.
pub async fn run(spec: &LimitSpec, opts: &RunOptions) -> anyhow::Result<ScenarioResult> {
    spec.validate().map_err(anyhow::Error::msg)?;
    let settings = ServerSettings {
        edge: spec.edge().map_err(anyhow::Error::msg)?,
        ..ServerSettings::new(spec.rate_hz, opts.workers)
    };
    let server = StartedServer::start(opts, &settings).await?;
    let target = server.target.clone();
    let settings = match target.https_h2("/") {
        Some(origin) => match origin::announced_settings(&origin).await {
            Ok(v) => Some(v),
            Err(e) => {
                tracing::warn!(error = %e, "could not read the server's HTTP/2 SETTINGS");
                None
            }
        },
        None => None,
    };
    let announced = settings.and_then(|s| s.max_concurrent_streams);
    let h2_streams = announced
        .unwrap_or(spec.h2_default_streams)
        .min(BROWSER_H2_STREAM_CAP) as usize;
    let limits = Limits {
        h1_per_host: spec.h1_per_host,
        h2_streams: h2_streams.max(1),
        ws_over_h2: settings.is_some_and(|s| s.enable_connect_protocol),
    };
    let settle = Duration::from_millis(spec.settle_ms);
    let cap = Duration::from_millis(spec.get_cap_ms);
    let mut cases = Vec::new();
    for case in &spec.cases {
        cases.push(run_case(&target, case, limits, settle, cap).await);
    }
    let setup = server.setup.clone();
    server.stop().await;
    let mut wires: Vec<Wire> = spec.cases.iter().map(|c| c.protocol.wire()).collect();
    if spec.cases.iter().any(|c| c.ws_per_tab > 0) {
        wires.push(Wire::WsH1);
    }
    wires.sort();
    wires.dedup();
    let most = cases.iter().map(|c| c.streams_asked).max().unwrap_or(0);
    Ok(ScenarioResult {
        scenario: Scenario::extra("limit", wires, most, spec.rate_hz, 0.0),
        server: setup,
        wires: Vec::new(),
        link: None,
        stack: None,
        section: Section::Limit(LimitResult {
            spec: spec.clone(),
            h2_announced_max_streams: announced,
            h2_streams_in_force: limits.h2_streams,
            h2_enable_connect_protocol: limits.ws_over_h2,
            cases,
        }),
    })
}

/// Runs `specs` one after another and adds their results (and problems)
/// to `result`.
pub async fn run_into(
    specs: &[LimitSpec],
    opts: &RunOptions,
    result: &mut RunResult,
    cancel: &tokio_util::sync::CancellationToken,
) {
    for spec in specs {
        if cancel.is_cancelled() {
            result
                .problems
                .push("interrupted before scenario `limit`".into());
            break;
        }
        match run(spec, opts).await {
            Ok(r) => {
                if let Some(l) = r.limit() {
                    result.problems.extend(l.cases.iter().flat_map(|c| {
                        c.problems.iter().map(|p| format!("limit {}: {p}", c.label))
                    }));
                }
                result.scenarios.push(r);
            }
            Err(e) => result.problems.push(format!("limit: {e:#}")),
        }
    }
    result.complete = result.problems.is_empty();
}

/// The suite's limit matrix: 1 to 12 streams over 1 and 2 tabs on
/// HTTP/1.1 and h2, 120 streams on h2 (past the 100 default), a second
/// profile, and the two workarounds: a second host name and one shared
/// stream per profile. One WebSocket per tab rides alongside.
pub fn suite() -> LimitSpec {
    let mut cases = Vec::new();
    for protocol in [Protocol::H1, Protocol::H2] {
        for (tabs, per_tab) in [
            (1, [1, 2, 4, 6, 7, 8, 10, 12].as_slice()),
            (2, &[1, 2, 3, 4, 5, 6]),
        ] {
            for &n in per_tab {
                cases.push(LimitCase {
                    ws_per_tab: 1,
                    ..LimitCase::new(protocol, tabs, n)
                });
            }
        }
    }
    cases.push(LimitCase::new(Protocol::H2, 1, 120));
    cases.push(LimitCase {
        profiles: 2,
        ..LimitCase::new(Protocol::H1, 1, 8)
    });
    for (tabs, per_tab) in [(1, 12), (2, 6)] {
        cases.push(LimitCase {
            hosts: 2,
            ..LimitCase::new(Protocol::H1, tabs, per_tab)
        });
    }
    for tabs in [2, 4] {
        cases.push(LimitCase {
            shared_stream: true,
            ..LimitCase::new(Protocol::H1, tabs, 3)
        });
    }
    LimitSpec {
        cases,
        get_cap_ms: 1000,
        ..LimitSpec::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_suite_is_valid_and_covers_both_workarounds() {
        let s = suite();
        assert!(s.cases.iter().all(|c| c.validate().is_ok()));
        for w in ["none", "sharding", "shared-stream"] {
            assert!(s.cases.iter().any(|c| c.workaround() == w), "{w}");
        }
        assert!(s
            .cases
            .iter()
            .any(|c| c.protocol == Protocol::H2 && c.tabs == 2));
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<LimitSpec>(&json).unwrap(), s);
    }

    #[test]
    fn bad_cases_say_why() {
        let mut c = LimitCase::new(Protocol::H2, 1, 4);
        c.hosts = 3;
        assert!(c.validate().unwrap_err().contains("two hosts"));
        assert!(LimitCase::new(Protocol::H1, 0, 4).validate().is_err());
        assert_eq!(LimitCase::new(Protocol::H1, 2, 4).label(), "h1 2x4");
    }
}
