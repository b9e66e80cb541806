//! One wire spread over several load-generator processes.
//!
//! A process may hold at most as many sockets as its open-file limit (20,000
//! here), so larger runs are split: the parent starts `loadgen worker`
//! children, gives each its share of the connections, and steps them through
//! the same phases as a single process (connected, mark, mark, finish) over
//! JSON lines on stdin/stdout, reading the server's figures itself between
//! steps. Their histograms merge exactly into one result. The same protocol
//! is what would let several machines share one run.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge::Edge;
use hdrhistogram::Histogram;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

use super::gauge::ServerGauge;
use super::link::HoldHooks;
use super::live::Live;
use super::outcome::{hold_only, Finished, Held, WireOutcome};
use super::proxy::ProxySamples;
use super::spec::WireSpec;
use super::worker::{FromWorker, TargetSpec, ToWorker};
use crate::measure::{add_network, Recorder};
use crate::result::new_histogram;

/// One worker as the parent sees it.
struct Worker {
    _child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    connected: usize,
    events: u64,
    errors: u64,
    p99_us: u64,
}

impl Worker {
    async fn tell(&mut self, msg: &ToWorker) -> anyhow::Result<()> {
        let mut line = serde_json::to_string(msg).expect("worker messages serialize");
        line.push('\n');
        self.stdin.write_all(line.as_bytes()).await?;
        Ok(self.stdin.flush().await?)
    }

    /// The next reply that is not progress (progress updates the figures).
    async fn reply(&mut self, limit: Duration) -> anyhow::Result<FromWorker> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .map_err(|_| anyhow::anyhow!("a worker did not answer within {limit:?}"))??
                .ok_or_else(|| anyhow::anyhow!("a worker exited early (see its messages above)"))?;
            match serde_json::from_str::<FromWorker>(&line) {
                Ok(FromWorker::Progress {
                    connected,
                    events,
                    errors,
                    p99_us,
                }) => {
                    (self.connected, self.events, self.errors, self.p99_us) =
                        (connected, events, errors, p99_us);
                }
                Ok(other) => return Ok(other),
                Err(_) => tracing::debug!(%line, "ignoring a worker line"),
            }
        }
    }
}

/// Splits `n` connections over `processes` as evenly as possible.
pub fn shares(n: usize, processes: usize) -> Vec<usize> {
    let p = processes.max(1);
    (0..p).map(|i| n / p + usize::from(i < n % p)).collect()
}

/// Where a wire's worker processes run and what they load.
pub struct WorkerSetup {
    /// This program (`loadgen worker`).
    pub exe: PathBuf,
    pub target: TargetSpec,
    pub processes: usize,
    /// Start them inside this network namespace (an emulated link's client side).
    pub netns: Option<netlab::Netns>,
}

