//! [`LinkControl`]: what a running lab lets its caller change while packets
//! flow: cut and restore the link by hand, start the outage schedule, swap
//! the link settings between scenarios.
//!
//! The forwarder threads read this on every packet, so the hot checks are
//! single relaxed atomic loads; the settings themselves sit behind a mutex
//! that a thread takes only when the generation counter says they changed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::spec::{LinkSpec, LinkSpecError, Outage};

/// A cloneable handle on a lab's link; every clone controls the same link.
#[derive(Debug, Clone)]
pub struct LinkControl {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// Times are stored as nanoseconds since this instant (+1, so 0 = unset).
    epoch: Instant,
    cut: AtomicBool,
    schedule_start: AtomicU64,
    generation: AtomicU64,
    spec: Mutex<LinkSpec>,
}

impl LinkControl {
    pub(crate) fn new(spec: LinkSpec) -> Self {
        Self {
            inner: Arc::new(Inner {
                epoch: Instant::now(),
                cut: AtomicBool::new(false),
                schedule_start: AtomicU64::new(0),
                generation: AtomicU64::new(0),
                spec: Mutex::new(spec),
            }),
        }
    }

    /// Drops every packet in both directions from now until [`restore`],
    /// including packets already on their way (as when a phone loses its
    /// signal). Returns the moment it took effect.
    ///
    /// [`restore`]: LinkControl::restore
    pub fn cut(&self) -> Instant {
        let now = Instant::now();
        self.inner.cut.store(true, Ordering::Release);
        tracing::info!("link cut");
        now
    }

    /// Ends a [`cut`](LinkControl::cut); returns the moment the link was back.
    pub fn restore(&self) -> Instant {
        self.inner.cut.store(false, Ordering::Release);
        tracing::info!("link restored");
        Instant::now()
    }

    /// Whether the link is cut by hand right now.
    pub fn is_cut(&self) -> bool {
        self.inner.cut.load(Ordering::Relaxed)
    }

    /// Starts (or restarts) the outage schedule of the current settings:
    /// each [`Outage`] counts from the returned instant. The load generator
    /// calls this when its hold begins.
    pub fn start_outages(&self) -> Instant {
        let now = Instant::now();
        let ns = now.duration_since(self.inner.epoch).as_nanos() as u64 + 1;
        self.inner.schedule_start.store(ns, Ordering::Release);
        now
    }

    /// When the outage schedule started, if it has.
    pub fn outages_started_at(&self) -> Option<Instant> {
        match self.inner.schedule_start.load(Ordering::Acquire) {
            0 => None,
            ns => Some(self.inner.epoch + Duration::from_nanos(ns - 1)),
        }
    }

    /// Replaces the link settings (delay, loss, rate, …) without tearing the
    /// namespaces down, e.g. between the scenarios of a suite. Packets
    /// already queued keep the times they were given.
    pub fn set_link(&self, spec: LinkSpec) -> Result<(), LinkSpecError> {
        spec.validate()?;
        tracing::info!(link = %spec, "link settings changed");
        *self.lock_spec() = spec;
        self.inner.generation.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// The settings in force.
    pub fn link(&self) -> LinkSpec {
        self.lock_spec().clone()
    }

    pub(crate) fn generation(&self) -> u64 {
        self.inner.generation.load(Ordering::Acquire)
    }

    /// Whether a packet at `now` is lost to an outage: cut by hand, or
    /// inside one of `outages` once the schedule has started.
    pub(crate) fn is_down(&self, now: Instant, outages: &[Outage]) -> bool {
        if self.inner.cut.load(Ordering::Relaxed) {
            return true;
        }
        if outages.is_empty() {
            return false;
        }
        match self.outages_started_at() {
            Some(start) => {
                let offset = now.saturating_duration_since(start);
                now >= start && outages.iter().any(|o| o.contains(offset))
            }
            None => false,
        }
    }

    fn lock_spec(&self) -> MutexGuard<'_, LinkSpec> {
        // A panic while holding this lock cannot leave a half-written spec
        // (assignment of a whole value), so a poisoned lock is still valid.
        self.inner
            .spec
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cut_and_restore() {
        let control = LinkControl::new(LinkSpec::default());
        let now = Instant::now();
        assert!(!control.is_down(now, &[]));
        control.cut();
        assert!(control.is_down(Instant::now(), &[]));
        control.restore();
        assert!(!control.is_down(Instant::now(), &[]));
    }

    #[test]
    fn schedule_counts_from_its_start() {
        let outages = ["100ms@50ms".parse::<Outage>().unwrap()];
        let control = LinkControl::new(LinkSpec::default());
        let before = Instant::now() + Duration::from_millis(60);
        assert!(!control.is_down(before, &outages), "not started yet");
        let start = control.start_outages();
        assert_eq!(control.outages_started_at(), Some(start));
        assert!(!control.is_down(start + Duration::from_millis(49), &outages));
        assert!(control.is_down(start + Duration::from_millis(50), &outages));
        assert!(control.is_down(start + Duration::from_millis(149), &outages));
        assert!(!control.is_down(start + Duration::from_millis(150), &outages));
    }

    #[test]
    fn set_link_validates_and_bumps_the_generation() {
        let control = LinkControl::new(LinkSpec::default());
        let g = control.generation();
        let bad = LinkSpec {
            loss_percent: 100.0,
            ..LinkSpec::default()
        };
        assert!(control.set_link(bad).is_err());
        assert_eq!(control.generation(), g);
        control.set_link("delay=5ms".parse().unwrap()).unwrap();
        assert_eq!(control.generation(), g + 1);
        assert_eq!(control.link().delay, Duration::from_millis(5));
    }
}
