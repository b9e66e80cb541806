//! The feed server the load generator starts itself, so one command works
//! on a fresh machine: in this process, or (the default for the binary) in a
//! child process running this same executable's `serve` subcommand, so that
//! the server's memory and CPU are measured apart from the load generator's
//! and its sockets do not count against this process's open-file limit.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use server::{RunningServer, ServerConfig};
use tokio::io::{AsyncBufReadExt, BufReader};

/// What a started server tells its parent (one JSON line on stdout).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ready {
    pub http_addr: SocketAddr,
    pub https_addr: Option<SocketAddr>,
    pub cert_path: Option<PathBuf>,
    pub pid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("starting the embedded server: {0}")]
    Start(#[from] server::ServerError),
    #[error("starting the server process {exe}: {source}")]
    Spawn { exe: String, source: std::io::Error },
    #[error("the server process did not say it was ready within 20 s: {0}")]
    NotReady(String),
}

/// A server started by the load generator.
pub enum EmbeddedServer {
    InProcess(RunningServer),
    Child {
        child: tokio::process::Child,
        ready: Ready,
    },
}

impl EmbeddedServer {
    /// Starts the server library in this process.
    pub fn in_process(config: ServerConfig) -> Result<Self, EmbeddedError> {
        Ok(EmbeddedServer::InProcess(server::run(config)?))
    }

    /// Starts `exe serve <flags>` and waits for its ready line.
    pub async fn child(exe: PathBuf, flags: Vec<String>) -> Result<Self, EmbeddedError> {
        let mut child = tokio::process::Command::new(&exe)
            .arg("serve")
            .args(&flags)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| EmbeddedError::Spawn {
                exe: exe.display().to_string(),
                source,
            })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
                if let Ok(ready) = serde_json::from_str::<Ready>(&line) {
                    return Ok(ready);
                }
            }
            Err("it exited first (see its messages above)".to_string())
        })
        .await
        .map_err(|_| EmbeddedError::NotReady("timed out".into()))?
        .map_err(EmbeddedError::NotReady)?;
        // Keep reading (and discarding) its stdout so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(EmbeddedServer::Child { child, ready })
    }

    pub fn ready(&self) -> Ready {
        match self {
            EmbeddedServer::InProcess(r) => Ready {
                http_addr: r.http_addr,
                https_addr: r.https_addr,
                cert_path: r.cert_path(),
                pid: std::process::id(),
            },
            EmbeddedServer::Child { ready, .. } => ready.clone(),
        }
    }

    pub fn mode(&self) -> &'static str {
        match self {
            EmbeddedServer::InProcess(_) => "in-process",
            EmbeddedServer::Child { .. } => "child-process",
        }
    }

    /// Stops the server: gracefully, then by force after a few seconds.
    pub async fn stop(self) {
        match self {
            EmbeddedServer::InProcess(r) => {
                if let Err(e) = r.shutdown().await {
                    tracing::warn!(error = %e, "embedded server shutdown");
                }
            }
            EmbeddedServer::Child { mut child, .. } => {
                // Closing its stdin is the child's signal to shut down.
                drop(child.stdin.take());
                if tokio::time::timeout(Duration::from_secs(8), child.wait())
                    .await
                    .is_err()
                {
                    let _ = child.kill().await;
                }
            }
        }
    }
}

/// The flags that give a child server these settings on ephemeral ports.
pub fn child_flags(rate_hz: f64, payload_bytes: usize, workers: Option<usize>) -> Vec<String> {
    let mut flags = vec![
        "--http".into(),
        "127.0.0.1:0".into(),
        "--https".into(),
        "127.0.0.1:0".into(),
        "--rate".into(),
        rate_hz.to_string(),
        "--payload-bytes".into(),
        payload_bytes.to_string(),
        "--shutdown-timeout".into(),
        "3".into(),
    ];
    if let Some(w) = workers {
        flags.extend(["--workers".into(), w.to_string()]);
    }
    flags
}

/// The `serve` subcommand: runs the server until stdin closes (the parent
/// went away or asked) or a signal arrives, printing the ready line first.
pub async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    use anyhow::Context as _;
    server::nofile::raise_open_files_limit();
    let running = server::run(config).context("starting the server")?;
    let ready = Ready {
        http_addr: running.http_addr,
        https_addr: running.https_addr,
        cert_path: running.cert_path(),
        pid: std::process::id(),
    };
    println!(
        "{}",
        serde_json::to_string(&ready).expect("Ready serializes")
    );
    let mut stdin = tokio::io::stdin();
    let mut sink = tokio::io::sink();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        _ = tokio::io::copy(&mut stdin, &mut sink) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    running.shutdown().await.context("stopping the server")?;
    Ok(())
}
