//! What the emulator did: packets and bytes forwarded, packets dropped and
//! why, and the CPU time its own threads spent, per direction.
//!
//! Counters are relaxed atomics written by one forwarder thread each, so
//! reading them never slows the packet path. CPU time comes from each
//! forwarder thread's own CPU clock (`pthread_getcpuclockid`), which is
//! exact per thread and costs the packet path nothing; note it includes the
//! kernel work done inside the thread's `write` to the TUN device, which is
//! where the receiving side's network stack runs.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// The live counters of one direction.
#[derive(Debug, Default)]
pub(crate) struct DirectionCounters {
    pub(crate) packets: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) dropped_loss: AtomicU64,
    pub(crate) dropped_outage: AtomicU64,
    pub(crate) dropped_queue: AtomicU64,
    pub(crate) send_errors: AtomicU64,
    pub(crate) cpu: ThreadCpu,
}

impl DirectionCounters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The counters now; `overflow` is the kernel's count for this
    /// direction's source device.
    pub(crate) fn snapshot(&self, overflow: u64) -> DirectionStats {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        DirectionStats {
            packets_forwarded: load(&self.packets),
            bytes_forwarded: load(&self.bytes),
            dropped_loss: load(&self.dropped_loss),
            dropped_outage: load(&self.dropped_outage),
            dropped_queue: load(&self.dropped_queue),
            send_errors: load(&self.send_errors),
            dropped_overflow: overflow,
            cpu_us: self.cpu.read_ns() / 1_000,
        }
    }
}

/// The CPU clock of the thread that forwards one direction, readable from
/// any thread. After the thread ends its last reading is kept.
#[derive(Debug)]
pub(crate) struct ThreadCpu {
    clock: AtomicI32,
    registered: AtomicBool,
    finished: AtomicBool,
    final_ns: AtomicU64,
}

impl Default for ThreadCpu {
    fn default() -> Self {
        Self {
            clock: AtomicI32::new(0),
            registered: AtomicBool::new(false),
            finished: AtomicBool::new(false),
            final_ns: AtomicU64::new(0),
        }
    }
}

impl ThreadCpu {
    /// Called by the forwarder thread when it starts.
    pub(crate) fn register_current_thread(&self) {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: pthread_self() is the calling thread, alive for the call;
        // `clock` is a valid out-pointer.
        let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
        if rc == 0 {
            self.clock.store(clock, Ordering::Relaxed);
            self.registered.store(true, Ordering::Release);
        } else {
            tracing::warn!(
                errno = rc,
                "no CPU clock for the forwarder thread; CPU time will read 0"
            );
        }
    }

    /// Called by the forwarder thread as its last act.
    pub(crate) fn finish_current_thread(&self) {
        let ns = clock_ns(nix::time::ClockId::CLOCK_THREAD_CPUTIME_ID).unwrap_or(0);
        self.final_ns.store(ns, Ordering::Relaxed);
        self.finished.store(true, Ordering::Release);
    }

    pub(crate) fn read_ns(&self) -> u64 {
        if self.finished.load(Ordering::Acquire) || !self.registered.load(Ordering::Acquire) {
            return self.final_ns.load(Ordering::Relaxed);
        }
        let clock = nix::time::ClockId::from_raw(self.clock.load(Ordering::Relaxed));
        // The thread may end between the check and the read: its clock then
        // fails to read and the value it stored on the way out is used.
        clock_ns(clock).unwrap_or_else(|| self.final_ns.load(Ordering::Relaxed))
    }
}

fn clock_ns(clock: nix::time::ClockId) -> Option<u64> {
    let t = nix::time::clock_gettime(clock).ok()?;
    Some(t.tv_sec() as u64 * 1_000_000_000 + t.tv_nsec() as u64)
}