/// Runs one wire over several worker processes, with the same phases and
/// figures as [`super::driver::run_wire`]; `hooks` are called when the
/// hold starts and ends.
pub async fn run_wire_in_processes(
    setup: WorkerSetup,
    spec: WireSpec,
    gauge: &ServerGauge,
    proxy: Option<&Edge>,
    live: Arc<Live>,
    hooks: &dyn HoldHooks,
) -> anyhow::Result<WireOutcome> {
    let WorkerSetup {
        exe,
        target,
        processes,
        netns,
    } = setup;
    spec.validate().map_err(anyhow::Error::msg)?;
    let mut problems = Vec::new();
    let mut proxied = ProxySamples::default();
    ProxySamples::take(&mut proxied.before, proxy);
    let before = gauge.snapshot().await.ok().flatten();
    live.target.store(spec.connections, Ordering::Relaxed);
    let mut workers = Vec::new();
    let mut first_index = spec.first_index;
    for share in shares(spec.connections, processes) {
        let mut command = tokio::process::Command::new(&exe);
        if let Some(netns) = &netns {
            netns.configure_tokio_command(&mut command);
        }
        let mut child = command
            .arg("worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| anyhow::anyhow!("starting the worker {}: {e}", exe.display()))?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let lines = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let mut w = Worker {
            _child: child,
            stdin,
            lines,
            connected: 0,
            events: 0,
            errors: 0,
            p99_us: 0,
        };
        let job = ToWorker::Job {
            target: Box::new(target.clone()),
            spec: Box::new(WireSpec {
                connections: share,
                ramp_per_s: spec.ramp_per_s / processes as f64,
                ..spec.clone()
            }),
            first_index,
        };
        w.tell(&job).await?;
        first_index += share;
        workers.push(w);
    }
    let connect_limit = spec
        .ramp_time()
        .saturating_add(Duration::from_secs(10))
        .saturating_add(spec.connect_timeout);
    let mut opened = 0;
    let mut own_rss_before = 0;
    for w in &mut workers {
        match w.reply(connect_limit).await? {
            FromWorker::Connected {
                opened: n,
                rss_before,
            } => {
                opened += n;
                own_rss_before += rss_before;
            }
            other => anyhow::bail!("a worker answered {other:?} instead of connected"),
        }
        publish(&live, &workers_figures(std::slice::from_ref(w)));
    }
    let mut measured = Held {
        own_rss_before,
        ..Held::default()
    };
    let mut highest_id = 0;
    if opened > 0 {
        tokio::time::sleep(spec.settle).await;
        if let Some(at) = spec.hold_at_unix_ns {
            if let Some(late) = super::shard::wait_until(at).await {
                problems.push(super::shard::late_start(late));
            }
        }
        measured.held = gauge.snapshot().await.ok().flatten();
        ProxySamples::take(&mut proxied.held, proxy);
        let hold_start = server::event::unix_now_ns();
        hooks.hold_started();
        let m0 = mark_all(&mut workers, Some(hold_start)).await?;
        let t0 = Instant::now();
        let hold_end = tokio::time::Instant::now() + spec.hold;
        while tokio::time::Instant::now() < hold_end {
            tokio::time::sleep(
                Duration::from_millis(250).min(hold_end - tokio::time::Instant::now()),
            )
            .await;
            for w in &mut workers {
                // Drain progress lines without blocking.
                while let Ok(Ok(Some(line))) =
                    tokio::time::timeout(Duration::from_millis(1), w.lines.next_line()).await
                {
                    if let Ok(FromWorker::Progress {
                        connected,
                        events,
                        errors,
                        p99_us,
                    }) = serde_json::from_str(&line)
                    {
                        (w.connected, w.events, w.errors, w.p99_us) =
                            (connected, events, errors, p99_us);
                    }
                }
            }
            publish(&live, &workers_figures(&workers));
        }
        hooks.hold_ended();
        measured.hold_s = t0.elapsed().as_secs_f64();
        let m1 = mark_all(&mut workers, None).await?;
        measured.end = gauge.snapshot().await.ok().flatten();
        ProxySamples::take(&mut proxied.end, proxy);
        highest_id = m1.highest_id;
        measured.latency = hold_only(m1.latency, &m0.latency);
        for (a, b) in m0.each.iter().zip(&m1.each) {
            measured.events += b.0 - a.0;
            measured.bytes += b.1 - a.1;
            measured.own_cpu_us += b.2.saturating_sub(a.2);
            measured.own_rss += b.3;
        }
    }
    let final_id = if gauge.knows_newest_id() {
        measured.end.as_ref().map_or(0, |e| e.last_id.max(1))
    } else {
        highest_id
    };
    let mut parts = Vec::new();
    for w in &mut workers {
        w.tell(&ToWorker::Finish { final_id }).await?;
    }
    for w in &mut workers {
        match w
            .reply(spec.drain_timeout + Duration::from_secs(20))
            .await?
        {
            FromWorker::Finished(f) => parts.push(*f),
            other => anyhow::bail!("a worker answered {other:?} instead of its results"),
        }
    }
    let finished = merge_finished(parts, &mut problems);
    let after = gauge.settle_after(before.as_ref()).await;
    ProxySamples::take(&mut proxied.after, proxy);
    measured.proxy = proxied;
    let mut outcome =
        WireOutcome::assemble(spec, finished, measured, before, after, final_id, problems);
    outcome.missing_is_lost = gauge.knows_newest_id();
    Ok(outcome)
}

/// Every worker's counters at one moment.
struct Marks {
    /// (events, bytes, cpu µs, rss) of every worker, in order.
    each: Vec<(u64, u64, u64, u64)>,
    /// All workers' latencies so far, merged.
    latency: Histogram<u64>,
    /// The highest id any worker's connections saw.
    highest_id: u64,
}

