//! The six-connection limit, proven in a real headless Chromium through the
//! page's limit lab (`window.limitLab`):
//!
//! - 8 EventSources to the HTTP/1.1 origin: exactly 6 open, 2 pending; a
//!   fetch to that origin waits behind them (first come, first served) and
//!   completes once a slot frees for it;
//! - 8 to the HTTP/2 origin: all open, over h2;
//! - two tabs of one profile, 4 + 4: 6 open in total, and the lab says the
//!   other tab shares the pool; a second profile has its own 6;
//! - 8 WebSockets while 6 streams hold the pool: all open;
//! - the shared-stream workaround: two tabs fed by one connection.
//!
//! The load generator's browser model is checked against the same figures
//! in `loadgen/tests/limit.rs`. Without Chromium these are skipped loudly
//! (or fail, with `WORKBENCH_REQUIRE_BROWSER=1`).

#[path = "support/browser.rs"]
#[allow(dead_code)] // shared with browser.rs, which uses the rest
mod browser_support;
mod support;

use std::time::Duration;

use anyhow::{ensure, Context as _};
use browser_support::{
    click, eval_json, run_browser_test, screenshot, wait_until, Chromium, ConsoleErrors,
};
use chromiumoxide::Page;
use serde_json::Value;
use server::RunningServer;

const LAB: &str = "window.limitLab";

/// Generous: a loaded 2-core machine runs two browsers at once.
const PATIENCE: Duration = Duration::from_secs(15);

/// How long a stalled request must stay stalled to count as stalled.
const STALL: Duration = Duration::from_millis(1500);

fn start_server() -> RunningServer {
    support::start(|c| c.rate = 5.0)
}

/// Opens the page in a new tab of `browser` and waits for the lab.
async fn lab_tab(
    browser: &Chromium,
    server: &RunningServer,
) -> anyhow::Result<(Page, ConsoleErrors)> {
    let (page, console) = browser.open(&server.http_url()).await?;
    wait_until(
        &page,
        "window.limitLab && window.limitLab.ready",
        LAB,
        PATIENCE,
    )
    .await?;
    Ok((page, console))
}

/// A real click, on a tab brought to the front first: a background tab of
/// a headless browser draws no frames, so mouse input to it never lands.
async fn press(page: &Page, selector: &str) -> anyhow::Result<()> {
    page.bring_to_front()
        .await
        .context("bringing the tab to the front")?;
    click(page, selector).await
}

/// What a person does: choose the count and the origin, press Open.
async fn open_streams(page: &Page, n: usize, origin: &str) -> anyhow::Result<()> {
    eval_json(
        page,
        &format!(
            "(() => {{ document.getElementById('limit-n').value = '{n}'; \
             document.getElementById('limit-origin').value = '{origin}'; return true; }})()"
        ),
    )
    .await?;
    press(page, "#limit-open").await
}

async fn counts(page: &Page) -> anyhow::Result<Value> {
    eval_json(page, "window.limitLab.counts").await
}

/// Waits until the lab shows `open` open and `pending` pending, then checks
/// it stays so (a pending stream must not open later by itself).
async fn settle_at(page: &Page, open: u64, pending: u64) -> anyhow::Result<()> {
    let want = format!(
        "window.limitLab.counts.open === {open} && window.limitLab.counts.pending === {pending}"
    );
    wait_until(page, &want, LAB, PATIENCE).await?;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let c = counts(page).await?;
    ensure!(
        c["open"] == open && c["pending"] == pending,
        "moved after settling: {c}"
    );
    Ok(())
}

/// Every open stream reports a time to first event and the protocol the
/// server saw.
async fn check_open_streams(page: &Page, protocol: &str) -> anyhow::Result<Vec<f64>> {
    let streams = eval_json(page, "window.limitLab.streams").await?;
    let mut times = Vec::new();
    for s in streams.as_array().context("streams is a list")? {
        if s["state"] == "open" {
            times.push(s["firstEventMs"].as_f64().context("open: a first event")?);
            ensure!(s["protocol"] == protocol, "{s}");
        } else {
            ensure!(s["firstEventMs"].is_null(), "pending: no event yet: {s}");
        }
    }
    Ok(times)
}

