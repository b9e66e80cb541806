//! The forwarder: one thread per direction moving IP packets from one TUN
//! device to the other, through the link model.
//!
//! Each thread owns its direction outright (its [`Shaper`], its
//! [`DelayLine`], its counters), so the packet path takes no lock and
//! crosses no thread. Its loop: send every packet whose time has come,
//! then sleep in `ppoll` until the next departure, a packet to read, or the
//! stop signal. `ppoll` takes a nanosecond timeout (plain `poll` rounds to
//! milliseconds, which would add up to 1 ms of error to every delay), and
//! each thread sets its timer slack to 1 ns so the kernel does not defer
//! its wake-ups by the default 50 µs.
//!
//! Threads rather than async tasks: the work is two file descriptors and a
//! timer per direction, and an async runtime's millisecond timer wheel
//! would blur the delays the emulator exists to produce.

use std::io;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Instant;

use nix::poll::{ppoll, PollFd, PollFlags};
use nix::sys::eventfd::{EfdFlags, EventFd};
use nix::sys::time::TimeSpec;
use tun_rs::SyncDevice;

use crate::control::LinkControl;
use crate::delay_line::DelayLine;
use crate::device::{KernelCounters, SideDevice};
use crate::shaper::{DropReason, Shaper, Verdict};
use crate::stats::{DirectionCounters, EmulatorStats};

/// Packets read per wake-up before due packets get their turn again.
const READ_BURST: usize = 64;
/// Buffer memory one direction may hold in flight: a bound on the
/// emulator's memory whatever the senders do (10 Gbit/s × 5 s would be 6 GB
/// otherwise). 96 MiB of 1,756-byte buffers is about 57,000 packets, over
/// four times a 1 Gbit/s × 150 ms path's worth.
const MAX_LINE_MEMORY: usize = 96 << 20;

/// Which way a thread forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    ClientToServer,
    ServerToClient,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::ClientToServer => "client->server",
            Direction::ServerToClient => "server->client",
        }
    }
}

/// Both directions' threads; stopping (or dropping) ends and joins them.
pub(crate) struct Forwarder {
    stop: Arc<EventFd>,
    threads: Vec<JoinHandle<()>>,
    up: Arc<DirectionCounters>,
    down: Arc<DirectionCounters>,
    /// The kernel's view of each device, for packets lost before the
    /// forwarder could read them.
    client_kernel: KernelCounters,
    server_kernel: KernelCounters,
    /// Kept until the final reading: closing a TUN device deletes it, and
    /// its kernel counters with it.
    devices: Vec<Arc<SyncDevice>>,
    started_at: Instant,
}

impl Forwarder {
    /// Starts forwarding between the client's and the server's device.
    pub(crate) fn start(
        client: SideDevice,
        server: SideDevice,
        control: LinkControl,
        mtu: u16,
        seed: u64,
    ) -> io::Result<Forwarder> {
        let stop = Arc::new(EventFd::from_flags(EfdFlags::EFD_CLOEXEC)?);
        let up = Arc::new(DirectionCounters::default());
        let down = Arc::new(DirectionCounters::default());
        let mut forwarder = Forwarder {
            stop: stop.clone(),
            threads: Vec::new(),
            up: up.clone(),
            down: down.clone(),
            client_kernel: client.counters,
            server_kernel: server.counters,
            devices: Vec::new(),
            started_at: Instant::now(),
        };
        let client = Arc::new(client.device);
        let server = Arc::new(server.device);
        forwarder.devices = vec![client.clone(), server.clone()];
        let plan = [
            (
                Direction::ClientToServer,
                client.clone(),
                server.clone(),
                up,
            ),
            (Direction::ServerToClient, server, client, down),
        ];
        for (i, (direction, from, to, counters)) in plan.into_iter().enumerate() {
            let spec = control.link();
            let pump = Pump {
                direction,
                from,
                to,
                control: control.clone(),
                generation: control.generation(),
                // Distinct streams per direction from one seed.
                shaper: Shaper::new(spec, seed.wrapping_add(i as u64 * 0x9E37_79B9_7F4A_7C15)),
                line: DelayLine::new(MAX_LINE_MEMORY, usize::from(mtu) + 256),
                counters,
                stop: stop.clone(),
            };
            // On failure `forwarder` drops here and stops what did start.
            let handle = thread::Builder::new()
                .name(format!("netlab {}", direction.name()))
                .spawn(move || pump.run())?;
            forwarder.threads.push(handle);
        }
        Ok(forwarder)
    }

    /// Whether both threads are still forwarding (one stops only on a
    /// device error, which it logs).
    pub(crate) fn is_running(&self) -> bool {
        self.threads.len() == 2 && self.threads.iter().all(|t| !t.is_finished())
    }

    /// A reading of both directions' counters and CPU time.
    pub(crate) fn stats(&self) -> EmulatorStats {
        let now = Instant::now();
        let overflow = |kernel: &KernelCounters| {
            kernel.overflow().unwrap_or_else(|e| {
                tracing::warn!("reading the TUN device's kernel counters: {e}");
                0
            })
        };
        EmulatorStats {
            taken_at: now,
            elapsed: now - self.started_at,
            client_to_server: self.up.snapshot(overflow(&self.client_kernel)),
            server_to_client: self.down.snapshot(overflow(&self.server_kernel)),
        }
    }

