//! One side's network: loopback up, IPv6 off, and a TUN device carrying
//! the side's addresses, all inside that side's namespace.
//!
//! A TUN device is created in the namespace of the thread that opens
//! `/dev/net/tun`, and tun-rs configures it through sockets it opens at call
//! time, so the whole set-up runs on a thread inside the namespace
//! ([`Netns::run`]). The returned device's file descriptor then works from
//! any thread: the forwarder reads and writes it from the root namespace.
//!
//! Every address gets the RFC 2544 benchmarking prefix 198.18.0.0/15, so the
//! kernel's connected route sends the whole range (the other side) through
//! the TUN device and nothing else exists to route to: each namespace has
//! only `lo` and this device, and no default route.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::net::Ipv4Addr;
use std::sync::Mutex;

use tun_rs::{DeviceBuilder, SyncDevice};

use crate::netns::Netns;

/// The TUN device's name in both namespaces (names are per namespace).
pub const TUN_NAME: &str = "wbtun0";
/// Prefix length of every lab address: 198.18.0.0/15 (RFC 2544).
pub const PREFIX_LEN: u8 = 15;
/// Packets the kernel may queue towards the forwarder before it drops
/// (the TUN default is 500; a burst of 1,000 connections' ticks is larger).
const TX_QUEUE_LEN: u32 = 10_000;

/// One side's TUN device and the kernel's counters for it.
pub(crate) struct SideDevice {
    pub(crate) device: SyncDevice,
    pub(crate) counters: KernelCounters,
}

/// Sets up one side: loopback up, IPv6 off, a TUN device with `addrs`.
pub(crate) fn create_side(netns: &Netns, addrs: &[Ipv4Addr], mtu: u16) -> io::Result<SideDevice> {
    let (first, rest) = addrs
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "a side needs an address"))?;
    netns.run(|| -> io::Result<SideDevice> {
        disable_ipv6();
        bring_loopback_up()?;
        let device = DeviceBuilder::new()
            .name(TUN_NAME)
            .ipv4(*first, PREFIX_LEN, None)
            .mtu(mtu)
            .tx_queue_len(TX_QUEUE_LEN)
            .enable(true)
            .build_sync()?;
        for addr in rest {
            device.add_address_v4(*addr, PREFIX_LEN)?;
        }
        device.set_nonblocking(true)?;
        Ok(SideDevice {
            device,
            counters: KernelCounters::open_here()?,
        })
    })?
}

/// The kernel's own counters of the TUN device, read from the namespace's
/// `/proc/net/dev`. That file reports the namespace of the thread that
/// opened it, for as long as it stays open, so it is opened once inside
/// and then read from any thread.
///
/// What it adds to the emulator's counters: packets the sending kernel
/// dropped because the forwarder did not read them in time (the TUN
/// device's transmit queue was full). The forwarder never sees those, so
/// only the kernel can say whether the emulator was the bottleneck.
#[derive(Debug)]
pub(crate) struct KernelCounters {
    proc_net_dev: Mutex<File>,
}

impl KernelCounters {
    fn open_here() -> io::Result<Self> {
        Ok(Self {
            proc_net_dev: Mutex::new(File::open("/proc/thread-self/net/dev")?),
        })
    }

    /// Packets the kernel dropped on their way into the forwarder.
    pub(crate) fn overflow(&self) -> io::Result<u64> {
        let mut text = String::new();
        {
            let mut file = self
                .proc_net_dev
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            file.rewind()?;
            file.read_to_string(&mut text)?;
        }
        tx_dropped(&text, TUN_NAME).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("no counters for {TUN_NAME} in /proc/net/dev"),
            )
        })
    }
}

/// The transmit `drop` column of `device` in `/proc/net/dev` text: after
/// `name:` come 8 receive fields, then transmit bytes, packets, errs, drop.
fn tx_dropped(proc_net_dev: &str, device: &str) -> Option<u64> {
    proc_net_dev.lines().find_map(|line| {
        let (name, fields) = line.split_once(':')?;
        if name.trim() != device {
            return None;
        }
        fields.split_whitespace().nth(11)?.parse().ok()
    })
}

/// Loopback is down in a new namespace; the server needs it to reach its
/// own addresses, a browser for its DevTools port.
fn bring_loopback_up() -> io::Result<()> {
    use netconfig_rs::sys::InterfaceExt;
    let lo = netconfig_rs::Interface::try_from_name("lo").map_err(io::Error::from)?;
    lo.set_up(true).map_err(io::Error::from)
}

/// The lab speaks IPv4 only; without this the kernel sends IPv6 router
/// solicitations and MLD reports over the TUN device, which would show up
/// in the emulator's packet counts. Best effort: a kernel without IPv6 has
/// nothing to turn off. `/proc/sys/net` belongs to the namespace of the
/// thread that opens it, which is why this runs inside the namespace.
fn disable_ipv6() {
    for conf in ["all", "default"] {
        let path = format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6");
        if let Err(e) = std::fs::write(&path, "1") {
            tracing::debug!("{path}: {e} (no IPv6 to turn off)");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_transmit_drop_column() {
        let text = "Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0
wbtun0: 1000      10    0    0    0     0          0         0     2000      20    0    7    0     0       0          0
";
        assert_eq!(tx_dropped(text, "wbtun0"), Some(7));
        assert_eq!(tx_dropped(text, "lo"), Some(0));
        assert_eq!(tx_dropped(text, "eth0"), None);
    }
}
