//! Helpers of the load generator's integration tests: the feed server on
//! port 0, a tiny server with its own field names, the Node baseline, the
//! binary runner, whether the link emulator can run here, and the ticks
//! of a feed stream (`ticks`).
#![allow(dead_code)]

pub mod fields_server;
pub mod node;

use std::io::Write as _;
use std::path::Path;
use std::process::Output;
use std::time::Duration;

use loadgen::client::{FeedStream, Msg};
use loadgen::run::WireSpec;
use loadgen::wire::Wire;

/// One wire's run for a test against the embedded server: every
/// connection at once (no ramp), short timeouts, no link.
pub fn wire_spec(wire: Wire, connections: usize, hold: Duration, settle: Duration) -> WireSpec {
    WireSpec {
        wire,
        connections,
        ramp_per_s: 0.0,
        hold,
        settle,
        h2_conns: None,
        drain_timeout: Duration::from_secs(5),
        connect_timeout: Duration::from_secs(10),
        retry: Duration::from_millis(200),
        link: None,
        first_index: 0,
        hold_at_unix_ns: None,
        stall_after: loadgen::measure::DEFAULT_STALL,
        saturation: false,
    }
}

/// The feed server on port 0 (plain and TLS listeners, one worker) at
/// `rate` events/s, with a short shutdown.
pub fn start_server(rate: f64) -> server::RunningServer {
    server::tls::install_crypto_provider();
    let mut c = server::ServerConfig::ephemeral();
    c.rate = rate;
    c.workers = Some(1);
    c.shutdown_timeout = Duration::from_secs(3);
    server::run(c).expect("server starts")
}

/// Where the clients reach a server of [`start_server`].
pub fn target(s: &server::RunningServer) -> loadgen::client::Target {
    loadgen::client::Target::embedded(s.http_addr, s.https_addr, s.cert_path())
        .expect("the server's own addresses and certificate")
}

/// `loadgen run <common> --quiet --out <out> <args>` through the built
/// binary, with `env` set, bounded in time.
pub async fn run_binary(
    common: &[&str],
    args: &[&str],
    out: &Path,
    env: &[(&str, &Path)],
) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.arg("run")
        .args(common)
        .args(["--quiet", "--out"])
        .arg(out)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("loadgen finishes")
        .unwrap()
}

/// The ids of the first `n` ticks of a stream, and the protocol its hello named.
pub async fn ticks(stream: &mut FeedStream, n: usize) -> (Vec<u64>, Option<String>) {
    let mut ids = Vec::new();
    let mut protocol = None;
    let read = async {
        while ids.len() < n {
            match stream.next().await.expect("the stream reads") {
                Some(Msg::Tick { id, .. }) => ids.push(id),
                Some(Msg::Hello { protocol: p, .. }) => protocol = Some(p),
                Some(_) => {}
                None => panic!("the stream ended"),
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("ticks within 10 s");
    (ids, protocol)
}

/// Whether links can be emulated here (root, `/dev/net/tun`); when not,
/// prints a loud `SKIPPED` for `test` and returns false, or fails when
/// `WORKBENCH_REQUIRE_NETLAB=1` says the test must run.
pub fn netlab_or_skip(test: &str) -> bool {
    let Err(e) = netlab::check_support() else {
        return true;
    };
    if std::env::var("WORKBENCH_REQUIRE_NETLAB").as_deref() == Ok("1") {
        panic!("{test}: WORKBENCH_REQUIRE_NETLAB=1 but the link emulator cannot run: {e}");
    }
    // Straight to stderr: the harness captures `eprintln!` of passing tests.
    let _ = writeln!(
        std::io::stderr(),
        "\n********\nSKIPPED: {test}: the link emulator cannot run here: {e} (run the tests as root on a kernel with /dev/net/tun)\n********\n"
    );
    false
}
