//! The listeners: one plain port for HTTP/1.1 and h2c (prior knowledge),
//! one TLS port for h2 and HTTP/1.1 (ALPN), and the limits that keep the
//! process within its descriptors.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_http::body::BoxBody;
use actix_http::{HttpServiceBuilder, Request, Response};
use actix_server::{GracefulShutdownSignal, ServerBuilder};
use actix_service::{map_config, Service, ServiceFactory};
use actix_web::dev::{AppConfig, ServerHandle};
use actix_web::{web as aweb, App};

use crate::broker::SharedFeed;
use crate::config::ServerConfig;
use crate::hub::Hub;
use crate::nofile::ConnectionBudget;
use crate::state::{AppState, Info, StreamHeaders};
use crate::{chaos, connection, echo, routes, tls};

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
    #[error(transparent)]
    SharedFeed(#[from] crate::broker::BrokerError),
}

/// A bound server, not yet serving.
pub(crate) struct Started {
    pub http_addr: SocketAddr,
    pub https_addr: Option<SocketAddr>,
    pub info: Info,
    pub handle: ServerHandle,
}

/// How long actix lingers after a response ends with the request unread
/// (a closed WebSocket: the client's half may still send), before it shuts
/// the socket. Must be well above 500 ms: actix computes the deadline from
/// a clock it refreshes every 500 ms (`DateService`), so a shorter timeout
/// often lands in the past, and a tokio sleep already elapsed when first
/// polled never wakes the connection again. With the 100 ms once set here,
/// most closed WebSockets kept their socket until the client closed it;
/// with 1 s every one closes 0.5 to 1 s after the close frame.
const LINGER: Duration = Duration::from_secs(1);

