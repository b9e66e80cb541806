//! Starting an edge: render its config into a fresh working directory,
//! start the proxy on a free loopback port, wait until it listens; the
//! handle measures it and stops it on drop.

use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cert::EdgeCert;
use crate::error::EdgeError;
use crate::footprint::{self, Footprint};
use crate::kind::EdgeKind;
use crate::process::ProxyProcess;
use crate::profile::EdgeProfile;
use crate::template::Placeholders;

/// How long a proxy may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries with a new port when another process took the one we picked.
const PORT_TRIES: usize = 3;
/// Lines of each log shown in an error.
const TAIL_LINES: usize = 20;

/// What to start.
#[derive(Debug, Clone)]
pub struct EdgeSpec {
    pub kind: EdgeKind,
    pub profile: EdgeProfile,
    /// `host:port` of the upstream's plain HTTP/1.1 listener.
    pub upstream: String,
    /// The certificate to serve; `None` generates one for the loopback
    /// names inside the edge's directory ([`Edge::cert`] gives it).
    pub cert: Option<EdgeCert>,
}

impl EdgeSpec {
    pub fn new(kind: EdgeKind, profile: EdgeProfile, upstream: impl Into<String>) -> EdgeSpec {
        EdgeSpec {
            kind,
            profile,
            upstream: upstream.into(),
            cert: None,
        }
    }

    /// Serves `cert` (e.g. one also given to the upstream server).
    pub fn with_cert(mut self, cert: EdgeCert) -> EdgeSpec {
        self.cert = Some(cert);
        self
    }
}

/// A running proxy. Dropping it stops the master and every worker, then
/// removes its directory.
#[derive(Debug)]
pub struct Edge {
    process: ProxyProcess,
    kind: EdgeKind,
    profile: EdgeProfile,
    addr: SocketAddr,
    upstream: SocketAddr,
    cert: EdgeCert,
    config_path: PathBuf,
    config_text: String,
    /// Removed after the process is stopped (see `Drop`).
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
}

impl Edge {
    /// Starts the proxy and returns once it accepts connections (blocking,
    /// at most a few seconds). Errors name the log to read.
    pub fn start(spec: EdgeSpec) -> Result<Edge, EdgeError> {
        let binary = spec.kind.locate()?;
        let upstream = resolve(&spec.upstream)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("wb-edge-{}-", spec.kind))
            .tempdir()
            .map_err(EdgeError::WorkDir)?;
        // nginx's workers drop to `nobody` when started as root and must
        // reach their temp directories inside.
        set_mode(dir.path(), 0o755)?;
        let cert = match spec.cert.clone() {
            Some(c) => c,
            None => EdgeCert::generate(dir.path())?,
        };
        let (template, origin) = spec.profile.template(spec.kind)?;
        let config_path = dir.path().join(spec.kind.config_file_name());
        let log = dir.path().join("stderr.log");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = free_port()?;
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let placeholders = Placeholders {
                listen: addr.to_string(),
                port: port.to_string(),
                upstream: upstream.to_string(),
                cert: cert.cert_path.display().to_string(),
                key: cert.key_path.display().to_string(),
                cert_key: cert.cert_key_path.display().to_string(),
                dir: dir.path().display().to_string(),
            };
            let config_text = placeholders.render(&template, &origin)?;
            std::fs::write(&config_path, &config_text).map_err(|source| EdgeError::WriteFile {
                path: config_path.clone(),
                source,
            })?;
            let args = spec.kind.args(&config_path, dir.path());
            let mut process = ProxyProcess::spawn(&binary, &args, &log)?;
            match wait_listening(&mut process, addr) {
                Ok(()) => {
                    tracing::info!(kind = %spec.kind, %addr, %upstream, pid = process.pid(), "edge proxy listening");
                    let dir_path = dir.path().to_path_buf();
                    return Ok(Edge {
                        process,
                        kind: spec.kind,
                        profile: spec.profile,
                        addr,
                        upstream,
                        cert,
                        config_path,
                        config_text,
                        dir: Some(dir),
                        dir_path,
                    });
                }
                Err(status) => {
                    drop(process);
                    let (log_path, tail) = log_tail(spec.kind, dir.path());
                    if tail.contains("Address already in use") && attempt < PORT_TRIES {
                        // Start the next try's log afresh.
                        let _ = std::fs::remove_file(&log);
                        let _ = std::fs::remove_file(dir.path().join("error.log"));
                        tracing::debug!(port, "edge port taken meanwhile; trying another");
                        continue;
                    }
                    // Keep the directory: the error names its log.
                    let _ = dir.keep();
                    return Err(match status {
                        Some(status) => EdgeError::Exited {
                            kind: spec.kind,
                            status,
                            log: log_path,
                            tail,
                        },
                        None => EdgeError::NotListening {
                            kind: spec.kind,
                            addr,
                            waited: START_TIMEOUT,
                            log: log_path,
                            tail,
                        },
                    });
                }
            }
        }
    }

    pub fn kind(&self) -> EdgeKind {
        self.kind
    }

    pub fn profile(&self) -> &EdgeProfile {
        &self.profile
    }

    /// Where the edge listens (TLS, ALPN h2 and http/1.1).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `https://localhost:PORT/`: the name the certificate and a browser use.
    pub fn url(&self) -> String {
        format!("https://localhost:{}/", self.addr.port())
    }

    /// The upstream it proxies to.
    pub fn upstream(&self) -> SocketAddr {
        self.upstream
    }

    /// The certificate it serves.
    pub fn cert(&self) -> &EdgeCert {
        &self.cert
    }

    /// The first process (nginx's master; HAProxy's only one).
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Every live process: master and workers.
    pub fn pids(&self) -> Vec<u32> {
        self.process.pids()
    }

    /// RSS and CPU summed over master and workers.
    pub fn footprint(&self) -> Footprint {
        footprint::footprint(&self.pids())
    }

    /// Established TCP connections the proxy holds to the upstream.
    pub fn upstream_connections(&self) -> Result<usize, EdgeError> {
        footprint::connections_to(&self.pids(), self.upstream)
    }

    /// The rendered config, as the proxy runs it.
    pub fn config_text(&self) -> &str {
        &self.config_text
    }

    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The working directory (config, logs, pid file, temp files).
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }

    /// The proxy's log files.
    pub fn log_files(&self) -> Vec<PathBuf> {
        self.kind.log_files(&self.dir_path)
    }

    /// The last lines of each non-empty log, for a failure message.
    pub fn log_tail(&self) -> String {
        log_tail(self.kind, &self.dir_path).1
    }

    /// Whether the proxy is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.exited().is_none()
    }

    /// Stops it now (also done on drop) and keeps its directory, whose
    /// path is returned: to read the logs after a failure.
    pub fn stop_and_keep_logs(mut self) -> PathBuf {
        self.process.stop();
        if let Some(dir) = self.dir.take() {
            let _ = dir.keep();
        }
        self.dir_path.clone()
    }
}

