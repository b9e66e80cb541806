//! Any SSE or WebSocket server (`--sse-url`, `--ws-url`), over real
//! sockets: the bare baseline read through JSON pointers, a tiny server of
//! this test with other field names (a stamp in milliseconds with a
//! fraction, the id in a JSON field, holes in its ids, no `id:` lines), the
//! same server without stamps or ids, one whose clock is ahead, and the
//! Node baseline when Node is installed.

mod support;

use std::time::Duration;

use loadgen::result::{AnyServer, RunResult, Scenario, StampUnit};
use loadgen::run::{run_scenarios, RunOptions, ServerChoice, Silent};
use loadgen::wire::Wire;
use support::fields_server::{FieldsServer, Style};
use tokio_util::sync::CancellationToken;

fn scenario(any: AnyServer, connections: usize, hold_s: f64) -> Scenario {
    Scenario {
        name: "any".into(),
        wires: Vec::new(),
        connections,
        ramp_per_s: 0.0,
        duration_s: hold_s,
        rate_hz: 1.0,
        payload_bytes: 0,
        h2_conns: None,
        settle_s: 0.3,
        drain_timeout_s: 3.0,
        connect_timeout_s: 5.0,
        processes: None,
        link: None,
        any_server: Some(any),
        stacks: Vec::new(),
        edge: None,
        edge_config: None,
        saturation: false,
    }
}

async fn run(any: AnyServer, connections: usize, hold_s: f64) -> RunResult {
    run_in(any, connections, hold_s, None).await
}

/// The run in this process, or over `processes` worker processes.
async fn run_in(
    any: AnyServer,
    connections: usize,
    hold_s: f64,
    processes: Option<usize>,
) -> RunResult {
    let opts = RunOptions {
        server: ServerChoice::InProcess,
        workers: None,
        retry: Duration::from_millis(200),
        worker_exe: processes.map(|_| env!("CARGO_BIN_EXE_loadgen").into()),
        shard: None,
        start_at_unix_ns: None,
    };
    let mut s = scenario(any, connections, hold_s);
    s.processes = processes;
    tokio::time::timeout(
        Duration::from_secs(60),
        run_scenarios("any", &[s], &opts, &Silent, CancellationToken::new()),
    )
    .await
    .expect("the run ends")
}

