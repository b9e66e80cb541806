//! The load generator through real nginx and HAProxy: `--edge` runs,
//! WebSocket over HTTP/2 (ws-h2), what each side negotiated, the proxy's
//! cost, and `serve --edge`.
//!
//! Without nginx or HAProxy the tests that need them print `SKIPPED: …`
//! and pass, unless `WORKBENCH_REQUIRE_EDGE=1`.

use std::time::Duration;

use edge::EdgeKind;
use loadgen::client::{ClientError, Dialer, Opener, SourceAddresses, Target};
use loadgen::result::Scenario;
use loadgen::run::{run_scenarios, RunOptions, ServerChoice, Silent};
use loadgen::wire::Wire;
use tokio::io::AsyncBufReadExt as _;
use tokio_util::sync::CancellationToken;

fn available(kind: EdgeKind) -> bool {
    edge::installed_or_skip(kind)
}

fn in_process() -> RunOptions {
    server::tls::install_crypto_provider();
    RunOptions {
        server: ServerChoice::InProcess,
        workers: Some(2),
        retry: Duration::from_millis(300),
        worker_exe: None,
        shard: None,
        start_at_unix_ns: None,
    }
}

fn scenario(wires: Vec<Wire>, edge: Option<(&str, &str)>) -> Scenario {
    let mut s = Scenario::extra("edge", wires, 6, 20.0, 1.0);
    s.settle_s = 0.3;
    s.edge = edge.map(|(k, _)| k.to_string());
    s.edge_config = edge.map(|(_, c)| c.to_string());
    s
}

/// Against actix directly, ws-h2 stops at once with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_h2_against_actix_says_why_not() {
    server::tls::install_crypto_provider();
    let mut c = server::ServerConfig::ephemeral();
    c.workers = Some(1);
    let running = server::run(c).expect("server starts");
    let target = Target::embedded(running.http_addr, running.https_addr, running.cert_path())
        .expect("target");
    let dialer = Dialer::new(SourceAddresses(Vec::new()));
    let opener = Opener::for_wire(Wire::WsH2, &target, dialer, 1).expect("an opener");
    assert_eq!(opener.protocol(), "h2");
    let Err(err) = opener.open(0, None).await else {
        panic!("actix has no RFC 8441");
    };
    assert!(matches!(err, ClientError::Unsupported { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("server does not announce SETTINGS_ENABLE_CONNECT_PROTOCOL"),
        "{msg}"
    );
    // `--wire all` against actix stays the four wires it serves.
    let result = run_scenarios(
        "direct",
        &[scenario(Wire::ALL.to_vec(), None)],
        &in_process(),
        &Silent,
        CancellationToken::new(),
    )
    .await;
    let wires: Vec<Wire> = result.scenarios[0].wires.iter().map(|w| w.wire).collect();
    assert_eq!(wires, Wire::ALL.to_vec());
    assert!(result.scenarios[0].server.edge.is_none());
}

/// Through HAProxy `--wire all` adds ws-h2 and drops h2c; every stream
/// reaches the server over HTTP/1.1 while the client spoke h2 or
/// http/1.1; each costs the proxy one upstream connection; nothing lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_through_haproxy_covers_ws_h2() {
    if !available(EdgeKind::Haproxy) {
        return;
    }
    let result = run_scenarios(
        "haproxy",
        &[scenario(Wire::ALL.to_vec(), Some(("haproxy", "tuned")))],
        &in_process(),
        &Silent,
        CancellationToken::new(),
    )
    .await;
    assert!(result.complete, "{:?}", result.problems);
    let s = &result.scenarios[0];
    let edge = s.server.edge.as_ref().expect("the edge is described");
    assert_eq!(
        (edge.kind.as_str(), edge.config.as_str()),
        ("haproxy", "tuned")
    );
    assert_eq!(edge.h2_max_concurrent_streams, Some(100));
    assert!(edge.enable_connect_protocol);
    assert!(edge.config_text.contains("alpn h2,http/1.1"));
    let wires: Vec<Wire> = s.wires.iter().map(|w| w.wire).collect();
    assert_eq!(wires, [Wire::SseH1, Wire::SseH2, Wire::WsH1, Wire::WsH2]);
    for w in &s.wires {
        assert_eq!(w.lost, 0, "{}", w.wire);
        assert!(w.events_in_hold > 0, "{}", w.wire);
        assert_eq!(
            w.protocols_seen.keys().collect::<Vec<_>>(),
            ["http/1.1"],
            "{}",
            w.wire
        );
        let client = if w.wire.is_h2() { "h2" } else { "http/1.1" };
        assert_eq!(
            w.client_protocols.get(client),
            Some(&6),
            "{}: {:?}",
            w.wire,
            w.client_protocols
        );
        let proxy = w.proxy.as_ref().expect("the proxy's cost");
        assert_eq!(proxy.upstream_connections, 6, "{}", w.wire);
        assert_eq!(proxy.upstream_per_stream, 1.0);
        assert!(proxy.rss_held > 0 && proxy.processes == 1);
    }
}

