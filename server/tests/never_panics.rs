//! Property tests: nothing a client sends and no flag a user types panics.
//!
//! - Every route of the real server (port 0, real sockets) gets arbitrary
//!   query strings, `Last-Event-ID` headers and JSON (or not-JSON) bodies and
//!   WebSocket messages: every request gets an answer, never a 5xx other than
//!   a deliberate `503` (stream limit, simulated restart), no server thread
//!   panics (a panic hook counts them), and `/sse` still serves afterwards.
//! - Every numeric flag of the `server` binary, parsed by the same clap
//!   struct `main` uses, with arbitrary values: a value or a clap error
//!   (exit 2), never a panic, and the values it accepts are usable (timers,
//!   channels); plus the real binary on a few hostile values.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use bytes::Bytes;
use clap::Parser as _;
use futures_util::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::TokioIo;
use proptest::prelude::*;
use server::{RunningServer, ServerConfig};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

/// Panics seen on the server's threads (actix workers and the feed thread).
static SERVER_PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_server_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let thread = std::thread::current();
            let name = thread.name().unwrap_or("");
            if name.contains("actix") || name.contains("feed-server") {
                SERVER_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            default(info);
        }));
    });
}

/// One request a client might make.
#[derive(Debug, Clone)]
struct Probe {
    route: Route,
    query: Vec<(String, String)>,
    last_event_id: Option<String>,
    body: String,
}

#[derive(Debug, Clone, Copy)]
enum Route {
    Sse,
    Ws,
    Chat,
    WsChat,
    SseEcho,
    Echo,
    AdminDrop,
    AdminRestart,
}

impl Route {
    fn path(self) -> &'static str {
        match self {
            Route::Sse => "/sse",
            Route::Ws => "/ws",
            Route::Chat => "/chat",
            Route::WsChat => "/ws/chat",
            Route::SseEcho => "/sse/echo",
            Route::Echo => "/echo",
            Route::AdminDrop => "/admin/drop",
            Route::AdminRestart => "/admin/restart",
        }
    }

    fn is_post(self) -> bool {
        matches!(
            self,
            Route::Chat | Route::Echo | Route::AdminDrop | Route::AdminRestart
        )
    }
}

/// Numbers as people and programs type them, in and far out of range.
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<u64>().prop_map(|n| n.to_string()),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        (0u64..2000).prop_map(|n| n.to_string()),
        prop::sample::select(vec![
            "0",
            "-0",
            "-1",
            "1e-300",
            "1e300",
            "nan",
            "NaN",
            "inf",
            "-inf",
            "0.5",
            "1.5",
            "99999999999999999999999",
            "0x10",
            " 7 ",
            "",
        ])
        .prop_map(str::to_string),
    ]
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![number_text(), "\\PC{0,16}", "[ -~]{0,24}"]
}

/// A restart's pause: small, rejected or garbage, never a long valid one
/// (a valid `mode=pause` of up to a minute would only make later cases wait).
fn pause_text() -> impl Strategy<Value = String> {
    prop_oneof![
        (0u64..300).prop_map(|n| n.to_string()),
        (60_001u64..u64::MAX).prop_map(|n| n.to_string()),
        "[ -~]{0,12}".prop_filter("not a long pause", |s| s
            .trim()
            .parse::<u64>()
            .map_or(true, |n| !(300..=60_000).contains(&n))),
    ]
}

fn query() -> impl Strategy<Value = Vec<(String, String)>> {
    let pair = prop_oneof![
        (
            prop::sample::select(vec!["lastEventId", "client", "fraction", "mode", "token"]),
            any_text()
        )
            .prop_map(|(k, v)| (k.to_string(), v)),
        pause_text().prop_map(|v| ("pause_ms".to_string(), v)),
        ("[a-z]{1,8}", any_text()),
    ];
    prop::collection::vec(pair, 0..4)
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        prop::sample::select(vec![1e-300, 1e300, 0.0, -1.0, 1e-9, 100_000.0, 0.01])
            .prop_map(Value::from),
        "\\PC{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop::collection::vec(inner, 0..3).prop_map(Value::Array)
    })
}

fn json_number() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        (0u64..50).prop_map(Value::from),
        prop::sample::select(vec![
            1e-300, 1e300, 0.0, -1.0, 1e-9, 100_000.0, 0.01, 5e-324
        ])
        .prop_map(Value::from),
    ]
}

