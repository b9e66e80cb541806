//! The one server starter: the feed server the load generator starts itself
//! (so one command works on a fresh machine), or the external one it was
//! pointed at, with what a scenario needs set.
//!
//! The embedded server runs in this process, or (the default for the
//! binary) in a child process running this same executable's `serve`
//! subcommand, so that the server's memory and CPU are measured apart from
//! the load generator's and its sockets do not count against this
//! process's open-file limit. Both are given the same [`ServerSettings`]:
//! as a config in this process, as flags to the child.
//!
//! With an edge ([`ServerSettings::edge`]), nginx or HAProxy is started in
//! front of the server's plain listener (the `edge` crate); one generated
//! certificate serves both the edge and the server's own TLS listener, and
//! the target's TLS side becomes the edge's.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use server::{RunningServer, ServerConfig};
use tokio::io::{AsyncBufReadExt, BufReader};

use super::link::{LinkError, LinkRun};
use super::options::{RunOptions, ServerChoice};
use crate::client::Target;
use crate::result::ServerSetup;

/// How long an embedded server may take to shut down (its streams never
/// end by themselves).
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(3);

/// What a scenario needs of the embedded server; everything else is the
/// server's default, on ephemeral loopback ports.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServerSettings {
    pub rate_hz: f64,
    pub payload_bytes: usize,
    pub workers: Option<usize>,
    /// The replay ring (the resume window), if not the default.
    pub replay: Option<usize>,
    /// The SSE `retry:` it sends, if not the default.
    pub retry_ms: Option<u64>,
    /// The address both listeners bind (port 0), if not 127.0.0.1: the
    /// server's address on an emulated link.
    pub listen: Option<IpAddr>,
    /// A proxy to start in front of it, and its config.
    pub edge: Option<(edge::EdgeKind, edge::EdgeProfile)>,
    /// Certificate and key for its TLS listener (default: generated): the
    /// edge's, or one naming the server's address on an emulated link.
    pub tls: Option<(PathBuf, PathBuf)>,
}

impl ServerSettings {
    /// A feed at `rate_hz` on `workers` threads, the rest the server's defaults.
    pub fn new(rate_hz: f64, workers: Option<usize>) -> Self {
        ServerSettings {
            rate_hz,
            workers,
            ..ServerSettings::default()
        }
    }

    /// The listeners' address (port 0: any free one).
    fn listen_addr(&self) -> SocketAddr {
        SocketAddr::new(self.listen.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)), 0)
    }

    /// The config of a server in this process.
    pub fn config(&self) -> ServerConfig {
        let mut c = ServerConfig::ephemeral();
        c.http = self.listen_addr();
        c.https = self.listen_addr();
        c.rate = self.rate_hz;
        c.payload_bytes = self.payload_bytes;
        c.workers = self.workers;
        c.shutdown_timeout = SHUTDOWN_TIMEOUT;
        if let Some(r) = self.replay {
            c.replay = r;
        }
        if let Some(ms) = self.retry_ms {
            c.retry_ms = ms;
        }
        if let Some((cert, key)) = &self.tls {
            c.tls_cert = Some(cert.clone());
            c.tls_key = Some(key.clone());
        }
        c
    }

    /// The `serve` flags that give a child server the same config.
    pub fn flags(&self) -> Vec<String> {
        let mut flags = vec![
            "--http".into(),
            self.listen_addr().to_string(),
            "--https".into(),
            self.listen_addr().to_string(),
            "--rate".into(),
            self.rate_hz.to_string(),
            "--payload-bytes".into(),
            self.payload_bytes.to_string(),
            "--shutdown-timeout".into(),
            SHUTDOWN_TIMEOUT.as_secs().to_string(),
        ];
        if let Some(w) = self.workers {
            flags.extend(["--workers".into(), w.to_string()]);
        }
        if let Some(r) = self.replay {
            flags.extend(["--replay".into(), r.to_string()]);
        }
        if let Some(ms) = self.retry_ms {
            flags.extend(["--retry-ms".into(), ms.to_string()]);
        }
        if let Some((cert, key)) = &self.tls {
            flags.extend([
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
            ]);
        }
        flags
    }
}

/// A started (or found) server and how to reach it.
pub struct StartedServer {
    /// Dropped (stopped) before the server.
    edge: Option<StartedEdge>,
    embedded: Option<EmbeddedServer>,
    pub target: Target,
    /// Where it runs and how it was set, for the result.
    pub setup: ServerSetup,
}