/// Binds every listener with the server's limits and returns the server,
/// not yet running, with what it bound.
pub(crate) fn bind(
    config: &Arc<ServerConfig>,
    hub: &Arc<Hub>,
    shared_feed: Option<Arc<SharedFeed>>,
    tls: Option<(rustls::ServerConfig, tls::CertInfo)>,
    budget: ConnectionBudget,
    max_streams: usize,
) -> Result<(actix_web::dev::Server, Started), ServerError> {
    // The app state needs the bound addresses, known only after binding:
    // the factory reads them from a cell filled right after.
    let state_cell: Arc<std::sync::OnceLock<aweb::Data<AppState>>> = Default::default();
    let factory_cell = state_cell.clone();
    // Shared by every worker: an echo POST may land on another worker than
    // the client's stream.
    let echo_clients = aweb::Data::new(echo::EchoClients::new(config.echo_queue));
    let chaos = aweb::Data::new(chaos::Chaos::default());
    let chaos_app = chaos.clone();
    let workers = config.workers.unwrap_or_else(default_workers);
    // One App per port and protocol in each worker (four): they share the
    // state, and their config says which port is TLS (`AppConfig::secure`
    // tells h2 from h2c in `state::protocol_of`). So an App must stay
    // stateless: state made in here would not be shared between a port's
    // HTTP/1.1 and HTTP/2 connections.
    let app = move |port: Port, addr: SocketAddr| {
        let state = factory_cell
            .get()
            .expect("state is set before the server runs")
            .clone();
        let app = App::new()
            .app_data(state)
            .app_data(echo_clients.clone())
            .app_data(chaos_app.clone())
            .wrap(actix_web::middleware::from_fn(chaos::gate))
            .configure(routes::configure);
        // The app's own config, as `HttpServer` makes it: whether the port
        // is TLS, and the bound address as host and local address (for
        // `ConnectionInfo` and URL building). actix-web's constructor is
        // crate-private; `__priv_test_new` is the same constructor, public
        // for actix-test and exempt from semver (Cargo.lock pins actix-web).
        let host = addr.to_string();
        map_config(app, move |()| {
            AppConfig::__priv_test_new(port == Port::Tls, host.clone(), addr)
        })
    };
    let mut server = ServerBuilder::default()
        .disable_signals()
        .workers(workers)
        .backlog(config.backlog)
        // actix's limit is per worker: all of them together stay within the
        // descriptors (see `nofile::ConnectionBudget`). Streams are limited
        // apart (the hub), below this, so /stats and refusals still get in.
        .max_concurrent_connections(budget.tcp_connections.div_ceil(workers).max(1))
        .shutdown_timeout(config.shutdown_timeout.as_secs().max(1));
    let settings = HttpSettings {
        shutdown: server.graceful_shutdown_signal(),
        h2_window: config.h2_initial_window_size,
        h2_connection_window: config.h2_initial_connection_window_size,
    };
    let bind_http = |source| ServerError::BindHttp {
        addr: config.http,
        source,
    };
    let plain = listener(config.http, config.backlog, config.reuse_port).map_err(bind_http)?;
    let http_addr = plain.local_addr().map_err(bind_http)?;
    {
        let app = app.clone();
        let settings = settings.clone();
        server = server
            .listen("http", plain, move || connection::Connections {
                open: connection::plain(settings.shutdown.clone()),
                h1: settings.http().h1(app(Port::Plain, http_addr)),
                h2: settings.http().h2(app(Port::Plain, http_addr)),
            })
            .map_err(bind_http)?;
    }
    let mut cert = None;
    let mut https_addr = None;
    if let Some((rustls_config, info)) = tls {
        let bind_https = |source| ServerError::BindHttps {
            addr: config.https,
            source,
        };
        let secure =
            listener(config.https, config.backlog, config.reuse_port).map_err(bind_https)?;
        let addr = secure.local_addr().map_err(bind_https)?;
        server = server
            .listen("https", secure, move || connection::Connections {
                open: connection::tls(rustls_config.clone()),
                h1: settings.http().h1(app(Port::Tls, addr)),
                h2: settings.http().h2(app(Port::Tls, addr)),
            })
            .map_err(bind_https)?;
        https_addr = Some(addr);
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
        max_streams,
        max_tcp_connections: budget.tcp_connections.div_ceil(workers).max(1) * workers,
        open_files_limit: budget.open_files,
    };
    let state = aweb::Data::new(AppState {
        hub: hub.clone(),
        config: config.clone(),
        info: info.clone(),
        shared_feed,
        stream_headers: StreamHeaders::new(&config.cors_origin),
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

/// Which port an App serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Port {
    Plain,
    Tls,
}

/// A listening socket, as actix's own bind makes it (`SO_REUSEADDR`, the
/// backlog given). With `reuse_port` (`--reuse-port`) several processes can
/// bind it: the kernel then spreads new connections over every process
/// listening on the port; each connection stays with the process that
/// accepted it.
fn listener(
    addr: SocketAddr,
    backlog: u32,
    reuse_port: bool,
) -> std::io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

/// What every port's HTTP services share: actix-web's `HttpServer`
/// defaults (keep-alive 5 s, a request head within 5 s, half-closed
/// HTTP/1.1 connections allowed), the linger above, and the server's
/// graceful stop, which drains keep-alive connections. `TCP_NODELAY` is
/// set by `connection` (the builder's flag is read only by actix's own
/// connection services, not used here).
#[derive(Clone)]
struct HttpSettings {
    shutdown: GracefulShutdownSignal,
    h2_window: Option<u32>,
    h2_connection_window: Option<u32>,
}

impl HttpSettings {
    fn http<T, S>(&self) -> HttpServiceBuilder<T, S>
    where
        S: ServiceFactory<Request, Config = ()>,
        S::Error: Into<Response<BoxBody>> + 'static,
        S::InitError: std::fmt::Debug,
        <S::Service as Service<Request>>::Future: 'static,
    {
        let shutdown = self.shutdown.clone();
        let mut builder = HttpServiceBuilder::default()
            .graceful_shutdown_signal(move || {
                let shutdown = shutdown.clone();
                async move { shutdown.notified().await }
            })
            .client_request_timeout(connection::REQUEST_HEAD_WITHIN)
            .client_disconnect_timeout(LINGER);
        if let Some(w) = self.h2_window {
            builder = builder.h2_initial_window_size(w);
        }
        if let Some(w) = self.h2_connection_window {
            builder = builder.h2_initial_connection_window_size(w);
        }
        builder
    }
}

/// actix's own default: one worker per CPU this process may use.
fn default_workers() -> usize {
    std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
}
