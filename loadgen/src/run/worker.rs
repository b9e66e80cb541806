//! The `worker` subcommand: one share of one wire, in a process of its own,
//! stepped by a parent `loadgen` through the phases of a wire run over JSON
//! lines on stdin/stdout (see `workers` for the parent's side).

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

use super::driver::WireRun;
use super::live::Live;
use super::outcome::{own_usage, Finished};
use super::source::Source;
use super::spec::WireSpec;
use crate::client::{AnyTarget, SourceAddresses, Target, Trust};
use crate::result::{summarize, AnyServer, HistogramSummary};

/// How a worker finds the server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetSpec {
    pub http_url: String,
    pub https_url: Option<String>,
    /// A CA file to trust, or none for no verification.
    pub ca_cert: Option<PathBuf>,
    /// Source addresses to bind round-robin (a worker inside an emulated
    /// link's client namespace uses the lab's); none: the default.
    #[serde(default)]
    pub sources: Vec<IpAddr>,
    /// Any server's settings, when it is not the feed server.
    #[serde(default)]
    pub any: Option<Box<AnyServer>>,
    /// `https_url` is an edge proxy in front of the server.
    #[serde(default)]
    pub through_edge: bool,
}

impl TargetSpec {
    pub async fn source(&self) -> anyhow::Result<Source> {
        if let Some(any) = &self.any {
            return Ok(Source::Any(Arc::new(AnyTarget::resolve(any).await?)));
        }
        let trust = match &self.ca_cert {
            Some(p) => Trust::CaFile(p.clone()),
            None => Trust::Insecure,
        };
        let mut target =
            Target::external(&self.http_url, self.https_url.as_deref(), trust, true).await?;
        target.through_edge = self.through_edge;
        if !self.sources.is_empty() {
            target = target.with_socket_hook(Arc::new(SourceAddresses(self.sources.clone())));
        }
        Ok(Source::Feed(Arc::new(target)))
    }
}

/// Parent to worker.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToWorker {
    Job {
        /// Boxed: the other messages are small.
        target: Box<TargetSpec>,
        spec: Box<WireSpec>,
        first_index: usize,
    },
    /// Report the counters; `hold_start_unix_ns` when the hold starts with
    /// this mark (over a link, events are judged from then on).
    Mark {
        #[serde(default)]
        hold_start_unix_ns: Option<u64>,
    },
    Finish {
        final_id: u64,
    },
}

/// Worker to parent.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FromWorker {
    Progress {
        connected: usize,
        events: u64,
        errors: u64,
        p99_us: u64,
    },
    Connected {
        opened: usize,
        /// Its RSS before it opened them.
        #[serde(default)]
        rss_before: u64,
    },
    Mark {
        events: u64,
        bytes: u64,
        cpu_us: u64,
        rss_bytes: u64,
        /// Every latency so far, encoded (the parent subtracts the marks).
        latency: HistogramSummary,
        /// The highest id its connections have seen.
        #[serde(default)]
        highest_id: u64,
    },
    Finished(Box<Finished>),
}

/// The `worker` subcommand: one share of one wire, driven over stdin/stdout.
pub async fn serve_worker() -> anyhow::Result<()> {
    use anyhow::Context as _;
    server::nofile::raise_open_files_limit();
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    let first = lines.next_line().await?.context("no job on stdin")?;
    let ToWorker::Job {
        target,
        spec,
        first_index,
    } = serde_json::from_str(&first).context("reading the job")?
    else {
        anyhow::bail!("the first message must be a job");
    };
    let source = target.source().await?;
    let live = Arc::new(Live::default());
    let out = Arc::new(tokio::sync::Mutex::new(tokio::io::stdout()));
    // The lanes' runtimes are the process's, not the connections'.
    super::lanes::start_once();
    let (_, rss_before) = own_usage();
    let mut run = WireRun::start(
        &source,
        *spec,
        live.clone(),
        CancellationToken::new(),
        first_index,
    )
    .map_err(anyhow::Error::msg)?;
    let progress = tokio::spawn(report_progress(live.clone(), out.clone()));
    let opened = run.wait_connected().await;
    send(&out, &FromWorker::Connected { opened, rss_before }).await?;
    loop {
        let cmd = match lines.next_line().await? {
            Some(l) => serde_json::from_str::<ToWorker>(&l).context("reading a command")?,
            // The parent went away: stop without waiting.
            None => ToWorker::Finish { final_id: 0 },
        };
        match cmd {
            ToWorker::Mark { hold_start_unix_ns } => {
                if let Some(at) = hold_start_unix_ns {
                    run.hold_started(at);
                }
                let (events, bytes) = run.counters();
                let (cpu_us, rss_bytes) = own_usage();
                let reply = FromWorker::Mark {
                    events,
                    bytes,
                    cpu_us,
                    rss_bytes,
                    latency: summarize(&run.latency())?,
                    highest_id: run.highest_id(),
                };
                send(&out, &reply).await?;
            }
            ToWorker::Finish { final_id } => {
                let finished = run.finish(final_id).await;
                progress.abort();
                send(&out, &FromWorker::Finished(Box::new(finished))).await?;
                return Ok(());
            }
            ToWorker::Job { .. } => anyhow::bail!("a worker takes one job"),
        }
    }
}

async fn report_progress(live: Arc<Live>, out: Arc<tokio::sync::Mutex<tokio::io::Stdout>>) {
    loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = live.snapshot();
        let msg = FromWorker::Progress {
            connected: s.connected,
            events: s.events,
            errors: s.errors,
            p99_us: s.p99_us,
        };
        if send(&out, &msg).await.is_err() {
            return;
        }
    }
}

async fn send(
    out: &tokio::sync::Mutex<tokio::io::Stdout>,
    msg: &FromWorker,
) -> std::io::Result<()> {
    let mut line = serde_json::to_string(msg).expect("worker messages serialize");
    line.push('\n');
    let mut out = out.lock().await;
    out.write_all(line.as_bytes()).await?;
    out.flush().await
}
