//! Named network namespaces: create, enter (a thread, a child process),
//! remove, and sweep the ones a crashed run left behind.
//!
//! Namespaces are made the way `ip netns add` makes them (a bind mount of
//! the namespace onto `/run/netns/<name>`, with `/run/netns` a shared mount),
//! so `ip netns exec wbnet-…-c ss -ti` works for looking inside a live run.
//! The name carries the owning process's pid (`wbnet-<pid>-<n>-c`), which is
//! how a later run recognises the leftovers of a dead one without touching
//! those of a live one.
//!
//! A namespace is a property of a *thread* (and of the processes it forks),
//! and a socket's namespace is fixed when the socket is created. So nothing
//! here ever switches a caller's own thread: work that must happen inside a
//! namespace runs on a thread spawned for it ([`Netns::run`],
//! [`Netns::spawn_thread`]), and child processes enter it between fork and
//! exec ([`Netns::configure_command`]).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};

/// Where named network namespaces live (shared with iproute2).
pub const NETNS_DIR: &str = "/run/netns";
/// Every namespace this crate makes starts with this.
pub const NAME_PREFIX: &str = "wbnet-";

/// An open network namespace. Cloning is cheap (the namespace file
/// descriptor is shared); the namespace stays alive while any clone, a
/// thread inside it, a socket made in it or its name exists.
#[derive(Debug, Clone)]
pub struct Netns {
    name: String,
    fd: Arc<OwnedFd>,
}

