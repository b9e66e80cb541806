//! Why an edge could not be set up, started or measured: each error names
//! the file or command to look at next.

use std::path::PathBuf;
use std::time::Duration;

use crate::kind::EdgeKind;

/// What went wrong with an edge proxy.
#[derive(Debug, thiserror::Error)]
pub enum EdgeError {
    #[error("`{binary}` ({kind}) is not installed: not on PATH nor in /usr/sbin (install: apt-get install -y {package})")]
    NotInstalled {
        kind: EdgeKind,
        binary: &'static str,
        package: &'static str,
    },
    #[error("unknown edge `{0}`: use nginx or haproxy")]
    UnknownKind(String),
    #[error("reading the edge config {path}: {source}")]
    ReadConfig {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "the edge config {origin} uses `{{{{{name}}}}}`, which is not a placeholder: use {known}"
    )]
    UnknownPlaceholder {
        origin: String,
        name: String,
        known: String,
    },
    #[error("the edge config {origin} has a `{{{{` that is never closed")]
    UnclosedPlaceholder { origin: String },
    #[error("generating the edge's TLS certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    #[error("reading {path}: {source}")]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    WriteFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("making the edge's working directory: {0}")]
    WorkDir(std::io::Error),
    #[error("finding a free loopback port for the edge: {0}")]
    FreePort(std::io::Error),
    #[error("resolving the upstream `{upstream}`: {why}")]
    Upstream { upstream: String, why: String },
    #[error("starting `{binary}`: {source}")]
    Spawn {
        binary: PathBuf,
        source: std::io::Error,
    },
    #[error("{kind} exited at start ({status}); see {log}:\n{tail}")]
    Exited {
        kind: EdgeKind,
        status: String,
        log: PathBuf,
        tail: String,
    },
    #[error("{kind} did not listen on {addr} within {waited:?}; see {log}:\n{tail}")]
    NotListening {
        kind: EdgeKind,
        addr: std::net::SocketAddr,
        waited: Duration,
        log: PathBuf,
        tail: String,
    },
    #[error("reading /proc for the edge's processes: {0}")]
    Proc(#[from] procfs::ProcError),
    #[error("connecting to {addr}: {source}")]
    Connect {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS to {addr}: {source}")]
    Tls {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("building the TLS client: {0}")]
    TlsConfig(String),
    #[error("{addr} did not negotiate ALPN h2 (got {got})")]
    NoH2 {
        addr: std::net::SocketAddr,
        got: String,
    },
    #[error("{what} did not finish within {waited:?}")]
    Timeout { what: String, waited: Duration },
}
