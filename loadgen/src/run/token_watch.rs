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
//!
//! A task watching two tokens (a stream's stop and drain signals) shares
//! one such waker between them ([`TokenWatch::sharing`]): the mark is a
//! count of wake-ups, and each watch polls its future when the count moved
//! since it last looked. With thousands of connections a task's memory is
//! out of the cache when its next event comes, so each waker of its own was
//! one more cache line fetched per event (cachegrind).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;
use tokio_util::sync::{CancellationToken, WaitForCancellationFutureOwned};

/// The waker the tokens' futures are polled with.
struct Branch {
    /// How many times a token's future was woken (starts at 1: a watch
    /// starts at 0, so its first poll polls the future, which registers it).
    wakes: AtomicU64,
    /// The watching task.
    task: AtomicWaker,
}

impl Wake for Branch {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        // Waking takes the task's waker out; a watch that sees the count
        // move registers it again. Taken before counting, so that a
        // registration made after the count moved is not taken by this wake.
        let task = self.task.take();
        self.wakes.fetch_add(1, Ordering::Release);
        if let Some(task) = task {
            task.wake();
        }
    }
}

/// One task's watch on a cancellation token; see the module documentation.
pub struct TokenWatch {
    cancelled: Pin<Box<WaitForCancellationFutureOwned>>,
    branch: Arc<Branch>,
    /// The task waker last handed to `branch` (a task's waker seldom
    /// changes: comparing with it spares the atomic registration).
    task: Option<Waker>,
    /// The branch's count of wake-ups when this watch last polled its future.
    seen: u64,
    fired: bool,
}

impl TokenWatch {
    pub fn new(token: &CancellationToken) -> Self {
        TokenWatch::with_branch(
            token,
            Arc::new(Branch {
                wakes: AtomicU64::new(1),
                task: AtomicWaker::new(),
            }),
        )
    }

    /// A watch on `token` for the task that watches `other`, sharing its
    /// waker (see the module documentation).
    pub fn sharing(token: &CancellationToken, other: &TokenWatch) -> Self {
        TokenWatch::with_branch(token, other.branch.clone())
    }

    fn with_branch(token: &CancellationToken, branch: Arc<Branch>) -> Self {
        TokenWatch {
            cancelled: Box::pin(token.clone().cancelled_owned()),
            branch,
            task: None,
            seen: 0,
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
        // Registered before the count is read, and the count read before
        // the future is polled: a wake-up after either moves the count past
        // `seen`, so the next poll looks again.
        let wakes = self.branch.wakes.load(Ordering::Acquire);
        if wakes == self.seen {
            return false;
        }
        self.seen = wakes;
        // A wake-up took the task's waker out of the branch (see `Branch`'s
        // `wake_by_ref`): put it back, for the other token's wake-up.
        self.branch.task.register(cx.waker());
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

    /// Polls both watches, the first one first, until one has fired.
    async fn either(a: &mut TokenWatch, b: &mut TokenWatch) -> (bool, bool) {
        std::future::poll_fn(|cx| {
            let fired = (a.poll_fired(cx), b.poll_fired(cx));
            if fired.0 || fired.1 {
                Poll::Ready(fired)
            } else {
                Poll::Pending
            }
        })
        .await
    }

    /// Two watches of one task share a waker: the token that fired is seen
    /// whichever watch is polled first (a single woken flag, cleared by the
    /// first, would hide it from the second).
    #[tokio::test]
    async fn watches_sharing_a_waker_each_see_their_own_token() {
        for cancel_second in [true, false] {
            let (first, second) = (CancellationToken::new(), CancellationToken::new());
            let mut a = TokenWatch::new(&first);
            let mut b = TokenWatch::sharing(&second, &a);
            let early =
                tokio::time::timeout(Duration::from_millis(20), either(&mut a, &mut b)).await;
            assert!(early.is_err(), "fired before either token was cancelled");
            if cancel_second {
                second.cancel();
            } else {
                first.cancel();
            }
            let fired = tokio::time::timeout(Duration::from_secs(5), either(&mut a, &mut b))
                .await
                .expect("the cancelled token's watch wakes the task");
            assert_eq!(fired, (!cancel_second, cancel_second));
        }
    }

    /// A task's waker that counts its wake-ups.
    #[derive(Default)]
    struct CountingTask(std::sync::atomic::AtomicUsize);

    impl Wake for CountingTask {
        fn wake(self: Arc<Self>) {
            self.wake_by_ref();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The first wake-up takes the task's waker out of the shared branch;
    /// the watch that sees it must put it back, or the other token's
    /// wake-up, later, finds no task to wake. Polled by hand with a
    /// counting waker: a runtime may poll its task for other reasons and
    /// hide a wake-up that never came.
    #[test]
    fn a_second_token_wakes_the_task_after_the_first_fired() {
        let (stop, drain) = (CancellationToken::new(), CancellationToken::new());
        let mut s = TokenWatch::new(&stop);
        let mut d = TokenWatch::sharing(&drain, &s);
        let task = Arc::new(CountingTask::default());
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        let woken = || task.0.load(Ordering::SeqCst);
        assert_eq!(
            (s.poll_fired(&mut cx), d.poll_fired(&mut cx)),
            (false, false)
        );
        drain.cancel();
        assert_eq!(woken(), 1, "the drain token woke the task");
        assert_eq!(
            (s.poll_fired(&mut cx), d.poll_fired(&mut cx)),
            (false, true)
        );
        assert!(
            !s.poll_fired(&mut cx),
            "no change: the stop watch stays pending"
        );
        stop.cancel();
        assert_eq!(woken(), 2, "the stop token, cancelled later, woke the task");
        assert!(s.poll_fired(&mut cx));
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
