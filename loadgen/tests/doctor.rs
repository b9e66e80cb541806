//! `loadgen doctor` against the real server directly, and through real
//! nginx and HAProxy in both configs: each pitfall is found where it is,
//! and only there.
//!
//! Tests that need nginx or HAProxy print `SKIPPED: …` and pass without
//! them, unless `WORKBENCH_REQUIRE_EDGE=1`.

mod support;

use std::time::Duration;

use edge::{Edge, EdgeCert, EdgeKind, EdgeProfile, EdgeSpec};
use loadgen::client::Trust;
use loadgen::doctor::{diagnose, Diagnosis, DoctorSpec, EventReading, Verdict};
use loadgen::result::StampUnit;
use rstest::rstest;
use support::fields_server::{FieldsServer, Style};

fn available(kind: EdgeKind) -> bool {
    edge::installed_or_skip(kind)
}

/// The server on port 0 with `cert` on its TLS listener.
fn feed(cert: &EdgeCert, tweak: impl FnOnce(&mut server::ServerConfig)) -> server::RunningServer {
    server::tls::install_crypto_provider();
    let mut c = server::ServerConfig::ephemeral();
    c.rate = 20.0;
    c.workers = Some(2);
    c.tls_cert = Some(cert.cert_path.clone());
    c.tls_key = Some(cert.key_path.clone());
    tweak(&mut c);
    server::run(c).expect("server starts")
}

async fn doctor(url: String, cert: &EdgeCert) -> Diagnosis {
    let spec = DoctorSpec {
        url,
        ws_url: None,
        trust: Trust::CaFile(cert.cert_path.clone()),
        allow_remote: false,
        max_wait: Duration::from_secs(6),
        reading: EventReading::default(),
    };
    let started = std::time::Instant::now();
    let d = diagnose(&spec).await.expect("diagnosis");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "--max-wait bounds the run"
    );
    for c in &d.checks {
        eprintln!("{c}");
    }
    d
}

fn verdict(d: &Diagnosis, name: &str) -> Verdict {
    d.check(name)
        .unwrap_or_else(|| panic!("no `{name}` check: {:?}", d.checks))
        .verdict
}

fn edge_in_front(
    kind: EdgeKind,
    profile: EdgeProfile,
    upstream: std::net::SocketAddr,
    cert: &EdgeCert,
) -> Edge {
    Edge::start(EdgeSpec::new(kind, profile, upstream.to_string()).with_cert(cert.clone()))
        .expect("edge starts")
}

/// Directly against actix over TLS: HTTP/2, a flat stream, resume, a
/// WebSocket that upgrades and answers pings; no RFC 8441 (a warning).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actix_directly_passes_but_has_no_websocket_over_h2() {
    let dir = tempfile::tempdir().unwrap();
    let cert = EdgeCert::generate(dir.path()).unwrap();
    let server = feed(&cert, |_| {});
    let url = format!("{}/sse", server.https_url().unwrap());
    let d = doctor(url, &cert).await;
    for name in [
        "HTTP/2",
        "h2 max streams",
        "content type",
        "Cache-Control",
        "compression",
        "first byte",
        "buffering",
        "retry",
        "Last-Event-ID",
        "WebSocket upgrade",
        "ping/pong",
    ] {
        assert_eq!(verdict(&d, name), Verdict::Pass, "{name}");
    }
    assert_eq!(verdict(&d, "WebSocket over h2"), Verdict::Warn);
    assert!(d.check("WebSocket over h2 open").is_none());
    assert_eq!(d.worst(), Verdict::Warn);
}

/// Through each edge and config: what the doctor must find there.
#[rstest]
#[case(EdgeKind::Nginx, EdgeProfile::Tuned, Verdict::Pass, Verdict::Warn)]
#[case(EdgeKind::Nginx, EdgeProfile::Naive, Verdict::Fail, Verdict::Warn)]
#[case(EdgeKind::Haproxy, EdgeProfile::Tuned, Verdict::Pass, Verdict::Pass)]
#[case(EdgeKind::Haproxy, EdgeProfile::Naive, Verdict::Pass, Verdict::Pass)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_each_edge(
    #[case] kind: EdgeKind,
    #[case] profile: EdgeProfile,
    #[case] upgrade: Verdict,
    #[case] ws_over_h2: Verdict,
) {
    if !available(kind) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert = EdgeCert::generate(dir.path()).unwrap();
    let server = feed(&cert, |_| {});
    let edge = edge_in_front(kind, profile, server.http_addr, &cert);
    let d = doctor(format!("{}sse", edge.url()), &cert).await;
    assert_eq!(verdict(&d, "WebSocket upgrade"), upgrade);
    if upgrade == Verdict::Fail {
        // A refused upgrade is named with its status and the proxy's fix.
        let check = d.check("WebSocket upgrade").unwrap();
        assert!(check.seen.contains("instead of 101"), "{check}");
        let fix = check.fix.as_deref().unwrap_or_default();
        assert!(fix.contains("proxy_set_header Upgrade"), "{check}");
    }
    assert_eq!(verdict(&d, "WebSocket over h2"), ws_over_h2);
    for name in ["HTTP/2", "content type", "buffering", "Last-Event-ID"] {
        assert_eq!(verdict(&d, name), Verdict::Pass, "{name}");
    }
    let streams = d.check("h2 max streams").unwrap();
    let limit = if kind == EdgeKind::Nginx {
        "128"
    } else {
        "100"
    };
    assert!(streams.seen.contains(limit), "{streams}");
    if ws_over_h2 == Verdict::Pass {
        assert_eq!(verdict(&d, "WebSocket over h2 open"), Verdict::Pass);
    }
    assert_eq!(d.worst() == Verdict::Fail, upgrade == Verdict::Fail);
}