/// One direction's figures.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct DirectionStats {
    pub packets_forwarded: u64,
    pub bytes_forwarded: u64,
    /// Dropped by random loss.
    pub dropped_loss: u64,
    /// Dropped because the link was down (schedule or [`crate::LinkControl::cut`]).
    pub dropped_outage: u64,
    /// Tail-dropped at the bottleneck queue, or beyond the emulator's memory bound.
    pub dropped_queue: u64,
    /// Packets the destination device refused (should stay 0).
    pub send_errors: u64,
    /// Packets the sending kernel dropped because the emulator did not read
    /// them in time (its TUN queue was full). Not zero means the emulator,
    /// not the emulated link, limited the run.
    pub dropped_overflow: u64,
    /// CPU time of this direction's forwarder thread.
    pub cpu_us: u64,
}

impl DirectionStats {
    pub fn packets_dropped(&self) -> u64 {
        self.dropped_loss + self.dropped_outage + self.dropped_queue + self.dropped_overflow
    }

    /// Both directions together.
    fn plus(&self, other: &Self) -> Self {
        Self {
            packets_forwarded: self.packets_forwarded + other.packets_forwarded,
            bytes_forwarded: self.bytes_forwarded + other.bytes_forwarded,
            dropped_loss: self.dropped_loss + other.dropped_loss,
            dropped_outage: self.dropped_outage + other.dropped_outage,
            dropped_queue: self.dropped_queue + other.dropped_queue,
            send_errors: self.send_errors + other.send_errors,
            dropped_overflow: self.dropped_overflow + other.dropped_overflow,
            cpu_us: self.cpu_us + other.cpu_us,
        }
    }

    fn since(&self, earlier: &Self) -> Self {
        Self {
            packets_forwarded: self
                .packets_forwarded
                .saturating_sub(earlier.packets_forwarded),
            bytes_forwarded: self.bytes_forwarded.saturating_sub(earlier.bytes_forwarded),
            dropped_loss: self.dropped_loss.saturating_sub(earlier.dropped_loss),
            dropped_outage: self.dropped_outage.saturating_sub(earlier.dropped_outage),
            dropped_queue: self.dropped_queue.saturating_sub(earlier.dropped_queue),
            send_errors: self.send_errors.saturating_sub(earlier.send_errors),
            dropped_overflow: self
                .dropped_overflow
                .saturating_sub(earlier.dropped_overflow),
            cpu_us: self.cpu_us.saturating_sub(earlier.cpu_us),
        }
    }
}

/// A reading of both directions at one moment. Take one when a phase
/// starts and one when it ends; [`EmulatorStats::since`] gives the phase's
/// own figures.
#[derive(Debug, Clone, Copy)]
pub struct EmulatorStats {
    pub taken_at: Instant,
    /// Time since the forwarder started (or since the earlier reading, for
    /// a difference).
    pub elapsed: Duration,
    pub client_to_server: DirectionStats,
    pub server_to_client: DirectionStats,
}

impl EmulatorStats {
    /// What happened between `earlier` and this reading.
    pub fn since(&self, earlier: &EmulatorStats) -> EmulatorStats {
        EmulatorStats {
            taken_at: self.taken_at,
            elapsed: self.taken_at.saturating_duration_since(earlier.taken_at),
            client_to_server: self.client_to_server.since(&earlier.client_to_server),
            server_to_client: self.server_to_client.since(&earlier.server_to_client),
        }
    }

    /// Two phases' figures as one (e.g. the holds of several runs over one
    /// lab): counters, CPU time and spans added; `taken_at` is the later.
    pub fn plus(&self, other: &EmulatorStats) -> EmulatorStats {
        EmulatorStats {
            taken_at: self.taken_at.max(other.taken_at),
            elapsed: self.elapsed + other.elapsed,
            client_to_server: self.client_to_server.plus(&other.client_to_server),
            server_to_client: self.server_to_client.plus(&other.server_to_client),
        }
    }

    /// Both directions added up.
    pub fn total(&self) -> DirectionStats {
        self.client_to_server.plus(&self.server_to_client)
    }

    pub fn packets_forwarded(&self) -> u64 {
        self.total().packets_forwarded
    }

    pub fn packets_dropped(&self) -> u64 {
        self.total().packets_dropped()
    }

    pub fn cpu_us(&self) -> u64 {
        self.total().cpu_us
    }

