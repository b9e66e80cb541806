//! The stacks side by side (`--stacks actix,bare,node`): each in a child
//! process of its own, started fresh for every wire, loaded with the same
//! connections, rate and client, and measured the same way: memory and CPU
//! from /proc of its process (only actix has `/stats`), loss from holes in
//! each connection's ids, the protocol from the handshake.
//!
//! - actix: this program's `serve` (the embedded server's child).
//! - bare: this program's hidden `serve-bare`, the `bare` crate's library,
//!   so nothing else needs building.
//! - node: `node baselines/node/server.js`, found from the current folder
//!   upwards (or `WORKBENCH_NODE_BASELINE`); without `node` or its
//!   packages the stack is skipped, saying what to install.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::gauge::ServerGauge;
use super::loaded::{drive_wire, Loaded, Placement};
use super::observer::Observer;
use super::options::{RunOptions, ServerChoice};
use super::server::{ready_line, EmbeddedServer, ServerSettings};
use super::source::Source;
use super::worker::TargetSpec;
use crate::client::Target;
use crate::measure::ProcessProbe;
use crate::result::{Scenario, ScenarioResult, Section, ServerSetup, Stack};

/// How to install what the Node baseline needs.
pub const NODE_INSTALL: &str = "apt-get install -y nodejs npm && npm ci --prefix baselines/node";
/// Overrides where the Node baseline's folder is.
pub const NODE_DIR_VAR: &str = "WORKBENCH_NODE_BASELINE";
/// How long a stack may take to stop before it is killed.
const STOP_WAIT: Duration = Duration::from_secs(8);

/// The ready line of the baselines: `{"port":N,"pid":P}`.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct BaselineReady {
    pub port: u16,
    pub pid: u32,
}

/// A stack's server, running in a child process.
pub struct StackServer {
    pub stack: Stack,
    pub target: Target,
    pub pid: u32,
    process: StackProcess,
}

enum StackProcess {
    Actix(EmbeddedServer),
    Baseline(tokio::process::Child),
}

impl StackServer {
    /// Starts `stack` with the scenario's feed; `exe` is this program.
    pub async fn start(
        stack: Stack,
        exe: &Path,
        settings: &ServerSettings,
    ) -> anyhow::Result<StackServer> {
        match stack {
            Stack::Actix => {
                let server = EmbeddedServer::child(exe.to_path_buf(), settings.flags()).await?;
                let ready = server.ready();
                let target = Target::embedded(ready.http_addr, ready.https_addr, ready.cert_path)?;
                Ok(StackServer {
                    stack,
                    target,
                    pid: ready.pid,
                    process: StackProcess::Actix(server),
                })
            }
            Stack::Bare => {
                let mut command = tokio::process::Command::new(exe);
                command.arg("serve-bare").args(bare_flags(settings));
                baseline(stack, command).await
            }
            Stack::Node => {
                let dir = node_baseline().map_err(anyhow::Error::msg)?;
                if settings.payload_bytes > 0 {
                    anyhow::bail!("the Node baseline pads no payload: run it with payload_bytes 0");
                }
                let mut command = tokio::process::Command::new("node");
                command.current_dir(&dir).arg("server.js").args([
                    "--port".to_string(),
                    "0".into(),
                    "--rate".into(),
                    settings.rate_hz.to_string(),
                ]);
                baseline(stack, command).await
            }
        }
    }

    /// Stops it: gracefully (stdin closed), then by force.
    pub async fn stop(self) {
        match self.process {
            StackProcess::Actix(server) => server.stop().await,
            StackProcess::Baseline(mut child) => {
                drop(child.stdin.take());
                if tokio::time::timeout(STOP_WAIT, child.wait()).await.is_err() {
                    let _ = child.kill().await;
                }
            }
        }
    }
}

/// The `serve-bare` flags for a scenario's feed.
fn bare_flags(settings: &ServerSettings) -> Vec<String> {
    let mut flags = vec![
        "--port".to_string(),
        "0".into(),
        "--rate".into(),
        settings.rate_hz.to_string(),
        "--payload-bytes".into(),
        settings.payload_bytes.to_string(),
    ];
    if let Some(w) = settings.workers {
        flags.extend(["--workers".into(), w.to_string()]);
    }
    flags
}

/// Spawns a baseline and waits for its ready line.
async fn baseline(
    stack: Stack,
    mut command: tokio::process::Command,
) -> anyhow::Result<StackServer> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("starting the {stack} baseline"))?;
    let ready: BaselineReady = ready_line(&mut child)
        .await
        .with_context(|| format!("waiting for the {stack} baseline to listen"))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, ready.port));
    Ok(StackServer {
        stack,
        target: Target::embedded(addr, None, None)?,
        pid: ready.pid,
        process: StackProcess::Baseline(child),
    })
}

/// The Node baseline's folder, with `node` runnable and its packages
/// installed; otherwise what is missing and how to install it.
pub fn node_baseline() -> Result<PathBuf, String> {
    let dir = find_node_dir().ok_or_else(|| {
        format!(
            "baselines/node/server.js not found from {} upwards (run from the repository, or set {NODE_DIR_VAR})",
            std::env::current_dir().map_or_else(|_| "here".into(), |d| d.display().to_string())
        )
    })?;
    let missing = match std::process::Command::new("node").arg("--version").output() {
        Err(e) => Some(format!("`node` cannot run ({e})")),
        Ok(out) if !out.status.success() => Some("`node --version` failed".to_string()),
        Ok(_)
            if !["express", "ws"]
                .iter()
                .all(|m| dir.join("node_modules").join(m).is_dir()) =>
        {
            Some(format!(
                "{} has no node_modules (express, ws)",
                dir.display()
            ))
        }
        Ok(_) => None,
    };
    match missing {
        Some(what) => Err(format!("{what} (install: {NODE_INSTALL})")),
        None => Ok(dir),
    }
}

