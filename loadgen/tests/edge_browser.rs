//! What a real Chromium does through HAProxy: with the page served over
//! HTTP/2 by the edge (which announces SETTINGS_ENABLE_CONNECT_PROTOCOL),
//! its `wss://` WebSocket opens on the page's own TCP connection, beside
//! the EventSource (RFC 8441); served by actix directly, the WebSocket
//! needs a second, HTTP/1.1 connection. Counted from the kernel's socket
//! table: the browser's established connections to each port.
//!
//! Skips loudly without Chromium (`WORKBENCH_REQUIRE_BROWSER=1` fails
//! instead) or without HAProxy (`WORKBENCH_REQUIRE_EDGE=1`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use edge::{Edge, EdgeCert, EdgeKind, EdgeProfile, EdgeSpec};

#[path = "../../server/tests/support/browser.rs"]
#[allow(dead_code)]
mod browser;

use browser::{click, eval_json, run_browser_test, wait_until, Chromium};

const PATIENCE: Duration = Duration::from_secs(20);
const STATE: &str =
    "({sse: window.workbench.sse, ws: window.workbench.ws, errors: window.workbench.errors})";

fn haproxy_or_skip() -> bool {
    match EdgeKind::Haproxy.locate() {
        Ok(_) => true,
        Err(e) => {
            if std::env::var("WORKBENCH_REQUIRE_EDGE").as_deref() == Ok("1") {
                panic!("WORKBENCH_REQUIRE_EDGE=1 but {e}");
            }
            eprintln!("SKIPPED: {e}");
            false
        }
    }
}

/// Loads `origin/`, connects both panels (to the page's own origin, as the
/// page picks), waits for events on both; the browser's established
/// connections to `port_addr` then, and what the WebSocket panel shows.
async fn page_with_both_streams(
    browser: &Chromium,
    origin: &str,
    port_addr: SocketAddr,
) -> anyhow::Result<(usize, serde_json::Value)> {
    let (page, _console) = browser.open(&format!("{origin}/")).await?;
    wait_until(&page, "window.workbench.ready", STATE, PATIENCE).await?;
    ensure!(
        eval_json(&page, "window.workbench.pageProtocol").await? == "h2",
        "the page is served over HTTP/2"
    );
    click(&page, "#sse-connect").await?;
    click(&page, "#ws-connect").await?;
    wait_until(
        &page,
        "window.workbench.sse.events >= 3 && window.workbench.ws.events >= 3",
        STATE,
        PATIENCE,
    )
    .await?;
    let ws = eval_json(&page, "window.workbench.ws").await?;
    ensure!(
        ws["url"].as_str().is_some_and(|u| u.starts_with("wss://")),
        "the WebSocket is wss:// to the page's origin: {ws}"
    );
    let sse = eval_json(&page, "window.workbench.sse").await?;
    ensure!(
        sse["url"].as_str().is_some_and(|u| u.starts_with(origin)),
        "the EventSource goes to {origin}: {sse}"
    );
    let connections = edge::established_to(port_addr).context("reading /proc/net/tcp")?;
    page.close().await.ok();
    Ok((connections, ws))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_haproxy_the_websocket_shares_the_pages_connection() {
    if !haproxy_or_skip() {
        return;
    }
    run_browser_test("edge_browser", |exe| async move {
        server::tls::install_crypto_provider();
        let dir = tempfile::tempdir()?;
        let cert = EdgeCert::generate(dir.path())?;
        let mut config = server::ServerConfig::ephemeral();
        config.rate = 5.0;
        config.workers = Some(2);
        config.tls_cert = Some(cert.cert_path.clone());
        config.tls_key = Some(cert.key_path.clone());
        let server = server::run(config)?;
        let spec = EdgeSpec::new(
            EdgeKind::Haproxy,
            EdgeProfile::Tuned,
            server.http_addr.to_string(),
        )
        .with_cert(cert.clone());
        let edge = tokio::task::spawn_blocking(move || Edge::start(spec)).await??;
        let spki = cert
            .spki_sha256
            .clone()
            .context("a generated certificate")?;
        let browser = Chromium::launch(&exe, Some(&spki)).await?;

        let edge_origin = edge.url().trim_end_matches('/').to_string();
        let (through_edge, ws) =
            page_with_both_streams(&browser, &edge_origin, edge.addr()).await?;
        ensure!(
            through_edge == 1,
            "through HAProxy: page, EventSource and WebSocket on one connection, got {through_edge}"
        );
        // Behind the edge the server saw HTTP/1.1 for the WebSocket.
        ensure!(ws["protocol"] == "http/1.1", "{ws}");

        let direct_addr = server.https_addr.context("the TLS listener")?;
        let direct_origin = server.https_url().context("the TLS listener")?;
        let (direct, _) = page_with_both_streams(&browser, &direct_origin, direct_addr).await?;
        ensure!(
            direct == 2,
            "direct to actix: the WebSocket needs its own HTTP/1.1 connection, got {direct}"
        );
        browser.close().await;
        drop(edge);
        Ok(())
    })
    .await;
}
