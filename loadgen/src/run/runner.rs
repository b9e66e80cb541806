//! Runs scenarios end to end: start (or find) the server, run each wire in
//! turn, collect a [`RunResult`]. A scenario loads the feed server (embedded
//! or external), any server given by URLs, or each of several stacks
//! (`stacks`); every wire goes through the same driver.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::gauge::ServerGauge;
use super::link::LinkRun;
use super::loaded::{drive_wire, Loaded, Placement};
use super::observer::Observer;
use super::options::RunOptions;
use super::server::{ServerSettings, StartedServer};
use super::source::Source;
use super::worker::TargetSpec;
use crate::client::AnyTarget;
use crate::measure::ProcessProbe;
use crate::result::{
    AnyServer, Environment, RunResult, Scenario, ScenarioResult, Section, ServerSetup, WireResult,
    SCHEMA_VERSION,
};
use crate::wire::Wire;

/// Runs every scenario; never fails: what went wrong is in `problems`.
pub async fn run_scenarios(
    name: &str,
    scenarios: &[Scenario],
    opts: &RunOptions,
    observer: &dyn Observer,
    cancel: CancellationToken,
) -> RunResult {
    let started_at = server::event::rfc3339(std::time::SystemTime::now());
    let mut problems = Vec::new();
    let mut results = Vec::new();
    for scenario in scenarios {
        if cancel.is_cancelled() {
            problems.push(format!("interrupted before scenario `{}`", scenario.name));
            break;
        }
        // A shard runs its block of the connections; its result records
        // that share, so the shards' results add up to the scenario.
        let ran = match Placement::of(scenario, opts) {
            Err(e) => Err(anyhow::anyhow!("--shard: {e}")),
            Ok((scenario, placed)) => {
                let scenario = &scenario;
                if !scenario.stacks.is_empty() {
                    super::stacks::run_stacks(scenario, placed, opts, observer, cancel.clone())
                        .await
                } else if let Some(any) = &scenario.any_server {
                    run_any(scenario, any, placed, opts, observer, cancel.clone())
                        .await
                        .map(|r| (vec![r], Vec::new()))
                } else {
                    run_scenario(scenario, placed, opts, observer, cancel.clone())
                        .await
                        .map(|r| (vec![r], Vec::new()))
                }
            }
        };
        match ran {
            Ok((ran, skipped)) => {
                problems.extend(
                    skipped
                        .into_iter()
                        .map(|p| format!("{}: {p}", scenario.name)),
                );
                for r in ran {
                    let label = match r.stack {
                        Some(stack) => format!("{} ({stack})", scenario.name),
                        None => scenario.name.clone(),
                    };
                    for w in &r.wires {
                        problems.extend(w.problems.iter().map(|p| format!("{label}: {p}")));
                    }
                    results.push(r);
                }
            }
            Err(e) => problems.push(format!("{}: {e:#}", scenario.name)),
        }
    }
    if cancel.is_cancelled() && !problems.iter().any(|p| p.contains("interrupted")) {
        problems.push("interrupted: the result holds what was measured until then".into());
    }
    RunResult {
        schema_version: SCHEMA_VERSION,
        tool: format!("loadgen {}", env!("CARGO_PKG_VERSION")),
        name: name.to_string(),
        started_at,
        finished_at: server::event::rfc3339(std::time::SystemTime::now()),
        complete: problems.is_empty(),
        problems,
        skipped: Vec::new(),
        environment: Environment::detect(),
        scenarios: results,
    }
}

async fn run_scenario(
    scenario: &Scenario,
    placed: Placement,
    opts: &RunOptions,
    observer: &dyn Observer,
    cancel: CancellationToken,
) -> anyhow::Result<ScenarioResult> {
    scenario.validate()?;
    let settings = ServerSettings {
        payload_bytes: scenario.payload_bytes,
        edge: scenario.edge().map_err(anyhow::Error::msg)?,
        ..ServerSettings::new(scenario.rate_hz, opts.workers)
    };
    // One lab for the scenario: every wire's server and connections run
    // over it; dropping it (also on an error below) removes it.
    let link = scenario.link.as_ref().map(LinkRun::start).transpose()?;
    let mut setup: Option<ServerSetup> = None;
    let mut wires = Vec::new();
    for wire in wires_to_run(scenario, opts, &settings).await? {
        if cancel.is_cancelled() {
            break;
        }
        // A fresh embedded server per wire: memory figures then never inherit
        // a heap another wire grew (the allocator keeps freed memory).
        let server = StartedServer::start_over(opts, &settings, link.as_ref()).await?;
        let place = Place {
            server: &server,
            link: link.as_ref(),
        };
        let result = run_on(
            place, scenario, wire, placed, opts, &mut setup, observer, &cancel,
        )
        .await;
        server.stop().await;
        let result = result?;
        observer.wire_finished(&result);
        wires.push(result);
    }
    let server = setup.ok_or_else(|| anyhow::anyhow!("interrupted before the first wire"))?;
    Ok(ScenarioResult {
        scenario: scenario.clone(),
        server,
        wires,
        link: link.as_ref().map(LinkRun::report),
        stack: None,
        section: Section::Feed,
    })
}

