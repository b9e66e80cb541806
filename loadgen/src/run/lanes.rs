//! Thread-per-core lanes for the feed's connection tasks.
//!
//! Each lane is one thread running a single-threaded tokio runtime with its
//! own I/O driver and timers; connection `i` runs on lane `i % lanes`. A
//! socket's readiness, its task and the recorder shard it writes into then
//! stay on one thread: no work stealing, no wake-up of another thread's
//! parked worker, no task moving between cores. Measured against tokio's
//! work-stealing runtime on 2 cores, the same build back to back, the load
//! generator's CPU per received event fell on the HTTP/2 wires (by about a
//! tenth) and moved within the noise on HTTP/1.1; the figures are in README
//! "The load generator's own cost per event". The server's workers are
//! built the same way (actix runs one single-threaded runtime per worker).
//!
//! Everything else (the driver, its timers, /proc sampling, progress)
//! stays on the process's main runtime. A task a connection spawns (an
//! HTTP/2 connection's I/O task, made by the first stream that needs it)
//! runs on that connection's lane. So an HTTP/2 stream is placed by its
//! pool connection (the caller passes the slot as the lane key): a pool
//! connection and all its streams share one lane, whatever the counts.
//!
//! The lanes are made once per process and live until it exits: a run
//! that ends leaves them idle (a parked thread each).

use std::future::Future;
use std::sync::OnceLock;

use tokio::runtime::{Builder, Handle};
use tokio::task::JoinHandle;

/// The process's lanes (none if they could not be made: then connection
/// tasks run on the current runtime, as before lanes existed).
static LANES: OnceLock<Vec<Handle>> = OnceLock::new();

/// The variable that sets the number of lanes (a positive integer).
pub const LANES_VAR: &str = "LOADGEN_LANES";

/// At most this many lanes per core: more only adds parked threads.
const MAX_LANES_PER_CORE: usize = 4;

/// One lane per core, or `LOADGEN_LANES` of them (at most
/// [`MAX_LANES_PER_CORE`] per core). Fewer lanes cost less CPU per event
/// while they keep up (one lane on 2 cores, 1,000 connections × 100
/// events/s: about 7–15 % less than two), but cap the load generator at
/// that many cores: one lane fell behind at 600,000 events/s. Worker
/// processes inherit the variable.
fn lane_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let asked = std::env::var(LANES_VAR).ok();
    lanes_for(asked.as_deref(), cores).unwrap_or_else(|bad| {
        tracing::warn!(
            value = %bad,
            "{LANES_VAR} must be 1 to {}; using one lane per core ({cores})",
            cores * MAX_LANES_PER_CORE
        );
        cores
    })
}

/// The lanes for `LOADGEN_LANES` = `asked` on `cores` cores; the value
/// back when it is not a number from 1 to [`MAX_LANES_PER_CORE`] per core.
fn lanes_for(asked: Option<&str>, cores: usize) -> Result<usize, String> {
    let Some(v) = asked else {
        return Ok(cores);
    };
    match v.trim().parse::<usize>() {
        Ok(n) if (1..=cores * MAX_LANES_PER_CORE).contains(&n) => Ok(n),
        _ => Err(v.to_string()),
    }
}

/// Starts `n` lanes; the handles of those that started. Each runtime is
/// built on its own thread (a runtime dropped inside another one panics,
/// so none may be dropped by the caller), which sends its handle back.
/// If a lane cannot start, connections spread over those that did; with
/// none they run on the caller's runtime.
fn start(n: usize) -> Vec<Handle> {
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let started = std::thread::Builder::new()
            .name(format!("loadgen-lane-{i}"))
            .spawn(
                move || match Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => {
                        // The receiver waits for this send: it cannot be gone.
                        let _ = tx.send(Ok(runtime.handle().clone()));
                        runtime.block_on(std::future::pending::<()>());
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                },
            );
        let outcome = match started {
            Ok(_) => rx.recv().unwrap_or_else(|_| {
                Err(std::io::Error::other(
                    "the lane's thread ended before its runtime started",
                ))
            }),
            Err(e) => Err(e),
        };
        match outcome {
            Ok(handle) => handles.push(handle),
            Err(e) => {
                tracing::warn!(error = %e, lanes = handles.len(), "could not start connection lane {i}; connections use the lanes that started (the caller's runtime if none)");
                break;
            }
        }
    }
    handles
}

/// Makes the lanes now if they are not made yet (so a run can read its
/// own memory before connecting with the lanes' already in it).
pub fn start_once() {
    lanes();
}

fn lanes() -> &'static [Handle] {
    LANES.get_or_init(|| start(lane_count()))
}

/// Runs `task` on lane `key % lanes`: the connection's number, or for an
/// HTTP/2 stream its pool connection's slot.
pub fn spawn<F>(key: usize, task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let lanes = lanes();
    match lanes.len() {
        0 => tokio::spawn(task),
        n => lanes[key % n].spawn(task),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lane_count_is_one_per_core_or_a_sane_number_asked_for() {
        assert_eq!(lanes_for(None, 2), Ok(2));
        assert_eq!(lanes_for(Some("1"), 2), Ok(1));
        assert_eq!(lanes_for(Some(" 8 "), 2), Ok(8));
        for bad in ["0", "9", "-1", "two", "", "100000"] {
            assert_eq!(lanes_for(Some(bad), 2), Err(bad.to_string()), "{bad:?}");
        }
    }

    #[tokio::test]
    async fn connections_of_one_lane_share_a_thread_and_lanes_differ() {
        let thread_of = |index| async move {
            spawn(index, async { std::thread::current().id() })
                .await
                .expect("the task ran")
        };
        let lanes = lane_count();
        let first = thread_of(0).await;
        assert_eq!(
            first,
            thread_of(lanes).await,
            "index and index + lanes share a lane"
        );
        assert_ne!(
            first,
            std::thread::current().id(),
            "a lane is not the caller's thread"
        );
        if lanes > 1 {
            assert_ne!(
                first,
                thread_of(1).await,
                "neighbouring connections use other lanes"
            );
        }
    }

    #[tokio::test]
    async fn a_lane_runs_timers_and_io_of_its_own() {
        let task = spawn(3, async {
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            let (client, server) =
                tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
            client?;
            server.map(|_| ())
        });
        task.await
            .expect("the task ran")
            .expect("a lane has a timer and an I/O driver");
    }
}
