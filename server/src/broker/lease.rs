//! The producer's lease: one key, `SET <key>:lease <instance> NX PX <ms>`.
//!
//! Whoever sets it produces; it renews the lease every third of its length,
//! and only while the key still names it (a check-and-set in one Lua
//! script, so a lapsed producer never extends a successor's lease). When
//! the producer dies the key expires and another instance's next attempt
//! takes it. Redis's own refusal of a repeated stream id backs this up: two
//! producers at once (a paused one waking up) cannot write an id twice.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{RedisError, Script};

/// Extends the lease if it is still ours: 1, else 0.
const RENEW: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// Deletes the lease if it is still ours, so a successor need not wait.
const RELEASE: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

/// This instance's claim on the producer's lease.
#[derive(Debug)]
pub struct Lease {
    key: String,
    holder: String,
    length: Duration,
    renew: Script,
    release: Script,
}

impl Lease {
    pub fn new(key: String, holder: String, length: Duration) -> Lease {
        Lease {
            key,
            holder,
            length,
            renew: Script::new(RENEW),
            release: Script::new(RELEASE),
        }
    }

    /// The lease's length.
    pub fn length(&self) -> Duration {
        self.length
    }

    /// How often the holder renews it.
    pub fn renew_every(&self) -> Duration {
        self.length / 3
    }

    fn millis(&self) -> u64 {
        u64::try_from(self.length.as_millis()).unwrap_or(u64::MAX)
    }

    /// Takes the lease if nobody holds it.
    pub async fn acquire(&self, conn: &mut MultiplexedConnection) -> Result<bool, RedisError> {
        let set: Option<String> = redis::cmd("SET")
            .arg(&self.key)
            .arg(&self.holder)
            .arg("NX")
            .arg("PX")
            .arg(self.millis())
            .query_async(conn)
            .await?;
        Ok(set.is_some())
    }

    /// Extends the lease; false if it is no longer ours.
    pub async fn renew(&self, conn: &mut MultiplexedConnection) -> Result<bool, RedisError> {
        let n: i64 = self
            .renew
            .key(&self.key)
            .arg(&self.holder)
            .arg(self.millis())
            .invoke_async(conn)
            .await?;
        Ok(n == 1)
    }

    /// Gives the lease up (at shutdown).
    pub async fn release(&self, conn: &mut MultiplexedConnection) -> Result<(), RedisError> {
        let _: i64 = self
            .release
            .key(&self.key)
            .arg(&self.holder)
            .invoke_async(conn)
            .await?;
        Ok(())
    }
}
