//! Raises the open-file limit: every connection is a file descriptor, and
//! the default soft limit (often 1024) is far below what a run holds.

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the limit now
/// in force (0 if it cannot be read).
pub fn raise_open_files_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::Resource::NOFILE.get().map_or(0, |(soft, _)| soft)
        }
    }
}

/// A message for when the limit is below what a run needs.
pub fn too_low_message(limit: u64, needed: u64) -> String {
    format!(
        "this run needs about {needed} open files but this process may hold {limit}: \
         raise the hard limit (`ulimit -Hn`, LimitNOFILE= in systemd, /etc/security/limits.conf) \
         or spread the run with --processes"
    )
}

/// Descriptors kept for what is not a client connection: stdio, the
/// listeners, each worker's epoll and event descriptors, certificate and
/// `/proc` reads. The server holds about 25 with two workers when idle.
pub const RESERVED_FDS: u64 = 64;

/// How the open-file limit is shared out, so the process never runs out of
/// descriptors ("Too many open files" at accept) whatever clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionBudget {
    /// The soft open-file limit in force.
    pub open_files: u64,
    /// TCP connections accepted at once, all workers together: the limit
    /// less [`RESERVED_FDS`]. Beyond it new connections wait in the backlog
    /// (actix stops accepting), never fail with EMFILE.
    pub tcp_connections: usize,
    /// Streams (SSE and WebSocket) beyond which new ones get 503: the TCP
    /// budget less a share kept for `/stats`, `/metrics`, the page and the
    /// refusals themselves, so those stay reachable when streams are full.
    pub streams: usize,
}

impl ConnectionBudget {
    /// The budget for an open-file limit of `open_files`.
    pub fn for_limit(open_files: u64) -> Self {
        let tcp = open_files.saturating_sub(RESERVED_FDS).max(2);
        // A 64th of the connections, and at least 16, for everything else.
        let share = (tcp / 64).max(16).min(tcp / 2);
        ConnectionBudget {
            open_files,
            tcp_connections: usize::try_from(tcp).unwrap_or(usize::MAX),
            streams: usize::try_from(tcp - share).unwrap_or(usize::MAX),
        }
    }

    /// The budget for this process's soft open-file limit now.
    pub fn current() -> Self {
        let soft = rlimit::Resource::NOFILE
            .get()
            .map_or(1024, |(soft, _)| soft);
        Self::for_limit(soft)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_leave_a_reserve_and_a_share() {
        let b = ConnectionBudget::for_limit(20_000);
        assert_eq!(b.tcp_connections, 19_936);
        assert_eq!(b.streams, 19_936 - 311);
        let small = ConnectionBudget::for_limit(256);
        assert_eq!((small.tcp_connections, small.streams), (192, 176));
        let tiny = ConnectionBudget::for_limit(10);
        assert!(tiny.streams >= 1 && tiny.streams < tiny.tcp_connections);
    }
}
