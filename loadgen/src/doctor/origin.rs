//! The origin's TLS side: does it offer HTTP/2 (ALPN), and what does its
//! HTTP/2 announce: how many streams a browser may open on one connection,
//! and whether a WebSocket can ride on it (RFC 8441).

use std::net::SocketAddr;
use std::time::Duration;

use edge::{H2Settings, Preface};
use tokio::time::Instant;

use super::check::{budget, Check, DoctorError};
use crate::client::{
    client_config, Dialer, Endpoint, Io, SourceAddresses, TlsSettings, Trust, ALPN_H2, ALPN_HTTP1,
};

/// Chromium's own cap on streams per HTTP/2 connection (it assumes 100
/// when none is announced and never goes past 256).
const BROWSER_STREAMS: u32 = 100;

/// Where the endpoint is.
#[derive(Debug, Clone)]
pub struct Place {
    pub url: url::Url,
    pub addr: SocketAddr,
    pub host: String,
    pub trust: Trust,
    /// Sent with every request to the endpoint (`--header`).
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
}

impl Place {
    /// The endpoint at `url`, offering `alpn` over TLS (required: none).
    pub fn endpoint(&self, url: &str, alpn: &[&[u8]]) -> Result<Endpoint, DoctorError> {
        let secure = matches!(url.split(':').next(), Some("https" | "wss"));
        let tls = if secure {
            Some(TlsSettings {
                config: client_config(&self.trust, alpn)?,
                server_name: self.host.clone(),
                require_alpn: None,
            })
        } else {
            None
        };
        let endpoint = Endpoint::new(url, self.addr, tls)?;
        Ok(self.headers.iter().fold(endpoint, |e, (name, value)| {
            e.with_header(name.clone(), value.clone())
        }))
    }
}

/// A dialer with no source-address games.
pub fn dialer() -> Dialer {
    Dialer::new(SourceAddresses(Vec::new()))
}

/// ALPN and SETTINGS; what the server announced, when it speaks h2.
pub async fn checks(place: &Place, deadline: Instant, out: &mut Vec<Check>) -> Option<H2Settings> {
    let wait = budget(deadline, Duration::from_secs(5));
    let origin = format!(
        "https://{}:{}/",
        place.url.host_str().unwrap_or("?"),
        place.addr.port()
    );
    let endpoint = match place.endpoint(&origin, &[ALPN_H2, ALPN_HTTP1]) {
        Ok(e) => e,
        Err(e) => {
            out.push(Check::fail("TLS", e.to_string(), "check the URL"));
            return None;
        }
    };
    let io = match tokio::time::timeout(wait, dialer().connect(&endpoint, 0)).await {
        Ok(Ok(io)) => io,
        Ok(Err(e)) => {
            out.push(Check::fail(
                "TLS",
                e.to_string(),
                "trust the server's certificate with --ca-cert FILE (or --insecure)",
            ));
            return None;
        }
        Err(_) => {
            out.push(Check::fail(
                "TLS",
                format!("no handshake within {wait:?}"),
                "is the server up?",
            ));
            return None;
        }
    };
    let alpn = match &io {
        Io::Tls(t) => t.get_ref().1.alpn_protocol().map(<[u8]>::to_vec),
        _ => None,
    };
    if alpn.as_deref() != Some(ALPN_H2) {
        let got = alpn.map_or("none".into(), |a| String::from_utf8_lossy(&a).into_owned());
        out.push(Check::warn(
            "HTTP/2",
            format!("ALPN picked {got}, not h2"),
            "enable HTTP/2 at the edge (nginx `listen … ssl http2`, HAProxy `alpn h2,http/1.1`): over HTTP/1.1 a browser holds 6 streams per origin",
        ));
        return None;
    }
    out.push(Check::pass("HTTP/2", "ALPN h2 offered and chosen"));
    let preface = tokio::time::timeout(
        budget(deadline, Duration::from_secs(5)),
        edge::preface_of(io),
    )
    .await;
    let settings = match preface {
        Ok(Ok(Preface::Settings(s))) => s,
        other => {
            out.push(Check::fail(
                "h2 SETTINGS",
                format!("no SETTINGS frame first ({other:?})"),
                "the server chose h2 by ALPN but does not speak it",
            ));
            return None;
        }
    };
    out.push(match settings.max_concurrent_streams {
        None => Check::pass(
            "h2 max streams",
            format!("none announced (unlimited; Chromium then opens {BROWSER_STREAMS} per connection)"),
        ),
        Some(n) if n >= BROWSER_STREAMS => Check::pass(
            "h2 max streams",
            format!("SETTINGS_MAX_CONCURRENT_STREAMS {n}: a browser opens up to {} streams on its one connection", n.min(256)),
        ),
        Some(n) => Check::warn(
            "h2 max streams",
            format!("SETTINGS_MAX_CONCURRENT_STREAMS {n}: a browser's streams beyond {n} wait"),
            "raise it (nginx `http2_max_concurrent_streams`, HAProxy `tune.h2.max-concurrent-streams`)",
        ),
    });
    out.push(if settings.enable_connect_protocol {
        Check::pass(
            "WebSocket over h2",
            "SETTINGS_ENABLE_CONNECT_PROTOCOL: a wss:// WebSocket can share the page's connection (RFC 8441)",
        )
    } else {
        Check::warn(
            "WebSocket over h2",
            "no SETTINGS_ENABLE_CONNECT_PROTOCOL: a browser opens a separate HTTP/1.1 connection per wss:// WebSocket",
            "HAProxy (2.4 and later) at the edge announces it and upgrades to HTTP/1.1 behind; nginx 1.22 and actix cannot",
        )
    });
    Some(settings)
}
