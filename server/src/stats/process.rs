//! The process's own memory, CPU and descriptors, read from the kernel.
//!
//! One of the two modules of the server with `unsafe` (the other is
//! `allocator`, for glibc's `mallinfo2` and `malloc_trim`): `sysconf` and `getrusage`
//! are two cheap calls that no crate here wraps, so they are made directly,
//! each with its safety argument beside it.
#![allow(unsafe_code)]

use serde::Serialize;

/// Memory and CPU of this process. The load generator reads its own with
/// [`ProcessStats::now`] too.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ProcessStats {
    pub rss_bytes: u64,
    pub cpu_user_us: u64,
    pub cpu_system_us: u64,
}

impl ProcessStats {
    /// Reads `/proc/self/statm` and `getrusage`. Figures that cannot be read
    /// (not Linux) are 0.
    pub fn now() -> Self {
        let page = page_size();
        let rss_bytes = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|pages| pages * page)
            .unwrap_or(0);
        let (cpu_user_us, cpu_system_us) = rusage_self();
        ProcessStats {
            rss_bytes,
            cpu_user_us,
            cpu_system_us,
        }
    }

    pub fn cpu_us(&self) -> u64 {
        self.cpu_user_us + self.cpu_system_us
    }
}

/// Descriptors this process holds now (sockets, listeners, files, epoll
/// and event fds): a leaked socket shows here even when no stream counts it.
/// Reads `/proc/self/fd`, one entry per descriptor, so it costs O(open
/// descriptors): for `/stats`, not for a hot path. 0 if it cannot be read.
pub fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd")
        // Less the descriptor of the listing itself.
        .map(|dir| (dir.count() as u64).saturating_sub(1))
        .unwrap_or(0)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions; it only reads a constant.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 {
        p as u64
    } else {
        4096
    }
}

fn rusage_self() -> (u64, u64) {
    // SAFETY: rusage is a plain C struct of integers, for which all-zero
    // bytes are a valid value.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage writes into the struct we own and pass by a valid,
    // exclusive pointer; RUSAGE_SELF is a valid `who`.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return (0, 0);
    }
    let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    (us(ru.ru_utime), us(ru.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_figures_are_read() {
        let p = ProcessStats::now();
        assert!(p.rss_bytes > 0);
        // stdin, stdout, stderr at least.
        assert!(open_fds() >= 3);
        let file = std::fs::File::open("/proc/self/statm").expect("opens");
        let with_one_more = open_fds();
        drop(file);
        assert_eq!(open_fds() + 1, with_one_more);
    }
}
