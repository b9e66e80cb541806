//! The browser model of the six-connection limit: exact counts against the
//! real server, and the same counts as a real headless Chromium given the
//! same parameters (so the model's figures can be trusted at scales no
//! browser can be driven to).

use std::path::PathBuf;
use std::time::Duration;

use futures_util::StreamExt;
use loadgen::limit::{self, LimitCase, LimitCaseResult, LimitSpec, Protocol};
use loadgen::runner::{RunOptions, ServerChoice};
use loadgen::tls_config::Trust;
use serde_json::Value;

fn in_process() -> RunOptions {
    server::tls::install_crypto_provider();
    RunOptions {
        server: ServerChoice::InProcess,
        workers: Some(2),
        retry: Duration::from_secs(1),
        worker_exe: None,
    }
}

async fn model(cases: Vec<LimitCase>, opts: &RunOptions) -> Vec<LimitCaseResult> {
    let spec = LimitSpec {
        cases,
        get_cap_ms: 800,
        ..LimitSpec::default()
    };
    let r = limit::run(&spec, opts).await.expect("the model runs");
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["limit"]["cases"].is_array(), "{json}");
    let l = r.limit.expect("a limit section");
    assert_eq!(l.h2_announced_max_streams, None, "actix announces none");
    assert_eq!(l.h2_streams_in_force, 100, "Chromium's default then");
    l.cases
}

