//! Runs scenarios end to end: start (or find) the server, run each wire in
//! turn, collect a [`RunResult`].

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::driver::run_wire;
use super::live::Live;
use super::options::RunOptions;
use super::server::{ServerSettings, StartedServer};
use super::spec::WireSpec;
use super::worker::TargetSpec;
use super::workers::run_wire_in_processes;
use crate::client::ServerProbe;
use crate::result::{
    Environment, RunResult, Scenario, ScenarioResult, Section, ServerSetup, WireResult,
    SCHEMA_VERSION,
};
use crate::wire::Wire;

/// Hooks for a progress view; the binary draws, the library only reports.
pub trait Observer: Send + Sync {
    fn scenario_started(&self, _scenario: &Scenario, _server: &ServerSetup) {}
    fn wire_started(&self, _scenario: &Scenario, _wire: Wire, _live: Arc<Live>) {}
    fn wire_finished(&self, _result: &WireResult) {}
}

/// An observer that reports nothing.
pub struct Silent;
impl Observer for Silent {}

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
        match run_scenario(scenario, opts, observer, cancel.clone()).await {
            Ok(r) => {
                for w in &r.wires {
                    problems.extend(w.problems.iter().map(|p| format!("{}: {p}", scenario.name)));
                }
                results.push(r);
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
        environment: Environment::detect(),
        scenarios: results,
    }
}

async fn run_scenario(
    scenario: &Scenario,
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
    let mut setup: Option<ServerSetup> = None;
    let mut wires = Vec::new();
    for wire in wires_to_run(scenario, opts, &settings).await? {
        if cancel.is_cancelled() {
            break;
        }
        // A fresh embedded server per wire: memory figures then never inherit
        // a heap another wire grew (the allocator keeps freed memory).
        let server = StartedServer::start(opts, &settings).await?;
        let result = run_on(&server, scenario, wire, opts, &mut setup, observer, &cancel).await;
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
async fn run_on(
    server: &StartedServer,
    scenario: &Scenario,
    wire: Wire,
    opts: &RunOptions,
    setup: &mut Option<ServerSetup>,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> anyhow::Result<WireResult> {
    let target = &server.target;
    let probe = ServerProbe::new(target.http_addr);
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
    let live = Arc::new(Live::default());
    observer.wire_started(scenario, wire, live.clone());
    let spec = WireSpec::for_scenario(scenario, wire, opts.retry).map_err(anyhow::Error::msg)?;
    let processes = processes_for(scenario, opts);
    let outcome = match (&opts.worker_exe, processes) {
        (Some(exe), p) if p > 1 => {
            let spec_target = TargetSpec {
                http_url: target.http_url.clone(),
                https_url: target.https_url.clone(),
                ca_cert: server.ca_cert(opts),
                through_edge: target.through_edge,
            };
            let mut o = run_wire_in_processes(
                exe.clone(),
                spec_target,
                spec,
                p,
                &probe,
                server.edge(),
                live,
            )
            .await
            .map_err(|e| e.context(format!("{wire} over {processes} processes")))?;
            o.processes = p;
            o
        }
        _ => {
            run_wire(
                Arc::new(target.clone()),
                spec,
                &probe,
                server.edge(),
                live,
                cancel.clone(),
            )
            .await
        }
    };
    Ok(outcome.to_result()?)
}

/// Processes for a wire: as asked, or as many as the open-file limit needs
/// (each process keeps about 1,000 descriptors in reserve).
fn processes_for(scenario: &Scenario, opts: &RunOptions) -> usize {
    if let Some(p) = scenario.processes {
        return p.max(1);
    }
    if opts.worker_exe.is_none() {
        return 1;
    }
    let limit = rlimit::Resource::NOFILE
        .get()
        .map_or(1024, |(soft, _)| soft) as usize;
    let usable = limit.saturating_sub(1_000).max(100);
    scenario.connections.div_ceil(usable).max(1)
}
