//! One connection group of a browser's socket pool: at most `limit`
//! requests hold a slot at once, the rest wait in order.
//!
//! Chromium's group for HTTP/1.1 is (profile, scheme, host, port): 6 slots,
//! one per connection. For HTTP/2 the slots are the concurrent streams of
//! the origin's single connection. Measured in Chromium: waiting requests
//! are served strictly first come, first served (a `fetch` issued behind two
//! pending EventSources needs three slots freed), silently, with no timeout.
//! The queue here is explicit instead of a semaphore, so the order is the
//! order of [`Pool::request`] calls, not of task scheduling.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

/// A pool group. Cheap to clone: clones share the slots.
#[derive(Clone)]
pub struct Pool {
    state: Arc<Mutex<State>>,
}

struct State {
    limit: usize,
    in_use: usize,
    /// The most slots held at once.
    peak: usize,
    queue: VecDeque<oneshot::Sender<Slot>>,
}

/// A held slot: dropping it hands it to the oldest waiting request.
pub struct Slot {
    state: Arc<Mutex<State>>,
}

/// A request for a slot: granted at once, or queued.
pub enum Ticket {
    Granted(Slot),
    Queued {
        rx: oneshot::Receiver<Slot>,
        /// Live requests that were waiting before this one.
        ahead: usize,
    },
}

impl Ticket {
    /// Requests queued before this one (0 when granted at once).
    pub fn ahead(&self) -> usize {
        match self {
            Ticket::Granted(_) => 0,
            Ticket::Queued { ahead, .. } => *ahead,
        }
    }

    pub fn is_queued(&self) -> bool {
        matches!(self, Ticket::Queued { .. })
    }

    /// Waits for the slot. Dropping the future (or the ticket) withdraws the
    /// request, as closing a pending EventSource does.
    pub async fn wait(self) -> Slot {
        match self {
            Ticket::Granted(slot) => slot,
            Ticket::Queued { rx, .. } => match rx.await {
                Ok(slot) => slot,
                // The senders live in the pool's state, which this ticket's
                // pool keeps alive while anyone can still release a slot.
                Err(_) => std::future::pending().await,
            },
        }
    }
}

impl Pool {
    pub fn new(limit: usize) -> Pool {
        Pool {
            state: Arc::new(Mutex::new(State {
                limit: limit.max(1),
                in_use: 0,
                peak: 0,
                queue: VecDeque::new(),
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .expect("no panics while the pool is locked")
    }

    /// Asks for a slot now; the place in the queue is taken by this call.
    pub fn request(&self) -> Ticket {
        let mut s = self.lock();
        s.queue.retain(|tx| !tx.is_closed());
        if s.in_use < s.limit && s.queue.is_empty() {
            s.in_use += 1;
            s.peak = s.peak.max(s.in_use);
            return Ticket::Granted(Slot {
                state: self.state.clone(),
            });
        }
        let ahead = s.queue.len();
        let (tx, rx) = oneshot::channel();
        s.queue.push_back(tx);
        Ticket::Queued { rx, ahead }
    }

    /// Slots held now.
    pub fn in_use(&self) -> usize {
        self.lock().in_use
    }

    /// The most slots held at once so far.
    pub fn peak(&self) -> usize {
        self.lock().peak
    }

    /// Requests waiting now (withdrawn ones excluded).
    pub fn waiting(&self) -> usize {
        self.lock()
            .queue
            .iter()
            .filter(|tx| !tx.is_closed())
            .count()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let next = {
            let mut s = self
                .state
                .lock()
                .expect("no panics while the pool is locked");
            match s.queue.pop_front() {
                Some(tx) => tx,
                None => {
                    s.in_use -= 1;
                    return;
                }
            }
        };
        // Outside the lock: a withdrawn waiter hands the slot back, and its
        // drop passes it on to the next one in turn.
        let slot = Slot {
            state: self.state.clone(),
        };
        if let Err(unwanted) = next.send(slot) {
            drop(unwanted);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn six_slots_then_first_come_first_served() {
        let pool = Pool::new(6);
        let held: Vec<Slot> = (0..6)
            .map(|_| match pool.request() {
                Ticket::Granted(s) => s,
                Ticket::Queued { .. } => panic!("the first six are granted"),
            })
            .collect();
        let seventh = pool.request();
        let eighth = pool.request();
        let get = pool.request();
        assert_eq!((seventh.ahead(), eighth.ahead(), get.ahead()), (0, 1, 2));
        assert_eq!((pool.in_use(), pool.waiting()), (6, 3));
        let mut held = held.into_iter();
        drop(held.next());
        let seventh = seventh.wait().await;
        assert_eq!(pool.waiting(), 2);
        // Withdrawing the eighth lets the GET take the next slot.
        drop(eighth);
        drop(held.next());
        let _get = tokio::time::timeout(std::time::Duration::from_secs(1), get.wait())
            .await
            .expect("the GET is next once the eighth withdrew");
        assert_eq!((pool.in_use(), pool.waiting(), pool.peak()), (6, 0, 6));
        drop(seventh);
        assert_eq!(pool.in_use(), 5);
    }
}
