//! [`Lab`]: two namespaces joined by the emulated link, and the guard that
//! takes them down again.

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::control::LinkControl;
use crate::device::{self, TUN_NAME};
use crate::error::NetlabError;
use crate::forwarder::Forwarder;
use crate::netns::{self, Netns, OwnedNetns, NAME_PREFIX};
use crate::privilege::check_support;
use crate::report::LinkReport;
use crate::sockets::NetnsSockets;
use crate::spec::LinkSpec;
use crate::stats::EmulatorStats;

/// The server's address, inside the server namespace.
pub const SERVER_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
/// The first client source address; the others follow (198.18.0.2, …).
pub const FIRST_CLIENT_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// At most this many client addresses (198.18.0.1 – 198.18.0.250).
pub const MAX_CLIENT_ADDRS: usize = 250;
/// Client addresses by default: each reaches about 28,000 ephemeral ports
/// per destination, so 8 cover any run a 2-core machine can drive.
pub const DEFAULT_CLIENT_ADDRS: usize = 8;
/// The link's MTU, as on Ethernet.
pub const DEFAULT_MTU: u16 = 1500;

/// Numbers the labs of one process: tests build several at once.
static NEXT_LAB: AtomicU32 = AtomicU32::new(0);

/// How to build a lab.
#[derive(Debug, Clone)]
pub struct LabConfig {
    pub link: LinkSpec,
    /// Source addresses on the client side (1 to [`MAX_CLIENT_ADDRS`]).
    pub client_addresses: usize,
    /// MTU of both TUN devices (576 to 9000).
    pub mtu: u16,
    /// Seed of the loss and jitter draws: equal seeds and equal traffic
    /// give equal drops.
    pub seed: u64,
}

impl LabConfig {
    pub fn new(link: LinkSpec) -> Self {
        Self {
            link,
            client_addresses: DEFAULT_CLIENT_ADDRS,
            mtu: DEFAULT_MTU,
            seed: fastrand::u64(..),
        }
    }

    fn validate(&self) -> Result<(), NetlabError> {
        self.link.validate()?;
        if !(1..=MAX_CLIENT_ADDRS).contains(&self.client_addresses) {
            return Err(NetlabError::Config(format!(
                "{} client addresses asked; between 1 and {MAX_CLIENT_ADDRS} are possible",
                self.client_addresses
            )));
        }
        if !(576..=9000).contains(&self.mtu) {
            return Err(NetlabError::Config(format!(
                "MTU {} asked; between 576 and 9000 are possible",
                self.mtu
            )));
        }
        Ok(())
    }
}

/// One end of the link: its namespace and a socket maker inside it.
#[derive(Debug)]
pub struct Side {
    // Dropped in this order: the helper thread leaves the namespace before
    // its name is removed.
    sockets: NetnsSockets,
    netns: OwnedNetns,
}

impl Side {
    fn create(name: String) -> Result<Side, NetlabError> {
        let netns = OwnedNetns::create(&name).map_err(|source| NetlabError::Namespace {
            action: "creating",
            name: name.clone(),
            source,
        })?;
        let sockets = NetnsSockets::start(netns.netns()).map_err(|source| NetlabError::Start {
            what: "socket helper thread",
            source,
        })?;
        Ok(Side { sockets, netns })
    }

    /// The namespace: spawn processes or threads inside it.
    pub fn netns(&self) -> &Netns {
        self.netns.netns()
    }

    /// Makes sockets inside this side's namespace.
    pub fn sockets(&self) -> &NetnsSockets {
        &self.sockets
    }

    /// The namespace's name (`wbnet-<pid>-<n>-c` or `-s`).
    pub fn name(&self) -> &str {
        self.netns().name()
    }
}

/// A running link emulator: a client and a server namespace, a TUN device
/// in each, and the forwarder between them. Dropping it stops the forwarder
/// and removes both namespaces and devices, also while a panic unwinds.
#[derive(Debug)]
pub struct Lab {
    // Field order is teardown order: the forwarder stops (closing the TUN
    // devices) before the namespaces' names are removed.
    forwarder: Forwarder,
    client: Side,
    server: Side,
    control: LinkControl,
    client_addrs: Vec<Ipv4Addr>,
}

