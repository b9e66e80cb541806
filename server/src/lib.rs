//! The feed server: one server-time feed over `/sse` and `/ws`, on HTTP/1.1,
//! h2 over TLS (ALPN) and cleartext h2c.
//!
//! [`run`] starts it on its own thread and actix system, so it can be embedded
//! in any program (the load generator does) and driven by tests on port 0.
//!
//! # Layout
//!
//! Lower layers first; a module uses only those above it in this list.
//!
//! - Definitions shared with the load generator: [`wire`] (the wire names),
//!   [`event`] (the event, its two encodings and the client-side decoder).
//! - The feed: [`ring`] (replay ring), [`stats`] (counters, per-wire table,
//!   process readings), [`hub`] (fan-out, resume, admission), [`feed`] (the
//!   producer).
//! - The process: [`config`] (the CLI, which is the config), [`nofile`]
//!   (open-file limit and the connection budget), [`logging`], [`tls`],
//!   [`allocator`].
//! - The shared feed: [`broker`] (`--feed-redis`: one feed for several
//!   instances through Redis Streams; the producer's lease, the relay into
//!   the hub, the stream as the hub's archive for old resumes), and
//!   [`redis_process`] (a throwaway `redis-server` child for tests and
//!   local runs).
//! - HTTP: [`state`] (what every route shares), [`sse_response`] (the one
//!   event-stream response), [`ws_frame_limit`] and [`ws_session`] (the one
//!   WebSocket session loop), [`chaos`] (dropping streams on purpose, the
//!   restart gate), then one module per route family: [`sse`], [`ws`],
//!   [`chat`], [`echo`], [`admin`], [`introspect`] (`/stats`, `/metrics`,
//!   `/info`), the page; [`routes`] is the route table and [`listen`] binds
//!   the listeners.
#![deny(unsafe_code)]

pub mod admin;
pub mod allocator;
pub mod broker;
pub mod chaos;
pub mod chat;
pub mod config;
mod connection;
pub mod echo;
pub mod event;
pub mod feed;
pub mod hub;
pub mod introspect;
pub mod listen;
pub mod logging;
pub mod nofile;
pub mod redis_process;
pub mod ring;
pub mod routes;
pub mod sse;
pub mod sse_response;
pub mod state;
pub mod stats;
pub mod tls;
mod web;
pub mod wire;
pub mod ws;
pub mod ws_frame_limit;
pub mod ws_session;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;

pub use broker::BrokerError;
pub use config::ServerConfig;
pub use hub::Hub;
pub use listen::ServerError;
pub use state::Info;

/// A started server: its addresses and the means to stop it.
#[derive(Debug)]
pub struct RunningServer {
    /// The plain listener (HTTP/1.1 and h2c).
    pub http_addr: std::net::SocketAddr,
    /// The TLS listener (h2 and HTTP/1.1), unless `--no-tls`.
    pub https_addr: Option<std::net::SocketAddr>,
    pub info: Info,
    hub: Arc<Hub>,
    handle: ServerHandle,
    done: Option<tokio::sync::oneshot::Receiver<std::io::Result<()>>>,
    shutdown_timeout: Duration,
    /// Removes the certificate generated at the default path once the
    /// server has stopped (dropped after `drop` below).
    _generated_cert: Option<GeneratedCert>,
}

/// A certificate generated at the default path (no `--cert-out`): a
/// temporary file of this run, removed when dropped, that is when the
/// server stops or fails to start. Without this every TLS server left one
/// in the temporary directory (thousands after the tests).
#[derive(Debug)]
struct GeneratedCert(PathBuf);

impl Drop for GeneratedCert {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(path = %self.0.display(), error = %e, "could not remove the generated certificate");
            }
        }
    }
}

impl RunningServer {
    /// The feed's hub: its stats, its latest id, drop-all.
    pub fn hub(&self) -> &Arc<Hub> {
        &self.hub
    }

    /// `http://127.0.0.1:port`
    pub fn http_url(&self) -> String {
        self.info.http_url.clone()
    }

    /// `https://localhost:port`, unless TLS is off.
    pub fn https_url(&self) -> Option<String> {
        self.info.https_url.clone()
    }

    /// The generated (or given) certificate, to trust in clients.
    pub fn cert_path(&self) -> Option<PathBuf> {
        self.info.cert_path.as_ref().map(PathBuf::from)
    }