/// A server that does not say `X-Accel-Buffering: no` (the bare baseline)
/// behind naive nginx: events held back, found from the stamps.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn naive_nginx_buffering_is_found() {
    if !available(EdgeKind::Nginx) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert = EdgeCert::generate(dir.path()).unwrap();
    let bare = bare::start(bare::BareConfig {
        rate: 200.0,
        ..bare::BareConfig::ephemeral()
    })
    .await
    .expect("bare starts");
    let edge = edge_in_front(EdgeKind::Nginx, EdgeProfile::Naive, bare.addr, &cert);
    let d = doctor(format!("{}sse", edge.url()), &cert).await;
    let b = d.check("buffering").unwrap();
    assert_eq!(b.verdict, Verdict::Fail, "{b}");
    assert!(b.fix.as_ref().unwrap().contains("proxy_buffering off;"));
}

/// A 2 s read timeout (a config file) and a quiet feed: the cut is seen
/// within --max-wait and named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_cut_is_found() {
    if !available(EdgeKind::Nginx) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cert = EdgeCert::generate(dir.path()).unwrap();
    let tuned = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../edge/configs/nginx-tuned.conf"),
    )
    .unwrap();
    let file = dir.path().join("short.conf");
    std::fs::write(
        &file,
        tuned.replace("proxy_read_timeout 1h;", "proxy_read_timeout 2s;"),
    )
    .unwrap();
    let server = feed(&cert, |c| c.rate = 0.05);
    let edge = edge_in_front(
        EdgeKind::Nginx,
        EdgeProfile::File(file),
        server.http_addr,
        &cert,
    );
    let d = doctor(format!("{}sse", edge.url()), &cert).await;
    let idle = d.check("idle timeout").unwrap();
    assert_eq!(idle.verdict, Verdict::Fail, "{idle}");
    assert!(idle.fix.as_ref().unwrap().contains("proxy_read_timeout"));
}

/// The binary: one line per check, exit 1 on FAIL, 0 otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_non_zero_on_fail() {
    let dir = tempfile::tempdir().unwrap();
    let cert = EdgeCert::generate(dir.path()).unwrap();
    let server = feed(&cert, |_| {});
    let run = |url: String| {
        let cert = cert.cert_path.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
                .args(["doctor", &url, "--max-wait", "4s", "--ca-cert"])
                .arg(cert)
                .output()
                .expect("loadgen doctor runs")
        })
    };
    let ok = run(format!("{}/sse", server.https_url().unwrap()))
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("PASS  content type")),
        "{text}"
    );
    // Nothing listens there: the stream check fails, and so does the exit.
    let gone = run("https://localhost:9/sse".into()).await.unwrap();
    let text = String::from_utf8_lossy(&gone.stdout);
    assert_eq!(gone.status.code(), Some(1), "{text}");
    assert!(text.contains("FAIL"), "{text}");
}

/// A server that is not ours (other field names, no `id:` lines), read
/// with the any-server decoder: told where the stamp is, the buffering
/// check measures lateness; not told, it says no stamp was readable where
/// it looked. `--header` reaches the stream's and the WebSocket's requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_server_is_read_by_its_own_fields() {
    let server = FieldsServer::start(Style::default()).await;
    let spec = |reading: EventReading| DoctorSpec {
        url: server.url("/events"),
        ws_url: Some(server.ws_url("/live")),
        trust: Trust::Insecure,
        allow_remote: false,
        max_wait: Duration::from_secs(4),
        reading,
    };
    let told = EventReading {
        headers: vec!["X-Doctor-Token: secret-1".into()],
        stamp_field: "/meta/at_ms".into(),
        stamp_unit: StampUnit::Ms,
        event: None,
    };
    let d = diagnose(&spec(told)).await.expect("diagnosis");
    for c in &d.checks {
        eprintln!("{c}");
    }
    let buffering = d.check("buffering").expect("a buffering check");
    assert!(
        buffering.seen.contains("median lateness"),
        "stamps read at /meta/at_ms: {buffering:?}"
    );
    assert_eq!(verdict(&d, "WebSocket upgrade"), Verdict::Pass);
    let heads = server.heads();
    for path in ["/events", "/live"] {
        assert!(
            heads
                .iter()
                .any(|h| h.contains(&format!("get {path}"))
                    && h.contains("x-doctor-token: secret-1")),
            "{path} got the header: {heads:?}"
        );
    }

    let d = diagnose(&spec(EventReading::default()))
        .await
        .expect("diagnosis");
    let buffering = d.check("buffering").expect("a buffering check");
    assert!(
        !buffering.seen.contains("median lateness"),
        "no stamp at the feed server's field: {buffering:?}"
    );
    server.stop();

    // A header that is not `Name: value` is a clear error, before any I/O.
    let bad = EventReading {
        headers: vec!["no colon".into()],
        ..EventReading::default()
    };
    let err = diagnose(&spec(bad)).await.expect_err("a bad header");
    assert!(err.to_string().contains("--header `no colon`"), "{err}");
}
