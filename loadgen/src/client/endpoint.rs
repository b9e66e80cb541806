//! Where one kind of stream or request goes: a full URL (scheme, host,
//! port, path and query, as given), the address to connect to, extra
//! headers sent with every request, and TLS settings for `https`/`wss`.
//!
//! Every opener takes an endpoint instead of assembling URLs itself, so a
//! user's own `--sse-url`/`--ws-url` with any path and query, custom headers
//! (authentication) and TLS are settings of the endpoint, not new code.

use std::net::SocketAddr;
use std::sync::Arc;

use http::{HeaderName, HeaderValue};
use url::{Position, Url};

use super::tls::TlsSettings;

/// Why an endpoint could not be made from a URL.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    #[error("`{url}` is not a valid URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("`{url}`: {scheme}:// needs TLS settings (a certificate to trust, or --insecure)")]
    NeedsTls { url: String, scheme: String },
    #[error("`{url}`: TLS settings given for a {scheme}:// URL")]
    NotTls { url: String, scheme: String },
}

/// One endpoint. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Endpoint {
    url: Url,
    addr: SocketAddr,
    /// The URL as messages show it.
    shown: Arc<str>,
    headers: Arc<[(HeaderName, HeaderValue)]>,
    tls: Option<TlsSettings>,
}

impl Endpoint {
    /// `url` (`http`, `https`, `ws` or `wss`), reached at `addr`; TLS
    /// settings must come with `https`/`wss` and only with them.
    pub fn new(
        url: &str,
        addr: SocketAddr,
        tls: Option<TlsSettings>,
    ) -> Result<Endpoint, EndpointError> {
        let bad = |reason: String| EndpointError::BadUrl {
            url: url.to_string(),
            reason,
        };
        let parsed = Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !parsed.has_host() {
            return Err(bad("no host".into()));
        }
        // What a request is built from must also be an HTTP URI, so building
        // one never fails later.
        http::Uri::try_from(parsed.as_str()).map_err(|e| bad(e.to_string()))?;
        let scheme = parsed.scheme().to_string();
        let secure = match scheme.as_str() {
            "https" | "wss" => true,
            "http" | "ws" => false,
            other => return Err(bad(format!("`{other}://` is not http, https, ws or wss"))),
        };
        match (secure, tls.is_some()) {
            (true, false) => {
                return Err(EndpointError::NeedsTls {
                    url: url.to_string(),
                    scheme,
                })
            }
            (false, true) => {
                return Err(EndpointError::NotTls {
                    url: url.to_string(),
                    scheme,
                })
            }
            _ => {}
        }
        Ok(Endpoint {
            shown: parsed.as_str().into(),
            url: parsed,
            addr,
            headers: Arc::new([]),
            tls,
        })
    }

    /// The same endpoint sending `name: value` with every request too.
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Endpoint {
        let mut headers = self.headers.to_vec();
        headers.push((name, value));
        self.headers = headers.into();
        self
    }

    /// The same origin, settings and headers, at another path (and query).
    pub fn at(&self, path_and_query: &str) -> Endpoint {
        let mut url = self.url.clone();
        let (path, query) = match path_and_query.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (path_and_query, None),
        };
        url.set_path(path);
        url.set_query(query);
        Endpoint {
            shown: url.as_str().into(),
            url,
            ..self.clone()
        }
    }

    /// Where to connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The URL, for messages.
    pub fn shown(&self) -> &Arc<str> {
        &self.shown
    }

    /// The absolute URL (HTTP/2 requests carry scheme and authority).
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// `host:port` as the `Host` header (HTTP/1.1) carries it.
    pub fn authority(&self) -> &str {
        &self.url[Position::BeforeHost..Position::AfterPort]
    }

    /// The path and query, as an HTTP/1.1 request line carries them.
    pub fn path_and_query(&self) -> &str {
        &self.url[Position::BeforePath..Position::AfterQuery]
    }

    /// The URL with `name=value` added to its query (a WebSocket resumes by
    /// query, having no `Last-Event-ID` header).
    pub fn url_with_query(&self, name: &str, value: &str) -> String {
        let mut url = self.url.clone();
        url.query_pairs_mut().append_pair(name, value);
        url.into()
    }

    /// Extra headers for every request.
    pub fn headers(&self) -> &[(HeaderName, HeaderValue)] {
        &self.headers
    }

    /// TLS settings (`https`/`wss`), or `None` for a plain socket.
    pub fn tls(&self) -> Option<&TlsSettings> {
        self.tls.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr() -> SocketAddr {
        "127.0.0.1:8080".parse().unwrap()
    }

    #[test]
    fn urls_keep_their_path_and_query() {
        let e = Endpoint::new("http://localhost:8080/feed/sse?room=a", addr(), None).unwrap();
        assert_eq!(e.authority(), "localhost:8080");
        assert_eq!(e.path_and_query(), "/feed/sse?room=a");
        assert_eq!(&**e.shown(), "http://localhost:8080/feed/sse?room=a");
        assert_eq!(
            e.url_with_query("lastEventId", "7"),
            "http://localhost:8080/feed/sse?room=a&lastEventId=7"
        );
        let info = e.at("/info");
        assert_eq!(info.path_and_query(), "/info");
        assert_eq!(e.at("/echo?x=1").url(), "http://localhost:8080/echo?x=1");
        let v6 = Endpoint::new("ws://[::1]:9/ws", "[::1]:9".parse().unwrap(), None).unwrap();
        assert_eq!(v6.authority(), "[::1]:9");
    }

    #[test]
    fn schemes_and_tls_must_agree() {
        let e = Endpoint::new("https://localhost:1/sse", addr(), None).unwrap_err();
        assert!(e.to_string().contains("needs TLS"), "{e}");
        let e = Endpoint::new("ftp://localhost:1/sse", addr(), None).unwrap_err();
        assert!(e.to_string().contains("not http, https, ws or wss"), "{e}");
        let e = Endpoint::new("nope", addr(), None).unwrap_err();
        assert!(e.to_string().contains("not a valid URL"), "{e}");
        assert!(Endpoint::new("http://h:1/a b?c=`d`|^", addr(), None).is_ok());
        let tls = TlsSettings::http1(&crate::client::tls::Trust::Insecure, "localhost").unwrap();
        let e = Endpoint::new("http://localhost:1/", addr(), Some(tls)).unwrap_err();
        assert!(e.to_string().contains("TLS settings given"), "{e}");
    }

    #[test]
    fn headers_go_with_every_request() {
        let e = Endpoint::new("http://h:1/", addr(), None)
            .unwrap()
            .with_header(
                HeaderName::from_static("authorization"),
                HeaderValue::from_static("Bearer x"),
            );
        assert_eq!(e.at("/other").headers().len(), 1);
    }
}
