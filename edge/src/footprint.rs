//! What the proxy itself costs and holds, read from /proc: memory and CPU
//! summed over its master and workers, and the TCP connections it keeps to
//! the upstream (one per proxied stream unless it multiplexes).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::time::Duration;

use procfs::net::TcpState;
use procfs::process::{FDTarget, Process};

use crate::error::EdgeError;

/// The proxy's processes at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Footprint {
    /// Processes counted (nginx: master and workers; HAProxy: one).
    pub processes: usize,
    /// Resident memory, summed.
    pub rss_bytes: u64,
    /// User plus system CPU time, summed over the live processes.
    pub cpu: Duration,
}

/// Sums RSS and CPU over `pids` (a process that ended meanwhile is skipped).
pub(crate) fn footprint(pids: &[u32]) -> Footprint {
    let page = procfs::page_size();
    let ticks = procfs::ticks_per_second().max(1);
    let mut f = Footprint::default();
    for &pid in pids {
        let Ok(stat) = Process::new(pid as i32).and_then(|p| p.stat()) else {
            continue;
        };
        f.processes += 1;
        f.rss_bytes += stat.rss * page;
        let t = stat.utime + stat.stime;
        f.cpu += Duration::from_secs(t / ticks)
            + Duration::from_nanos(t % ticks * 1_000_000_000 / ticks);
    }
    f
}

/// Established TCP connections owned by `pids` whose peer is `peer`: the
/// proxy's upstream connections, or a browser's connections to the edge.
pub fn connections_to(pids: &[u32], peer: SocketAddr) -> Result<usize, EdgeError> {
    let inodes = socket_inodes(pids);
    let Some(&first) = pids.first() else {
        return Ok(0);
    };
    // The proxy's own view of the network (its namespace, if it has one).
    let proc = Process::new(first as i32)?;
    let mut entries = proc.tcp()?;
    entries.extend(proc.tcp6().unwrap_or_default());
    Ok(entries
        .iter()
        .filter(|e| e.state == TcpState::Established)
        .filter(|e| same_peer(e.remote_address, peer))
        .filter(|e| inodes.contains(&e.inode))
        .count())
}

/// Whether one of `pids` holds a listening socket on `addr`. Connecting is
/// no proof: another process may own the port (a proxy given the same
/// free port by a race answers for one that failed to bind).
pub fn listening_on(pids: &[u32], addr: SocketAddr) -> bool {
    let inodes = socket_inodes(pids);
    let Some(&first) = pids.first() else {
        return false;
    };
    let Ok(proc) = Process::new(first as i32) else {
        return false;
    };
    let mut entries = proc.tcp().unwrap_or_default();
    entries.extend(proc.tcp6().unwrap_or_default());
    entries.iter().any(|e| {
        e.state == TcpState::Listen
            && e.local_address.port() == addr.port()
            && inodes.contains(&e.inode)
    })
}

/// The socket inodes in the fd tables of `pids`.
fn socket_inodes(pids: &[u32]) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for &pid in pids {
        let Ok(fds) = Process::new(pid as i32).and_then(|p| p.fd()) else {
            continue;
        };
        for fd in fds.flatten() {
            if let FDTarget::Socket(inode) = fd.target {
                inodes.insert(inode);
            }
        }
    }
    inodes
}

/// Established TCP connections of any process in this network namespace
/// whose peer is `peer`: a browser's connections to the edge, counted
/// without knowing the browser's processes (its network service is one of
/// several).
pub fn established_to(peer: SocketAddr) -> Result<usize, EdgeError> {
    let mut entries = procfs::net::tcp()?;
    entries.extend(procfs::net::tcp6().unwrap_or_default());
    Ok(entries
        .iter()
        .filter(|e| e.state == TcpState::Established && same_peer(e.remote_address, peer))
        .count())
}

/// IPv4 peers may show up as IPv4-mapped IPv6 in `tcp6`.
fn same_peer(seen: SocketAddr, peer: SocketAddr) -> bool {
    if seen.port() != peer.port() {
        return false;
    }
    let canonical = |a: SocketAddr| match a.ip() {
        std::net::IpAddr::V6(v6) => v6.to_canonical(),
        ip => ip,
    };
    canonical(seen) == canonical(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_connections_are_counted_by_peer() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let a = std::net::TcpStream::connect(addr).unwrap();
        let b = std::net::TcpStream::connect(addr).unwrap();
        let _accepted = (listener.accept().unwrap(), listener.accept().unwrap());
        let me = [std::process::id()];
        // Our two client sockets have the listener as peer; the accepted
        // ones have ephemeral peers and do not count.
        assert_eq!(connections_to(&me, addr).unwrap(), 2);
        assert_eq!(established_to(addr).unwrap(), 2);
        assert!(listening_on(&me, addr));
        assert!(
            !listening_on(&[1], addr),
            "pid 1 does not hold our listener"
        );
        drop((a, b));
        let f = footprint(&me);
        assert_eq!(f.processes, 1);
        assert!(f.rss_bytes > 1 << 20, "{f:?}");
        assert!(same_peer(
            "[::ffff:127.0.0.1]:80".parse().unwrap(),
            "127.0.0.1:80".parse().unwrap()
        ));
    }
}
