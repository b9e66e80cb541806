//! One wire of a scenario against what is loaded (the feed server, any
//! server, a stack): where its streams go, how the server's side is read,
//! and whether it runs in this process or over several.

use std::sync::Arc;

use edge::Edge;
use tokio_util::sync::CancellationToken;

use super::driver::run_wire_on;
use super::gauge::ServerGauge;
use super::link::{HoldHooks, LinkRun, NoHooks};
use super::live::Live;
use super::observer::Observer;
use super::options::RunOptions;
use super::source::Source;
use super::spec::WireSpec;
use super::worker::TargetSpec;
use super::workers::{run_wire_in_processes, WorkerSetup};
use crate::result::{Scenario, WireResult};
use crate::wire::Wire;

/// What one wire runs against: where its streams go, how the server's
/// side is read, how a worker process finds the server, where this
/// process's connections sit among several load generators, and the edge
/// proxy in front or the emulated link in between, if any.
pub struct Loaded<'a> {
    pub source: Source,
    pub gauge: ServerGauge,
    pub worker_target: TargetSpec,
    pub placed: Placement,
    /// The edge proxy in front of the server, if any: its figures are read
    /// with the server's.
    pub proxy: Option<&'a Edge>,
    /// The emulated link between the server and the connections, if any:
    /// its outage schedule starts with the hold, its figures are read for
    /// it, and worker processes start inside its client namespace.
    pub link: Option<&'a LinkRun>,
}

/// Where a wire's connections sit among several load generators
/// (`--shard`, `--start-at`); the default is all of them, held at once.
#[derive(Debug, Clone, Copy, Default)]
pub struct Placement {
    /// The index of this process's first connection.
    pub first_index: usize,
    /// When the hold starts (Unix ns), instead of once connected and settled.
    pub hold_at_unix_ns: Option<u64>,
}

impl Placement {
    /// This run's share of `scenario` (the scenario with this shard's
    /// connections, and where they sit); the whole scenario without `--shard`.
    pub fn of(scenario: &Scenario, opts: &RunOptions) -> Result<(Scenario, Placement), String> {
        let (sharded, first_index) = match opts.shard {
            Some(shard) => (
                shard.scenario(scenario)?,
                shard.share_of(scenario.connections).1,
            ),
            None => (scenario.clone(), 0),
        };
        Ok((
            sharded,
            Placement {
                first_index,
                hold_at_unix_ns: opts.start_at_unix_ns,
            },
        ))
    }
}

/// Runs one wire against what is loaded, in this process or several.
pub async fn drive_wire(
    loaded: &Loaded<'_>,
    scenario: &Scenario,
    wire: Wire,
    opts: &RunOptions,
    observer: &dyn Observer,
    cancel: &CancellationToken,
) -> anyhow::Result<WireResult> {
    let live = Arc::new(Live::default());
    observer.wire_started(scenario, wire, live.clone());
    let spec = WireSpec {
        first_index: loaded.placed.first_index,
        hold_at_unix_ns: loaded.placed.hold_at_unix_ns,
        ..WireSpec::for_scenario(scenario, wire, opts.retry).map_err(anyhow::Error::msg)?
    };
    let processes = processes_for(scenario, opts);
    let hooks: &dyn HoldHooks = match loaded.link {
        Some(link) => link,
        None => &NoHooks,
    };
    let outcome = match (&opts.worker_exe, processes) {
        (Some(exe), p) if p > 1 => {
            let workers = WorkerSetup {
                exe: exe.clone(),
                target: loaded.worker_target.clone(),
                processes: p,
                netns: loaded.link.map(|l| l.client_netns().clone()),
            };
            let mut o =
                run_wire_in_processes(workers, spec, &loaded.gauge, loaded.proxy, live, hooks)
                    .await
                    .map_err(|e| e.context(format!("{wire} over {processes} processes")))?;
            o.processes = p;
            o
        }
        _ => {
            run_wire_on(
                &loaded.source,
                spec,
                &loaded.gauge,
                loaded.proxy,
                live,
                cancel.clone(),
                hooks,
            )
            .await
        }
    };
    let mut result = outcome.to_result()?;
    if let Some(link) = loaded.link {
        if let Some(network) = &mut result.network {
            network.emulator = link.last_hold();
        }
        result.problems.extend(link.problems());
    }
    Ok(result)
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
