//! What a wire run connects to: the feed server (its routes, its JSON) or
//! any server given by URLs (its events read through JSON pointers).

use std::sync::Arc;

use super::spec::WireSpec;
use crate::client::{AnyTarget, Dialer, Opener, Target};

/// The server a wire run opens its streams to.
#[derive(Debug, Clone)]
pub enum Source {
    /// The feed server (embedded, a baseline stack, or external): `/sse`
    /// and `/ws`, decoded as the feed's JSON.
    Feed(Arc<Target>),
    /// Any server (`--sse-url`, `--ws-url`).
    Any(Arc<AnyTarget>),
}

impl Source {
    /// The opener of `spec`'s wire, its sockets spread over as many source
    /// addresses as `indices` connections need (every index up to this
    /// process's last: a shard's or a worker's block starts past 0).
    pub fn opener(&self, spec: &WireSpec, indices: usize) -> Result<Opener, String> {
        let pool = spec.h2_pool_size();
        match self {
            Source::Feed(t) => {
                let dialer = t.dialer(indices);
                Opener::for_wire(spec.wire, t, dialer, pool)
            }
            Source::Any(a) => {
                let dialer = Dialer::new(a.sources(spec.wire, indices));
                a.opener(spec.wire, dialer, pool)
            }
        }
    }

    /// Whether the streams go through an edge proxy (the server's hello then
    /// names the proxy's upstream hop, HTTP/1.1, whatever the wire).
    pub fn through_edge(&self) -> bool {
        match self {
            Source::Feed(t) => t.through_edge,
            Source::Any(_) => false,
        }
    }

    /// The configured stamp of any server's events (`/ts (ms)`), for messages.
    pub fn stamp_shown(&self) -> Option<String> {
        match self {
            Source::Feed(_) => None,
            Source::Any(a) => a.stamp_shown(),
        }
    }
}