    /// Stops gracefully: every stream is closed (SSE bodies end, WebSockets get
    /// a 1001 close), then listeners stop and connections drain, all within
    /// the shutdown timeout.
    pub async fn shutdown(mut self) -> Result<(), ServerError> {
        self.hub.shut_down();
        let stop = self.handle.stop(true);
        let limit = self.shutdown_timeout + Duration::from_secs(2);
        let done = self.done.take().ok_or(ServerError::Vanished)?;
        tokio::time::timeout(limit, async {
            stop.await;
            done.await
        })
        .await
        .map_err(|_| ServerError::StopTimeout(limit))?
        .map_err(|_| ServerError::Vanished)??;
        Ok(())
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if self.done.is_some() {
            // Not shut down explicitly: stop now, without waiting.
            self.hub.shut_down();
            drop(self.handle.stop(false));
        }
    }
}

static CERT_SEQ: AtomicU32 = AtomicU32::new(0);

fn default_cert_path() -> PathBuf {
    let n = CERT_SEQ.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir()
        .join("sse-ws-workbench")
        .join(format!("cert-{}-{n}.pem", std::process::id()))
}

/// Starts the server on its own thread and returns once it listens.
///
/// Without `--max-connections`, the stream limit comes from the open-file
/// limit in force now: raise it first ([`nofile::raise_open_files_limit`]).
pub fn run(config: ServerConfig) -> Result<RunningServer, ServerError> {
    if let Err(e) = allocator::start_trimmer() {
        tracing::warn!(error = %e, "RSS may stay high after load");
    }
    let config = Arc::new(config);
    let (tls, generated_cert) = if config.no_tls {
        (None, None)
    } else {
        let files = config.tls_cert.as_deref().zip(config.tls_key.as_deref());
        let out = config.cert_out.clone().unwrap_or_else(default_cert_path);
        let tls = tls::server_config(files, &out)?;
        // Made only when generated at the default path: dropping one
        // removes the file (so `then`, not `then_some`, which makes it first).
        let generated = (files.is_none() && config.cert_out.is_none()).then(|| GeneratedCert(out));
        (Some(tls), generated)
    };
    let budget = nofile::ConnectionBudget::current();
    let max_streams = config.max_connections.unwrap_or(budget.streams);
    if max_streams > budget.streams {
        tracing::warn!(
            max_streams,
            open_files_limit = budget.open_files,
            "--max-connections is above what the open-file limit allows: \
             connections beyond the limit will wait in the backlog instead of getting 503"
        );
    }
    let stats = if config.feed_redis.is_some() {
        stats::Stats::with_broker()
    } else {
        stats::Stats::new()
    };
    let hub = Hub::with_stats(config.replay, config.fanout_buffer, max_streams, stats);
    let shared_feed = match config.feed_redis {
        Some(_) => Some(broker::SharedFeed::new(&config, &hub)?),
        None => None,
    };
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let thread_hub = hub.clone();
    let thread_config = config.clone();
    let thread_feed = shared_feed.clone();
    std::thread::Builder::new()
        .name("feed-server".into())
        .spawn(move || {
            let result = actix_web::rt::System::new().block_on(serve(
                thread_config,
                thread_hub,
                thread_feed,
                tls,
                (budget, max_streams),
                started_tx,
            ));
            let _ = done_tx.send(result);
        })
        .map_err(ServerError::Thread)?;
    let started = started_rx.recv().map_err(|_| ServerError::Vanished)??;
    Ok(RunningServer {
        http_addr: started.http_addr,
        https_addr: started.https_addr,
        info: started.info,
        hub,
        handle: started.handle,
        done: Some(done_rx),
        shutdown_timeout: config.shutdown_timeout,
        _generated_cert: generated_cert,
    })
}

type StartedTx = std::sync::mpsc::Sender<Result<listen::Started, ServerError>>;

/// Runs on the server thread: binds, reports back, serves until stopped.
async fn serve(
    config: Arc<ServerConfig>,
    hub: Arc<Hub>,
    shared_feed: Option<Arc<broker::SharedFeed>>,
    tls: Option<(rustls::ServerConfig, tls::CertInfo)>,
    (budget, max_streams): (nofile::ConnectionBudget, usize),
    started: StartedTx,
) -> std::io::Result<()> {
    let server = match listen::bind(&config, &hub, shared_feed.clone(), tls, budget, max_streams) {
        Ok((server, bound)) => {
            let _ = started.send(Ok(bound));
            server
        }
        Err(e) => {
            let _ = started.send(Err(e));
            return Ok(());
        }
    };
    match &shared_feed {
        // Every instance relays the shared stream; one of them produces.
        Some(feed) => feed.spawn(hub.shutdown_token()),
        None => {
            actix_web::rt::spawn(feed::run(
                hub.clone(),
                config.rate,
                config.payload_bytes,
                hub.shutdown_token(),
            ));
        }
    }
    if config.chaos_drop_fraction > 0.0 {
        actix_web::rt::spawn(chaos::run(
            hub.clone(),
            config.chaos_drop_fraction,
            config.chaos_every,
            hub.shutdown_token(),
        ));
    }
    server.await
}
