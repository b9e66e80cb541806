//! Runs scenarios end to end: start (or find) the server, run each wire in
//! turn, collect a [`RunResult`].

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::driver::{run_wire, Live};
use crate::embedded::{child_flags, EmbeddedServer};
use crate::probe::ServerProbe;
use crate::result::{
    Environment, RunResult, ScenarioResult, ServerSetup, WireResult, SCHEMA_VERSION,
};
use crate::scenario::Scenario;
use crate::target::Target;
use crate::tls_config::Trust;
use crate::wire::Wire;
use crate::workers::{run_wire_in_processes, TargetSpec};

/// Which server to load.
#[derive(Debug, Clone)]
pub enum ServerChoice {
    /// The server library in this process (used by tests).
    InProcess,
    /// The embedded server in a child process running `exe serve`.
    Child { exe: PathBuf },
    /// A server already running somewhere on loopback.
    External {
        http_url: String,
        https_url: Option<String>,
        trust: Trust,
        allow_remote: bool,
    },
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub server: ServerChoice,
    /// Server worker threads (embedded servers only).
    pub workers: Option<usize>,
    /// Reconnect delay before the server sends `retry:`.
    pub retry: Duration,
    /// This program, to start worker processes (`loadgen worker`).
    pub worker_exe: Option<PathBuf>,
}

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
    let mut setup: Option<ServerSetup> = None;
    let mut wires = Vec::new();
    for &wire in &scenario.wires {
        if cancel.is_cancelled() {
            break;
        }
        // A fresh embedded server per wire: memory figures then never inherit
        // a heap another wire grew (the allocator keeps freed memory).
        let (embedded, target, mode) = connect_server(scenario, opts).await?;
        let probe = ServerProbe::new(target.http_addr);
        let stats = match probe.snapshot().await {
            Ok(s) => s,
            Err(e) => {
                if let Some(e) = embedded {
                    e.stop().await;
                }
                return Err(anyhow::Error::new(e).context(format!(
                    "asking {} for /stats (is it the feed server?)",
                    target.http_url
                )));
            }
        };
        if setup.is_none() {
            let s = ServerSetup {
                mode: mode.to_string(),
                http_url: target.http_url.clone(),
                https_url: target.https_url.clone(),
                rate_hz: stats.rate_hz,
                payload_bytes: stats.payload_bytes,
                workers: opts.workers,
            };
            observer.scenario_started(scenario, &s);
            setup = Some(s);
        }
        let live = Arc::new(Live::default());
        observer.wire_started(scenario, wire, live.clone());
        let spec = scenario.wire_spec(wire, opts.retry);
        let processes = processes_for(scenario, opts);
        let outcome = match (&opts.worker_exe, processes) {
            (Some(exe), p) if p > 1 => {
                let spec_target = TargetSpec {
                    http_url: target.http_url.clone(),
                    https_url: target.https_url.clone(),
                    ca_cert: target_ca(&embedded, opts),
                };
                run_wire_in_processes(exe.clone(), spec_target, spec, p, &probe, live)
                    .await
                    .map(|mut o| {
                        o.processes = p;
                        o
                    })
            }
            _ => Ok(run_wire(Arc::new(target), spec, &probe, live, cancel.clone()).await),
        };
        let outcome = match outcome {
            Ok(o) => o,
            Err(e) => {
                if let Some(e) = embedded {
                    e.stop().await;
                }
                return Err(e.context(format!("{wire} over {processes} processes")));
            }
        };
        if let Some(e) = embedded {
            e.stop().await;
        }
        let result = WireResult::from_outcome(&outcome)?;
        observer.wire_finished(&result);
        wires.push(result);
    }
    let server = setup.ok_or_else(|| anyhow::anyhow!("interrupted before the first wire"))?;
    Ok(ScenarioResult {
        scenario: scenario.clone(),
        server,
        wires,
        chat: None,
        echo: None,
        faults: None,
        limit: None,
    })
}

/// Starts the embedded server for a scenario (or checks the external one).
async fn connect_server(
    scenario: &Scenario,
    opts: &RunOptions,
) -> anyhow::Result<(Option<EmbeddedServer>, Target, &'static str)> {
    use anyhow::Context as _;
    match &opts.server {
        ServerChoice::InProcess => {
            let mut c = server::ServerConfig::ephemeral();
            c.rate = scenario.rate_hz;
            c.payload_bytes = scenario.payload_bytes;
            c.workers = opts.workers;
            c.shutdown_timeout = Duration::from_secs(3);
            let e = EmbeddedServer::in_process(c)?;
            let r = e.ready();
            let t = Target::embedded(r.http_addr, r.https_addr, r.cert_path)?;
            Ok((Some(e), t, "in-process"))
        }
        ServerChoice::Child { exe } => {
            let flags = child_flags(scenario.rate_hz, scenario.payload_bytes, opts.workers);
            let e = EmbeddedServer::child(exe.clone(), flags).await?;
            let r = e.ready();
            let t = Target::embedded(r.http_addr, r.https_addr, r.cert_path)?;
            Ok((Some(e), t, "child-process"))
        }
        ServerChoice::External {
            http_url,
            https_url,
            trust,
            allow_remote,
        } => {
            let t = Target::external(http_url, https_url.as_deref(), trust.clone(), *allow_remote)
                .await
                .context("checking the target")?;
            Ok((None, t, "external"))
        }
    }
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

/// The certificate a worker process must trust.
fn target_ca(embedded: &Option<EmbeddedServer>, opts: &RunOptions) -> Option<PathBuf> {
    match (embedded, &opts.server) {
        (Some(e), _) => e.ready().cert_path,
        (
            None,
            ServerChoice::External {
                trust: Trust::CaFile(p),
                ..
            },
        ) => Some(p.clone()),
        _ => None,
    }
}