/// Bodies: objects with the fields the routes read (and others), or text.
fn body() -> impl Strategy<Value = String> {
    let field = prop::sample::select(vec![
        "prompt",
        "tokens",
        "rate",
        "id",
        "type",
        "client",
        "corr",
        "sent_unix_ns",
        "other",
    ]);
    let object = prop::collection::btree_map(field, json_value(), 0..6).prop_map(|m| {
        let map: serde_json::Map<String, serde_json::Value> =
            m.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        serde_json::Value::Object(map).to_string()
    });
    // Every numeric field at once, each a hostile number.
    let numbers = prop::collection::vec(json_number(), 6).prop_map(|n| {
        serde_json::json!({
            "prompt": "hi", "tokens": n[0], "rate": n[1], "id": n[2],
            "client": n[3], "corr": n[4], "sent_unix_ns": n[5],
        })
        .to_string()
    });
    prop_oneof![3 => object, 2 => numbers, 1 => "\\PC{0,40}"]
}

fn probe() -> impl Strategy<Value = Probe> {
    let route = prop::sample::select(vec![
        Route::Sse,
        Route::Ws,
        Route::Chat,
        Route::WsChat,
        Route::SseEcho,
        Route::Echo,
        Route::AdminDrop,
        Route::AdminRestart,
    ]);
    let last = prop::option::of(prop_oneof![number_text(), "[ -~]{0,30}"]);
    (route, query(), last, body()).prop_map(|(route, query, last_event_id, body)| Probe {
        route,
        query,
        last_event_id,
        body,
    })
}

/// Percent-encodes every byte that is not alphanumeric.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

impl Probe {
    fn uri(&self) -> String {
        let q: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        if q.is_empty() {
            self.route.path().to_string()
        } else {
            format!("{}?{}", self.route.path(), q.join("&"))
        }
    }
}

/// What the server answered: an HTTP status (101 for a WebSocket).
async fn send(server: &RunningServer, probe: &Probe) -> Result<u16, String> {
    match probe.route {
        Route::Ws | Route::WsChat => ws_probe(server, probe).await,
        _ => http_probe(server, probe).await,
    }
}

async fn http_probe(server: &RunningServer, probe: &Probe) -> Result<u16, String> {
    let tcp = TcpStream::connect(server.http_addr)
        .await
        .map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let method = if probe.route.is_post() { "POST" } else { "GET" };
    let mut req = http::Request::builder()
        .method(method)
        .uri(probe.uri())
        .header("host", server.http_addr.to_string())
        .header("content-type", "application/json");
    if let Some(id) = &probe.last_event_id {
        if let Ok(v) = http::HeaderValue::from_str(id) {
            req = req.header("Last-Event-ID", v);
        }
    }
    let body = if probe.route.is_post() {
        Full::new(Bytes::from(probe.body.clone()))
    } else {
        Full::new(Bytes::new())
    };
    let res = sender
        .send_request(req.body(body).map_err(|e| e.to_string())?)
        .await
        .map_err(|e| format!("no answer: {e}"))?;
    let status = res.status().as_u16();
    // Streams go on: the head is the answer. Short bodies are read whole.
    if status != 200 {
        let _ = tokio::time::timeout(Duration::from_millis(500), res.into_body().collect()).await;
    }
    Ok(status)
}

async fn ws_probe(server: &RunningServer, probe: &Probe) -> Result<u16, String> {
    let url = format!("ws://{}{}", server.http_addr, probe.uri());
    let tcp = TcpStream::connect(server.http_addr)
        .await
        .map_err(|e| e.to_string())?;
    match tokio_tungstenite::client_async(url, tcp).await {
        Ok((mut ws, _)) => {
            let _ = ws.send(Message::text(probe.body.clone())).await;
            let _ = ws
                .send(Message::binary(probe.body.clone().into_bytes()))
                .await;
            // Whatever comes back within a moment, then a clean close.
            let _ = tokio::time::timeout(Duration::from_millis(150), async {
                while let Some(Ok(_)) = ws.next().await {}
            })
            .await;
            let _ = ws.close(None).await;
            Ok(101)
        }
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Ok(res.status().as_u16()),
        Err(e) => Err(format!("no answer to the upgrade: {e}")),
    }
}