/// Where a wire runs: its server, and the link in between if any.
#[derive(Clone, Copy)]
struct Place<'a> {
    server: &'a StartedServer,
    link: Option<&'a LinkRun>,
}

/// A scenario against any server given by URLs: no `/stats`; its memory
/// and CPU from /proc when its process id is given.
async fn run_any(
    scenario: &Scenario,
    any: &AnyServer,
    placed: Placement,
    opts: &RunOptions,
    observer: &dyn Observer,
    cancel: CancellationToken,
) -> anyhow::Result<ScenarioResult> {
    scenario.validate()?;
    let target = AnyTarget::resolve(any).await?;
    let setup = ServerSetup {
        mode: "any-server".into(),
        http_url: any.shown_url().to_string(),
        https_url: None,
        // Not known to the load generator: another server's feed.
        rate_hz: 0.0,
        payload_bytes: 0,
        workers: None,
        edge: None,
    };
    observer.scenario_started(scenario, &setup);
    let loaded = Loaded {
        source: Source::Any(Arc::new(target)),
        gauge: match any.server_pid {
            Some(pid) => ServerGauge::Process(ProcessProbe::new(pid)),
            None => ServerGauge::Unmeasured,
        },
        worker_target: TargetSpec {
            http_url: any.shown_url().to_string(),
            https_url: None,
            ca_cert: any.ca_cert.clone(),
            sources: Vec::new(),
            any: Some(Box::new(any.clone())),
            through_edge: false,
        },
        placed,
        proxy: None,
        link: None,
    };
    let mut wires = Vec::new();
    for wire in scenario.wires_to_run() {
        if cancel.is_cancelled() {
            break;
        }
        let result = drive_wire(&loaded, scenario, wire, opts, observer, &cancel).await?;
        observer.wire_finished(&result);
        wires.push(result);
    }
    Ok(ScenarioResult {
        scenario: scenario.clone(),
        server: setup,
        wires,
        link: None,
        stack: None,
        section: Section::Feed,
    })
}

/// The scenario's wires. `all` (the four wires the feed server serves
/// itself) means the wires the target supports: through an edge (TLS only)
/// no h2c; WebSocket over HTTP/2 (ws-h2) when the target announces
/// SETTINGS_ENABLE_CONNECT_PROTOCOL, so a default run against actix stays
/// as it is. Wires named one by one run as named.
async fn wires_to_run(
    scenario: &Scenario,
    opts: &RunOptions,
    settings: &ServerSettings,
) -> anyhow::Result<Vec<Wire>> {
    if scenario.wires != Wire::ALL {
        return Ok(scenario.wires.clone());
    }
    if scenario.link.is_some() {
        // No edge over a link (refused), and the embedded server announces
        // no WebSocket over HTTP/2: the four wires it serves itself.
        return Ok(Wire::ALL.to_vec());
    }
    let server = StartedServer::start(opts, settings).await?;
    let announced = match (&server.target.tls, server.ca_cert(opts)) {
        (Some(tls), Some(ca)) => {
            edge::read_h2_settings(tls.addr, &tls.host, &ca, std::time::Duration::from_secs(10))
                .await
                .ok()
        }
        _ => None,
    };
    let through_edge = server.target.through_edge;
    server.stop().await;
    let mut wires: Vec<Wire> = Wire::ALL
        .into_iter()
        .filter(|w| !(through_edge && w.protocol() == server::wire::Protocol::H2c))
        .collect();
    if announced.is_some_and(|s| s.enable_connect_protocol) {
        wires.push(Wire::WsH2);
    }
    Ok(wires)
}

/// Runs one wire of a scenario against a started server.
#[allow(clippy::too_many_arguments)]
async fn run_on(
    place: Place<'_>,
    scenario: &Scenario,
    wire: Wire,
    placed: Placement,
    opts: &RunOptions,
    setup: &mut Option<ServerSetup>,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> anyhow::Result<WireResult> {
    let server = place.server;
    let target = &server.target;
    let probe = target.probe();
    let stats = probe.snapshot().await.map_err(|e| {
        anyhow::Error::new(e).context(format!(
            "asking {} for /stats (is it the feed server?)",
            target.http_url
        ))
    })?;
    if setup.is_none() {
        // An external server's feed is what its /stats says.
        let s = ServerSetup {
            rate_hz: stats.rate_hz,
            payload_bytes: stats.payload_bytes,
            ..server.setup.clone()
        };
        observer.scenario_started(scenario, &s);
        *setup = Some(s);
    }
    let loaded = Loaded {
        source: Source::Feed(Arc::new(target.clone())),
        gauge: ServerGauge::Stats(Box::new(probe)),
        worker_target: TargetSpec {
            http_url: target.http_url.clone(),
            https_url: target.https_url.clone(),
            ca_cert: server.ca_cert(opts),
            sources: place.link.map(LinkRun::client_addrs).unwrap_or_default(),
            any: None,
            through_edge: target.through_edge,
        },
        placed,
        proxy: server.edge(),
        link: place.link,
    };
    drive_wire(&loaded, scenario, wire, opts, observer, cancel).await
}