fn any(sse: Option<String>, ws: Option<String>) -> AnyServer {
    AnyServer {
        sse_url: sse,
        ws_url: ws,
        stall_ms: 1_000,
        ..AnyServer::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bare_baseline_read_through_pointers() {
    let mut config = bare::BareConfig::ephemeral();
    config.rate = 50.0;
    config.shutdown_timeout = Duration::from_secs(3);
    let bare = bare::start(config).await.unwrap();
    let base = format!("127.0.0.1:{}", bare.addr.port());
    let settings = AnyServer {
        stamp_field: Some("/sent_unix_ns".into()),
        id_field: Some("/id".into()),
        event: Some("tick".into()),
        server_pid: Some(std::process::id()),
        ..any(
            Some(format!("http://{base}/sse")),
            Some(format!("ws://{base}/ws")),
        )
    };
    let r = run(settings, 10, 1.5).await;
    assert!(r.complete, "{:?}", r.problems);
    let s = &r.scenarios[0];
    assert_eq!(s.server.mode, "any-server");
    let wires: Vec<Wire> = s.wires.iter().map(|w| w.wire).collect();
    assert_eq!(wires, vec![Wire::SseH1, Wire::WsH1]);
    for w in &s.wires {
        assert!(
            w.measured.latency && w.measured.loss,
            "{}: {:?}",
            w.wire,
            w.measured
        );
        // 10 connections × 50 events/s.
        assert!(
            (400.0..=600.0).contains(&w.events_per_s),
            "{}: {} events/s",
            w.wire,
            w.events_per_s
        );
        assert_eq!((w.lost, w.duplicates), (0, 0), "{}", w.wire);
        assert!(
            w.latency_us.count > 0 && w.latency_us.p50 < 50_000,
            "{}",
            w.wire
        );
        assert_eq!(w.protocols_seen.get("http/1.1"), Some(&10), "{}", w.wire);
        assert!(w.server.is_some(), "{}: /proc of the given pid", w.wire);
        assert!(w.connected_in_s.is_some(), "{}", w.wire);
    }
    // WebSocket messages have no types: the hello is an event without a stamp.
    let ws = &s.wires[1].recorder.counters;
    assert_eq!(ws.unstamped, 10, "one hello per connection: {ws:?}");
    bare.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_field_names_give_latency_and_loss() {
    // Stamps in ms with a fraction, ids in `/seq`, every tenth id missing,
    // no SSE `id:` lines.
    let server = FieldsServer::start(Style::default()).await;
    let settings = AnyServer {
        stamp_field: Some("/meta/at_ms".into()),
        stamp_unit: StampUnit::Ms,
        id_field: Some("/seq".into()),
        ..any(Some(server.url("/events")), Some(server.ws_url("/live")))
    };
    let r = run(settings, 4, 1.5).await;
    assert!(r.complete, "{:?}", r.problems);
    for w in &r.scenarios[0].wires {
        let c = &w.recorder.counters;
        assert!(w.measured.latency && w.measured.loss, "{}", w.wire);
        assert!(c.events > 100, "{}: {c:?}", w.wire);
        assert_eq!((c.unstamped, c.no_id, c.negative_latency), (0, 0, 0));
        // One id in ten is never sent: each connection sees that many holes
        // between its first and last id (within one at either end).
        let expected = c.events as f64 / 9.0;
        let slack = 2.0 * w.connections as f64;
        assert!(
            (w.lost as f64 - expected).abs() <= slack,
            "{}: lost {} of {} events, expected about {expected:.0}",
            w.wire,
            w.lost,
            c.events
        );
        assert_eq!(w.duplicates, 0);
        let lat = &w.latency_us;
        assert!(
            lat.count == c.events && lat.p50 < 50_000,
            "{}: {lat:?}",
            w.wire
        );
        assert!(w.server.is_none(), "no --server-pid: not measured");
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_server_over_two_worker_processes() {
    let server = FieldsServer::start(Style::default()).await;
    let settings = AnyServer {
        stamp_field: Some("/meta/at_ms".into()),
        stamp_unit: StampUnit::Ms,
        id_field: Some("/seq".into()),
        ..any(None, Some(server.ws_url("/live")))
    };
    let r = run_in(settings, 4, 1.5, Some(2)).await;
    assert!(r.complete, "{:?}", r.problems);
    let w = &r.scenarios[0].wires[0];
    assert_eq!((w.processes, w.opened), (2, 4));
    let c = &w.recorder.counters;
    assert!(w.latency_us.count == c.events && c.events > 100, "{c:?}");
    let expected = c.events as f64 / 9.0;
    assert!(
        (w.lost as f64 - expected).abs() <= 8.0,
        "lost {} of {}",
        w.lost,
        c.events
    );
    assert!(w.final_id > 0, "the highest id the workers saw");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_follow_retry_and_resume_only_where_the_server_says_how() {
    // Every stream closes after 10 events; SSE streams say `retry: 50`.
    let server = FieldsServer::start(Style {
        close_after: Some(10),
        retry_ms: Some(50),
        ..Style::default()
    })
    .await;
    let fields = AnyServer {
        id_field: Some("/seq".into()),
        ..any(Some(server.url("/events")), Some(server.ws_url("/live")))
    };
    let r = run(fields.clone(), 2, 2.0).await;
    let heads = server.heads();
    let sse: Vec<&String> = heads
        .iter()
        .filter(|h| h.starts_with("get /events"))
        .collect();
    let ws: Vec<&String> = heads
        .iter()
        .filter(|h| h.starts_with("get /live"))
        .collect();
    assert!(sse.len() > 4 && ws.len() > 4, "streams reopened: {heads:?}");
    assert!(
        sse.iter().skip(2).all(|h| h.contains("last-event-id: ")),
        "SSE resumes with Last-Event-ID: {sse:?}"
    );
    assert!(
        ws.iter().all(|h| h.starts_with("get /live http/1.1")),
        "no resume query without --ws-resume-query: {ws:?}"
    );
    for w in &r.scenarios[0].wires {
        let c = &w.recorder.counters;
        assert!(c.reconnects > 4, "{}: {c:?}", w.wire);
        if w.wire == Wire::WsH1 {
            // Reopened live: the ids in between were never asked for, so
            // only the server's own holes (one in ten) count as lost.
            assert!(
                (w.lost as f64) <= c.events as f64 / 9.0 + 2.0 * c.reconnects as f64,
                "{}: lost {} of {}",
                w.wire,
                w.lost,
                c.events
            );
        }
    }
    // SSE waits the server's 50 ms between streams, WebSocket the client's
    // 200 ms: in the same time SSE reopens more often.
    let reconnects = |wire| {
        r.scenarios[0]
            .wires
            .iter()
            .find(|w| w.wire == wire)
            .map_or(0, |w| w.reconnects)
    };
    assert!(
        reconnects(Wire::SseH1) > reconnects(Wire::WsH1),
        "retry: 50 honoured: sse {} vs ws {}",
        reconnects(Wire::SseH1),
        reconnects(Wire::WsH1)
    );
    // Told how, a WebSocket resumes by query after the highest id seen.
    let resuming = AnyServer {
        ws_resume_query: Some("since".into()),
        ..any(None, Some(server.ws_url("/live")))
    };
    let before = server.heads().len();
    let _ = run(
        AnyServer {
            id_field: Some("/seq".into()),
            ..resuming
        },
        1,
        1.0,
    )
    .await;
    let later: Vec<String> = server.heads().into_iter().skip(before + 1).collect();
    assert!(
        !later.is_empty() && later.iter().all(|h| h.starts_with("get /live?since=")),
        "{later:?}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_stamps_or_ids_rates_gaps_and_not_measured() {
    let server = FieldsServer::start(Style::default()).await;
    let r = run(any(Some(server.url("/events")), None), 3, 1.5).await;
    assert!(r.complete, "{:?}", r.problems);
    let w = &r.scenarios[0].wires[0];
    assert!(!w.measured.latency && !w.measured.loss, "{:?}", w.measured);
    assert_eq!(w.latency_us.count, 0);
    assert!(
        w.events_per_s > 100.0,
        "3 connections × 50 events/s: {}",
        w.events_per_s
    );
    let gaps = w.recorder.arrival_gap_us.as_ref().expect("gaps measured");
    assert!(
        (10_000..40_000).contains(&gaps.p50),
        "gaps of a 50 Hz feed: {gaps:?}"
    );
    let report = loadgen::report::render(&r, &Default::default()).unwrap();
    assert!(
        report.markdown.contains("latency not measured")
            && report.markdown.contains("loss not measured")
            && report.markdown.contains("n/m"),
        "{}",
        report.markdown
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clock_ahead_is_counted_never_clamped() {
    let server = FieldsServer::start(Style {
        clock_ahead_ms: 500.0,
        ..Style::default()
    })
    .await;
    let settings = AnyServer {
        stamp_field: Some("/meta/at_ms".into()),
        stamp_unit: StampUnit::Ms,
        ..any(None, Some(server.ws_url("/live")))
    };
    let r = run(settings, 2, 1.0).await;
    assert!(!r.complete);
    let problems = r.problems.join("\n");
    assert!(
        problems.contains(&server.ws_url("/live")) && problems.contains("clock"),
        "{problems}"
    );
    let w = &r.scenarios[0].wires[0];
    let c = &w.recorder.counters;
    assert!(
        c.negative_latency > 0 && c.negative_latency == c.events,
        "{c:?}"
    );
    assert!(
        (400_000..600_000).contains(&c.negative_latency_max_us),
        "{c:?}"
    );
    assert_eq!(w.latency_us.count, 0, "no event is recorded as 0 µs");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stamp_field_that_is_not_there_is_a_clear_error() {
    let server = FieldsServer::start(Style::default()).await;
    let settings = AnyServer {
        stamp_field: Some("/sent_at".into()),
        ..any(Some(server.url("/events")), None)
    };
    let r = run(settings, 2, 1.0).await;
    assert!(!r.complete);
    let problems = r.problems.join("\n");
    assert!(
        problems.contains(&server.url("/events"))
            && problems.contains("/sent_at (ns)")
            && problems.contains("the stamp field is absent"),
        "{problems}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_node_baseline_read_through_pointers() {
    let Some(node) = support::node::start("the_node_baseline_read_through_pointers", 50.0).await
    else {
        return;
    };
    let base = format!("127.0.0.1:{}", node.port);
    let settings = AnyServer {
        stamp_field: Some("/sent_unix_ns".into()),
        id_field: Some("/id".into()),
        server_pid: Some(node.pid),
        ..any(
            Some(format!("http://{base}/sse")),
            Some(format!("ws://{base}/ws")),
        )
    };
    let r = run(settings, 10, 1.5).await;
    assert!(r.complete, "{:?}", r.problems);
    for w in &r.scenarios[0].wires {
        assert_eq!((w.lost, w.duplicates), (0, 0), "{}", w.wire);
        assert!((400.0..=600.0).contains(&w.events_per_s), "{}", w.wire);
        assert!(w.latency_us.count > 0, "{}", w.wire);
        // No hello: the protocol comes from the handshake.
        assert_eq!(w.protocols_seen.get("http/1.1"), Some(&10), "{}", w.wire);
        assert!(
            w.server.as_ref().is_some_and(|s| s.rss_held > 0),
            "{}",
            w.wire
        );
    }
    node.stop().await;
}

#[test]
fn a_scenario_file_takes_the_same_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.toml");
    std::fs::write(
        &path,
        r#"
[[scenario]]
name = "mine"
connections = 100

[scenario.any_server]
sse_url = "http://127.0.0.1:3000/events?room=a"
sse_protocol = "h2c"
ws_url = "ws://127.0.0.1:3000/live"
headers = ["Authorization: Bearer x"]
stamp_field = "/meta/at_ms"
stamp_unit = "ms"
id_field = "/seq"
event = "tick"
server_pid = 4242
ws_resume_query = "since"
stall_ms = 250
"#,
    )
    .unwrap();
    let s = Scenario::load(&path).unwrap();
    assert_eq!(s[0].wires_to_run(), vec![Wire::SseH2c, Wire::WsH1]);
    let a = s[0].any_server.as_ref().unwrap();
    assert_eq!(
        (a.stamp_unit, a.server_pid, a.stall_ms),
        (StampUnit::Ms, Some(4242), 250)
    );
    std::fs::write(
        &path,
        "[[scenario]]\nname = \"x\"\nconnections = 1\n[scenario.any_server]\nsse_url = \"https://localhost:1/\"\n",
    )
    .unwrap();
    let e = Scenario::load(&path).unwrap_err().to_string();
    assert!(e.contains("--insecure"), "{e}");
}