/// Through naive nginx the WebSocket never upgrades (HTTP/1.0 upstream,
/// no `Upgrade` line): the run says so, with the server's 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_nginx_refuses_websockets_in_a_run() {
    if !available(EdgeKind::Nginx) {
        return;
    }
    let result = run_scenarios(
        "nginx-naive",
        &[scenario(
            vec![Wire::SseH2, Wire::WsH1],
            Some(("nginx", "naive")),
        )],
        &in_process(),
        &Silent,
        CancellationToken::new(),
    )
    .await;
    let s = &result.scenarios[0];
    assert_eq!(
        s.server.edge.as_ref().unwrap().h2_max_concurrent_streams,
        Some(128)
    );
    let sse = &s.wires[0];
    assert_eq!((sse.opened, sse.lost), (6, 0));
    let ws = &s.wires[1];
    assert_eq!(ws.opened, 0);
    assert!(ws.errors.contains_key("http_400"), "{:?}", ws.errors);
    assert!(!result.complete);
}

/// `loadgen serve --edge haproxy`: the edge's URL is the first line on
/// stdout, and it is HAProxy (100 streams, RFC 8441) in front of the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_behind_an_edge_prints_its_url_first() {
    if !available(EdgeKind::Haproxy) {
        return;
    }
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--https",
            "127.0.0.1:0",
            "--edge",
            "haproxy",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("loadgen serve");
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("a line in time")
        .unwrap()
        .expect("a first line");
    let port: u16 = first
        .strip_prefix("edge: https://localhost:")
        .and_then(|rest| rest.strip_suffix('/'))
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("first line: {first}"));
    let second = lines.next_line().await.unwrap().unwrap();
    let cert = second
        .split("trust ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("second line: {second}"));
    let settings = edge::read_h2_settings(
        ([127, 0, 0, 1], port).into(),
        "localhost",
        std::path::Path::new(cert),
        Duration::from_secs(10),
    )
    .await
    .expect("the edge's SETTINGS");
    assert_eq!(settings.max_concurrent_streams, Some(100));
    assert!(settings.enable_connect_protocol);
    drop(child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("serve stops when stdin closes")
        .unwrap();
    assert!(status.success());
}

/// Direct, naive and tuned nginx in one run: the report's "Through a
/// proxy" section has the table, the finding naming the lines that fix
/// the WebSocket, and its charts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_compares_direct_naive_and_tuned() {
    if !available(EdgeKind::Nginx) {
        return;
    }
    let wires = vec![Wire::SseH2, Wire::WsH1];
    let mut direct = scenario(wires.clone(), None);
    direct.name = "direct".into();
    let mut naive = scenario(wires.clone(), Some(("nginx", "naive")));
    naive.name = "nginx-naive".into();
    let mut tuned = scenario(wires, Some(("nginx", "tuned")));
    tuned.name = "nginx-tuned".into();
    let result = run_scenarios(
        "edges",
        &[direct, naive, tuned],
        &in_process(),
        &Silent,
        CancellationToken::new(),
    )
    .await;
    let report = loadgen::report::render(&result, &Default::default()).expect("report");
    let md = &report.markdown;
    let section = md
        .split("## Through a proxy")
        .nth(1)
        .expect("a Through a proxy section");
    assert!(
        section
            .lines()
            .any(|l| l.starts_with("| ws-h1") && l.contains("nginx naive") && l.contains(" 0/6 ")),
        "{section}"
    );
    assert!(
        section.contains("proxy_http_version 1.1;"),
        "the tuned config is shown"
    );
    assert!(
        section.contains("nginx naive, ws-h1: the WebSocket never upgraded")
            && section.contains("`proxy_set_header Upgrade $http_upgrade;`"),
        "{section}"
    );
    for chart in ["proxy-latency.svg", "proxy-cpu.svg", "proxy-memory.svg"] {
        assert!(report.charts.iter().any(|c| c.file == chart), "{chart}");
    }
    assert!(report.html.contains("Through a proxy"));
}