async fn mark_all(workers: &mut [Worker], hold_start: Option<u64>) -> anyhow::Result<Marks> {
    for w in workers.iter_mut() {
        w.tell(&ToWorker::Mark {
            hold_start_unix_ns: hold_start,
        })
        .await?;
    }
    let mut out = Marks {
        each: Vec::new(),
        latency: new_histogram(),
        highest_id: 0,
    };
    for w in workers.iter_mut() {
        match w.reply(Duration::from_secs(10)).await? {
            FromWorker::Mark {
                events,
                bytes,
                cpu_us,
                rss_bytes,
                latency,
                highest_id,
            } => {
                out.highest_id = out.highest_id.max(highest_id);
                out.each.push((events, bytes, cpu_us, rss_bytes));
                out.latency.add(latency.decode()?)?;
            }
            other => anyhow::bail!("a worker answered {other:?} instead of its counters"),
        }
    }
    Ok(out)
}

fn workers_figures(workers: &[Worker]) -> (usize, u64, u64, u64) {
    workers.iter().fold((0, 0, 0, 0), |a, w| {
        (
            a.0 + w.connected,
            a.1 + w.events,
            a.2 + w.errors,
            a.3.max(w.p99_us),
        )
    })
}

fn publish(live: &Live, f: &(usize, u64, u64, u64)) {
    live.connected.store(f.0, Ordering::Relaxed);
    live.remote_events.store(f.1, Ordering::Relaxed);
    live.errors.store(f.2, Ordering::Relaxed);
    live.remote_p99_us.store(f.3, Ordering::Relaxed);
}

/// Merges the workers' results exactly (histograms added, counters summed).
pub fn merge_finished(parts: Vec<Finished>, problems: &mut Vec<String>) -> Finished {
    let start = parts
        .iter()
        .map(|p| p.recorder.start_unix_ns)
        .min()
        .unwrap_or(0);
    let mut recorder = Recorder::with_start_unix_ns(start);
    let mut out = Finished {
        recorder: Recorder::with_start_unix_ns(start)
            .snapshot()
            .unwrap_or_else(|_| unreachable!("an empty recorder always encodes")),
        opened: 0,
        missing_at_end: 0,
        first_errors: BTreeMap::new(),
        protocols_seen: BTreeMap::new(),
        client_protocols: BTreeMap::new(),
        h2_connections: None,
        all_open_after_us: None,
        problems: Vec::new(),
        network: None,
    };
    let all_open: Vec<Option<u64>> = parts.iter().map(|p| p.all_open_after_us).collect();
    // Every share open: the slowest one says when all were.
    out.all_open_after_us = all_open
        .iter()
        .copied()
        .collect::<Option<Vec<u64>>>()
        .and_then(|v| v.into_iter().max());
    for p in parts {
        out.network = match (out.network.take(), &p.network) {
            (None, n) => n.clone(),
            (Some(mine), Some(theirs)) => match add_network(&mine, theirs) {
                Ok(n) => Some(n),
                Err(e) => {
                    problems.push(format!("a worker's link figures could not be merged: {e}"));
                    Some(mine)
                }
            },
            (Some(mine), None) => Some(mine),
        };
        match Recorder::from_snapshot(&p.recorder) {
            Ok(r) => recorder.merge(&r),
            Err(e) => problems.push(format!("a worker's histograms could not be read: {e}")),
        }
        out.opened += p.opened;
        out.missing_at_end += p.missing_at_end;
        for (k, v) in p.first_errors {
            out.first_errors.entry(k).or_insert(v);
        }
        for (k, v) in p.protocols_seen {
            *out.protocols_seen.entry(k).or_default() += v;
        }
        for (k, v) in p.client_protocols {
            *out.client_protocols.entry(k).or_default() += v;
        }
        if let Some(n) = p.h2_connections {
            *out.h2_connections.get_or_insert(0) += n;
        }
        out.problems.extend(p.problems);
    }
    match recorder.snapshot() {
        Ok(s) => out.recorder = s,
        Err(e) => problems.push(format!("storing the merged histograms: {e}")),
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        assert_eq!(shares(10, 3), vec![4, 3, 3]);
        assert_eq!(shares(20_000, 2), vec![10_000, 10_000]);
        assert_eq!(shares(1, 4).iter().sum::<usize>(), 1);
    }
}
