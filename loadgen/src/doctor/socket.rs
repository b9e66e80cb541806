//! The WebSocket beside (or instead of) the stream: does the upgrade get
//! through, does a ping come back, and, where the origin announces RFC
//! 8441, does a WebSocket over HTTP/2 open.

use std::time::Duration;

use edge::H2Settings;
use tokio::time::Instant;

use super::check::{budget, Check, DoctorError};
use super::origin::{dialer, Place};
use crate::client::{locate, open_ws, open_ws_h2, ClientError, H2Pool, Trust, ALPN_H2, ALPN_HTTP1};

/// The WebSocket URL of the same origin when the SSE path is `/sse`.
pub fn beside(sse: &url::Url) -> Option<String> {
    let path = sse.path().strip_suffix("/sse")?;
    let scheme = if sse.scheme() == "https" { "wss" } else { "ws" };
    let mut ws = sse.clone();
    ws.set_scheme(scheme).ok()?;
    ws.set_path(&format!("{path}/ws"));
    ws.set_query(None);
    Some(ws.to_string())
}

pub async fn checks(
    ws_url: &str,
    trust: &Trust,
    headers: &[(http::HeaderName, http::HeaderValue)],
    allow_remote: bool,
    announced: Option<H2Settings>,
    deadline: Instant,
    out: &mut Vec<Check>,
) -> Result<(), DoctorError> {
    let url = url::Url::parse(ws_url).map_err(|e| crate::client::TargetError::BadUrl {
        url: ws_url.into(),
        reason: e.to_string(),
    })?;
    let (addr, host) = locate(&url, ws_url, allow_remote).await?;
    let place = Place {
        url,
        addr,
        host,
        trust: trust.clone(),
        headers: headers.to_vec(),
    };
    // Over TLS a WebSocket offers http/1.1 alone: offered h2, a server
    // picks it and the upgrade has nowhere to go.
    let endpoint = place.endpoint(ws_url, &[ALPN_HTTP1])?;
    let wait = budget(deadline, Duration::from_secs(5));
    let opened = tokio::time::timeout(wait, open_ws(&dialer(), &endpoint, 0, ws_url)).await;
    let mut ws = match opened {
        Ok(Ok(ws)) => {
            out.push(Check::pass(
                "WebSocket upgrade",
                format!("{ws_url}: 101 Switching Protocols"),
            ));
            ws
        }
        Ok(Err(ClientError::Status { status, .. } | ClientError::NoUpgrade { status, .. })) => {
            out.push(Check::fail(
                "WebSocket upgrade",
                format!("{ws_url}: answered {status} instead of 101"),
                "the upgrade must reach the server: nginx `proxy_http_version 1.1;`, `proxy_set_header Upgrade $http_upgrade;`, `proxy_set_header Connection $connection_upgrade;` (HAProxy in `mode http` forwards it itself)",
            ));
            return Ok(());
        }
        Ok(Err(e)) => {
            out.push(Check::fail(
                "WebSocket upgrade",
                e.to_string(),
                "is a WebSocket served at that URL?",
            ));
            return Ok(());
        }
        Err(_) => {
            out.push(Check::fail(
                "WebSocket upgrade",
                format!("{ws_url}: no answer within {} ms", wait.as_millis()),
                "is a WebSocket served at that URL?",
            ));
            return Ok(());
        }
    };
    let pong_wait = budget(deadline, Duration::from_secs(3));
    out.push(match ws.ping_pong(pong_wait).await {
        Ok(rtt) => Check::pass("ping/pong", format!("pong after {:.1} ms", rtt.as_secs_f64() * 1e3)),
        Err(e) => Check::fail(
            "ping/pong",
            e.to_string(),
            "the server must answer pings (and a proxy must pass them): idle WebSockets are detected by them",
        ),
    });
    ws.close().await;
    if announced.is_some_and(|s| s.enable_connect_protocol) && place.url.scheme() == "wss" {
        let https = ws_url.replacen("wss://", "https://", 1);
        let h2 = place.endpoint(&https, &[ALPN_H2])?;
        let pool = H2Pool::new(h2, dialer(), 1);
        let wait = budget(deadline, Duration::from_secs(5));
        out.push(
            match tokio::time::timeout(wait, open_ws_h2(&pool, 0, &https)).await {
                Ok(Ok(_)) => Check::pass(
                    "WebSocket over h2 open",
                    "extended CONNECT answered 200: a WebSocket on the HTTP/2 connection",
                ),
                Ok(Err(e)) => Check::fail(
                    "WebSocket over h2 open",
                    e.to_string(),
                    "the origin announces RFC 8441 but refused it",
                ),
                Err(_) => Check::fail(
                    "WebSocket over h2 open",
                    "no answer to the extended CONNECT",
                    "the origin announces RFC 8441 but did not answer",
                ),
            },
        );
    }
    Ok(())
}
