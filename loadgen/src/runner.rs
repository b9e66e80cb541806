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
    use anyhow::Context as _;
    scenario.validate()?;
    let embedded = match &opts.server {
        ServerChoice::InProcess => {
            let mut c = server::ServerConfig::ephemeral();
            c.rate = scenario.rate_hz;
            c.payload_bytes = scenario.payload_bytes;
            c.workers = opts.workers;
            c.shutdown_timeout = Duration::from_secs(3);
            Some(EmbeddedServer::in_process(c)?)
        }
        ServerChoice::Child { exe } => Some(
            EmbeddedServer::child(
                exe.clone(),
                child_flags(scenario.rate_hz, scenario.payload_bytes, opts.workers),
            )
            .await?,
        ),
        ServerChoice::External { .. } => None,
    };
    let (target, mode) = match (&embedded, &opts.server) {
        (Some(e), _) => {
            let r = e.ready();
            (
                Target::embedded(r.http_addr, r.https_addr, r.cert_path)?,
                e.mode(),
            )
        }
        (
            None,
            ServerChoice::External {
                http_url,
                https_url,
                trust,
                allow_remote,
            },
        ) => (
            Target::external(http_url, https_url.as_deref(), trust.clone(), *allow_remote)
                .await
                .context("checking the target")?,
            "external",
        ),
        (None, _) => unreachable!("only an external choice has no embedded server"),
    };
    let probe = ServerProbe::new(target.http_addr);
    let stats = probe.snapshot().await.with_context(|| {
        format!(
            "asking {} for /stats (is it the feed server?)",
            target.http_url
        )
    })?;
    let setup = ServerSetup {
        mode: mode.to_string(),
        http_url: target.http_url.clone(),
        https_url: target.https_url.clone(),
        rate_hz: stats.rate_hz,
        payload_bytes: stats.payload_bytes,
        workers: opts.workers,
    };
    observer.scenario_started(scenario, &setup);
    let target = Arc::new(target);
    let mut wires = Vec::new();
    for &wire in &scenario.wires {
        if cancel.is_cancelled() {
            break;
        }
        let live = Arc::new(Live::default());
        observer.wire_started(scenario, wire, live.clone());
        let outcome = run_wire(
            target.clone(),
            scenario.wire_spec(wire, opts.retry),
            &probe,
            live,
            cancel.clone(),
        )
        .await;
        let result = WireResult::from_outcome(&outcome)?;
        observer.wire_finished(&result);
        wires.push(result);
    }
    if let Some(e) = embedded {
        e.stop().await;
    }
    Ok(ScenarioResult {
        scenario: scenario.clone(),
        server: setup,
        wires,
    })
}
