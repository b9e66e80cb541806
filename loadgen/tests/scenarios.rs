//! The scenarios beyond the feed, each run briefly against the embedded
//! server (in this process) with exact expected counts.

use std::time::Duration;

use loadgen::result::{ChatSpec, EchoSpec, FaultSpec};
use loadgen::run::{RunOptions, ServerChoice};
use loadgen::scenarios::Extra;
use loadgen::wire::Wire;

fn opts() -> RunOptions {
    server::tls::install_crypto_provider();
    RunOptions {
        server: ServerChoice::InProcess,
        workers: Some(2),
        retry: Duration::from_secs(1),
        worker_exe: None,
        shard: None,
        start_at_unix_ns: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_lose_nothing_within_the_window_and_report_the_true_gap_beyond() {
    let spec = FaultSpec {
        connections: 8,
        duration_s: 2.0,
        drop_every_s: 0.5,
        ..Default::default()
    };
    let r = Extra::Faults(spec.clone()).run(&opts()).await.unwrap();
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["faults"]["wires"].is_array(), "{json}");
    let faults = r.faults().unwrap();
    assert_eq!(faults.wires.len(), 2 * Wire::ALL.len());
    for w in &faults.wires {
        let what = format!("{} {}: {w:?}", w.wire, w.phase);
        assert!(w.problems.is_empty(), "{what}");
        assert!(w.faults_requested >= 1, "{what}");
        assert!(w.breaks >= 1 && w.reconnects >= 1, "{what}");
        assert_eq!(w.reconnect_us.count, w.reconnects, "{what}");
        assert_eq!(
            (w.lost, w.duplicates, w.missing_at_end),
            (0, 0, 0),
            "{what}"
        );
        match w.phase.as_str() {
            "within" => {
                assert_eq!((w.gap_events, w.gap_ids, w.true_gap), (0, 0, 0), "{what}");
                assert_eq!(w.refused, 0, "{what}");
            }
            "beyond" => {
                // Every connection resumed past the ring: one gap each,
                // exactly the ids it did not get.
                assert_eq!(w.gap_events, spec.connections as u64, "{what}");
                assert!(w.gap_ids > 0, "{what}");
                assert_eq!(w.reported_loss, w.true_gap, "{what}");
                assert_eq!(w.gap_ids, w.server_gap_ids, "{what}");
                assert!(w.refused >= 1, "{what}");
            }
            other => panic!("unknown phase {other}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_round_trips_on_every_wire() {
    let spec = EchoSpec {
        clients: vec![1, 20],
        duration_s: 0.5,
        ..Default::default()
    };
    let r = Extra::Echo(spec).run(&opts()).await.unwrap();
    let echo = r.echo().unwrap();
    assert_eq!(echo.levels.len(), 2 * Wire::ALL.len());
    for l in &echo.levels {
        let what = format!("{} x{}: {l:?}", l.wire, l.clients);
        assert!(l.problems.is_empty(), "{what}");
        assert_eq!(l.connected, l.clients, "{what}");
        assert!(l.errors.is_empty() && l.unanswered == 0, "{what}");
        // Closed loop: every client made round trips.
        assert!(l.round_trips >= l.clients as u64, "{what}");
        assert_eq!(l.rtt_us.count, l.round_trips, "{what}");
        assert!(l.rtt_us.p50 > 0 && l.rtt_us.p99 >= l.rtt_us.p50, "{what}");
    }
    let h1 = echo
        .levels
        .iter()
        .find(|l| l.wire == Wire::SseH1 && l.clients == 20)
        .unwrap();
    assert_eq!(
        h1.tcp_connections, 40,
        "SSE over HTTP/1.1 needs a second connection for the POST"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_answers_every_question_with_every_token() {
    let spec = ChatSpec {
        users: 4,
        questions: 2,
        tokens: 5,
        token_rate: 200.0,
        ..Default::default()
    };
    let r = Extra::Chat(spec.clone()).run(&opts()).await.unwrap();
    let chat = r.chat().unwrap();
    assert_eq!(chat.wires.len(), Wire::ALL.len());
    for w in &chat.wires {
        let what = format!("{}: {w:?}", w.wire);
        assert!(w.problems.is_empty() && w.errors.is_empty(), "{what}");
        assert_eq!(w.answers, 8, "{what}");
        assert_eq!(w.tokens_received, 40, "{what}");
        assert_eq!(w.ttft_us.count, 8, "{what}");
        assert_eq!(w.inter_token_us.count, 8 * 4, "{what}");
        assert_eq!(w.total_us.count, 8, "{what}");
        let setups = if w.wire == Wire::WsH1 { 4 } else { 8 };
        assert_eq!(w.setup_us.count, setups, "{what}");
        // 5 tokens at 200/s: the answer takes at least 4 periods (20 ms).
        assert!(w.total_us.min >= 19_000, "{what}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_pool_limit_queues_sse_h1_questions() {
    let spec = ChatSpec {
        wires: vec![Wire::SseH1],
        users: 4,
        questions: 1,
        tokens: 5,
        token_rate: 100.0,
        h1_pool_limit: Some(1),
    };
    let r = Extra::Chat(spec).run(&opts()).await.unwrap();
    let w = &r.chat().unwrap().wires[0];
    assert_eq!(w.answers, 4);
    assert_eq!(w.pool_limit, Some(1));
    // One at a time: the last user waits for three answers (about 40 ms each).
    assert!(w.ttft_us.max >= 100_000, "{w:?}");
}