impl Netns {
    /// Opens the named namespace `/run/netns/<name>`.
    pub fn open(name: &str) -> io::Result<Netns> {
        let fd = File::open(path_of(name))?;
        Ok(Netns {
            name: name.to_string(),
            fd: Arc::new(fd.into()),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/run/netns/<name>`.
    pub fn path(&self) -> PathBuf {
        path_of(&self.name)
    }

    /// Moves the *calling* thread into this namespace, for good. Only for
    /// threads you created for that purpose (e.g. in a tokio runtime's
    /// `on_thread_start`): a shared thread (a runtime worker, the main
    /// thread) would then make all its later sockets in this namespace.
    pub fn enter_current_thread(&self) -> io::Result<()> {
        setns(&*self.fd, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)
    }

    /// Runs `f` on a fresh thread inside this namespace and returns its
    /// result; the caller's thread never changes namespace. A panic in `f`
    /// is passed on to the caller.
    pub fn run<T: Send>(&self, f: impl FnOnce() -> T + Send) -> io::Result<T> {
        thread::scope(|scope| {
            let handle = thread::Builder::new()
                .name(format!("netns {}", self.name))
                .spawn_scoped(scope, || {
                    self.enter_current_thread()?;
                    Ok(f())
                })?;
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    /// Spawns a long-lived thread that lives in this namespace: every socket
    /// it creates and every process it starts are inside it. This is how a
    /// browser test launches Chromium *and* reaches its DevTools port on the
    /// namespace's loopback: run the test's own runtime on such a thread.
    /// Returns once the thread is inside (or failed to get in, in which case
    /// `f` never runs).
    pub fn spawn_thread<T, F>(&self, name: &str, f: F) -> io::Result<NetnsThread<T>>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let netns = self.clone();
        let (entered_tx, entered_rx) = mpsc::sync_channel(1);
        let handle = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                if let Err(e) = netns.enter_current_thread() {
                    let _ = entered_tx.send(Err(e));
                    return None;
                }
                let _ = entered_tx.send(Ok(()));
                Some(f())
            })?;
        match entered_rx.recv() {
            Ok(Ok(())) => Ok(NetnsThread { handle }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(io::Error::other(
                "the namespace thread ended before it started",
            )),
        }
    }

    /// Makes `command` start its process inside this namespace (it enters
    /// between fork and exec). Use for the embedded server child or a
    /// browser. The namespace stays open as long as `command` exists.
    pub fn configure_command(&self, command: &mut std::process::Command) {
        use std::os::unix::process::CommandExt;
        let fd = self.fd.clone();
        // SAFETY: the closure runs in the forked child before exec. It only
        // makes the setns system call on a descriptor the parent keeps open
        // (captured Arc) and builds an io::Error from a raw errno, neither of
        // which allocates or takes a lock.
        unsafe {
            command.pre_exec(move || {
                setns(&*fd, CloneFlags::CLONE_NEWNET)
                    .map_err(|e| io::Error::from_raw_os_error(e as i32))
            });
        }
    }

    /// [`configure_command`](Netns::configure_command) for tokio's `Command`.
    pub fn configure_tokio_command(&self, command: &mut tokio::process::Command) {
        self.configure_command(command.as_std_mut());
    }
}

/// A thread started inside a namespace by [`Netns::spawn_thread`].
#[derive(Debug)]
pub struct NetnsThread<T> {
    handle: thread::JoinHandle<Option<T>>,
}

impl<T> NetnsThread<T> {
    /// Waits for the thread; `Err` carries its panic.
    pub fn join(self) -> thread::Result<T> {
        self.handle
            .join()
            .map(|ran| ran.expect("spawn_thread returns a handle only once the thread is inside"))
    }

    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// A namespace this process created; dropping it removes the name (the
/// kernel frees the namespace once nothing else holds it).
#[derive(Debug)]
pub struct OwnedNetns {
    netns: Netns,
}

impl OwnedNetns {
    /// Creates `/run/netns/<name>` as a fresh, empty network namespace.
    pub fn create(name: &str) -> io::Result<OwnedNetns> {
        prepare_netns_dir()?;
        let path = path_of(name);
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&path)?;
        // From here on the name exists: remove it again on any failure.
        match pin_new_namespace(&path).and_then(|()| Netns::open(name)) {
            Ok(netns) => Ok(OwnedNetns { netns }),
            Err(e) => {
                let _ = remove_named(name);
                Err(e)
            }
        }
    }

    pub fn netns(&self) -> &Netns {
        &self.netns
    }
}

impl Drop for OwnedNetns {
    fn drop(&mut self) {
        if let Err(e) = remove_named(&self.netns.name) {
            tracing::warn!(namespace = %self.netns.name, "removing the network namespace: {e}");
        }
    }
}

/// Removes the named namespace (unmount, unlink), like `ip netns del`.
/// Removing one that does not exist is not an error.
pub fn remove_named(name: &str) -> io::Result<()> {
    let path = path_of(name);
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(io::Error::from(e)),
    }
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes this crate's namespaces whose owning process is gone (a run that
/// crashed or was killed before its cleanup ran); those of live processes
/// are left alone. Returns the names removed.
pub fn remove_stale_namespaces() -> io::Result<Vec<String>> {
    remove_matching(|pid| !pid_alive(pid))
}

/// Removes every namespace this process created, whatever owns them now.
/// For a Ctrl-C handler that is about to exit without running destructors;
/// TUN devices need nothing (the kernel removes them with their process).
pub fn remove_own_namespaces() -> io::Result<Vec<String>> {
    let me = std::process::id();
    remove_matching(|pid| pid == me)
}

fn remove_matching(doomed: impl Fn(u32) -> bool) -> io::Result<Vec<String>> {
    let entries = match fs::read_dir(NETNS_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut removed = Vec::new();
    for entry in entries {
        let name = entry?.file_name().to_string_lossy().into_owned();
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if doomed(pid) {
            remove_named(&name)?;
            tracing::info!(namespace = %name, pid, "removed a network namespace left by process {pid}");
            removed.push(name);
        }
    }
    Ok(removed)
}

/// The pid in `wbnet-<pid>-…`, if the name is one of ours.
pub fn owner_pid(name: &str) -> Option<u32> {
    let pid: u32 = name
        .strip_prefix(NAME_PREFIX)?
        .split('-')
        .next()?
        .parse()
        .ok()?;
    // 0 and values beyond i32 are not pids (and kill() would read them as
    // process groups).
    (pid > 0 && pid <= i32::MAX as u32).then_some(pid)
}

fn pid_alive(pid: u32) -> bool {
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    // Signal 0 checks existence; EPERM still means the process exists.
    !matches!(nix::sys::signal::kill(pid, None), Err(Errno::ESRCH))
}

/// Makes a new network namespace and bind-mounts it onto `path`.
/// unshare() affects only the calling thread, so a throwaway thread makes
/// the namespace and pins it to the file before it exits.
fn pin_new_namespace(path: &Path) -> io::Result<()> {
    thread::scope(|scope| {
        thread::Builder::new()
            .name("netns create".into())
            .spawn_scoped(scope, || -> nix::Result<()> {
                unshare(CloneFlags::CLONE_NEWNET)?;
                mount(
                    Some("/proc/thread-self/ns/net"),
                    path,
                    None::<&str>,
                    MsFlags::MS_BIND,
                    None::<&str>,
                )
            })?
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            .map_err(io::Error::from)
    })
}

fn path_of(name: &str) -> PathBuf {
    Path::new(NETNS_DIR).join(name)
}

/// Makes `/run/netns` exist and be a shared mount, as iproute2 does, so a
/// namespace's bind mount propagates to (and its removal from) other mount
/// namespaces; otherwise a copy in another mount namespace would keep the
/// network namespace alive after it was deleted here.
fn prepare_netns_dir() -> io::Result<()> {
    static PREPARED: Mutex<bool> = Mutex::new(false);
    let mut prepared = PREPARED.lock().unwrap_or_else(|p| p.into_inner());
    if *prepared {
        return Ok(());
    }
    fs::create_dir_all(NETNS_DIR)?;
    let share = || {
        mount(
            Some(""),
            NETNS_DIR,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match share() {
        Ok(()) => {}
        // Not a mount point yet: bind it onto itself, then share it.
        Err(Errno::EINVAL) => {
            mount(
                Some(NETNS_DIR),
                NETNS_DIR,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )?;
            share()?;
        }
        Err(e) => return Err(e.into()),
    }
    *prepared = true;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_reads_only_our_names() {
        assert_eq!(owner_pid("wbnet-1234-0-c"), Some(1234));
        assert_eq!(owner_pid("wbnet-1234-7-s"), Some(1234));
        assert_eq!(owner_pid("wbnet-0-0-c"), None);
        assert_eq!(owner_pid("wbnet-x-0-c"), None);
        assert_eq!(owner_pid("wbnet-99999999999-0-c"), None);
        assert_eq!(owner_pid("other-1234-0-c"), None);
        assert_eq!(owner_pid("wbnet-"), None);
    }

    #[test]
    fn liveness() {
        assert!(pid_alive(std::process::id()));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!pid_alive(pid));
    }
}
