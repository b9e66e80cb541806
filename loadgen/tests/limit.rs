//! The browser model of the six-connection limit: exact counts against the
//! real server, and the same counts as a real headless Chromium given the
//! same parameters (so the model's figures can be trusted at scales no
//! browser can be driven to).

use std::path::PathBuf;
use std::time::Duration;

use loadgen::client::Trust;
use loadgen::limit;
use loadgen::result::{LimitCase, LimitCaseResult, LimitSpec, Protocol};
use loadgen::run::{RunOptions, ServerChoice};

fn in_process() -> RunOptions {
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

async fn model(cases: Vec<LimitCase>, opts: &RunOptions) -> Vec<LimitCaseResult> {
    let spec = LimitSpec {
        cases,
        get_cap_ms: 800,
        ..LimitSpec::default()
    };
    let r = limit::run(&spec, opts).await.expect("the model runs");
    let json = serde_json::to_value(&r).unwrap();
    assert!(json["limit"]["cases"].is_array(), "{json}");
    let l = r.limit().cloned().expect("a limit section");
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
/// (the real-mouse path is covered by `server/tests/limit_browser.rs`), in
/// a Chromium launched by the server's browser helper: same flags, same
/// skip rule (`WORKBENCH_REQUIRE_BROWSER=1` turns a skip into a failure).
#[path = "../../server/tests/support/browser.rs"]
#[allow(dead_code)]
mod browser;

use browser::{eval_json, wait_until, Chromium};

/// A fresh profile with the lab loaded in `tabs` tabs.
async fn lab(
    exe: &std::path::Path,
    spki: &str,
    url: &str,
    tabs: usize,
) -> anyhow::Result<(Chromium, Vec<chromiumoxide::Page>)> {
    let chromium = Chromium::launch(exe, Some(spki)).await?;
    let mut pages = Vec::new();
    for _ in 0..tabs {
        let (page, _console) = chromium.open(url).await?;
        wait_until(
            &page,
            "window.limitLab && window.limitLab.ready",
            "window.limitLab",
            Duration::from_secs(15),
        )
        .await?;
        pages.push(page);
    }
    Ok((chromium, pages))
}

/// Opens `n` streams in the lab of `page` and returns (open, pending) once
/// the numbers have held still for a second.
async fn open_in_lab(
    page: &chromiumoxide::Page,
    n: usize,
    origin: &str,
) -> anyhow::Result<(u64, u64)> {
    eval_json(
        page,
        &format!(
            "(() => {{ document.getElementById('limit-n').value = '{n}'; \
             document.getElementById('limit-origin').value = '{origin}'; \
             document.getElementById('limit-open').click(); return true; }})()"
        ),
    )
    .await?;
    let mut last = (u64::MAX, u64::MAX);
    let mut still = 0;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let c = eval_json(page, "window.limitLab.counts").await?;
        let now = (
            c["open"].as_u64().unwrap_or(0),
            c["pending"].as_u64().unwrap_or(0),
        );
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
    Ok(last)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_model_counts_what_the_browser_counts() {
    browser::run_browser_test(
        "the_model_counts_what_the_browser_counts",
        |exe| async move { model_vs_browser(exe).await },
    )
    .await;
}

async fn model_vs_browser(exe: PathBuf) -> anyhow::Result<()> {
    server::tls::install_crypto_provider();
    let mut config = server::ServerConfig::ephemeral();
    config.rate = 5.0;
    config.workers = Some(2);
    config.shutdown_timeout = Duration::from_secs(3);
    let running = server::run(config)?;
    let spki = running.info.spki_sha256.clone().expect("an SPKI hash");
    // The browser, through the page; a fresh profile for each case, as
    // the model starts each with empty pools.
    let url = running.http_url();
    let (chromium, pages) = lab(&exe, &spki, &url, 1).await?;
    let h1_8 = open_in_lab(&pages[0], 8, "h1").await?;
    chromium.close().await;
    let (chromium, pages) = lab(&exe, &spki, &url, 1).await?;
    let h2_8 = open_in_lab(&pages[0], 8, "h2").await?;
    chromium.close().await;
    let (chromium, pages) = lab(&exe, &spki, &url, 2).await?;
    let a = open_in_lab(&pages[0], 4, "h1").await?;
    let b = open_in_lab(&pages[1], 4, "h1").await?;
    let two_tabs = (a.0 + b.0, a.1 + b.1);
    chromium.close().await;
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
        shard: None,
        start_at_unix_ns: None,
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
    anyhow::ensure!(
        browser_counts == [(6, 2), (8, 0), (6, 2)],
        "the browser: {browser_counts:?}"
    );
    anyhow::ensure!(
        model_counts == browser_counts,
        "model {model_counts:?} vs browser {browser_counts:?}"
    );
    running.shutdown().await?;
    Ok(())
}
