//! The feed server: one server-time feed over `/sse` and `/ws`, on HTTP/1.1,
//! h2 over TLS (ALPN) and cleartext h2c.
//!
//! [`run`] starts it on its own thread and actix system, so it can be embedded
//! in any program (the load generator does) and driven by tests on port 0.

pub mod chaos;
pub mod chat;
pub mod config;
pub mod echo;
pub mod event;
pub mod feed;
pub mod hub;
pub mod nofile;
pub mod ring;
pub mod routes;
pub mod sse;
pub mod stats;
pub mod tls;
mod web;
pub mod wire;
pub mod ws;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{web as aweb, App, HttpServer};

pub use config::ServerConfig;
pub use hub::Hub;
pub use routes::Info;

/// Why the server could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("binding the plain listener on {addr}: {source} (is another server on that port? try --http 127.0.0.1:0)")]
    BindHttp {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("binding the TLS listener on {addr}: {source} (try --https 127.0.0.1:0, or --no-tls)")]
    BindHttps {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    #[error("starting the server thread: {0}")]
    Thread(std::io::Error),
    #[error("the server thread ended before it started")]
    Vanished,
    #[error("the server did not stop within {0:?}")]
    StopTimeout(Duration),
    #[error("the server failed: {0}")]
    Io(#[from] std::io::Error),
}

/// A started server: its addresses and the means to stop it.
#[derive(Debug)]
pub struct RunningServer {
    /// The plain listener (HTTP/1.1 and h2c).
    pub http_addr: SocketAddr,
    /// The TLS listener (h2 and HTTP/1.1), unless `--no-tls`.
    pub https_addr: Option<SocketAddr>,
    pub info: Info,
    hub: Arc<Hub>,
    handle: ServerHandle,
    done: Option<tokio::sync::oneshot::Receiver<std::io::Result<()>>>,
    shutdown_timeout: Duration,
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
pub fn run(config: ServerConfig) -> Result<RunningServer, ServerError> {
    let config = Arc::new(config);
    let tls = if config.no_tls {
        None
    } else {
        let files = config.tls_cert.as_deref().zip(config.tls_key.as_deref());
        let out = config.cert_out.clone().unwrap_or_else(default_cert_path);
        Some(tls::server_config(files, &out)?)
    };
    let hub = Hub::new(config.replay, config.fanout_buffer, config.max_connections);
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let thread_hub = hub.clone();
    let thread_config = config.clone();
    std::thread::Builder::new()
        .name("feed-server".into())
        .spawn(move || {
            let result = actix_web::rt::System::new().block_on(serve(
                thread_config,
                thread_hub,
                tls,
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
    })
}

struct Started {
    http_addr: SocketAddr,
    https_addr: Option<SocketAddr>,
    info: Info,
    handle: ServerHandle,
}

type StartedTx = std::sync::mpsc::Sender<Result<Started, ServerError>>;

/// Runs on the server thread: binds, reports back, serves until stopped.
async fn serve(
    config: Arc<ServerConfig>,
    hub: Arc<Hub>,
    tls: Option<(rustls::ServerConfig, tls::CertInfo)>,
    started: StartedTx,
) -> std::io::Result<()> {
    let server = match bind(&config, &hub, tls) {
        Ok((server, s)) => {
            let handle = server.handle();
            let _ = started.send(Ok(Started { handle, ..s }));
            server
        }
        Err(e) => {
            let _ = started.send(Err(e));
            return Ok(());
        }
    };
    actix_web::rt::spawn(feed::run(
        hub.clone(),
        config.rate,
        config.payload_bytes,
        hub.shutdown_token(),
    ));
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

fn bind(
    config: &Arc<ServerConfig>,
    hub: &Arc<Hub>,
    tls: Option<(rustls::ServerConfig, tls::CertInfo)>,
) -> Result<(actix_web::dev::Server, Started), ServerError> {
    // The app state needs the bound addresses, known only after binding:
    // the factory reads them from a cell filled right after.
    let state_cell: Arc<std::sync::OnceLock<aweb::Data<routes::AppState>>> = Default::default();
    let factory_cell = state_cell.clone();
    // Shared by every worker: an echo POST may land on another worker than
    // the client's stream.
    let echo_clients = aweb::Data::new(echo::EchoClients::new(config.echo_queue));
    let chaos = aweb::Data::new(chaos::Chaos::default());
    let chaos_app = chaos.clone();
    let mut server = HttpServer::new(move || {
        let state = factory_cell
            .get()
            .expect("state is set before the server runs")
            .clone();
        App::new()
            .app_data(state)
            .app_data(echo_clients.clone())
            .app_data(chaos_app.clone())
            .wrap(actix_web::middleware::from_fn(chaos::gate))
            .configure(routes::configure)
    })
    .disable_signals()
    .backlog(config.backlog)
    // Our own limit (--max-connections) counts streams; actix's is per worker.
    .max_connections(1_000_000)
    .tcp_nodelay(true)
    // After a stream ends (a WebSocket close, a drop), close the socket soon
    // instead of waiting a second for the client: browsers report a closed
    // WebSocket only when TCP closes, and recovery time is what we show.
    .client_disconnect_timeout(std::time::Duration::from_millis(100))
    .shutdown_timeout(config.shutdown_timeout.as_secs().max(1));
    if let Some(n) = config.workers {
        server = server.workers(n);
    }
    if let Some(w) = config.h2_initial_window_size {
        server = server.h2_initial_window_size(w);
    }
    if let Some(w) = config.h2_initial_connection_window_size {
        server = server.h2_initial_connection_window_size(w);
    }
    // actix-web 4.18 detects h2c prior knowledge only on the `auto_h2c` binds.
    server = server
        .bind_auto_h2c(config.http)
        .map_err(|source| ServerError::BindHttp {
            addr: config.http,
            source,
        })?;
    let http_addr = server.addrs()[0];
    let mut cert = None;
    let mut https_addr = None;
    if let Some((rustls_config, info)) = tls {
        server = server
            .bind_rustls_0_23(config.https, rustls_config)
            .map_err(|source| ServerError::BindHttps {
                addr: config.https,
                source,
            })?;
        https_addr = server
            .addrs_with_scheme()
            .into_iter()
            .find(|(_, scheme)| *scheme == "https")
            .map(|(a, _)| a);
        cert = Some(info);
    }
    let info = Info {
        http_url: format!("http://{http_addr}"),
        // `localhost` matches the certificate and is what a browser shows;
        // the certificate also names 127.0.0.1.
        https_url: https_addr.map(|a| format!("https://localhost:{}", a.port())),
        rate_hz: config.rate,
        payload_bytes: config.payload_bytes,
        replay: config.replay,
        retry_ms: config.retry_ms,
        keepalive_s: config.keepalive.as_secs_f64(),
        cert_path: cert.as_ref().map(|c| c.cert_path.display().to_string()),
        spki_sha256: cert.and_then(|c| c.spki_sha256),
        h2_max_concurrent_streams: None,
    };
    let state = aweb::Data::new(routes::AppState {
        hub: hub.clone(),
        config: config.clone(),
        info: info.clone(),
    });
    let _ = state_cell.set(state);
    let server = server.run();
    let handle = server.handle();
    chaos.set_handle(handle.clone());
    Ok((
        server,
        Started {
            http_addr,
            https_addr,
            info,
            handle,
        },
    ))
}
