//! One connection's life, written once: [`read`] reads any open stream
//! message by message through a hook until the hook, the server or a stop
//! signal ends it; [`hold`] wraps it in the reconnect loop of an
//! `EventSource` (open, read, pause, reopen resuming after the last id,
//! back off after failed opens, honour the server's `retry:`).
//!
//! The feed driver, the faults scenario and the browser model hold their
//! connections with [`hold`], each with its own [`ConnectionHook`] (what to
//! record, when to stop); chat and echo read their answers with [`read`].

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::token_watch::TokenWatch;
use crate::client::{ClientError, MessageStream, Msg, Opener};

/// The shortest reconnect delay: a server saying `retry: 0` must not make
/// a busy loop.
pub const MIN_RETRY: Duration = Duration::from_millis(10);
/// The longest delay backing off after failed opens.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// What a hook wants after a message.
#[derive(Debug)]
pub enum Flow {
    /// Read on.
    Continue,
    /// Done with this stream: it is closed politely.
    Stop,
    /// The message was wrong: the stream failed with this error.
    Fail(ClientError),
}

/// How reading a stream ended.
#[derive(Debug)]
pub enum Ended {
    /// The hook said [`Flow::Stop`].
    Done,
    /// The server ended the stream.
    Closed,
    /// Reading failed (or the hook said [`Flow::Fail`]).
    Failed(ClientError),
    /// The stop signal fired.
    Stopped,
}

/// Per-message hook of [`read`]; any `FnMut(M) -> Flow` is one.
pub trait OnMessage<M> {
    fn message(&mut self, msg: M) -> Flow;

    /// The wake signal given to [`read`] fired (once per stream).
    fn woken(&mut self) -> Flow {
        Flow::Continue
    }
}

impl<M, F: FnMut(M) -> Flow> OnMessage<M> for F {
    fn message(&mut self, msg: M) -> Flow {
        self(msg)
    }
}

/// Reads `stream` until the hook stops it, the server ends it, it fails, or
/// `stop` fires; `wake` (when given) calls the hook's
/// [`woken`](OnMessage::woken) once, even while no message arrives.
pub async fn read<S, H>(
    stream: &mut S,
    hook: &mut H,
    stop: Option<&CancellationToken>,
    wake: Option<&CancellationToken>,
) -> Ended
where
    S: MessageStream,
    H: OnMessage<S::Message> + ?Sized,
{
    // Watched, not polled at every message: see `token_watch`.
    let mut stop = stop.map(TokenWatch::new);
    let mut wake = wake.map(|token| match &stop {
        Some(stop) => TokenWatch::sharing(token, stop),
        None => TokenWatch::new(token),
    });
    let mut woken = false;
    loop {
        let next = tokio::select! {
            biased;
            _ = fired(&mut stop) => return Ended::Stopped,
            _ = fired(&mut wake), if !woken => {
                woken = true;
                hook.woken()
            }
            m = stream.next_message() => match m {
                Ok(Some(m)) => hook.message(m),
                Ok(None) => return Ended::Closed,
                Err(e) => return Ended::Failed(e),
            },
        };
        match next {
            Flow::Continue => {}
            Flow::Stop => return Ended::Done,
            Flow::Fail(e) => return Ended::Failed(e),
        }
    }
}

/// Never resolves for `None`.
async fn fired(watch: &mut Option<TokenWatch>) {
    match watch {
        Some(w) => w.fired().await,
        None => std::future::pending().await,
    }
}

/// How [`hold`] reopens.
#[derive(Debug, Clone, Copy)]
pub struct Reconnect {
    /// Reopen after a stream ends or an open fails (the browser model opens once).
    pub reopen: bool,
    /// The delay before reopening until the server sends `retry:`.
    pub retry: Duration,
    /// Double the delay after each failed open, up to [`MAX_BACKOFF`].
    pub backoff: bool,
    /// On the stop signal, close politely (a WebSocket close frame) instead
    /// of dropping the connection.
    pub close_on_stop: bool,
}

/// What a held connection does at each step.
pub trait ConnectionHook: OnMessage<Msg> {
    /// True when the connection has nothing more to do (checked before
    /// each open).
    fn finished(&self) -> bool {
        false
    }

    /// The id to resume after (`Last-Event-ID` / `lastEventId`).
    fn resume_id(&self) -> Option<u64> {
        None
    }

    /// A stream opened; the attempt started at `attempt_started`.
    fn opened(&mut self, _attempt_started: Instant) {}

    /// Opening failed.
    fn open_failed(&mut self, _error: ClientError) {}

    /// A stream's reading ended; [`Flow::Continue`] reopens (if the policy
    /// does), [`Flow::Stop`] ends the connection.
    fn ended(&mut self, how: Ended) -> Flow;
}

/// Holds connection `index`: opens it, reads it through `hook` and reopens
/// it as `policy` says, until the hook is finished or `stop` fires. `drain`
/// is the wake signal of [`read`] (the end of a run's hold).
pub async fn hold<H: ConnectionHook>(
    opener: &Opener,
    index: usize,
    hook: &mut H,
    policy: Reconnect,
    stop: &CancellationToken,
    drain: Option<&CancellationToken>,
) {
    let mut retry = policy.retry;
    let mut failures: u32 = 0;
    loop {
        if stop.is_cancelled() || hook.finished() {
            return;
        }
        let started = Instant::now();
        // Boxed: opening (TCP, TLS, the HTTP/2 or WebSocket handshake) is
        // the largest state of this future, about 4 KiB; inline it would
        // be held by every connection task for its whole life, which is
        // spent reading.
        let opened = tokio::select! {
            biased;
            _ = stop.cancelled() => return,
            r = Box::pin(opener.open(index, hook.resume_id())) => r,
        };
        let mut stream = match opened {
            Ok(s) => s,
            Err(e) => {
                hook.open_failed(e);
                if !policy.reopen {
                    return;
                }
                failures = failures.saturating_add(1);
                let delay = if policy.backoff {
                    retry.saturating_mul(1 << failures.min(3)).min(MAX_BACKOFF)
                } else {
                    retry
                };
                if !pause(stop, delay).await {
                    return;
                }
                continue;
            }
        };
        failures = 0;
        hook.opened(started);
        let ended = read(
            &mut stream,
            &mut RetryAware {
                hook: &mut *hook,
                retry: &mut retry,
            },
            Some(stop),
            drain,
        )
        .await;
        // Boxed for the same reason: a polite close happens once.
        match ended {
            Ended::Done => Box::pin(stream.close()).await,
            Ended::Stopped if policy.close_on_stop => Box::pin(stream.close()).await,
            _ => drop(stream),
        }
        if let Flow::Stop | Flow::Fail(_) = hook.ended(ended) {
            return;
        }
        if !policy.reopen || !pause(stop, retry).await {
            return;
        }
    }
}

/// Takes the server's `retry:` for the reconnect delay; passes every other
/// message on.
struct RetryAware<'a, H> {
    hook: &'a mut H,
    retry: &'a mut Duration,
}

impl<H: ConnectionHook> OnMessage<Msg> for RetryAware<'_, H> {
    fn message(&mut self, msg: Msg) -> Flow {
        match msg {
            Msg::Retry(ms) => {
                *self.retry = Duration::from_millis(ms).max(MIN_RETRY);
                Flow::Continue
            }
            other => self.hook.message(other),
        }
    }

    fn woken(&mut self) -> Flow {
        self.hook.woken()
    }
}

/// Sleeps, or returns false if `stop` fires meanwhile.
pub async fn pause(stop: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        _ = stop.cancelled() => false,
        _ = tokio::time::sleep(d) => true,
    }
}