fn counts(c: &LimitCaseResult) -> (usize, usize) {
    (c.streams_opened, c.streams_pending)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_reproduces_what_chromium_does() {
    let h1 = |tabs, n| LimitCase::new(Protocol::H1, tabs, n);
    let cases = vec![
        h1(1, 8),
        LimitCase::new(Protocol::H2, 1, 8),
        h1(2, 4),
        LimitCase {
            profiles: 2,
            ..h1(1, 8)
        },
        LimitCase {
            hosts: 2,
            ..h1(1, 12)
        },
        LimitCase {
            shared_stream: true,
            ..h1(4, 3)
        },
        LimitCase {
            ws_per_tab: 8,
            ..h1(1, 6)
        },
        LimitCase::new(Protocol::H2, 1, 120),
    ];
    let r = model(cases, &in_process()).await;
    for c in &r {
        assert!(c.problems.is_empty(), "{}: {:?}", c.label, c.problems);
        assert_eq!(c.streams_failed, 0, "{}", c.label);
    }

    // HTTP/1.1, one tab, 8 streams: 6 open, 2 queued without a socket; the
    // GET waits behind both and needs a third slot.
    let c = &r[0];
    assert_eq!(counts(c), (6, 2), "{c:?}");
    assert_eq!((c.streams_queued, c.connections), (2, 6), "{c:?}");
    assert_eq!(c.protocols_seen.get("http/1.1"), Some(&6));
    assert_eq!(c.first_event_us.count, 6);
    assert_eq!(c.first_event_ms.iter().filter(|t| t.is_none()).count(), 2);
    assert!(c.get.stalled && c.get.queued_behind == 2, "{:?}", c.get);
    assert_eq!(c.get.released, 3, "{:?}", c.get);
    assert!(
        c.get.after_release_ms.is_some() && c.get.status == Some(200),
        "{:?}",
        c.get
    );

    // HTTP/2: all 8 on one connection, the GET at once.
    let c = &r[1];
    assert_eq!(counts(c), (8, 0), "{c:?}");
    assert_eq!(c.connections, 1, "{c:?}");
    assert_eq!(c.protocols_seen.get("h2"), Some(&8));
    assert!(!c.get.stalled && c.get.latency_ms.is_some(), "{:?}", c.get);

    // Two tabs share one profile's pool; a second profile has its own.
    assert_eq!(counts(&r[2]), (6, 2), "{:?}", r[2]);
    assert_eq!(counts(&r[3]), (12, 4), "{:?}", r[3]);
    assert_eq!(r[3].pools, 2);

    // Workarounds: a second host name is a second pool of 6; one shared
    // stream feeds every tab over one connection.
    assert_eq!(counts(&r[4]), (12, 0), "{:?}", r[4]);
    assert_eq!(r[4].host_names, ["127.0.0.1", "localhost"]);
    assert!(
        r[4].get.stalled,
        "host 1's pool is still full: {:?}",
        r[4].get
    );
    assert_eq!(counts(&r[5]), (12, 0), "{:?}", r[5]);
    assert_eq!(r[5].connections, 1, "{:?}", r[5]);
    assert!(!r[5].get.stalled, "{:?}", r[5].get);

    // WebSockets are outside the 6.
    let c = &r[6];
    assert_eq!(counts(c), (6, 0), "{c:?}");
    assert_eq!((c.ws_asked, c.ws_opened), (8, 8), "{c:?}");
    assert_eq!(c.ws_first_event_us.count, 8);

    // No SETTINGS_MAX_CONCURRENT_STREAMS: 100 per connection, as Chromium.
    assert_eq!(counts(&r[7]), (100, 20), "{:?}", r[7]);
    assert_eq!(r[7].connections, 1);
}

// ------------------------------------------------------------------ browser

/// The comparison drives the page through the limit lab, with DOM clicks
/// (the real-mouse path is covered by `server/tests/limit_browser.rs`).
///
/// The server's browser helper (`server/tests/support/browser.rs`) needs the
/// `base64` crate, which this crate does not depend on, so the few lines
/// that launch Chromium are repeated here, with the same flags and the
/// same skip rule (`WORKBENCH_REQUIRE_BROWSER=1` turns a skip into a failure).
const FLAGS: [&str; 10] = [
    "headless",
    "disable-gpu",
    "disable-quic",
    "no-first-run",
    "disable-background-networking",
    "disable-component-update",
    "disable-sync",
    "disable-background-timer-throttling",
    "disable-renderer-backgrounding",
    "mute-audio",
];

fn chromium() -> Option<PathBuf> {
    let found = match std::env::var_os("CHROMIUM").filter(|p| !p.is_empty()) {
        Some(p) => Some(PathBuf::from(p)).filter(|p| p.is_file()),
        None => Some(PathBuf::from("/usr/bin/chromium")).filter(|p| p.is_file()),
    };
    if found.is_none() {
        assert!(
            std::env::var("WORKBENCH_REQUIRE_BROWSER").as_deref() != Ok("1"),
            "no chromium found and WORKBENCH_REQUIRE_BROWSER=1: apt-get install -y chromium (or set CHROMIUM)"
        );
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "\n********\nSKIPPED: browser vs model: no chromium found\n********\n"
        );
    }
    found
}

struct Browser {
    browser: chromiumoxide::Browser,
    handler: tokio::task::JoinHandle<()>,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn launch(exe: &std::path::Path, spki: &str) -> Browser {
        let profile = tempfile::tempdir().unwrap();
        let config = chromiumoxide::BrowserConfig::builder()
            .chrome_executable(exe)
            .disable_default_args()
            .args(FLAGS)
            .no_sandbox()
            .user_data_dir(profile.path())
            .respect_https_errors()
            .arg(("ignore-certificate-errors-spki-list", spki))
            .launch_timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let (browser, mut handler) = chromiumoxide::Browser::launch(config).await.unwrap();
        let handler = tokio::spawn(async move { while handler.next().await.is_some() {} });
        Browser {
            browser,
            handler,
            _profile: profile,
        }
    }

    async fn tab(&self, url: &str) -> chromiumoxide::Page {
        let page = self.browser.new_page(url).await.unwrap();
        wait(&page, "window.limitLab && window.limitLab.ready").await;
        page
    }

    async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            let _ = self.browser.close().await;
            let _ = self.browser.wait().await;
        })
        .await;
        let _ = self.browser.kill().await;
        self.handler.abort();
    }
}

