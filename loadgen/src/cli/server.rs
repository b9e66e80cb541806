//! Flags every measuring subcommand shares: where the server is and how to
//! reach it.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;

use super::numbers::{ranged, SERVER_WORKERS};
use crate::client::Trust;
use crate::run::{RunOptions, ServerChoice, Shard};

/// Where the server is and how to reach it.
#[derive(Debug, Args)]
pub struct ServerArgs {
    /// Load an external server's plain listener (http://host:port) instead of
    /// starting the embedded one.
    #[arg(long)]
    pub target: Option<String>,
    /// The external server's TLS listener (https://host:port), for sse-h2.
    #[arg(long, requires = "target")]
    pub tls_target: Option<String>,
    /// PEM file with the certificate to trust on --tls-target (or an
    /// https:// --sse-url, a wss:// --ws-url).
    #[arg(long, conflicts_with = "insecure")]
    pub ca_cert: Option<PathBuf>,
    /// Do not verify the TLS certificate of --tls-target (or of
    /// --sse-url, --ws-url).
    #[arg(long)]
    pub insecure: bool,
    /// Allow a target (or --sse-url, --ws-url) that is not a loopback address.
    #[arg(long)]
    pub allow_remote: bool,
    /// Run the embedded server inside this process (its memory and CPU then
    /// mix with the load generator's) instead of a child process.
    #[arg(long, conflicts_with = "target")]
    pub in_process: bool,
    /// Worker threads of the embedded server (default: one per core).
    #[arg(long, value_parser = ranged(SERVER_WORKERS))]
    pub server_workers: Option<usize>,
    /// Set from `run --shard` (not a flag of its own here).
    #[arg(skip)]
    pub shard: Option<Shard>,
    /// Set from `run --start-at`.
    #[arg(skip)]
    pub start_at_unix_ns: Option<u64>,
}

impl ServerArgs {
    /// What clap cannot check alone: TLS to an external server needs a
    /// certificate to trust, or an explicit `--insecure`.
    pub fn check(&self) -> Result<(), String> {
        if self.target.is_some()
            && self.tls_target.is_some()
            && self.ca_cert.is_none()
            && !self.insecure
        {
            return Err(
                "--tls-target needs --ca-cert FILE (the server prints its certificate path) or --insecure"
                    .into(),
            );
        }
        Ok(())
    }

    /// The run's options: which server, and this program for its helpers.
    pub fn options(&self) -> anyhow::Result<RunOptions> {
        let server = match &self.target {
            Some(http_url) => {
                let trust = match (&self.ca_cert, self.insecure) {
                    (Some(p), _) => Trust::CaFile(p.clone()),
                    (None, true) => Trust::Insecure,
                    (None, false) if self.tls_target.is_some() => anyhow::bail!(
                        "--tls-target needs --ca-cert FILE (the server prints its certificate path) or --insecure"
                    ),
                    (None, false) => Trust::Insecure,
                };
                ServerChoice::External {
                    http_url: http_url.clone(),
                    https_url: self.tls_target.clone(),
                    trust,
                    allow_remote: self.allow_remote,
                }
            }
            None if self.in_process => ServerChoice::InProcess,
            None => ServerChoice::Child {
                exe: std::env::current_exe().map_err(|e| {
                    anyhow::anyhow!("finding this program to start the server: {e}")
                })?,
            },
        };
        Ok(RunOptions {
            server,
            workers: self.server_workers,
            retry: Duration::from_secs(1),
            worker_exe: std::env::current_exe().ok(),
            shard: self.shard,
            start_at_unix_ns: self.start_at_unix_ns,
        })
    }
}
