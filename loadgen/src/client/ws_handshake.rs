//! The WebSocket opening handshake over HTTP/1.1 (RFC 6455 §4.1): a GET
//! with `Upgrade: websocket` written and its answer read by the HTTP/1.1
//! reader of the event streams ([`h1_response`]), then checked: a `101`
//! whose `Upgrade`, `Connection` and `Sec-WebSocket-Accept` say the server
//! speaks WebSocket for this very request. The key and the accept value
//! are tungstenite's (`generate_key`, `derive_accept_key`).
//!
//! The reader's buffer is handed on with the socket: a server may send its
//! first frame in the same segment as the `101`, and those bytes are
//! already in it.

use tungstenite::handshake::client::generate_key;
use tungstenite::handshake::derive_accept_key;

use super::endpoint::Endpoint;
use super::error::ClientError;
use super::h1_response;
use super::io::Io;
use super::read_buffer::ReadBuffer;
use super::request::{websocket_request, Body};

/// A socket on which the server switched to WebSocket.
pub struct Switched {
    pub io: Io,
    /// The read buffer, with what the server sent after the `101` head
    /// unread in it.
    pub read: ReadBuffer,
}

/// Asks for a WebSocket at `url` (the endpoint's URL, or it with a query
/// added) on `io`, connected to the endpoint, and checks the answer. A
/// status other than 101 is [`ClientError::NoUpgrade`] with the start of
/// its body.
pub async fn switch(io: Io, endpoint: &Endpoint, url: &str) -> Result<Switched, ClientError> {
    let shown = endpoint.shown();
    let key = generate_key();
    let req = upgrade_request(endpoint, url, &key)?;
    let (head, body) = h1_response::send(io, &req, shown).await?;
    let Some(upgrade) = head.upgrade else {
        return Err(ClientError::NoUpgrade {
            url: shown.clone(),
            status: head.status,
            body: body.error_snippet().await,
        });
    };
    check_switch(&upgrade, &key).map_err(|detail| ClientError::protocol(shown, detail))?;
    let (io, read) = body.into_upgraded();
    Ok(Switched { io, read })
}

/// The upgrade request: origin-form of `url`, `Host` and the extra headers
/// of the endpoint, and the WebSocket headers with `key`.
fn upgrade_request(
    endpoint: &Endpoint,
    url: &str,
    key: &str,
) -> Result<http::Request<Body>, ClientError> {
    let bad_url = |e: &dyn std::fmt::Display| {
        ClientError::protocol(endpoint.shown(), format!("bad URL `{url}`: {e}"))
    };
    let uri: http::Uri = url.parse().map_err(|e| bad_url(&e))?;
    let origin_form = uri
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
    let mut req = websocket_request(http::Method::GET, endpoint, false);
    *req.uri_mut() = http::Uri::from(origin_form);
    let headers = req.headers_mut();
    let key = http::HeaderValue::from_str(key).map_err(|e| bad_url(&e))?;
    for (name, value) in [
        (
            http::header::UPGRADE,
            http::HeaderValue::from_static("websocket"),
        ),
        (
            http::header::CONNECTION,
            http::HeaderValue::from_static("Upgrade"),
        ),
        (
            http::header::SEC_WEBSOCKET_VERSION,
            http::HeaderValue::from_static("13"),
        ),
        (http::header::SEC_WEBSOCKET_KEY, key),
    ] {
        headers.insert(name, value);
    }
    Ok(req)
}

/// Whether a `101` switched to WebSocket for the request with `key`.
fn check_switch(upgrade: &h1_response::Upgrade, key: &str) -> Result<(), String> {
    if !upgrade.protocol.eq_ignore_ascii_case("websocket") {
        return Err(format!(
            "the 101 answer's Upgrade header is `{}`, not `websocket`",
            upgrade.protocol
        ));
    }
    if !upgrade.connection_upgrade {
        return Err("the 101 answer's Connection header does not list `upgrade`".into());
    }
    let expected = derive_accept_key(key.as_bytes());
    if upgrade.websocket_accept != expected {
        return Err(format!(
            "the 101 answer's Sec-WebSocket-Accept `{}` is not `{expected}`, the one for this request's key: not a WebSocket server, or something in between rewrote the handshake",
            upgrade.websocket_accept
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoint() -> Endpoint {
        Endpoint::new("ws://127.0.0.1:9/ws", "127.0.0.1:9".parse().unwrap(), None)
            .unwrap()
            .with_header(
                http::HeaderName::from_static("authorization"),
                http::HeaderValue::from_static("Bearer x"),
            )
    }

    #[test]
    fn the_users_own_accept_header_is_kept_and_the_defaults_are_not() {
        let e = endpoint().with_header(
            http::header::ACCEPT,
            http::HeaderValue::from_static("application/x-custom"),
        );
        let req = upgrade_request(&e, "ws://127.0.0.1:9/ws", "dGhlIHNhbXBsZSBub25jZQ==").unwrap();
        let accept: Vec<_> = req.headers().get_all("accept").iter().collect();
        assert_eq!(accept, ["application/x-custom"]);
        assert!(req.headers().get("content-type").is_none());
    }

    #[test]
    fn the_request_asks_for_a_websocket_at_the_urls_path_and_query() {
        let req = upgrade_request(
            &endpoint(),
            "ws://127.0.0.1:9/ws?lastEventId=7",
            "dGhlIHNhbXBsZSBub25jZQ==",
        )
        .unwrap();
        assert_eq!(req.uri(), "/ws?lastEventId=7");
        let h = req.headers();
        assert_eq!(h["host"], "127.0.0.1:9");
        assert_eq!(h["upgrade"], "websocket");
        assert_eq!(h["connection"], "Upgrade");
        assert_eq!(h["sec-websocket-version"], "13");
        assert_eq!(h["sec-websocket-key"], "dGhlIHNhbXBsZSBub25jZQ==");
        assert_eq!(h["authorization"], "Bearer x");
        assert!(h.get("content-type").is_none() && h.get("accept").is_none());
    }

    #[test]
    fn the_answer_must_switch_for_this_key() {
        // RFC 6455 §1.3's example key and accept value.
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let good = h1_response::Upgrade {
            protocol: "WebSocket".into(),
            connection_upgrade: true,
            websocket_accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
        };
        assert_eq!(check_switch(&good, key), Ok(()));
        let wrong_accept = h1_response::Upgrade {
            websocket_accept: "AAAA".into(),
            ..good
        };
        let e = check_switch(&wrong_accept, key).unwrap_err();
        assert!(e.contains("Sec-WebSocket-Accept `AAAA`"), "{e}");
        let no_connection = h1_response::Upgrade {
            protocol: "websocket".into(),
            connection_upgrade: false,
            websocket_accept: "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".into(),
        };
        assert!(check_switch(&no_connection, key).is_err());
        assert!(check_switch(&h1_response::Upgrade::default(), key).is_err());
    }
}