fn find_node_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(NODE_DIR_VAR) {
        return Some(PathBuf::from(dir));
    }
    let has_server = |d: &Path| d.join("server.js").is_file();
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .map(|a| a.join("baselines").join("node"))
        .find(|d| has_server(d))
        .or_else(|| {
            // Built from the repository: the baseline is beside the crate.
            let built = Path::new(env!("CARGO_MANIFEST_DIR")).join("../baselines/node");
            has_server(&built).then_some(built)
        })
}

/// Runs `scenario` once per stack; a stack that cannot run (Node absent)
/// is skipped with the reason, and the others run.
pub async fn run_stacks(
    scenario: &Scenario,
    placed: Placement,
    opts: &RunOptions,
    observer: &dyn Observer,
    cancel: CancellationToken,
) -> anyhow::Result<(Vec<ScenarioResult>, Vec<String>)> {
    scenario.validate()?;
    let ServerChoice::Child { exe } = &opts.server else {
        anyhow::bail!(
            "--stacks starts every stack in its own child process: it cannot be combined with --target or --in-process"
        );
    };
    let settings = ServerSettings {
        payload_bytes: scenario.payload_bytes,
        ..ServerSettings::new(scenario.rate_hz, opts.workers)
    };
    let mut results = Vec::new();
    let mut skipped = Vec::new();
    for &stack in &scenario.stacks {
        if cancel.is_cancelled() {
            break;
        }
        if stack == Stack::Node {
            if let Err(why) = node_baseline() {
                skipped.push(format!("stack node skipped: {why}"));
                continue;
            }
        }
        match run_stack(
            stack, exe, &settings, scenario, placed, opts, observer, &cancel,
        )
        .await
        {
            Ok(r) => results.push(r),
            Err(e) => skipped.push(format!("stack {stack}: {e:#}")),
        }
    }
    Ok((results, skipped))
}

/// One stack: a fresh server per wire (memory figures never inherit a
/// heap another wire grew), every wire the stack serves.
#[allow(clippy::too_many_arguments)]
async fn run_stack(
    stack: Stack,
    exe: &Path,
    settings: &ServerSettings,
    scenario: &Scenario,
    placed: Placement,
    opts: &RunOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> anyhow::Result<ScenarioResult> {
    let mut setup = None;
    let mut wires = Vec::new();
    for wire in scenario.wires.iter().copied().filter(|w| stack.serves(*w)) {
        if cancel.is_cancelled() {
            break;
        }
        let server = StackServer::start(stack, exe, settings).await?;
        let s = setup.get_or_insert_with(|| ServerSetup {
            mode: "child-process".into(),
            http_url: server.target.http_url.clone(),
            https_url: server.target.https_url.clone(),
            rate_hz: scenario.rate_hz,
            payload_bytes: scenario.payload_bytes,
            workers: opts.workers,
            edge: None,
        });
        if wires.is_empty() {
            observer.scenario_started(scenario, s);
        }
        let loaded = Loaded {
            worker_target: TargetSpec {
                http_url: server.target.http_url.clone(),
                https_url: server.target.https_url.clone(),
                ca_cert: match &server.process {
                    StackProcess::Actix(e) => e.ready().cert_path,
                    StackProcess::Baseline(_) => None,
                },
                sources: Vec::new(),
                any: None,
                through_edge: false,
            },
            source: Source::Feed(Arc::new(server.target.clone())),
            gauge: ServerGauge::Process(ProcessProbe::new(server.pid)),
            placed,
            proxy: None,
            link: None,
        };
        let result = drive_wire(&loaded, scenario, wire, opts, observer, cancel).await;
        server.stop().await;
        let result = result?;
        observer.wire_finished(&result);
        wires.push(result);
    }
    let server = setup.ok_or_else(|| {
        anyhow::anyhow!(
            "{stack} serves none of the wires {:?} (the baselines serve sse-h1 and ws-h1)",
            scenario.wires.iter().map(|w| w.name()).collect::<Vec<_>>()
        )
    })?;
    Ok(ScenarioResult {
        scenario: scenario.clone(),
        server,
        wires,
        link: None,
        stack: Some(stack),
        section: Section::Feed,
    })
}

/// The hidden `serve-bare` subcommand: the bare baseline from its library,
/// until stdin closes or a signal arrives; `announce` gets the ready line.
pub async fn serve_bare(
    config: bare::BareConfig,
    announce: impl FnOnce(&str),
) -> anyhow::Result<()> {
    server::nofile::raise_open_files_limit();
    let watch_stdin = !config.ignore_stdin;
    let running = bare::start(config)
        .await
        .context("starting the bare baseline")?;
    let ready = BaselineReady {
        port: running.addr.port(),
        pid: std::process::id(),
    };
    announce(&serde_json::to_string(&ready).context("encoding the ready line")?);
    bare::stop::requested(watch_stdin)
        .await
        .context("listening for SIGTERM and stdin")?;
    running
        .shutdown()
        .await
        .context("stopping the bare baseline")?;
    Ok(())
}
