//! What a real Chromium does through HAProxy: with the page served over
//! HTTP/2 by the edge (which announces SETTINGS_ENABLE_CONNECT_PROTOCOL),
//! its `wss://` WebSocket opens on the page's own TCP connection, beside
//! the EventSource (RFC 8441): connecting both adds no connection. Served
//! by actix directly, the WebSocket adds one (HTTP/1.1). Counted from the
//! kernel's socket table: the browser's established connections to each
//! port, before and after Connect. The browser model, asked for the same,
//! makes the same connections.
//!
//! Skips loudly without Chromium (`WORKBENCH_REQUIRE_BROWSER=1` fails
//! instead) or without HAProxy (`WORKBENCH_REQUIRE_EDGE=1`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{ensure, Context as _};
use edge::{Edge, EdgeCert, EdgeKind, EdgeProfile, EdgeSpec};
use loadgen::client::Trust;
use loadgen::result::{LimitCase, LimitSpec, Protocol};
use loadgen::run::{RunOptions, ServerChoice};

#[path = "../../server/tests/support/browser.rs"]
#[allow(dead_code)]
mod browser;

use browser::{click, eval_json, run_browser_test, wait_until, Chromium};

const PATIENCE: Duration = Duration::from_secs(20);
const STATE: &str =
    "({sse: window.workbench.sse, ws: window.workbench.ws, errors: window.workbench.errors})";

fn haproxy_or_skip() -> bool {
    edge::installed_or_skip(EdgeKind::Haproxy)
}

/// Loads `origin/`, connects both panels (to the page's own origin, as the
/// page picks), waits for events on both. Returns the browser's
/// established connections to `port_addr` the streams added (after the
/// page settled, before Connect: Chromium may hold an idle spare
/// connection from the page load, which is not the streams'), and what the
/// WebSocket panel shows.
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
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = edge::established_to(port_addr).context("reading /proc/net/tcp")?;
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
    let after = edge::established_to(port_addr).context("reading /proc/net/tcp")?;
    page.close().await.ok();
    ensure!(before >= 1, "the page's own connection is open: {before}");
    Ok((after.saturating_sub(before), ws))
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
            through_edge == 0,
            "through HAProxy: the EventSource and WebSocket ride the page's connection, but {through_edge} more opened"
        );
        // Behind the edge the server saw HTTP/1.1 for the WebSocket; the
        // panel shows that the browser's side of it was h2 (RFC 8441).
        ensure!(ws["protocol"] == "http/1.1", "{ws}");
        ensure!(ws["edgeProtocol"] == "h2", "the panel shows h2: {ws}");

        let direct_addr = server.https_addr.context("the TLS listener")?;
        let direct_origin = server.https_url().context("the TLS listener")?;
        let (direct, ws) = page_with_both_streams(&browser, &direct_origin, direct_addr).await?;
        ensure!(ws["edgeProtocol"].is_null(), "no edge, none shown: {ws}");
        ensure!(
            direct == 1,
            "direct to actix: the WebSocket needs one HTTP/1.1 connection of its own, got {direct} more"
        );
        browser.close().await;

        // The browser model, asked for the same page (one EventSource and
        // one WebSocket on the h2 origin), through the edge and direct:
        // the connections it makes match Chromium's.
        let model = |https: String| {
            let opts = RunOptions {
                server: ServerChoice::External {
                    http_url: server.http_url(),
                    https_url: Some(https),
                    trust: Trust::CaFile(cert.cert_path.clone()),
                    allow_remote: false,
                },
                workers: None,
                retry: Duration::from_secs(1),
                worker_exe: None,
                shard: None,
                start_at_unix_ns: None,
            };
            async move {
                let spec = LimitSpec {
                    cases: vec![LimitCase {
                        ws_per_tab: 1,
                        ..LimitCase::new(Protocol::H2, 1, 1)
                    }],
                    get_cap_ms: 300,
                    ..LimitSpec::default()
                };
                let r = loadgen::limit::run(&spec, &opts).await?;
                let l = r.limit().cloned().context("a limit section")?;
                let c = &l.cases[0];
                ensure!(c.streams_opened == 1 && c.ws_opened == 1, "{c:?}");
                // Beyond the origin's one h2 connection (the page's).
                Ok::<_, anyhow::Error>((
                    l.h2_enable_connect_protocol,
                    c.connections + c.ws_connections.unwrap_or(0) - 1,
                ))
            }
        };
        let (learned, via_edge) = model(edge.url().trim_end_matches('/').to_string()).await?;
        ensure!(
            learned,
            "the model learns HAProxy's SETTINGS_ENABLE_CONNECT_PROTOCOL"
        );
        ensure!(
            via_edge == through_edge,
            "model {via_edge} vs Chromium {through_edge} through HAProxy"
        );
        let (learned, straight) = model(direct_origin.clone()).await?;
        ensure!(!learned, "actix announces no RFC 8441");
        ensure!(
            straight == direct,
            "model {straight} vs Chromium {direct} direct"
        );
        drop(edge);
        Ok(())
    })
    .await;
}