fn report(what: &str, value: impl std::fmt::Display) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr(), "limit_browser: {what}: {value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h1_six_open_two_pending_and_a_fetch_waits_its_turn() {
    run_browser_test(
        "h1_six_open_two_pending_and_a_fetch_waits_its_turn",
        |exe| async move {
            let server = start_server();
            let browser = Chromium::launch(&exe, None).await?;
            let (page, console) = lab_tab(&browser, &server).await?;
            open_streams(&page, 8, "h1").await?;
            settle_at(&page, 6, 2).await?;
            let times = check_open_streams(&page, "http/1.1").await?;
            report("h1 8 streams: first event ms", format!("{times:?}"));
            // The server agrees: six SSE connections over HTTP/1.1.
            support::wait_stats(&server, "6 sse_h1", |s| {
                s["connections_open"]["sse_h1"] == 6
            })
            .await;

            // A fetch to the same origin now queues behind the 2 pending
            // streams: first come, first served, silently.
            click(&page, "#limit-fetch").await?;
            tokio::time::sleep(STALL).await;
            let f = eval_json(&page, "window.limitLab.fetch").await?;
            ensure!(f["state"] == "waiting", "the fetch should stall: {f}");
            click(&page, "#limit-close-one").await?;
            settle_at(&page, 6, 1).await?;
            click(&page, "#limit-close-one").await?;
            settle_at(&page, 6, 0).await?;
            let f = eval_json(&page, "window.limitLab.fetch").await?;
            ensure!(
                f["state"] == "waiting",
                "both pending streams were ahead of the fetch: {f}"
            );
            screenshot(&page, "limit_h1_fetch_waiting").await?;
            // The third slot freed is the fetch's.
            click(&page, "#limit-close-one").await?;
            wait_until(
                &page,
                "window.limitLab.fetch.state === 'done'",
                LAB,
                Duration::from_secs(5),
            )
            .await?;
            let f = eval_json(&page, "window.limitLab.fetch").await?;
            report("h1 fetch while held (ms, includes the wait)", &f["ms"]);
            ensure!(f["nextHopProtocol"] == "http/1.1", "{f}");
            screenshot(&page, "limit_h1_fetch_done").await?;
            console.assert_none("in the limit lab")?;
            browser.close().await;
            server.shutdown().await?;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2_opens_all_eight_on_one_connection() {
    run_browser_test("h2_opens_all_eight_on_one_connection", |exe| async move {
        let server = start_server();
        let spki = server
            .info
            .spki_sha256
            .clone()
            .context("the generated certificate has an SPKI hash")?;
        let browser = Chromium::launch(&exe, Some(&spki)).await?;
        let (page, console) = lab_tab(&browser, &server).await?;
        open_streams(&page, 8, "h2").await?;
        settle_at(&page, 8, 0).await?;
        let times = check_open_streams(&page, "h2").await?;
        report("h2 8 streams: first event ms", format!("{times:?}"));
        // Nothing waits on HTTP/2: the fetch goes at once, over h2.
        click(&page, "#limit-fetch").await?;
        wait_until(
            &page,
            "window.limitLab.fetch.state === 'done'",
            LAB,
            PATIENCE,
        )
        .await?;
        let f = eval_json(&page, "window.limitLab.fetch").await?;
        report("h2 fetch while held (ms)", &f["ms"]);
        ensure!(f["nextHopProtocol"] == "h2", "{f}");
        ensure!(
            f["ms"].as_f64().is_some_and(|ms| ms < 1000.0),
            "an h2 fetch does not wait: {f}"
        );
        support::wait_stats(&server, "8 sse_h2", |s| {
            s["connections_open"]["sse_h2"] == 8
        })
        .await;
        screenshot(&page, "limit_h2_eight_open").await?;
        console.assert_none("in the limit lab")?;
        browser.close().await;
        server.shutdown().await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_share_six_and_a_second_profile_has_its_own() {
    run_browser_test(
        "two_tabs_share_six_and_a_second_profile_has_its_own",
        |exe| async move {
            let server = start_server();
            let browser = Chromium::launch(&exe, None).await?;
            let (first, console) = lab_tab(&browser, &server).await?;
            let (second, _) = lab_tab(&browser, &server).await?;
            open_streams(&first, 4, "h1").await?;
            settle_at(&first, 4, 0).await?;
            open_streams(&second, 4, "h1").await?;
            settle_at(&second, 2, 2).await?;
            let c = counts(&first).await?;
            ensure!(c["open"] == 4, "the first tab keeps its 4: {c}");
            // The lab tells the second tab why.
            wait_until(
                &second,
                "window.limitLab.otherTabs.some((t) => t.open === 4 && t.origin === window.limitLab.origin)",
                LAB,
                PATIENCE,
            )
            .await?;
            let note = eval_json(&second, "document.getElementById('limit-tabs').textContent").await?;
            ensure!(
                note.as_str().is_some_and(|t| t.contains("share")),
                "the lab should say the tabs share the pool: {note}"
            );
            screenshot(&second, "limit_two_tabs").await?;

            // Another profile (a separate browser here) has its own 6.
            let other = Chromium::launch(&exe, None).await?;
            let (third, _) = lab_tab(&other, &server).await?;
            open_streams(&third, 8, "h1").await?;
            settle_at(&third, 6, 2).await?;
            support::wait_stats(&server, "12 sse_h1", |s| {
                s["connections_open"]["sse_h1"] == 12
            })
            .await;
            other.close().await;
            console.assert_none("in the limit lab")?;
            browser.close().await;
            server.shutdown().await?;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websockets_open_while_six_streams_hold_the_pool() {
    run_browser_test(
        "websockets_open_while_six_streams_hold_the_pool",
        |exe| async move {
            let server = start_server();
            let browser = Chromium::launch(&exe, None).await?;
            let (page, console) = lab_tab(&browser, &server).await?;
            open_streams(&page, 6, "h1").await?;
            settle_at(&page, 6, 0).await?;
            eval_json(
                &page,
                "(() => { document.getElementById('limit-ws-n').value = '8'; return true; })()",
            )
            .await?;
            click(&page, "#limit-ws-open").await?;
            wait_until(
                &page,
                "window.limitLab.ws.open === 8 && window.limitLab.ws.sockets.every((w) => w.firstEventMs !== null)",
                LAB,
                PATIENCE,
            )
            .await?;
            let c = counts(&page).await?;
            ensure!(c["open"] == 6 && c["pending"] == 0, "{c}");
            support::wait_stats(&server, "6 sse_h1 and 8 ws_h1", |s| {
                s["connections_open"]["sse_h1"] == 6 && s["connections_open"]["ws_h1"] == 8
            })
            .await;
            screenshot(&page, "limit_websockets").await?;
            console.assert_none("in the limit lab")?;
            browser.close().await;
            server.shutdown().await?;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shared_stream_feeds_two_tabs() {
    run_browser_test("one_shared_stream_feeds_two_tabs", |exe| async move {
        let server = start_server();
        let browser = Chromium::launch(&exe, None).await?;
        let (first, console) = lab_tab(&browser, &server).await?;
        let (second, _) = lab_tab(&browser, &server).await?;
        press(&first, "#limit-shared-join").await?;
        press(&second, "#limit-shared-join").await?;
        for page in [&first, &second] {
            wait_until(
                page,
                "window.limitLab.shared.events >= 3 && window.limitLab.shared.lastId !== null",
                LAB,
                PATIENCE,
            )
            .await?;
        }
        let shared = eval_json(&second, "window.limitLab.shared").await?;
        ensure!(shared["mode"] == "shared-worker", "{shared}");
        ensure!(shared["tabs"] == 2, "the worker feeds both tabs: {shared}");
        support::wait_stats(&server, "one SSE stream for two tabs", |s| {
            s["connections_open"]["sse_h1"] == 1
        })
        .await;
        screenshot(&second, "limit_shared_stream").await?;
        console.assert_none("in the limit lab")?;
        browser.close().await;
        server.shutdown().await?;
        Ok(())
    })
    .await;
}
