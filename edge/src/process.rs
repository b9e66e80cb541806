//! The proxy as a child process: started in its own process group so that
//! the master and every worker it forks are found, measured and stopped
//! together; stopped when the handle drops, also while a panic unwinds.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;

use crate::error::EdgeError;

/// How long a stop waits after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(20);

/// A running proxy process tree.
#[derive(Debug)]
pub(crate) struct ProxyProcess {
    child: Option<Child>,
    /// The group id: the first process's pid.
    pgid: u32,
}

impl ProxyProcess {
    /// Starts `binary args` in a new process group, stdout and stderr
    /// appended to `log`.
    pub(crate) fn spawn(binary: &Path, args: &[String], log: &Path) -> Result<Self, EdgeError> {
        let open_log = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .map_err(|source| EdgeError::WriteFile {
                    path: log.into(),
                    source,
                })
        };
        let (out, err) = (open_log()?, open_log()?);
        use std::os::unix::process::CommandExt as _;
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|source| EdgeError::Spawn {
                binary: binary.into(),
                source,
            })?;
        let pgid = child.id();
        Ok(ProxyProcess {
            child: Some(child),
            pgid,
        })
    }

    /// The first process (nginx's master, HAProxy's only process).
    pub(crate) fn pid(&self) -> u32 {
        self.pgid
    }

    /// Its exit status, if it has ended.
    pub(crate) fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Every live process of the group (master and workers), sorted.
    pub(crate) fn pids(&self) -> Vec<u32> {
        group_members(self.pgid)
    }

    /// SIGTERM to the group, SIGKILL after a grace period, then reaps.
    pub(crate) fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let group = Pid::from_raw(self.pgid as i32);
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + STOP_GRACE;
        loop {
            let reaped = matches!(child.try_wait(), Ok(Some(_)));
            if reaped && group_members(self.pgid).is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(POLL);
        }
        tracing::warn!(
            pgid = self.pgid,
            "edge proxy did not stop on SIGTERM; killing"
        );
        let _ = killpg(group, Signal::SIGKILL);
        let _ = child.wait();
        let deadline = Instant::now() + STOP_GRACE;
        while !group_members(self.pgid).is_empty() && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for ProxyProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Processes whose group is `pgid`, zombies excluded.
pub(crate) fn group_members(pgid: u32) -> Vec<u32> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = all
        .filter_map(Result::ok)
        .filter_map(|p| p.stat().ok())
        .filter(|s| s.pgrp == pgid as i32 && s.state != 'Z')
        .map(|s| s.pid as u32)
        .collect();
    pids.sort_unstable();
    pids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_group_is_stopped_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("out.log");
        // A parent that forks a child which ignores SIGTERM: the group kill
        // after the grace period must still take both.
        let script = "trap '' TERM; sleep 60 & echo started; wait";
        let p =
            ProxyProcess::spawn(Path::new("/bin/sh"), &["-c".into(), script.into()], &log).unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while p.pids().len() < 2 && Instant::now() < deadline {
            std::thread::sleep(POLL);
        }
        let pids = p.pids();
        assert_eq!(pids.len(), 2, "{pids:?}");
        let pgid = p.pid();
        drop(p);
        assert!(group_members(pgid).is_empty());
        assert!(std::fs::read_to_string(log).unwrap().contains("started"));
    }
}