/// The browser model learns the edge's SETTINGS: nginx's 128 streams per
/// connection (the 129th and 130th EventSource wait), HAProxy's RFC 8441
/// (a tab's WebSocket rides the page's h2 connection: no connection of
/// its own).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_model_learns_the_edges_settings() {
    use loadgen::result::{LimitCase, LimitSpec, Protocol};
    if !available(EdgeKind::Nginx) || !available(EdgeKind::Haproxy) {
        return;
    }
    server::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let cert = edge::EdgeCert::generate(dir.path()).unwrap();
    let mut c = server::ServerConfig::ephemeral();
    c.rate = 5.0;
    c.workers = Some(2);
    c.tls_cert = Some(cert.cert_path.clone());
    c.tls_key = Some(cert.key_path.clone());
    let running = server::run(c).expect("server starts");
    for (kind, streams, ws_over_h2) in [(EdgeKind::Nginx, 130, false), (EdgeKind::Haproxy, 3, true)]
    {
        let spec = edge::EdgeSpec::new(
            kind,
            edge::EdgeProfile::Tuned,
            running.http_addr.to_string(),
        )
        .with_cert(cert.clone());
        let proxy = edge::Edge::start(spec).expect("edge starts");
        let opts = RunOptions {
            server: ServerChoice::External {
                http_url: running.http_url(),
                https_url: Some(proxy.url().trim_end_matches('/').to_string()),
                trust: loadgen::client::Trust::CaFile(cert.cert_path.clone()),
                allow_remote: false,
            },
            workers: None,
            retry: Duration::from_secs(1),
            worker_exe: None,
            shard: None,
            start_at_unix_ns: None,
        };
        let spec = LimitSpec {
            cases: vec![LimitCase {
                ws_per_tab: 1,
                ..LimitCase::new(Protocol::H2, 1, streams)
            }],
            get_cap_ms: 300,
            ..LimitSpec::default()
        };
        let r = loadgen::limit::run(&spec, &opts)
            .await
            .expect("the model runs");
        let l = r.limit().cloned().unwrap();
        let case = &l.cases[0];
        match kind {
            EdgeKind::Nginx => {
                assert_eq!(l.h2_announced_max_streams, Some(128));
                assert_eq!((case.streams_opened, case.streams_pending), (128, 2));
            }
            EdgeKind::Haproxy => {
                assert_eq!(l.h2_announced_max_streams, Some(100));
                assert_eq!((case.streams_opened, case.streams_pending), (3, 0));
            }
        }
        assert_eq!(l.h2_enable_connect_protocol, ws_over_h2, "{kind}");
        assert_eq!(case.ws_opened, 1, "{kind}: {:?}", case.problems);
        assert_eq!(
            case.ws_connections,
            Some(if ws_over_h2 { 0 } else { 1 }),
            "{kind}"
        );
        assert_eq!(case.connections, 1, "{kind}: one h2 connection per origin");
    }
}

/// `loadgen limit --edge haproxy`: the model starts the embedded server
/// behind the edge itself and learns the edge's SETTINGS for its HTTP/2
/// cases (100 streams, RFC 8441: the tab's WebSocket rides the h2
/// connection).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_limit_model_starts_its_own_edge() {
    use loadgen::result::{LimitCase, LimitSpec, Protocol};
    if !available(EdgeKind::Haproxy) {
        return;
    }
    let spec = LimitSpec {
        cases: vec![LimitCase {
            ws_per_tab: 1,
            ..LimitCase::new(Protocol::H2, 1, 3)
        }],
        get_cap_ms: 300,
        edge: Some("haproxy".into()),
        ..LimitSpec::default()
    };
    let r = loadgen::limit::run(&spec, &in_process())
        .await
        .expect("the model runs behind its edge");
    let l = r.limit().cloned().unwrap();
    assert_eq!(l.h2_announced_max_streams, Some(100));
    assert!(l.h2_enable_connect_protocol);
    let case = &l.cases[0];
    assert_eq!(
        (case.streams_opened, case.ws_opened),
        (3, 1),
        "{:?}",
        case.problems
    );
    assert_eq!(case.ws_connections, Some(0));
    assert_eq!(case.connections, 1);

    let bad = LimitSpec {
        edge: Some("apache".into()),
        ..LimitSpec::default()
    };
    let err = loadgen::limit::run(&bad, &in_process())
        .await
        .expect_err("an unknown edge");
    assert!(err.to_string().contains("apache"), "{err}");
}
