//! The page in a real headless Chromium: it loads cleanly, both panels
//! count a 5 Hz feed without loss, SSE reaches the TLS origin over h2, a
//! drop-all recovers without loss, and Disconnect really stops.
//!
//! Each test starts its own server and browser, reads the page's live
//! figures from `window.workbench`, and leaves a full-page screenshot in
//! `target/browser-artifacts/<test>.png`. Without Chromium they are skipped
//! loudly (or fail, with `WORKBENCH_REQUIRE_BROWSER=1`).

#[path = "support/browser.rs"]
mod browser_support;
mod support;

use std::time::Duration;

use anyhow::{ensure, Context as _};
use browser_support::{
    click, eval_json, run_browser_test, screenshot, screenshot_at_width, wait_until, Chromium,
};
use chromiumoxide::Page;
use server::RunningServer;

/// 5 events a second: three arrive well within the 5 s the page is allowed,
/// and one second of silence after Disconnect would have shown five.
const RATE_HZ: f64 = 5.0;

/// What a failed wait prints: everything the page knows.
const STATE: &str = "window.workbench";

/// The page may take this long for anything that is not itself under test
/// (loading, reconnecting after a drop): generous, for a loaded 2-core machine.
const PATIENCE: Duration = Duration::from_secs(20);

fn start_server() -> RunningServer {
    support::start(|c| c.rate = RATE_HZ)
}

/// Loads the page from `url` and waits until it has read `/info`.
async fn load(
    browser: &Chromium,
    url: &str,
) -> anyhow::Result<(Page, browser_support::ConsoleErrors)> {
    let (page, console) = browser.open(url).await?;
    wait_until(
        &page,
        "window.workbench && window.workbench.ready",
        STATE,
        PATIENCE,
    )
    .await?;
    Ok((page, console))
}

/// Clicks Connect on both panels and waits until each has `n` events.
async fn connect_both(page: &Page, n: u64, limit: Duration) -> anyhow::Result<()> {
    click(page, "#sse-connect").await?;
    click(page, "#ws-connect").await?;
    let ready = format!(
        "['sse', 'ws'].every((p) => window.workbench[p].state === 'open' && window.workbench[p].events >= {n})"
    );
    wait_until(page, &ready, STATE, limit).await
}

