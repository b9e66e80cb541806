//! Another process's memory and CPU, read from `/proc/PID` (procfs): the
//! server cost of a server that has no `/stats` (`--server-pid`, the
//! baseline stacks), measured the way the feed server measures itself.

/// What a server process has used so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcessFigures {
    pub rss_bytes: u64,
    /// User plus system CPU time, µs (the kernel counts it in clock ticks:
    /// 10 ms each, so figures are meaningful over a hold of seconds).
    pub cpu_us: u64,
}

/// Why a process could not be read.
#[derive(Debug, thiserror::Error)]
#[error("reading /proc/{pid}: {reason} (is process {pid} running, and yours to read?)")]
pub struct ProcessError {
    pub pid: u32,
    pub reason: String,
}

/// Reads one process's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessProbe {
    pub pid: u32,
}

impl ProcessProbe {
    pub fn new(pid: u32) -> Self {
        ProcessProbe { pid }
    }

    /// The process's RSS and CPU time now (with every thread's).
    pub fn read(&self) -> Result<ProcessFigures, ProcessError> {
        let err = |e: procfs::ProcError| ProcessError {
            pid: self.pid,
            reason: e.to_string(),
        };
        let pid = i32::try_from(self.pid).map_err(|_| ProcessError {
            pid: self.pid,
            reason: "not a process id".into(),
        })?;
        let stat = procfs::process::Process::new(pid)
            .and_then(|p| p.stat())
            .map_err(err)?;
        let ticks = procfs::ticks_per_second().max(1);
        let cpu_ticks = stat.utime.saturating_add(stat.stime);
        Ok(ProcessFigures {
            rss_bytes: stat.rss.saturating_mul(procfs::page_size()),
            cpu_us: cpu_ticks.saturating_mul(1_000_000) / ticks,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process_and_names_a_missing_one() {
        let own = ProcessProbe::new(std::process::id()).read().unwrap();
        assert!(own.rss_bytes > 1_000_000, "{own:?}");
        let e = ProcessProbe::new(u32::MAX - 1).read().unwrap_err();
        assert!(e.to_string().contains("/proc/4294967294"), "{e}");
    }
}
