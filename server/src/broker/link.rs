//! Connections to Redis: made with a timeout, remade with backoff.
//!
//! Each task of the shared feed holds its own connection (the relay's
//! `XREAD BLOCK` would stall anything sharing it). A connection that fails
//! is dropped and made again after a growing pause, so a Redis that is
//! down costs a few attempts a second at most and nothing is buffered
//! meanwhile: the producer publishes what fell due once it can, the relay
//! reads what it missed from the stream.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Client, RedisError};

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The first pause after a failure; doubled up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// The longest pause between attempts: a restarted Redis is found again
/// within this.
pub const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Where Redis is.
#[derive(Debug, Clone)]
pub struct Link {
    client: Client,
}

impl Link {
    /// Checks the URL (no connection is made).
    pub fn new(url: &str) -> Result<Link, RedisError> {
        Ok(Link {
            client: Client::open(url)?,
        })
    }

    /// A connection whose commands fail after `response_timeout` (a
    /// blocking read sets its own bound instead: `None`).
    pub async fn connect(
        &self,
        response_timeout: Option<Duration>,
    ) -> Result<MultiplexedConnection, RedisError> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(response_timeout);
        self.client
            .get_multiplexed_async_connection_with_config(&config)
            .await
    }
}

/// The pause before the next connection attempt.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: FIRST_BACKOFF,
        }
    }
}

impl Backoff {
    /// The pause to take now; the next one is twice as long, up to the cap.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(MAX_BACKOFF);
        pause
    }

    /// After a success: start short again.
    pub fn reset(&mut self) {
        self.next = FIRST_BACKOFF;
    }
}

/// Redis's URL without its password, for `/stats` and logs.
pub fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_resets() {
        let mut b = Backoff::default();
        let pauses: Vec<_> = (0..7).map(|_| b.next_pause()).collect();
        assert_eq!(pauses[0], FIRST_BACKOFF);
        assert_eq!(pauses[1], FIRST_BACKOFF * 2);
        assert_eq!(*pauses.last().unwrap(), MAX_BACKOFF);
        b.reset();
        assert_eq!(b.next_pause(), FIRST_BACKOFF);
    }

    #[test]
    fn passwords_are_not_shown() {
        assert_eq!(
            redacted("redis://:secret@host:6379/"),
            "redis://***@host:6379/"
        );
        assert_eq!(
            redacted("redis://127.0.0.1:6379/"),
            "redis://127.0.0.1:6379/"
        );
        assert!(Link::new("redis://127.0.0.1:6379/").is_ok());
        assert!(Link::new("nope").is_err());
    }
}
