//! The page in a real Chromium over an emulated link: the browser (and the
//! test's DevTools connection to it) inside the link's client namespace,
//! the embedded server inside its server namespace, both panels connected.
//! The link is cut for 20 s and restored; both panels must recover by
//! themselves (EventSource reconnects or its TCP connection survives; the
//! page's WebSocket code reconnects with `lastEventId`) with no id lost and
//! none twice. The time each took is printed.
//!
//! Needs root (namespaces) and Chromium: without either it prints SKIPPED
//! and passes, unless `WORKBENCH_REQUIRE_NETLAB=1` or
//! `WORKBENCH_REQUIRE_BROWSER=1` says it must run.

#[path = "../../server/tests/support/browser.rs"]
#[allow(dead_code)]
mod browser;
mod support;

use std::io::Write as _;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context as _};
use browser::{chromium_or_skip, click, eval_json, screenshot, wait_until, Chromium};
use loadgen::run::{LinkRun, RunOptions, ServerChoice, ServerSettings, StartedServer};
use serde_json::Value;
use support::netlab_or_skip;

/// 5 events a second: the page draws every one; 20 s of cut is 100 ids,
/// well inside the server's replay ring (1,024).
const RATE_HZ: f64 = 5.0;
const CUT: Duration = Duration::from_secs(20);
/// After the link is back, TCP's retransmission timer has backed off for
/// 20 s of silence: the next try may be 20 s or more away.
const RECOVERY_LIMIT: Duration = Duration::from_secs(60);
/// The whole test, browser start included.
const TEST_LIMIT: Duration = Duration::from_secs(150);
const STATE: &str = "window.workbench";

/// Both panels' figures.
async fn panels(page: &chromiumoxide::Page) -> anyhow::Result<(Value, Value)> {
    let wb = eval_json(
        page,
        "({sse: window.workbench.sse, ws: window.workbench.ws})",
    )
    .await?;
    Ok((wb["sse"].clone(), wb["ws"].clone()))
}

fn events(panel: &Value) -> u64 {
    panel["events"].as_u64().unwrap_or(0)
}

/// The browser's part, on a thread inside the client namespace: load the
/// page, connect, cut, restore, watch both panels recover.
async fn in_the_client_namespace(
    exe: PathBuf,
    url: String,
    control: netlab::LinkControl,
) -> anyhow::Result<()> {
    let chromium = Chromium::launch(&exe, None).await?;
    let (page, _console) = chromium.open(&url).await?;
    wait_until(
        &page,
        "window.workbench && window.workbench.ready",
        STATE,
        Duration::from_secs(30),
    )
    .await
    .context("the page loads over the link")?;
    click(&page, "#sse-connect").await?;
    click(&page, "#ws-connect").await?;
    wait_until(
        &page,
        "['sse', 'ws'].every((p) => window.workbench[p].state === 'open' && window.workbench[p].events >= 5)",
        STATE,
        Duration::from_secs(30),
    )
    .await
    .context("both panels stream over the link")?;
    let (sse0, ws0) = panels(&page).await?;
    for (name, p) in [("sse", &sse0), ("ws", &ws0)] {
        ensure!(p["protocol"] == "http/1.1", "{name}: {p}");
    }
    control.cut();
    tokio::time::sleep(CUT).await;
    let (sse_cut, ws_cut) = panels(&page).await?;
    let back = Instant::now();
    control.restore();
    let mut recovered: [Option<Duration>; 2] = [None, None];
    while recovered.iter().any(Option::is_none) {
        ensure!(
            back.elapsed() < RECOVERY_LIMIT,
            "not recovered {RECOVERY_LIMIT:?} after the link came back: {}",
            eval_json(&page, STATE).await?
        );
        let (sse, ws) = panels(&page).await?;
        for (i, (now, before)) in [(&sse, &sse_cut), (&ws, &ws_cut)].iter().enumerate() {
            if recovered[i].is_none() && events(now) > events(before) {
                recovered[i] = Some(back.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Let both catch up with what the server sent during the cut.
    wait_until(
        &page,
        "Math.abs(window.workbench.sse.lastId - window.workbench.ws.lastId) <= 2",
        STATE,
        Duration::from_secs(20),
    )
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (sse, ws) = panels(&page).await?;
    let _ = screenshot(&page, "link_cut_for_20s_both_panels_recover").await;
    let mut report = String::new();
    for ((name, p), took) in [("SSE", &sse), ("WebSocket", &ws)].iter().zip(recovered) {
        ensure!(
            p["lost"] == 0 && p["dups"] == 0,
            "{name} lost or repeated ids: {p}"
        );
        ensure!(p["state"] == "open", "{name}: {p}");
        let took = took.expect("recovered, or the loop above failed");
        report.push_str(&format!(
            "{name}: next event {:.2} s after the link came back, {} reconnect(s), last id {}, 0 lost, 0 duplicated\n",
            took.as_secs_f64(),
            p["reconnects"],
            p["lastId"],
        ));
    }
    let _ = writeln!(
        std::io::stderr(),
        "\nlink cut for {} s, then restored:\n{report}",
        CUT.as_secs()
    );
    chromium.close().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn link_cut_for_20s_both_panels_recover_without_loss() {
    let name = "link_cut_for_20s_both_panels_recover_without_loss";
    if !netlab_or_skip(name) {
        return;
    }
    let Some(exe) = chromium_or_skip(name) else {
        return;
    };
    server::tls::install_crypto_provider();
    let link = LinkRun::start(&"delay=10ms".parse().unwrap()).expect("the lab starts");
    let opts = RunOptions {
        server: ServerChoice::Child {
            exe: PathBuf::from(env!("CARGO_BIN_EXE_loadgen")),
        },
        workers: Some(2),
        retry: Duration::from_secs(1),
        worker_exe: None,
        shard: None,
        start_at_unix_ns: None,
    };
    let server =
        StartedServer::start_over(&opts, &ServerSettings::new(RATE_HZ, Some(2)), Some(&link))
            .await
            .expect("the server starts in the server namespace");
    let url = format!("{}/", server.target.http_url);
    let control = link.control().clone();
    let browser_side = link
        .client_netns()
        .spawn_thread("browser in the client namespace", move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime for the browser's side");
            runtime.block_on(async move {
                tokio::time::timeout(TEST_LIMIT, in_the_client_namespace(exe, url, control))
                    .await
                    .unwrap_or_else(|_| anyhow::bail!("the test took over {TEST_LIMIT:?}"))
            })
        })
        .expect("a thread inside the client namespace");
    let outcome = tokio::task::spawn_blocking(move || browser_side.join())
        .await
        .expect("the waiting task ends");
    // What the server's keep-alive timeouts did meanwhile.
    if let Ok(stats) = server.target.probe().snapshot().await {
        let _ = writeln!(
            std::io::stderr(),
            "server: {} WebSocket(s) closed for no pong within twice its keep-alive (15 s), {} stream(s) resumed from an id",
            stats.ws_timeouts,
            stats.resumes
        );
    }
    server.stop().await;
    drop(link);
    match outcome {
        Ok(Ok(())) => {}
        Ok(Err(e)) => panic!("{name}: {e:#}"),
        Err(panic) => std::panic::resume_unwind(panic),
    }
}