async fn eval(page: &chromiumoxide::Page, expr: &str) -> Value {
    let text: String = page
        .evaluate(format!("JSON.stringify({expr}) ?? 'null'"))
        .await
        .unwrap()
        .into_value()
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn wait(page: &chromiumoxide::Page, predicate: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while eval(page, &format!("Boolean({predicate})")).await != Value::Bool(true) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never `{predicate}`: {}",
            eval(page, "window.limitLab").await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Opens `n` streams in the lab of `page` and returns (open, pending) once
/// the numbers have held still for a second.
async fn open_in_lab(page: &chromiumoxide::Page, n: usize, origin: &str) -> (u64, u64) {
    eval(
        page,
        &format!(
            "(() => {{ document.getElementById('limit-n').value = '{n}'; \
             document.getElementById('limit-origin').value = '{origin}'; \
             document.getElementById('limit-open').click(); return true; }})()"
        ),
    )
    .await;
    let mut last = (u64::MAX, u64::MAX);
    let mut still = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let c = eval(page, "window.limitLab.counts").await;
        let now = (c["open"].as_u64().unwrap(), c["pending"].as_u64().unwrap());
        still = if now == last && now.0 > 0 {
            still + 1
        } else {
            0
        };
        last = now;
        if still >= 10 {
            break;
        }
    }
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_counts_what_the_browser_counts() {
    let Some(exe) = chromium() else { return };
    server::tls::install_crypto_provider();
    let mut config = server::ServerConfig::ephemeral();
    config.rate = 5.0;
    config.workers = Some(2);
    config.shutdown_timeout = Duration::from_secs(3);
    let running = server::run(config).expect("the server starts");
    let spki = running.info.spki_sha256.clone().expect("an SPKI hash");
    // The browser, through the page; a fresh profile for each case, as
    // the model starts each with empty pools.
    let url = running.http_url();
    let browser = Browser::launch(&exe, &spki).await;
    let h1_8 = open_in_lab(&browser.tab(&url).await, 8, "h1").await;
    browser.close().await;
    let browser = Browser::launch(&exe, &spki).await;
    let h2_8 = open_in_lab(&browser.tab(&url).await, 8, "h2").await;
    browser.close().await;
    let browser = Browser::launch(&exe, &spki).await;
    let first = browser.tab(&url).await;
    let second = browser.tab(&url).await;
    let a = open_in_lab(&first, 4, "h1").await;
    let b = open_in_lab(&second, 4, "h1").await;
    let two_tabs = (a.0 + b.0, a.1 + b.1);
    browser.close().await;
    // The browser's streams are gone before the model fills the pools.
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The model, with the same parameters, against the same server.
    let opts = RunOptions {
        server: ServerChoice::External {
            http_url: running.http_url(),
            https_url: running.https_url(),
            trust: Trust::CaFile(running.cert_path().expect("a certificate")),
            allow_remote: false,
        },
        workers: None,
        retry: Duration::from_secs(1),
        worker_exe: None,
    };
    let m = model(
        vec![
            LimitCase::new(Protocol::H1, 1, 8),
            LimitCase::new(Protocol::H2, 1, 8),
            LimitCase::new(Protocol::H1, 2, 4),
        ],
        &opts,
    )
    .await;
    let model_counts: Vec<(u64, u64)> = m
        .iter()
        .map(|c| (c.streams_opened as u64, c.streams_pending as u64))
        .collect();
    let browser_counts = vec![h1_8, h2_8, two_tabs];
    {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "browser (open, pending) {browser_counts:?} / model {model_counts:?} for h1 1x8, h2 1x8, h1 2x4"
        );
    }
    assert_eq!(browser_counts, [(6, 2), (8, 0), (6, 2)], "the browser");
    assert_eq!(model_counts, browser_counts, "model vs browser");
    running.shutdown().await.unwrap();
}