    /// The figures for result.json.
    pub fn report(&self) -> EmulatorReport {
        let total = self.total();
        let handled = total.packets_forwarded + total.packets_dropped();
        let secs = self.elapsed.as_secs_f64();
        EmulatorReport {
            elapsed_s: secs,
            packets_dropped: total.packets_dropped(),
            packets_per_s: if secs > 0.0 {
                handled as f64 / secs
            } else {
                0.0
            },
            cpu_us_per_packet: if handled > 0 {
                total.cpu_us as f64 / handled as f64
            } else {
                0.0
            },
            total,
            client_to_server: self.client_to_server,
            server_to_client: self.server_to_client,
        }
    }
}

/// The emulator's own figures as result.json stores them (the `emulator`
/// object of a run's `link`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EmulatorReport {
    /// The span these figures cover.
    pub elapsed_s: f64,
    /// Both directions added up, as flat fields: `packets_forwarded`,
    /// `bytes_forwarded`, `dropped_loss`, `dropped_outage`, `dropped_queue`,
    /// `send_errors`, `dropped_overflow` (should stay 0: the kernel dropped
    /// packets before the emulator read them) and `cpu_us` (both forwarder
    /// threads).
    #[serde(flatten)]
    pub total: DirectionStats,
    /// All drops, whatever the reason.
    pub packets_dropped: u64,
    /// Packets handled (forwarded + dropped) per second of `elapsed_s`.
    pub packets_per_s: f64,
    /// Forwarder CPU per packet handled.
    pub cpu_us_per_packet: f64,
    pub client_to_server: DirectionStats,
    pub server_to_client: DirectionStats,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difference_and_report() {
        let t0 = Instant::now();
        let dir = |packets, loss, cpu_us| DirectionStats {
            packets_forwarded: packets,
            bytes_forwarded: packets * 100,
            dropped_loss: loss,
            cpu_us,
            ..DirectionStats::default()
        };
        let earlier = EmulatorStats {
            taken_at: t0,
            elapsed: Duration::from_secs(1),
            client_to_server: dir(100, 1, 1000),
            server_to_client: dir(50, 0, 500),
        };
        let later = EmulatorStats {
            taken_at: t0 + Duration::from_secs(2),
            elapsed: Duration::from_secs(3),
            client_to_server: dir(1100, 11, 3000),
            server_to_client: dir(1050, 10, 2500),
        };
        let phase = later.since(&earlier).report();
        assert_eq!(phase.elapsed_s, 2.0);
        assert_eq!(phase.total.packets_forwarded, 2000);
        assert_eq!(phase.packets_dropped, 20);
        assert_eq!(phase.total.cpu_us, 4000);
        let json = serde_json::to_value(&phase).unwrap();
        assert_eq!(json["packets_forwarded"], 2000, "totals are flat fields");
        assert_eq!(json["cpu_us"], 4000);
        assert_eq!(json["client_to_server"]["dropped_loss"], 10);
        assert_eq!(phase.packets_per_s, 1010.0);
        assert!((phase.cpu_us_per_packet - 4000.0 / 2020.0).abs() < 1e-9);
        let twice = later.since(&earlier).plus(&later.since(&earlier)).report();
        assert_eq!(twice.elapsed_s, 4.0);
        assert_eq!(twice.total.packets_forwarded, 4000);
        assert_eq!(
            twice.packets_per_s, 1010.0,
            "the rate of two equal phases is theirs"
        );
    }

    #[test]
    fn thread_cpu_clock_reads_and_survives_the_thread() {
        let cpu = std::sync::Arc::new(ThreadCpu::default());
        let inside = cpu.clone();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (busy_tx, busy_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            inside.register_current_thread();
            let start = Instant::now();
            let mut x = 0u64;
            while start.elapsed() < Duration::from_millis(20) {
                x = x.wrapping_add(std::hint::black_box(1));
            }
            busy_tx.send(()).unwrap();
            rx.recv().unwrap();
            inside.finish_current_thread();
            x
        });
        busy_rx.recv().unwrap();
        let live = cpu.read_ns();
        assert!(live > 0, "a busy thread has CPU time");
        tx.send(()).unwrap();
        t.join().unwrap();
        assert!(cpu.read_ns() >= live);
    }
}