/// The clients' runtime (proptest bodies are sync), with the panic hook set.
fn client_runtime() -> tokio::runtime::Runtime {
    count_server_panics();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn every_route_answers_arbitrary_input_without_a_panic() {
    let rt = client_runtime();
    let server = support::start(|c| c.keepalive = Duration::from_millis(500));
    let config = ProptestConfig {
        cases: 160,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let seen = std::sync::Mutex::new(std::collections::BTreeMap::<(u16, &str), u32>::new());
    proptest!(config, |(probe in probe())| {
        let panics = SERVER_PANICS.load(Ordering::SeqCst);
        let status = rt.block_on(send(&server, &probe));
        let status = status.map_err(|e| TestCaseError::fail(format!("{probe:?}: {e}")))?;
        *seen.lock().unwrap().entry((status, probe.route.path())).or_default() += 1;
        if matches!(probe.route, Route::AdminRestart) {
            // End a refusal at once, so later cases reach their routes.
            rt.block_on(async {
                tokio::time::sleep(Duration::from_millis(350)).await;
                support::post(&server, "/admin/restart?pause_ms=0").await
            });
        }
        prop_assert!(
            status < 500 || status == 503,
            "{} answered {status} to {probe:?}",
            probe.route.path()
        );
        prop_assert_eq!(SERVER_PANICS.load(Ordering::SeqCst), panics, "a server thread panicked");
    });
    eprintln!("answers (status, route): {:?}", seen.lock().unwrap());
    // The server still serves the feed, once a last restart case's refusal
    // is over (without `pause_ms` a restart refuses for a second).
    rt.block_on(async {
        assert_eq!(
            support::post(&server, "/admin/restart?pause_ms=0").await.0,
            200
        );
        let mut feed = support::Feed::open(&server, support::Wire::SseH1, None).await;
        feed.hello().await;
    });
    rt.block_on(server.shutdown()).unwrap();
}

#[test]
fn chat_prompts_with_any_numbers_get_an_answer_not_a_panic() {
    let rt = client_runtime();
    let server = support::start(|_| {});
    let config = ProptestConfig {
        cases: 96,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(tokens in json_number(), rate in prop_oneof![any::<f64>().prop_map(serde_json::Value::from), json_number()])| {
        let panics = SERVER_PANICS.load(Ordering::SeqCst);
        let body = serde_json::json!({ "prompt": "hi", "tokens": tokens, "rate": rate }).to_string();
        for route in [Route::Chat, Route::WsChat] {
            let probe = Probe { route, query: vec![], last_event_id: None, body: body.clone() };
            let status = rt.block_on(send(&server, &probe))
                .map_err(|e| TestCaseError::fail(format!("{body}: {e}")))?;
            prop_assert!(status == 200 || status == 400 || status == 101, "{}: {} for {}", route.path(), status, body);
        }
        prop_assert_eq!(SERVER_PANICS.load(Ordering::SeqCst), panics, "a server thread panicked on {}", body);
    });
    rt.block_on(server.shutdown()).unwrap();
}

/// Every numeric flag of the server binary.
const NUMERIC_FLAGS: [&str; 18] = [
    "--rate",
    "--payload-bytes",
    "--replay",
    "--fanout-buffer",
    "--retry-ms",
    "--keepalive",
    "--ws-max-frame",
    "--max-connections",
    "--shutdown-timeout",
    "--workers",
    "--backlog",
    "--h2-initial-window-size",
    "--h2-initial-connection-window-size",
    "--chaos-drop-fraction",
    "--chaos-every",
    "--chat-tokens",
    "--chat-token-rate",
    "--echo-queue",
];

fn flag_value() -> impl Strategy<Value = String> {
    prop_oneof![
        number_text(),
        (0u64..100).prop_map(|n| format!("{n}ms")),
        (0u64..u64::MAX).prop_map(|n| format!("{n}s")),
        prop::sample::select(vec!["1h", "25h", "1day", "0ns", "9999999999999d", "soon"])
            .prop_map(str::to_string),
    ]
}

/// What a server built from `config` would compute: none of it may panic.
fn use_config(c: &ServerConfig) {
    let now = tokio::time::Instant::now();
    for d in [c.keepalive * 2, c.shutdown_timeout, c.chaos_every] {
        let _ = now + d;
    }
    let _hub = server::Hub::new(c.replay, c.fanout_buffer, c.max_connections.unwrap_or(1));
    let _ = server::feed::period_ns(c.rate);
    let _ = server::event::encode_tick(1, 1, c.payload_bytes.min(1 << 16));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn every_numeric_flag_is_a_value_or_a_clap_error(
        flag in prop::sample::select(NUMERIC_FLAGS.to_vec()),
        value in flag_value(),
    ) {
        let arg = format!("{flag}={value}");
        match ServerConfig::try_parse_from(["server", arg.as_str()]) {
            Ok(config) => use_config(&config),
            Err(e) => prop_assert_eq!(e.exit_code(), 2, "{}: {}", arg, e),
        }
    }
}

#[test]
fn the_binary_refuses_hostile_flags_with_exit_2() {
    let bin = env!("CARGO_BIN_EXE_server");
    for args in [
        ["--rate", "1e-300"],
        ["--chat-token-rate", "1e-300"],
        ["--keepalive", "99999999999999s"],
        ["--workers", "0"],
        ["--backlog", "99999999999"],
        ["--replay", "0"],
        ["--payload-bytes", "1000000000000"],
    ] {
        let out = std::process::Command::new(bin)
            .args(args)
            .args(["--http", "127.0.0.1:0", "--no-tls"])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("runs the binary");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(
            stderr.contains("error: invalid value"),
            "{args:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}
