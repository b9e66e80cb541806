//! [`NetlabError`]: why a lab could not be set up, in words that say what
//! to do next.

use std::io;

use crate::spec::LinkSpecError;

#[derive(Debug, thiserror::Error)]
pub enum NetlabError {
    /// Not root: namespaces need CAP_SYS_ADMIN, TUN devices CAP_NET_ADMIN.
    #[error("the link emulator needs root: {missing} (it creates network namespaces and TUN devices; run as root, e.g. with sudo)")]
    NotPrivileged { missing: String },
    #[error("no TUN support: opening {path}: {source} (load the module with `modprobe tun`)")]
    NoTun {
        path: &'static str,
        source: io::Error,
    },
    #[error("{action} network namespace {name}: {source}")]
    Namespace {
        action: &'static str,
        name: String,
        source: io::Error,
    },
    #[error("setting up the TUN device {device} in network namespace {namespace}: {source}")]
    Device {
        device: &'static str,
        namespace: String,
        source: io::Error,
    },
    #[error("starting the link emulator's {what}: {source}")]
    Start {
        what: &'static str,
        source: io::Error,
    },
    #[error(transparent)]
    Link(#[from] LinkSpecError),
    #[error("invalid lab configuration: {0}")]
    Config(String),
}
