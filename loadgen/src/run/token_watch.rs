//! [`TokenWatch`]: a cancellation token watched by one reading task without
//! being polled at each of the task's wake-ups.
//!
//! A connection task waits on its stream and on the run's stop and drain
//! tokens in one `select!`, which polls every branch whenever the task
//! wakes, that is at every event. Polling a token's `cancelled()` future
//! locks the token and its waiter list each time: a profile of 1,000
//! connections at 100 events/s had that at 5–14 % of the load generator's
//! CPU. Here the token's future gets a waker of its own, which marks it
//! woken before waking the task; the task polls the future again only when
//! it is marked, so at an event the watch costs one load of that mark.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The waker the token's future is polled with.
struct Branch {
    /// Set when the token's future was woken, cleared when it is polled.
    woken: AtomicBool,
    /// The watching task.
    task: AtomicWaker,
}

impl Wake for Branch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        self.task.wake();
    }
}

/// One task's watch on a cancellation token; see the module documentation.
pub struct TokenWatch {
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    branch: Arc<Branch>,
    /// The task waker last handed to `branch` (a task's waker seldom
    /// changes: comparing with it spares the atomic registration).
    task: Option<Waker>,
    fired: bool,
}

impl TokenWatch {
    pub fn new(token: &CancellationToken) -> Self {
        TokenWatch {
            cancelled: Box::pin(token.clone().cancelled_owned()),
            // Woken at first, so the first poll registers with the token.
            branch: Arc::new(Branch {
                woken: AtomicBool::new(true),
                task: AtomicWaker::new(),
            }),
            task: None,
            fired: false,
        }
    }

    /// Whether the token is cancelled; when not, the task polling this is
    /// woken once it is.
    pub fn poll_fired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.fired {
            return true;
        }
        if !self.task.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            self.branch.task.register(cx.waker());
            self.task = Some(cx.waker().clone());
        }
        // Registered before the mark is read: a wake-up in between is seen.
        if !self.branch.woken.load(Ordering::Acquire) {
            return false;
        }
        self.branch.woken.store(false, Ordering::Release);
        let waker = Waker::from(self.branch.clone());
        let mut own = Context::from_waker(&waker);
        self.fired = self.cancelled.as_mut().poll(&mut own).is_ready();
        self.fired
    }

    /// Resolves once the token is cancelled.
    pub fn fired(&mut self) -> impl Future<Output = ()> + Send + '_ {
        std::future::poll_fn(|cx| {
            if self.poll_fired(cx) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn fires_when_cancelled_and_not_before() {
        let token = CancellationToken::new();
        let mut watch = TokenWatch::new(&token);
        let early = tokio::time::timeout(Duration::from_millis(20), watch.fired()).await;
        assert!(early.is_err(), "fired before the token was cancelled");
        let canceller = {
            let token = token.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(20)).await;
                token.cancel();
            })
        };
        tokio::time::timeout(Duration::from_secs(5), watch.fired())
            .await
            .expect("the watch wakes its task when the token is cancelled");
        canceller.await.expect("the canceller ran");
        // It stays fired.
        watch.fired().await;
    }

    #[tokio::test]
    async fn a_token_cancelled_before_the_watch_fires_at_once() {
        let token = CancellationToken::new();
        token.cancel();
        let mut watch = TokenWatch::new(&token);
        tokio::time::timeout(Duration::from_secs(1), watch.fired())
            .await
            .expect("already cancelled");
    }

    #[tokio::test]
    async fn a_child_token_fires_with_its_parent() {
        let parent = CancellationToken::new();
        let mut watch = TokenWatch::new(&parent.child_token());
        let fired = tokio::spawn(async move { watch.fired().await });
        tokio::time::sleep(Duration::from_millis(10)).await;
        parent.cancel();
        tokio::time::timeout(Duration::from_secs(5), fired)
            .await
            .expect("the child's watch fires")
            .expect("the task ran");
    }
}