/// The page's own error list (connection failures are shown there, not in
/// the console), which must stay empty.
async fn page_errors(page: &Page) -> anyhow::Result<serde_json::Value> {
    eval_json(page, "window.workbench.errors").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_loads_without_console_errors() {
    run_browser_test("page_loads_without_console_errors", |exe| async move {
        let server = start_server();
        let browser = Chromium::launch(&exe, None).await?;
        let (page, console) = load(&browser, &server.http_url()).await?;
        // One /stats poll done: the page has run every start-up request.
        wait_until(
            &page,
            "window.workbench.serverStats !== null",
            STATE,
            PATIENCE,
        )
        .await?;
        let wb = eval_json(&page, STATE).await?;
        ensure!(wb["pageProtocol"] == "http/1.1", "page protocol: {wb}");
        ensure!(wb["info"]["rate_hz"] == RATE_HZ, "info: {wb}");
        screenshot(&page, "page_loads_without_console_errors").await?;
        let phone = 390;
        let laid_out =
            screenshot_at_width(&page, "page_loads_without_console_errors-390px", phone).await?;
        ensure!(
            laid_out <= phone,
            "at {phone} px the page is {laid_out} px wide: something overflows sideways"
        );
        let laptop = 1280;
        let laid_out =
            screenshot_at_width(&page, "page_loads_without_console_errors-1280px", laptop).await?;
        ensure!(
            laid_out <= laptop,
            "at {laptop} px the page is {laid_out} px wide: something overflows sideways"
        );
        console.assert_none("while loading the page")?;
        let errors = page_errors(&page).await?;
        ensure!(errors == serde_json::json!([]), "page errors: {errors}");
        browser.close().await;
        server.shutdown().await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_panels_count_consecutive_events_within_5s() {
    run_browser_test(
        "both_panels_count_consecutive_events_within_5s",
        |exe| async move {
            let server = start_server();
            let browser = Chromium::launch(&exe, None).await?;
            let (page, console) = load(&browser, &server.http_url()).await?;
            connect_both(&page, 3, Duration::from_secs(5))
                .await
                .context("3 events in both panels within 5 s of Connect")?;
            let wb = eval_json(&page, STATE).await?;
            for panel in ["sse", "ws"] {
                let p = &wb[panel];
                ensure!(p["state"] == "open", "{panel}: {p}");
                ensure!(p["events"].as_u64() >= Some(3), "{panel}: {p}");
                ensure!(
                    p["lost"] == 0 && p["dups"] == 0,
                    "{panel} not consecutive: {p}"
                );
                ensure!(p["protocol"] == "http/1.1", "{panel} protocol: {p}");
                ensure!(p["resume"] == "none", "{panel} resume: {p}");
            }
            screenshot(&page, "both_panels_count_consecutive_events_within_5s").await?;
            console.assert_none("while both panels stream")?;
            let errors = page_errors(&page).await?;
            ensure!(errors == serde_json::json!([]), "page errors: {errors}");
            browser.close().await;
            server.shutdown().await?;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_over_the_tls_origin_reports_h2() {
    run_browser_test("sse_over_the_tls_origin_reports_h2", |exe| async move {
        let server = start_server();
        let spki = server
            .info
            .spki_sha256
            .clone()
            .context("the generated certificate has an SPKI hash")?;
        let browser = Chromium::launch(&exe, Some(&spki)).await?;
        let (page, console) = load(&browser, &server.http_url()).await?;
        // What a person does: choose HTTP/2 in the select (the page listens
        // for `change`), then Connect.
        eval_json(
            &page,
            "(() => { const s = document.getElementById('sse-origin'); s.value = 'h2'; \
             s.dispatchEvent(new Event('change')); return s.value; })()",
        )
        .await?;
        click(&page, "#sse-connect").await?;
        wait_until(
            &page,
            "window.workbench.sse.events >= 3 && window.workbench.sse.nextHopProtocol !== null",
            STATE,
            PATIENCE,
        )
        .await?;
        let sse = eval_json(&page, "window.workbench.sse").await?;
        let https = server.https_url().context("TLS is on")?;
        ensure!(sse["origin"] == "h2", "{sse}");
        ensure!(
            sse["url"].as_str().is_some_and(|u| u.starts_with(&https)),
            "SSE should use {https}: {sse}"
        );
        // What the server negotiated (from the hello) and what the browser
        // says it used for a fetch to the same origin.
        ensure!(sse["protocol"] == "h2", "server-side protocol: {sse}");
        ensure!(sse["nextHopProtocol"] == "h2", "nextHopProtocol: {sse}");
        ensure!(sse["lost"] == 0 && sse["dups"] == 0, "{sse}");
        screenshot(&page, "sse_over_the_tls_origin_reports_h2").await?;
        console.assert_none("with SSE over the TLS origin")?;
        let errors = page_errors(&page).await?;
        ensure!(errors == serde_json::json!([]), "page errors: {errors}");
        browser.close().await;
        server.shutdown().await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drop_all_recovers_both_panels_without_loss() {
    run_browser_test(
        "drop_all_recovers_both_panels_without_loss",
        |exe| async move {
            let server = start_server();
            let browser = Chromium::launch(&exe, None).await?;
            let (page, console) = load(&browser, &server.http_url()).await?;
            connect_both(&page, 3, PATIENCE).await?;
            let before = eval_json(&page, STATE).await?;
            click(&page, "#drop-all").await?;
            // Both reconnected (SSE by itself, WS in the page's code), got events
            // past the drop, and measured how long that took.
            let recovered = format!(
                "['sse', 'ws'].every((p) => {{ const s = window.workbench[p]; \
             return s.reconnects >= 1 && typeof s.recoveryMs === 'number' \
             && s.events >= {{sse: {}, ws: {}}}[p] + 3; }})",
                before["sse"]["events"], before["ws"]["events"]
            );
            wait_until(&page, &recovered, STATE, PATIENCE)
                .await
                .context("both panels recover from the drop")?;
            let wb = eval_json(&page, STATE).await?;
            ensure!(
                wb["lastDrop"]["dropped"] == 2,
                "one SSE and one WS stream dropped: {wb}"
            );
            for panel in ["sse", "ws"] {
                let p = &wb[panel];
                ensure!(p["lost"] == 0, "{panel} lost events across the drop: {p}");
                ensure!(
                    p["dups"] == 0,
                    "{panel} saw duplicates across the drop: {p}"
                );
                ensure!(p["gaps"] == 0, "{panel} got a gap: {p}");
                ensure!(
                    p["resume"] == "replay",
                    "{panel} resumed from the ring: {p}"
                );
                ensure!(p["state"] == "open", "{panel}: {p}");
            }
            screenshot(&page, "drop_all_recovers_both_panels_without_loss").await?;
            console.assert_none("across a drop-all")?;
            browser.close().await;
            server.shutdown().await?;
            Ok(())
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_stops_the_counters() {
    run_browser_test("disconnect_stops_the_counters", |exe| async move {
        let server = start_server();
        let browser = Chromium::launch(&exe, None).await?;
        let (page, console) = load(&browser, &server.http_url()).await?;
        connect_both(&page, 3, PATIENCE).await?;
        click(&page, "#sse-disconnect").await?;
        click(&page, "#ws-disconnect").await?;
        let closed = "['sse', 'ws'].every((p) => window.workbench[p].state === 'closed')";
        wait_until(&page, closed, STATE, PATIENCE).await?;
        let counters = "['sse', 'ws'].map((p) => { const s = window.workbench[p]; \
                        return [s.state, s.events, s.lastId, s.reconnects]; })";
        let first = eval_json(&page, counters).await?;
        // At 5 Hz, five events would have arrived in this second.
        tokio::time::sleep(Duration::from_millis(1200)).await;
        let second = eval_json(&page, counters).await?;
        ensure!(
            first == second,
            "counters moved after Disconnect: {first} -> {second}"
        );
        ensure!(
            second[0][0] == "closed" && second[1][0] == "closed",
            "{second}"
        );
        // The browser really let go of both streams (not just the page's
        // counting): the server sees none open.
        support::wait_stats(&server, "no open streams", |s| {
            s["connections_open_total"] == 0
        })
        .await;
        screenshot(&page, "disconnect_stops_the_counters").await?;
        console.assert_none("around Disconnect")?;
        browser.close().await;
        server.shutdown().await?;
        Ok(())
    })
    .await;
}
