//! How a run is set up: which server to load, and how this program starts
//! its helpers (worker processes).

use std::path::PathBuf;
use std::time::Duration;

use super::shard::Shard;
use crate::client::Trust;

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
    /// This process's share of every scenario's connections (`--shard`).
    pub shard: Option<Shard>,
    /// When every wire's hold starts (Unix ns, `--start-at`).
    pub start_at_unix_ns: Option<u64>,
}
