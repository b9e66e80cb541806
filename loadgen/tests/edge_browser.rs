//! What a real Chromium does through HAProxy: with the page served over
//! HTTP/2 by the edge (which announces SETTINGS_ENABLE_CONNECT_PROTOCOL),
//! its `wss://` WebSocket opens on the page's own TCP connection, beside
//! the EventSource (RFC 8441): connecting both adds no connection. Served
//! by actix directly, the WebSocket adds one (HTTP/1.1). Counted from the
//! kernel's socket table: the browser's established connections to each
//! port, before and after Connect. The browser model, asked for the same,
//! makes the same connections.
//!
//! And the edge's SETTINGS_MAX_CONCURRENT_STREAMS is what the browser
//! holds: through HAProxy (100) and nginx (128) Chromium opens that many
//! EventSources on the page's h2 connection, opens no other for them and
//! queues the rest; the model learns the number from the same SETTINGS and
//! holds as many.
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

/// The feed server (TLS with the edge's generated certificate) and a tuned
/// `kind` edge in front of it.
async fn server_behind_edge(
    kind: EdgeKind,
    dir: &std::path::Path,
) -> anyhow::Result<(server::RunningServer, Edge, EdgeCert)> {
    server::tls::install_crypto_provider();
    let cert = EdgeCert::generate(dir)?;
    let mut config = server::ServerConfig::ephemeral();
    config.rate = 5.0;
    config.workers = Some(2);
    config.tls_cert = Some(cert.cert_path.clone());
    config.tls_key = Some(cert.key_path.clone());
    let server = server::run(config)?;
    let spec = EdgeSpec::new(kind, EdgeProfile::Tuned, server.http_addr.to_string())
        .with_cert(cert.clone());
    let edge = tokio::task::spawn_blocking(move || Edge::start(spec)).await??;
    Ok((server, edge, cert))
}

/// The run options of the browser model against `https` (an edge or the
/// server's own TLS origin), trusting `cert`.
fn model_options(server: &server::RunningServer, https: String, cert: &EdgeCert) -> RunOptions {
    RunOptions {
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
    }
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
        let dir = tempfile::tempdir()?;
        let (server, edge, cert) = server_behind_edge(EdgeKind::Haproxy, dir.path()).await?;
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
            let opts = model_options(&server, https, &cert);
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

/// Opens `n` EventSources to the page's own origin (the edge, over h2) and
/// returns how many opened once the count stopped growing.
async fn eventsources_opened(page: &chromiumoxide::Page, n: usize) -> anyhow::Result<u64> {
    let open = format!(
        "(() => {{ window.opened = 0; window.sources = []; \
         for (let i = 0; i < {n}; i += 1) {{ \
           const es = new EventSource('/sse?edge_limit=' + i); \
           es.addEventListener('open', () => {{ window.opened += 1; }}); \
           window.sources.push(es); }} \
         return true; }})()"
    );
    eval_json(page, &open).await?;
    let mut last = u64::MAX;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        // Settled: the same count over two seconds, after a first wait.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = eval_json(page, "window.opened")
            .await?
            .as_u64()
            .unwrap_or(0);
        if now == last || tokio::time::Instant::now() >= deadline {
            return Ok(now);
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_holds_as_many_streams_as_the_edge_announces() {
    let kinds: Vec<EdgeKind> = [EdgeKind::Haproxy, EdgeKind::Nginx]
        .into_iter()
        .filter(|k| edge::installed_or_skip(*k))
        .collect();
    if kinds.is_empty() {
        return;
    }
    run_browser_test("edge_browser_streams", |exe| async move {
        for kind in kinds {
            let dir = tempfile::tempdir()?;
            let (server, edge, cert) = server_behind_edge(kind, dir.path()).await?;
            let spki = cert.spki_sha256.clone().context("a generated certificate")?;
            let origin = edge.url().trim_end_matches('/').to_string();

            // The model first: what the edge announces, and what it holds
            // of more streams than that on one origin.
            let announced =
                edge::read_h2_settings(edge.addr(), "localhost", &cert.cert_path, PATIENCE)
                    .await
                .context("reading the edge's SETTINGS")?
                .max_concurrent_streams
                .context("the edge announces SETTINGS_MAX_CONCURRENT_STREAMS")?;
            let asked = announced as usize + 10;
            let spec = LimitSpec {
                cases: vec![LimitCase::new(Protocol::H2, 1, asked)],
                get_cap_ms: 300,
                ..LimitSpec::default()
            };
            let r = loadgen::limit::run(&spec, &model_options(&server, origin.clone(), &cert)).await?;
            let l = r.limit().cloned().context("a limit section")?;
            ensure!(
                l.h2_announced_max_streams == Some(announced),
                "{kind}: the model learns {announced}: {:?}",
                l.h2_announced_max_streams
            );
            let modelled = l.cases[0].streams_opened;

            // Then Chromium, on a page served by the edge over h2.
            let browser = Chromium::launch(&exe, Some(&spki)).await?;
            let (page, _console) = browser.open(&format!("{origin}/info")).await?;
            // Chromium sometimes keeps an idle spare connection from the
            // page load: count what the streams add, not what is open.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let before = edge::established_to(edge.addr()).context("reading /proc/net/tcp")?;
            let opened = eventsources_opened(&page, asked).await?;
            let after = edge::established_to(edge.addr()).context("reading /proc/net/tcp")?;
            let added = after.saturating_sub(before);
            page.close().await.ok();
            browser.close().await;
            println!(
                "{kind}: announces {announced}; {asked} EventSources: Chromium opened {opened}, adding {added} connection(s) to the page's {before}; the model {modelled}"
            );
            ensure!(
                opened == announced as u64,
                "{kind}: Chromium holds the announced {announced} streams, not {opened}"
            );
            ensure!(
                added == 0,
                "{kind}: Chromium queues the rest on the page's h2 connection, but opened {added} more"
            );
            ensure!(
                modelled == opened as usize,
                "{kind}: the model opened {modelled}, Chromium {opened}"
            );
            drop(edge);
        }
        Ok(())
    })
    .await;
}
