//! The subscribers waiting for the hub's next event or signal, as wakers.
//!
//! A subscription is polled by its stream's body, not awaited: it keeps no
//! future of its own (a `broadcast::Recv` held in every stream costs its
//! waiter, and the `select!` around it more). Instead a subscriber that
//! finds nothing to send leaves its waker here, once per round, and the hub
//! wakes the whole list when it publishes an event, when streams are
//! dropped and when an idle feed's keep-alive is due. The list costs one
//! waker (16 bytes) per waiting subscriber, shared in one vector.

use std::sync::{Mutex, MutexGuard};
use std::task::Waker;

/// Wakers waiting for the next round.
#[derive(Debug, Default)]
pub struct WaitList {
    waiting: Mutex<Waiting>,
}

#[derive(Debug, Default)]
struct Waiting {
    /// Rounds woken so far: a ticket of an older round is spent.
    round: u64,
    wakers: Vec<Waker>,
}

/// Where a subscriber's waker sits in the list, valid for one round: a
/// subscriber polled twice in a round (woken by its connection, not by the
/// hub) updates its slot instead of adding a second waker, so the list
/// holds at most one waker per subscriber whatever its connection does.
/// A fresh ticket ([`Ticket::default`]) holds no place.
#[derive(Debug, Clone, Copy)]
pub struct Ticket {
    round: u64,
    slot: u32,
}

impl Default for Ticket {
    fn default() -> Self {
        // Rounds count from 0 and never reach this.
        Ticket {
            round: u64::MAX,
            slot: 0,
        }
    }
}

impl WaitList {
    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // Nothing can be left half-done under this lock (a push, a swap).
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Leaves `waker` for the next round unless `ready` says there is
    /// something to take after all. `ready` runs under the list's lock: a
    /// publisher makes its event visible before it wakes the list, so an
    /// event either shows in `ready` or finds this waker. True when ready
    /// (nothing was left).
    pub fn wait(&self, ticket: &mut Ticket, waker: &Waker, ready: impl FnOnce() -> bool) -> bool {
        let mut waiting = self.lock();
        if ready() {
            return true;
        }
        let round = waiting.round;
        if ticket.round == round {
            let held = &mut waiting.wakers[ticket.slot as usize];
            if !held.will_wake(waker) {
                held.clone_from(waker);
            }
        } else {
            *ticket = Ticket {
                round,
                slot: u32::try_from(waiting.wakers.len())
                    .expect("fewer waiting subscribers than open files"),
            };
            waiting.wakers.push(waker.clone());
        }
        false
    }

    /// Gives up a place in the list (a subscription dropped while waiting):
    /// its waker must not keep the task it wakes alive until the next round.
    pub fn leave(&self, ticket: Ticket) {
        let mut waiting = self.lock();
        if ticket.round == waiting.round {
            let slot = ticket.slot as usize;
            if slot + 1 == waiting.wakers.len() {
                waiting.wakers.pop();
            } else {
                waiting.wakers[slot] = Waker::noop().clone();
            }
        }
    }

    /// Whether `ticket` holds a place in this round.
    pub fn holds(&self, ticket: Ticket) -> bool {
        ticket.round != Ticket::default().round && ticket.round == self.lock().round
    }

    /// Wakes every waiting subscriber and starts a new round. The wakers are
    /// woken outside the lock (a woken task may run at once on another
    /// thread and come back to wait), and the vector's room is kept for the
    /// next round.
    pub fn wake_all(&self) {
        let mut wakers = {
            let mut waiting = self.lock();
            waiting.round += 1;
            std::mem::take(&mut waiting.wakers)
        };
        if wakers.is_empty() {
            return;
        }
        for waker in wakers.drain(..) {
            waker.wake();
        }
        let mut waiting = self.lock();
        if waiting.wakers.capacity() < wakers.capacity() {
            // Those that came back meanwhile keep their slots: `wakers` is
            // empty, so appending keeps every index.
            wakers.append(&mut waiting.wakers);
            waiting.wakers = wakers;
        }
    }

    /// Wakers held now (for tests).
    pub fn len(&self) -> usize {
        self.lock().wakers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn counter() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn one_waker_per_subscriber_per_round_and_each_woken_once() {
        let list = WaitList::default();
        let (a, wa) = counter();
        let (b, wb) = counter();
        let (mut ta, mut tb) = (Ticket::default(), Ticket::default());
        for _ in 0..5 {
            assert!(!list.wait(&mut ta, &wa, || false));
        }
        assert!(!list.wait(&mut tb, &wb, || false));
        assert_eq!(list.len(), 2);
        // A new waker for the same subscriber replaces its old one.
        let (a2, wa2) = counter();
        assert!(!list.wait(&mut ta, &wa2, || false));
        assert_eq!(list.len(), 2);
        list.wake_all();
        assert!(list.is_empty());
        assert_eq!(a.0.load(Ordering::SeqCst), 0);
        assert_eq!(a2.0.load(Ordering::SeqCst), 1);
        assert_eq!(b.0.load(Ordering::SeqCst), 1);
        // A new round: the old ticket is spent, the subscriber waits anew.
        assert!(!list.wait(&mut ta, &wa2, || false));
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn ready_leaves_nothing_and_leaving_frees_the_waker() {
        let list = WaitList::default();
        let (a, wa) = counter();
        let mut ta = Ticket::default();
        assert!(list.wait(&mut ta, &wa, || true));
        assert!(!list.holds(ta) && list.is_empty());
        assert!(!list.wait(&mut ta, &wa, || false));
        assert!(list.holds(ta));
        list.leave(ta);
        assert!(list.is_empty());
        drop(wa);
        assert_eq!(Arc::strong_count(&a), 1, "the list let go of the waker");
    }
}
