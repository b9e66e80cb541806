//! Thread-per-core lanes for the feed's connection tasks.
//!
//! Each lane is one thread running a single-threaded tokio runtime with its
//! own I/O driver and timers; connection `i` runs on lane `i % lanes`. A
//! socket's readiness, its task and the recorder shard it writes into then
//! stay on one thread: no work stealing, no wake-up of another thread's
//! parked worker, no task moving between cores. Measured against tokio's
//! work-stealing runtime (2 cores, 1,000 connections × 100 events/s, the
//! same build back to back), the load generator's CPU per received event
//! fell on every wire; the figures are in README "The load generator's own
//! cost per event". The server's workers are built the same way (actix
//! runs one single-threaded runtime per worker).
//!
//! Everything else (the driver, its timers, /proc sampling, progress)
//! stays on the process's main runtime. A task a connection spawns (an
//! HTTP/2 connection's I/O task, made by the first stream that needs it)
//! runs on that connection's lane: streams `i` use pool connection
//! `i % pool`, so with a pool size that is a multiple of the lane count a
//! pool connection and all its streams share one lane.
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

/// One lane per core, or `LOADGEN_LANES` of them. Fewer lanes cost less
/// CPU per event while they keep up (one lane: about 10–20 % less at
/// 1,000 connections × 100 events/s on 2 cores), but cap the load
/// generator at that many cores: one lane fell behind at 600,000 events/s.
/// Worker processes inherit the variable.
fn lane_count() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match std::env::var(LANES_VAR) {
        Err(_) => cores,
        Ok(v) => match v.trim().parse::<usize>() {
            Ok(n) if n > 0 => n,
            _ => {
                tracing::warn!(value = %v, "{LANES_VAR} is not a positive integer; using one lane per core ({cores})");
                cores
            }
        },
    }
}

/// Starts `n` lanes; the handles of those that started.
fn start(n: usize) -> Vec<Handle> {
    let mut handles = Vec::with_capacity(n);
    for i in 0..n {
        let runtime = match Builder::new_current_thread().enable_all().build() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not start a connection lane; the rest run on the main runtime");
                break;
            }
        };
        let handle = runtime.handle().clone();
        let started = std::thread::Builder::new()
            .name(format!("loadgen-lane-{i}"))
            .spawn(move || runtime.block_on(std::future::pending::<()>()));
        match started {
            Ok(_) => handles.push(handle),
            Err(e) => {
                tracing::warn!(error = %e, "could not start a connection lane's thread; the rest run on the main runtime");
                break;
            }
        }
    }
    handles
}

/// Runs `task` (connection number `index`) on its lane.
pub fn spawn<F>(index: usize, task: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let lanes = LANES.get_or_init(|| start(lane_count()));
    match lanes.len() {
        0 => tokio::spawn(task),
        n => lanes[index % n].spawn(task),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