impl Drop for Edge {
    fn drop(&mut self) {
        // The process first: nginx writes into the directory until it ends.
        self.process.stop();
        self.dir.take();
    }
}

fn resolve(upstream: &str) -> Result<SocketAddr, EdgeError> {
    let fail = |why: String| EdgeError::Upstream {
        upstream: upstream.into(),
        why,
    };
    upstream
        .to_socket_addrs()
        .map_err(|e| fail(e.to_string()))?
        .next()
        .ok_or_else(|| fail("no address".into()))
}

fn free_port() -> Result<u16, EdgeError> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).map_err(EdgeError::FreePort)?;
    Ok(listener.local_addr().map_err(EdgeError::FreePort)?.port())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), EdgeError> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(EdgeError::WorkDir)
}

/// `Ok` once `addr` accepts; `Err(Some(status))` if the proxy exited,
/// `Err(None)` if it never listened in time.
fn wait_listening(process: &mut ProxyProcess, addr: SocketAddr) -> Result<(), Option<String>> {
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Some(status) = process.exited() {
            return Err(Some(status.to_string()));
        }
        // Our own listener, not another process's on the same port (a race
        // for a free port), and accepting.
        if footprint::listening_on(&process.pids(), addr)
            && TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok()
        {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(None);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The most useful log (the first non-empty one) and the tails of all.
fn log_tail(kind: EdgeKind, dir: &Path) -> (PathBuf, String) {
    let files = kind.log_files(dir);
    let mut main = None;
    let mut text = String::new();
    for path in &files {
        let Ok(content) = std::fs::read_to_string(path) else {
            continue;
        };
        if content.trim().is_empty() {
            continue;
        }
        main.get_or_insert_with(|| path.clone());
        let lines: Vec<&str> = content.lines().collect();
        let from = lines.len().saturating_sub(TAIL_LINES);
        text.push_str(&format!("--- {} ---\n", path.display()));
        for line in &lines[from..] {
            text.push_str(line);
            text.push('\n');
        }
    }
    let main = main.unwrap_or_else(|| files[0].clone());
    if text.is_empty() {
        text.push_str("(the logs are empty)\n");
    }
    (main, text)
}
