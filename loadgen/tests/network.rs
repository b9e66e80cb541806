//! Runs over an emulated link (netlab): the embedded server in one network
//! namespace, every connection in another, real kernel TCP on both ends.
//! Each wire must cross the link (latency at least its delay), lose
//! nothing, and report its stalls and its recovery from outages; the
//! namespaces must be gone when the run ends, also on Ctrl-C.
//!
//! Building namespaces needs root: without it these tests print SKIPPED
//! and pass, unless `WORKBENCH_REQUIRE_NETLAB=1` (set by `.ci/run`).

mod support;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use loadgen::result::{RunResult, Scenario, WireResult};
use loadgen::run::{run_scenarios, RunOptions, ServerChoice, Silent};
use loadgen::wire::Wire;
use support::netlab_or_skip;
use tokio_util::sync::CancellationToken;

fn exe() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_loadgen"))
}

fn options() -> RunOptions {
    server::tls::install_crypto_provider();
    RunOptions {
        server: ServerChoice::Child { exe: exe() },
        workers: Some(2),
        retry: Duration::from_millis(200),
        worker_exe: Some(exe()),
        shard: None,
        start_at_unix_ns: None,
    }
}

fn scenario(name: &str, link: &str, wires: &[Wire], connections: usize, hold_s: f64) -> Scenario {
    let mut s = Scenario::network(name, hold_s);
    s.wires = wires.to_vec();
    s.connections = connections;
    s.rate_hz = 20.0;
    s.ramp_per_s = 0.0;
    s.settle_s = 0.5;
    s.link = Some(link.parse().expect("a valid link"));
    s.validate().expect("a valid scenario");
    s
}

async fn run(s: Scenario) -> RunResult {
    run_scenarios(
        "network",
        &[s],
        &options(),
        &Silent,
        CancellationToken::new(),
    )
    .await
}

/// The names of this test process's namespaces (its labs), if any are left.
fn own_namespaces(pid: u32) -> Vec<String> {
    let prefix = format!("wbnet-{pid}-");
    std::fs::read_dir(netlab::netns::NETNS_DIR)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default()
}