/// The edge proxy of a run, with the directory of its certificate.
struct StartedEdge {
    edge: edge::Edge,
    _cert_dir: tempfile::TempDir,
}

impl StartedServer {
    /// Starts the embedded server with `settings` (in this process or a
    /// child, as `opts` say), or checks the external target; then the edge
    /// in front of it, if asked.
    pub async fn start(opts: &RunOptions, settings: &ServerSettings) -> anyhow::Result<Self> {
        StartedServer::start_over(opts, settings, None).await
    }

    /// [`start`](Self::start), over `link` when given: the embedded child
    /// inside the link's server namespace, on the server's address there,
    /// with a certificate for that address; the target's sockets made in
    /// the client namespace. No edge over a link (refused).
    pub async fn start_over(
        opts: &RunOptions,
        settings: &ServerSettings,
        link: Option<&LinkRun>,
    ) -> anyhow::Result<Self> {
        let Some((kind, profile)) = settings.edge.clone() else {
            return StartedServer::start_direct(opts, settings, link).await;
        };
        if link.is_some() {
            return Err(LinkError::Server("an edge proxy (--edge)").into());
        }
        let cert_dir = tempfile::Builder::new()
            .prefix("wb-edge-cert-")
            .tempdir()
            .context("making a directory for the edge's certificate")?;
        let cert = edge::EdgeCert::generate(cert_dir.path())?;
        let with_cert = ServerSettings {
            tls: Some((cert.cert_path.clone(), cert.key_path.clone())),
            edge: None,
            ..settings.clone()
        };
        let mut started = StartedServer::start_direct(opts, &with_cert, None).await?;
        let upstream = started.target.http_addr.to_string();
        let spec = edge::EdgeSpec::new(kind, profile.clone(), upstream).with_cert(cert.clone());
        let edge = tokio::task::spawn_blocking(move || edge::Edge::start(spec))
            .await
            .context("starting the edge")??;
        let announced = edge::read_h2_settings(
            edge.addr(),
            "localhost",
            &cert.cert_path,
            Duration::from_secs(10),
        )
        .await
        .with_context(|| format!("reading the HTTP/2 SETTINGS of {kind} at {}", edge.url()))?;
        started.setup.edge = Some(crate::result::EdgeSetup {
            kind: kind.to_string(),
            config: profile.label(),
            url: edge.url(),
            version: edge_version(kind),
            h2_max_concurrent_streams: announced.max_concurrent_streams,
            enable_connect_protocol: announced.enable_connect_protocol,
            config_text: edge.config_text().to_string(),
        });
        started.setup.https_url = Some(edge.url());
        started.target = started
            .target
            .clone()
            .via_edge(edge.addr(), cert.cert_path.clone())?;
        started.edge = Some(StartedEdge {
            edge,
            _cert_dir: cert_dir,
        });
        Ok(started)
    }

    /// The edge proxy in front of the server, if any.
    pub fn edge(&self) -> Option<&edge::Edge> {
        self.edge.as_ref().map(|e| &e.edge)
    }

    async fn start_direct(
        opts: &RunOptions,
        settings: &ServerSettings,
        link: Option<&LinkRun>,
    ) -> anyhow::Result<Self> {
        let (embedded, target) = match (&opts.server, link) {
            (ServerChoice::InProcess, None) => {
                let e = EmbeddedServer::in_process(settings.config())?;
                let target = e.target("localhost")?;
                (Some(e), target)
            }
            (ServerChoice::Child { exe }, None) => {
                let e = EmbeddedServer::child(exe.clone(), settings.flags()).await?;
                let target = e.target("localhost")?;
                (Some(e), target)
            }
            (ServerChoice::Child { exe }, Some(link)) => {
                let over_link = ServerSettings {
                    listen: Some(link.server_addr()),
                    tls: Some(link.tls_files()),
                    ..settings.clone()
                };
                let e = EmbeddedServer::child_in(
                    exe.clone(),
                    over_link.flags(),
                    Some(link.server_netns()),
                )
                .await?;
                let target = e
                    .target(&link.server_addr().to_string())?
                    .with_socket_hook(link.socket_hook());
                (Some(e), target)
            }
            (ServerChoice::InProcess, Some(_)) => {
                return Err(LinkError::Server("a server in this process (--in-process)").into())
            }
            (ServerChoice::External { .. }, Some(_)) => {
                return Err(LinkError::Server("an external server (--target)").into())
            }
            (
                ServerChoice::External {
                    http_url,
                    https_url,
                    trust,
                    allow_remote,
                },
                None,
            ) => {
                let t =
                    Target::external(http_url, https_url.as_deref(), trust.clone(), *allow_remote)
                        .await
                        .context("checking the target")?;
                (None, t)
            }
        };
        let setup = ServerSetup {
            mode: embedded
                .as_ref()
                .map_or("external", EmbeddedServer::mode)
                .to_string(),
            http_url: target.http_url.clone(),
            https_url: target.https_url.clone(),
            rate_hz: settings.rate_hz,
            payload_bytes: settings.payload_bytes,
            workers: opts.workers,
            edge: None,
        };
        Ok(StartedServer {
            edge: None,
            embedded,
            target,
            setup,
        })
    }