    /// Signals both threads and waits for them; returns the final figures
    /// and closes the devices (which deletes them).
    pub(crate) fn stop(&mut self) -> EmulatorStats {
        if let Err(e) = self.stop.write(1) {
            // Cannot happen for an eventfd far below its maximum count. If it
            // did, joining would hang: leave the threads running instead.
            tracing::error!("signalling the forwarder to stop: {e}; its threads stay until exit");
            self.threads.clear();
        }
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                tracing::error!("a forwarder thread panicked");
            }
        }
        let last = self.stats();
        self.devices.clear();
        last
    }
}

impl std::fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Forwarder")
            .field("threads", &self.threads.len())
            .field("started_at", &self.started_at)
            .finish_non_exhaustive()
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if !self.threads.is_empty() || !self.devices.is_empty() {
            self.stop();
        }
    }
}

/// One direction's state, owned by its thread.
struct Pump {
    direction: Direction,
    from: Arc<SyncDevice>,
    to: Arc<SyncDevice>,
    control: LinkControl,
    generation: u64,
    shaper: Shaper,
    line: DelayLine,
    counters: Arc<DirectionCounters>,
    stop: Arc<EventFd>,
}

impl Pump {
    fn run(mut self) {
        self.counters.cpu.register_current_thread();
        if let Err(e) = nix::sys::prctl::set_timerslack(1) {
            tracing::debug!("timer slack stays at its default: {e}");
        }
        if let Err(e) = self.forward() {
            tracing::error!(
                direction = self.direction.name(),
                "the link emulator stopped forwarding: {e}"
            );
        }
        self.counters.cpu.finish_current_thread();
    }

    fn forward(&mut self) -> io::Result<()> {
        loop {
            self.reload_settings();
            self.send_due(Instant::now());
            let timeout = self
                .line
                .next_due()
                .map(|due| TimeSpec::from_duration(due.saturating_duration_since(Instant::now())));
            let (readable, stop) = {
                let mut fds = [
                    PollFd::new(self.from.as_fd(), PollFlags::POLLIN),
                    PollFd::new(self.stop.as_fd(), PollFlags::POLLIN),
                ];
                match ppoll(&mut fds, timeout, None) {
                    Ok(_) => {}
                    Err(nix::errno::Errno::EINTR) => continue,
                    Err(e) => return Err(e.into()),
                }
                let revents = |fd: &PollFd| fd.revents().unwrap_or(PollFlags::empty());
                let from = revents(&fds[0]);
                if from.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
                    return Err(io::Error::other(format!(
                        "the TUN device reported {from:?}"
                    )));
                }
                (
                    from.contains(PollFlags::POLLIN),
                    !revents(&fds[1]).is_empty(),
                )
            };
            if stop {
                return Ok(());
            }
            if readable {
                self.reload_settings();
                self.receive()?;
            }
        }
    }

    /// Picks up settings changed through [`LinkControl::set_link`].
    fn reload_settings(&mut self) {
        let generation = self.control.generation();
        if generation != self.generation {
            self.generation = generation;
            self.shaper.set_spec(self.control.link());
        }
    }

    /// Reads what the source device has (up to a burst) into the line.
    fn receive(&mut self) -> io::Result<()> {
        for _ in 0..READ_BURST {
            let mut buf = self.line.buffer();
            let len = match self.from.recv(&mut buf) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.line.recycle(buf);
                    return Ok(());
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    self.line.recycle(buf);
                    continue;
                }
                Err(e) => return Err(e),
            };
            let now = Instant::now();
            let down = self.control.is_down(now, &self.shaper.spec().outages);
            // Past the memory bound a packet is dropped before the model
            // sees it, so it takes no place in the bottleneck's queue.
            let verdict = if self.line.has_room() {
                self.shaper.admit(now, len, down)
            } else {
                Verdict::Drop(DropReason::Queue)
            };
            let counter = match verdict {
                Verdict::Forward(due) => {
                    self.line.push(due, buf, len);
                    continue;
                }
                Verdict::Drop(DropReason::Loss) => &self.counters.dropped_loss,
                Verdict::Drop(DropReason::Outage) => &self.counters.dropped_outage,
                Verdict::Drop(DropReason::Queue) => &self.counters.dropped_queue,
            };
            DirectionCounters::add(counter, 1);
            self.line.recycle(buf);
        }
        Ok(())
    }

    /// Sends every packet due by `now`, unless the link went down meanwhile
    /// (packets on their way are lost in an outage too).
    fn send_due(&mut self, now: Instant) {
        while let Some(departure) = self.line.pop_due(now) {
            if self.control.is_down(now, &self.shaper.spec().outages) {
                DirectionCounters::add(&self.counters.dropped_outage, 1);
            } else {
                match self.to.send(departure.bytes()) {
                    Ok(_) => {
                        DirectionCounters::add(&self.counters.packets, 1);
                        DirectionCounters::add(&self.counters.bytes, departure.len as u64);
                    }
                    Err(e) => {
                        let errors = self
                            .counters
                            .send_errors
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if errors == 0 {
                            tracing::warn!(
                                direction = self.direction.name(),
                                "the TUN device refused a packet: {e}"
                            );
                        }
                    }
                }
            }
            self.line.recycle(departure.buf);
        }
    }
}