fn network(w: &WireResult) -> &loadgen::result::NetworkResult {
    w.network
        .as_ref()
        .expect("a wire over a link has network figures")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wire_crosses_a_lossy_link_and_loses_nothing() {
    if !netlab_or_skip("every_wire_crosses_a_lossy_link_and_loses_nothing") {
        return;
    }
    let n = 10;
    let r = run(scenario("lossy", "delay=10ms,loss=2%", &Wire::ALL, n, 3.0)).await;
    assert!(r.complete, "{:?}", r.problems);
    let s = &r.scenarios[0];
    assert!(
        s.server.http_url.starts_with("http://198.18.1.1:"),
        "the server listens on its address on the link: {}",
        s.server.http_url
    );
    let link = s.link.as_ref().expect("the scenario's link object");
    assert_eq!((link.delay_ms, link.loss), (10.0, 0.02));
    let e = &link.emulator;
    assert!(e.total.packets_forwarded > 1_000, "{e:?}");
    assert!(
        e.total.dropped_loss > 0,
        "2 % of the packets are dropped: {e:?}"
    );
    assert_eq!(e.total.dropped_overflow, 0, "the emulator kept up: {e:?}");
    assert!(e.packets_per_s > 0.0 && e.total.cpu_us > 0, "{e:?}");
    assert_eq!(s.wires.len(), 4);
    for w in &s.wires {
        let at = w.wire;
        assert_eq!(w.opened, n, "{at}");
        assert_eq!((w.lost, w.duplicates, w.gap_events), (0, 0, 0), "{at}");
        assert_eq!(
            w.protocols_seen.get(at.expected_protocol()),
            Some(&(n as u64)),
            "{at}: {:?}",
            w.protocols_seen
        );
        let lat = w.latency_hold_us.as_ref().expect("the hold's latency");
        assert!(
            lat.min >= 10_000,
            "{at}: every event crossed the link, one way at least 10 ms: min {} µs",
            lat.min
        );
        let net = network(w);
        assert_eq!(net.stall_after_us, 10_000 + 3 * 20_000, "{at}");
        assert!(net.stalls.events > 0, "{at}");
        let per_conn = net.stalls.streams_per_connection;
        if at.is_h2() {
            assert_eq!(
                per_conn, 5.0,
                "{at}: 10 streams on the 2 pooled connections"
            );
        } else {
            assert_eq!(per_conn, 1.0, "{at}: a connection per stream");
        }
        let hold = net.emulator.as_ref().expect("the hold's emulator figures");
        assert!(hold.total.packets_forwarded > 0, "{at}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_stalls_every_stream_of_an_h2_connection_and_each_wire_recovers() {
    if !netlab_or_skip("an_outage_stalls_every_stream_of_an_h2_connection_and_each_wire_recovers") {
        return;
    }
    let n = 8;
    let mut s = scenario("outage", "delay=5ms,outage=1500ms@1s", &Wire::ALL, n, 5.0);
    s.h2_conns = Some(1);
    let r = run(s).await;
    assert!(r.complete, "{:?}", r.problems);
    let link = r.scenarios[0].link.as_ref().unwrap();
    assert!(
        link.emulator.total.dropped_outage > 0,
        "{:?}",
        link.emulator
    );
    for w in &r.scenarios[0].wires {
        let at = w.wire;
        assert_eq!((w.lost, w.duplicates), (0, 0), "{at}: resumed without loss");
        let net = network(w);
        let o = &net.outages[0];
        assert_eq!((o.start_s, o.duration_s), (1.0, 1.5));
        assert_eq!(o.streams, n as u64, "{at}: {o:?}");
        assert_eq!((o.recovered, o.not_recovered), (n as u64, 0), "{at}: {o:?}");
        assert_eq!(o.survived + o.reopened, o.recovered, "{at}");
        assert!(
            o.recovery_us.max < 10_000_000,
            "{at}: back within 10 s of the link: {o:?}"
        );
        let st = &net.stalls;
        assert!(st.stalls >= n as u64, "{at}: every stream stalled: {st:?}");
        assert!(
            st.duration_us.max >= 1_000_000,
            "{at}: for the outage: {st:?}"
        );
        if at.is_h2() {
            assert_eq!(st.streams_per_connection, n as f64, "{at}");
            assert!(
                st.streams_hit_mean > n as f64 / 2.0 && st.hit_all_fraction > 0.5,
                "{at}: one connection, every stream stalled at once: {st:?}"
            );
        } else {
            assert_eq!(st.streams_hit_mean, 1.0, "{at}: {st:?}");
            assert_eq!(st.hit_one_fraction, 1.0, "{at}: {st:?}");
        }
    }
}

/// An outage longer than actix's HTTP/2 keep-alive (a PING every 5 s, the
/// connection closed when its pong is not back by the next) but shorter
/// than the WebSocket timeout (twice the server's 15 s keep-alive): the
/// server gives up on the HTTP/2 connection, so its streams come back on a
/// new one and resume from their last id; HTTP/1.1 SSE (no timeout on
/// either side) and WebSocket ride it out on TCP retransmissions. Nothing
/// is lost either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_past_the_h2_keep_alive_reopens_h2_while_h1_and_ws_survive() {
    if !netlab_or_skip("an_outage_past_the_h2_keep_alive_reopens_h2_while_h1_and_ws_survive") {
        return;
    }
    let n = 4;
    let wires = [Wire::SseH1, Wire::SseH2, Wire::WsH1];
    let mut s = scenario("long-outage", "delay=5ms,outage=11s@1s", &wires, n, 20.0);
    s.h2_conns = Some(1);
    let r = run(s).await;
    // The broken HTTP/2 connection is what the outage does, not a
    // failure of the run: its streams count as closed and re-opened.
    assert!(r.complete, "{:?}", r.problems);
    for w in &r.scenarios[0].wires {
        let at = w.wire;
        assert_eq!((w.lost, w.duplicates), (0, 0), "{at}: resumed without loss");
        let net = network(w);
        let o = &net.outages[0];
        assert_eq!((o.recovered, o.not_recovered), (n as u64, 0), "{at}: {o:?}");
        let ka = &net.keepalive;
        assert_eq!(ka.server_ws_timeouts, 0, "{at}: 11 s < 30 s: {ka:?}");
        if at.is_h2() {
            assert_eq!(
                (o.reopened, o.survived),
                (n as u64, 0),
                "{at}: the server closed the connection on its ping timeout: {o:?}"
            );
            assert!(w.reconnects >= n as u64, "{at}: {}", w.reconnects);
            assert!(ka.h2_reopened.is_some_and(|r| r >= 1), "{at}: {ka:?}");
            assert!(ka.server_resumes >= n as u64, "{at}: {ka:?}");
        } else {
            assert_eq!(
                (o.survived, o.reopened),
                (n as u64, 0),
                "{at}: TCP retransmissions carried the connection: {o:?}"
            );
            assert_eq!(w.reconnects, 0, "{at}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn worker_processes_connect_from_inside_the_client_namespace() {
    if !netlab_or_skip("worker_processes_connect_from_inside_the_client_namespace") {
        return;
    }
    let mut s = scenario(
        "workers",
        "delay=10ms,outage=1s@1s",
        &[Wire::SseH1, Wire::WsH1],
        6,
        3.0,
    );
    s.processes = Some(2);
    let r = run(s).await;
    assert!(r.complete, "{:?}", r.problems);
    for w in &r.scenarios[0].wires {
        assert_eq!((w.processes, w.opened, w.lost), (2, 6, 0), "{}", w.wire);
        assert!(
            w.latency_hold_us.as_ref().unwrap().min >= 10_000,
            "{}",
            w.wire
        );
        let net = network(w);
        assert_eq!(
            net.stalls.connections, 6,
            "both workers' connections, merged"
        );
        assert_eq!(net.outages[0].recovered, 6, "{:?}", net.outages);
    }
}

/// The binary as the user runs it; the result read back.
fn result_in(dir: &std::path::Path) -> RunResult {
    RunResult::load(&dir.join("result.json")).expect("a result")
}

#[test]
fn without_the_privileges_a_link_is_refused_with_a_clear_message() {
    use std::os::unix::process::CommandExt as _;
    let out = tempfile::tempdir().unwrap();
    let mut cmd = std::process::Command::new(exe());
    cmd.args([
        "run",
        "--link",
        "delay=1ms",
        "--duration",
        "1s",
        "--quiet",
        "--out",
    ])
    .arg(out.path());
    // `/proc/self` belongs to the effective user of the process reading it.
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    if root {
        // As nobody: no CAP_NET_ADMIN, no CAP_SYS_ADMIN.
        cmd.uid(65534).gid(65534);
    }
    let o = cmd.output().expect("the binary runs");
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("needs the link emulator") && stderr.contains("as root"),
        "{stderr}"
    );
    assert!(!out.path().join("result.json").exists(), "nothing ran");
}

/// The binary's namespaces, and its link certificate's files, are gone
/// when it ends: by itself, after one Ctrl-C (it winds down and writes
/// what it measured), after two (it quits at once).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_run_removes_its_namespaces_when_it_ends_also_on_ctrl_c() {
    if !netlab_or_skip("every_run_removes_its_namespaces_when_it_ends_also_on_ctrl_c") {
        return;
    }
    for presses in [0, 1, 2] {
        let hold = if presses == 0 { "2s" } else { "60s" };
        let out = tempfile::tempdir().unwrap();
        // The child's temporary directory, to see what it leaves there.
        let tmp = tempfile::tempdir().unwrap();
        let mut child = tokio::process::Command::new(exe())
            .env("TMPDIR", tmp.path())
            .args([
                "run",
                "--link",
                "delay=5ms",
                "--wire",
                "sse-h1",
                "--connections",
                "4",
                "--duration",
                hold,
                "--quiet",
                "--out",
            ])
            .arg(out.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let pid = child.id().unwrap();
        // Up when both namespaces exist, and the server child runs in one.
        let started = Instant::now();
        while own_namespaces(pid).len() < 2 {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no lab after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let nix_pid = nix::unistd::Pid::from_raw(pid as i32);
        for _ in 0..presses {
            nix::sys::signal::kill(nix_pid, nix::sys::signal::Signal::SIGINT).unwrap();
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
            .await
            .expect("the run ends within 30 s of Ctrl-C")
            .unwrap();
        assert_eq!(
            status.success(),
            presses == 0,
            "interrupted runs are incomplete"
        );
        assert!(
            own_namespaces(pid).is_empty(),
            "{presses} Ctrl-C: namespaces left: {:?}",
            own_namespaces(pid)
        );
        let left: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|name| name.to_string_lossy().starts_with("sse-ws-workbench-link-"))
            .collect();
        assert!(
            left.is_empty(),
            "{presses} Ctrl-C: link files left: {left:?}"
        );
        if presses == 0 {
            assert!(result_in(out.path()).complete);
        }
        if presses == 1 {
            let r = result_in(out.path());
            assert!(
                r.problems.iter().any(|p| p.contains("interrupted")),
                "{:?}",
                r.problems
            );
        }
    }
}