    /// The certificate a worker process must trust: the edge's, the
    /// embedded server's, or the one given for an external server.
    pub fn ca_cert(&self, opts: &RunOptions) -> Option<PathBuf> {
        if let Some(e) = &self.edge {
            return Some(e.edge.cert().cert_path.clone());
        }
        match (&self.embedded, &opts.server) {
            (Some(e), _) => e.ready().cert_path,
            (
                None,
                ServerChoice::External {
                    trust: crate::client::Trust::CaFile(p),
                    ..
                },
            ) => Some(p.clone()),
            _ => None,
        }
    }

    /// Stops the edge, then the embedded server (an external one is left
    /// alone).
    pub async fn stop(self) {
        if let Some(e) = self.edge {
            // Stopping waits for the proxy's processes to exit.
            let _ = tokio::task::spawn_blocking(move || drop(e)).await;
        }
        if let Some(e) = self.embedded {
            e.stop().await;
        }
    }
}

/// The proxy's version line, for the result (`nginx version: nginx/1.22.1`).
fn edge_version(kind: edge::EdgeKind) -> String {
    let Ok(binary) = kind.locate() else {
        return String::new();
    };
    std::process::Command::new(binary)
        .arg("-v")
        .output()
        .map(|o| {
            // nginx prints its version on stderr, HAProxy on stdout.
            let text = [o.stdout, o.stderr].concat();
            String::from_utf8_lossy(&text)
                .lines()
                .next()
                .unwrap_or("")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

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
        EmbeddedServer::child_in(exe, flags, None).await
    }

    /// [`child`](Self::child), the process started inside `netns` when given.
    pub async fn child_in(
        exe: PathBuf,
        flags: Vec<String>,
        netns: Option<&netlab::Netns>,
    ) -> Result<Self, EmbeddedError> {
        let mut command = tokio::process::Command::new(&exe);
        if let Some(netns) = netns {
            netns.configure_tokio_command(&mut command);
        }
        let mut child = command
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
        let ready = ready_line(&mut child).await?;
        Ok(EmbeddedServer::Child { child, ready })
    }

    /// How to reach it: its certificate file is trusted for `tls_host`.
    fn target(&self, tls_host: &str) -> Result<Target, crate::client::TargetError> {
        let r = self.ready();
        Target::embedded_as(r.http_addr, r.https_addr, r.cert_path, tls_host)
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

/// How long a child server may take to say it listens.
const READY_WAIT: Duration = Duration::from_secs(20);

/// Reads a started child's ready line (the first line of its stdout that
/// parses as `T`), then keeps draining its stdout so it never blocks on a
/// full pipe.
pub async fn ready_line<T: serde::de::DeserializeOwned>(
    child: &mut tokio::process::Child,
) -> Result<T, EmbeddedError> {
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| EmbeddedError::NotReady("its stdout is not piped".into()))?;
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(READY_WAIT, async {
        while let Some(line) = lines.next_line().await.map_err(|e| e.to_string())? {
            if let Ok(ready) = serde_json::from_str::<T>(&line) {
                return Ok(ready);
            }
        }
        Err("it exited first (see its messages above)".to_string())
    })
    .await
    .map_err(|_| EmbeddedError::NotReady("timed out".into()))?
    .map_err(EmbeddedError::NotReady)?;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(ready)
}

/// The `serve` subcommand: runs the server until stdin closes (the parent
/// went away or asked) or a signal arrives; `announce` gets the ready line
/// first (the binary prints it on stdout, where the parent reads it).
///
/// With `edge`, nginx or HAProxy runs in front of it with one generated
/// certificate (also the server's own TLS listener's), and `announce` gets
/// `edge: https://localhost:PORT/` before the ready line, then the
/// certificate to trust.
pub async fn serve(
    mut config: ServerConfig,
    edge: Option<(edge::EdgeKind, edge::EdgeProfile)>,
    mut announce: impl FnMut(&str),
) -> anyhow::Result<()> {
    server::nofile::raise_open_files_limit();
    let cert_dir = tempfile::Builder::new()
        .prefix("wb-edge-cert-")
        .tempdir()
        .context("making a directory for the edge's certificate")?;
    let cert = match &edge {
        Some(_) if config.tls_cert.is_none() => {
            let cert = edge::EdgeCert::generate(cert_dir.path())?;
            config.tls_cert = Some(cert.cert_path.clone());
            config.tls_key = Some(cert.key_path.clone());
            Some(cert)
        }
        Some(_) => {
            let (c, k) = config
                .tls_cert
                .clone()
                .zip(config.tls_key.clone())
                .context("--tls-cert needs --tls-key")?;
            Some(edge::EdgeCert::from_files(&c, &k, cert_dir.path())?)
        }
        None => None,
    };
    let running = server::run(config).context("starting the server")?;
    let proxy = match (edge, cert) {
        (Some((kind, profile)), Some(cert)) => {
            let upstream = running.http_addr.to_string();
            let spec = edge::EdgeSpec::new(kind, profile, upstream).with_cert(cert.clone());
            let proxy = tokio::task::spawn_blocking(move || edge::Edge::start(spec))
                .await
                .context("starting the edge")??;
            announce(&format!("edge: {}", proxy.url()));
            announce(&format!(
                "edge: {kind} ({}) in front of http://{}; trust {}{}",
                proxy.profile(),
                running.http_addr,
                cert.cert_path.display(),
                cert.spki_sha256
                    .as_ref()
                    .map(|h| format!(" or run chromium --ignore-certificate-errors-spki-list={h}"))
                    .unwrap_or_default()
            ));
            Some(proxy)
        }
        _ => None,
    };
    let ready = Ready {
        http_addr: running.http_addr,
        https_addr: running.https_addr,
        cert_path: running.cert_path(),
        pid: std::process::id(),
    };
    announce(&serde_json::to_string(&ready).expect("Ready serializes"));
    let mut stdin = tokio::io::stdin();
    let mut sink = tokio::io::sink();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("listening for SIGTERM")?;
    tokio::select! {
        _ = tokio::io::copy(&mut stdin, &mut sink) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    if let Some(p) = proxy {
        let _ = tokio::task::spawn_blocking(move || drop(p)).await;
    }
    running.shutdown().await.context("stopping the server")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The child gets by flags what a server in this process gets by config.
    #[test]
    fn flags_and_config_agree() {
        let settings = ServerSettings {
            rate_hz: 12.5,
            payload_bytes: 100,
            workers: Some(3),
            replay: Some(32),
            retry_ms: Some(150),
            listen: Some("198.18.1.1".parse().unwrap()),
            edge: None,
            tls: Some(("/c.pem".into(), "/k.pem".into())),
        };
        let mut args = vec!["server".to_string()];
        args.extend(settings.flags());
        let parsed = <ServerConfig as clap::Parser>::try_parse_from(&args).unwrap();
        let config = settings.config();
        assert_eq!(
            (
                parsed.rate,
                parsed.payload_bytes,
                parsed.workers,
                parsed.replay,
                parsed.retry_ms
            ),
            (
                config.rate,
                config.payload_bytes,
                config.workers,
                config.replay,
                config.retry_ms
            )
        );
        assert_eq!(parsed.shutdown_timeout, config.shutdown_timeout);
        assert_eq!((parsed.http, parsed.https), (config.http, config.https));
        assert_eq!(parsed.http.to_string(), "198.18.1.1:0");
        assert_eq!(
            (parsed.tls_cert, parsed.tls_key),
            (config.tls_cert, config.tls_key)
        );
    }
}
