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
