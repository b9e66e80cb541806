//! `bare`: the minimal tokio baseline. Prints `{"port":N,"pid":P}` on stdout
//! once listening; stops on SIGTERM, SIGINT or when stdin closes.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use bare::BareConfig;
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> anyhow::Result<()> {
    let config = BareConfig::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("bare=info")),
        )
        .init();
    server::nofile::raise_open_files_limit();
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(workers) = config.workers {
        runtime.worker_threads(workers.max(1));
    }
    let runtime = runtime.build().context("starting the tokio runtime")?;
    runtime.block_on(serve(config))
}

async fn serve(config: BareConfig) -> anyhow::Result<()> {
    let watch_stdin = !config.ignore_stdin;
    let running = bare::start(config).await?;
    let ready = serde_json::to_string(&Ready {
        port: running.addr.port(),
        pid: std::process::id(),
    })
    .context("encoding the ready line")?;
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{ready}")
        .and_then(|()| stdout.flush())
        .context("writing the ready line to stdout")?;
    drop(stdout);
    let why = bare::stop::requested(watch_stdin)
        .await
        .context("installing the SIGTERM/SIGINT handlers")?;
    tracing::info!(why, "stopping");
    let stats = running.shutdown().await?;
    tracing::info!(
        stats = %serde_json::to_string(&stats).context("encoding the final counters")?,
        "final counters"
    );
    Ok(())
}

/// The one line on stdout that says the server listens, and where.
#[derive(serde::Serialize)]
struct Ready {
    port: u16,
    pid: u32,
}
