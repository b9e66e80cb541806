//! `server`: parse the CLI, start the feed server, wait for Ctrl-C or SIGTERM.

use anyhow::Context as _;
use clap::Parser as _;
use server::ServerConfig;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    // Parse first: a bad flag is a clap error (exit 2) before anything starts.
    let config = ServerConfig::parse();
    server::logging::init();
    server::tls::install_crypto_provider();
    let nofile = server::nofile::raise_open_files_limit();
    tracing::info!(open_files_limit = nofile, "open-file limit");
    let running = server::run(config.clone()).context("starting the server")?;
    print_banner(&running, &config);
    wait_for_signal().await?;
    eprintln!(
        "shutting down: closing every stream (at most {:?})",
        config.shutdown_timeout
    );
    running.shutdown().await.context("shutting down")?;
    Ok(())
}

fn print_banner(running: &server::RunningServer, config: &ServerConfig) {
    let http = running.http_url();
    println!(
        "feed: {} event(s)/s, replay {} events",
        config.rate, config.replay
    );
    println!("open in a browser:  {http}/");
    println!("try SSE (HTTP/1.1): curl -N {http}/sse");
    println!("try SSE (h2c):      curl -N --http2-prior-knowledge {http}/sse");
    println!(
        "try WebSocket:      websocat {}/ws",
        http.replacen("http", "ws", 1)
    );
    println!("stats:              curl {http}/stats   (Prometheus: {http}/metrics)");
    if let (Some(https), Some(cert)) = (running.https_url(), running.cert_path()) {
        println!("TLS (h2 + http/1.1): {https}/");
        println!(
            "try SSE (h2):       curl -N --cacert {} {https}/sse",
            cert.display()
        );
        println!("certificate:        {}", cert.display());
        if let Some(spki) = &running.info.spki_sha256 {
            println!("trust it in Chromium: --ignore-certificate-errors-spki-list={spki}");
        }
    } else {
        println!("TLS: off (--no-tls)");
    }
    println!("HTTP/2: no SETTINGS_MAX_CONCURRENT_STREAMS is sent (actix exposes none): unlimited streams");
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r.context("listening for Ctrl-C")?,
        _ = term.recv() => {}
    }
    Ok(())
}