impl Lab {
    /// Builds a lab with `link` and the default settings.
    pub fn start(link: LinkSpec) -> Result<Lab, NetlabError> {
        Lab::with_config(LabConfig::new(link))
    }

    /// Builds a lab. Checks privileges first, and removes the namespaces
    /// of earlier runs whose process is gone.
    pub fn with_config(config: LabConfig) -> Result<Lab, NetlabError> {
        config.validate()?;
        check_support()?;
        match netns::remove_stale_namespaces() {
            Ok(removed) if !removed.is_empty() => {
                tracing::info!(?removed, "removed namespaces left by crashed runs");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("looking for namespaces left by crashed runs: {e}"),
        }
        let id = format!(
            "{NAME_PREFIX}{}-{}",
            std::process::id(),
            NEXT_LAB.fetch_add(1, Ordering::Relaxed)
        );
        let client = Side::create(format!("{id}-c"))?;
        let server = Side::create(format!("{id}-s"))?;
        let client_addrs: Vec<Ipv4Addr> = (0..config.client_addresses as u32)
            .map(|i| Ipv4Addr::from(u32::from(FIRST_CLIENT_ADDR) + i))
            .collect();
        let device_error = |side: &Side| {
            let namespace = side.name().to_string();
            move |source| NetlabError::Device {
                device: TUN_NAME,
                namespace,
                source,
            }
        };
        let client_dev = device::create_side(client.netns(), &client_addrs, config.mtu)
            .map_err(device_error(&client))?;
        let server_dev = device::create_side(server.netns(), &[SERVER_ADDR], config.mtu)
            .map_err(device_error(&server))?;
        let control = LinkControl::new(config.link.clone());
        let forwarder = Forwarder::start(
            client_dev,
            server_dev,
            control.clone(),
            config.mtu,
            config.seed,
        )
        .map_err(|source| NetlabError::Start {
            what: "forwarder threads",
            source,
        })?;
        tracing::info!(
            client = client.name(),
            server = server.name(),
            link = %config.link,
            "link emulator up"
        );
        Ok(Lab {
            forwarder,
            client,
            server,
            control,
            client_addrs,
        })
    }

    /// The client side: where the load generator's connections and the
    /// browser live.
    pub fn client(&self) -> &Side {
        &self.client
    }

    /// The server side: where the embedded server runs.
    pub fn server(&self) -> &Side {
        &self.server
    }

    /// The server's address (198.18.1.1), reachable from the client side
    /// only through the link.
    pub fn server_addr(&self) -> Ipv4Addr {
        SERVER_ADDR
    }

    /// The client side's source addresses (198.18.0.1, …).
    pub fn client_addrs(&self) -> &[Ipv4Addr] {
        &self.client_addrs
    }

    /// Cut, restore, outage schedule, new settings.
    pub fn control(&self) -> &LinkControl {
        &self.control
    }

    /// Whether the forwarder still moves packets. It stops only on a TUN
    /// device error (logged); a run should then report its link as broken.
    pub fn is_forwarding(&self) -> bool {
        self.forwarder.is_running()
    }

    /// The emulator's counters and CPU time so far.
    pub fn stats(&self) -> EmulatorStats {
        self.forwarder.stats()
    }

    /// The `link` object of result.json: the settings in force and the
    /// figures of `stats` (e.g. a hold's, from [`EmulatorStats::since`]).
    pub fn report(&self, stats: &EmulatorStats) -> LinkReport {
        LinkReport::new(&self.control.link(), stats.report())
    }

    /// Stops the forwarder and removes everything; returns the final
    /// figures. Dropping the lab does the same without them.
    pub fn shutdown(mut self) -> EmulatorStats {
        self.forwarder.stop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lab_can_be_shared_across_threads_and_tasks() {
        fn shareable<T: Send + Sync>() {}
        shareable::<Lab>();
        shareable::<LinkControl>();
        shareable::<Side>();
    }
}
