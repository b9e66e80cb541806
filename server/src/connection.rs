//! One accepted connection: which protocol it speaks (the h2c preface on
//! the plain port, ALPN on the TLS port), then actix-http's HTTP/1.1 or
//! HTTP/2 dispatcher, in a task no larger than what that connection runs.
//!
//! Why not actix-web's `HttpServer`: it serves each connection with one
//! future sized for every protocol the port may speak, so actix-http's
//! HTTP/2 dispatcher (1,304 bytes on the plain port) sizes an HTTP/1.1
//! connection's future too, which uses 552 of them. actix-server's spawn
//! then holds that future twice (the value its `async move` block captures
//! and the same value being awaited), so the task of every HTTP/1.1
//! connection was a 2,816-byte allocation (5,120 on the TLS port). Here the
//! server is assembled from the same actix parts (actix-server's builder,
//! actix-http's HTTP/1.1 and HTTP/2 services, actix-tls's rustls acceptor)
//! and the connection's future is boxed: the task holds a pointer; the box
//! holds the opening (a peek, or the TLS handshake), then the HTTP/1.1
//! dispatcher, or a pointer to a boxed HTTP/2 one.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_http::error::DispatchError;
use actix_server::GracefulShutdownSignal;
use actix_service::{fn_service, Service, ServiceFactory, ServiceFactoryExt};
use actix_tls::accept::rustls_0_23::{Acceptor, TlsStream};
use actix_tls::accept::TlsError;
use futures_util::future::LocalBoxFuture;
use tokio::net::TcpStream;

/// The protocol an accepted connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Speaks {
    Http1,
    Http2,
}

/// A connection after its opening: the stream to serve, its protocol, the
/// peer (for `HttpRequest::peer_addr`).
pub(crate) type Opened<Io> = (Io, Speaks, Option<SocketAddr>);

/// The start of the HTTP/2 preface (RFC 9113 §3.4): as much of it as one
/// peek reliably sees. actix's own h2c detection compares the same bytes.
const H2_PREFACE: &[u8; 12] = b"PRI * HTTP/2";

/// How long a client has for its first bytes on the plain port (which
/// tell HTTP/1.1 from h2c), and then again for its request head (actix's
/// `client_request_timeout`, set from this): actix's default, 5 s. A client
/// that connects and says nothing is closed after it, instead of holding
/// its task for ever (actix's own h2c detection waits without a limit).
pub(crate) const REQUEST_HEAD_WITHIN: Duration = Duration::from_secs(5);

/// The plain port's opening: one peek at the first bytes; the HTTP/2
/// preface means h2c with prior knowledge, anything else HTTP/1.1 (whose
/// parser then refuses garbage). A graceful stop (`stop`) ends the wait at
/// once, as it ends an idle keep-alive connection: a silent client does
/// not hold the server's stop for the rest of the limit.
pub(crate) fn plain(
    stop: GracefulShutdownSignal,
) -> impl ServiceFactory<
    TcpStream,
    Config = (),
    Response = Opened<TcpStream>,
    Error = DispatchError,
    InitError = (),
> {
    fn_service(move |io: TcpStream| {
        let stop = stop.clone();
        async move {
            let mut first = [0u8; 12];
            tokio::select! {
                peeked = tokio::time::timeout(REQUEST_HEAD_WITHIN, io.peek(&mut first)) => {
                    peeked.map_err(|_| DispatchError::SlowRequestTimeout)??;
                }
                () = stop.notified() => {
                    return Err(DispatchError::Io(io::Error::new(
                        io::ErrorKind::ConnectionAborted,
                        "the server is stopping",
                    )));
                }
            }
            let speaks = if &first == H2_PREFACE {
                Speaks::Http2
            } else {
                Speaks::Http1
            };
            // As actix does: a socket that refuses it is about to fail anyway.
            let _ = io.set_nodelay(true);
            let peer = io.peer_addr().ok();
            Ok((io, speaks, peer))
        }
    })
}

/// The TLS port's opening: actix-tls's rustls acceptor (its handshake
/// timeout, 3 s; its limit of handshakes in flight per worker), then the
/// protocol ALPN chose. A configuration without ALPN gets `h2` and
/// `http/1.1`, as actix's own TLS service adds them.
pub(crate) fn tls(
    mut config: rustls::ServerConfig,
) -> impl ServiceFactory<
    TcpStream,
    Config = (),
    Response = Opened<TlsStream<TcpStream>>,
    Error = DispatchError,
    InitError = (),
> {
    if config.alpn_protocols.is_empty() {
        config.alpn_protocols = crate::tls::ALPN.iter().map(|p| p.to_vec()).collect();
    }
    Acceptor::new(config)
        .map_err(handshake_failed)
        .and_then(fn_service(|io: TlsStream<TcpStream>| async move {
            let speaks = match io.get_ref().1.alpn_protocol() {
                Some(b"h2") => Speaks::Http2,
                _ => Speaks::Http1,
            };
            let _ = io.get_ref().0.set_nodelay(true);
            let peer = io.get_ref().0.peer_addr().ok();
            Ok::<_, DispatchError>((io, speaks, peer))
        }))
}

fn handshake_failed(e: TlsError<io::Error, Infallible>) -> DispatchError {
    match e {
        TlsError::Timeout => DispatchError::Io(io::Error::new(
            io::ErrorKind::TimedOut,
            "TLS handshake timed out",
        )),
        TlsError::Tls(e) => DispatchError::Io(e),
        TlsError::Service(never) => match never {},
    }
}

/// A port's parts: its opening, then actix-http's HTTP/1.1 and HTTP/2
/// services. As factories (`HttpServiceBuilder::h1` / `h2`) it is the
/// port's service factory; a worker's [`Serve`] shares the services made
/// from them.
pub(crate) struct Connections<O, H1, H2> {
    pub open: O,
    pub h1: H1,
    pub h2: H2,
}

/// One worker's services for a port.
pub(crate) struct Serve<O, H1, H2> {
    parts: Rc<Connections<O, H1, H2>>,
}

impl<Io, O, H1, H2> ServiceFactory<TcpStream> for Connections<O, H1, H2>
where
    Io: 'static,
    O: ServiceFactory<
        TcpStream,
        Config = (),
        Response = Opened<Io>,
        Error = DispatchError,
        InitError = (),
        Future: 'static,
        Service: 'static,
    >,
    H1: ServiceFactory<
        (Io, Option<SocketAddr>),
        Config = (),
        Response = (),
        Error = DispatchError,
        InitError = (),
        Future: 'static,
        Service: 'static,
    >,
    H2: ServiceFactory<
        (Io, Option<SocketAddr>),
        Config = (),
        Response = (),
        Error = DispatchError,
        InitError = (),
        Future: 'static,
        Service: 'static,
    >,
{
    type Response = ();
    type Error = DispatchError;
    type Config = ();
    type Service = Serve<O::Service, H1::Service, H2::Service>;
    type InitError = ();
    type Future = LocalBoxFuture<'static, Result<Self::Service, ()>>;

    fn new_service(&self, _: ()) -> Self::Future {
        let open = self.open.new_service(());
        let h1 = self.h1.new_service(());
        let h2 = self.h2.new_service(());
        Box::pin(async move {
            Ok(Serve {
                parts: Rc::new(Connections {
                    open: open.await?,
                    h1: h1.await?,
                    h2: h2.await?,
                }),
            })
        })
    }
}

impl<Io, O, H1, H2> Service<TcpStream> for Serve<O, H1, H2>
where
    Io: 'static,
    O: Service<TcpStream, Response = Opened<Io>, Error = DispatchError> + 'static,
    H1: Service<(Io, Option<SocketAddr>), Response = (), Error = DispatchError> + 'static,
    H2: Service<(Io, Option<SocketAddr>), Response = (), Error = DispatchError> + 'static,
{
    type Response = ();
    type Error = DispatchError;
    type Future = LocalBoxFuture<'static, Result<(), DispatchError>>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), DispatchError>> {
        // All three polled every time, so each registers its waker.
        let open = self.parts.open.poll_ready(cx)?;
        let h1 = self.parts.h1.poll_ready(cx)?;
        let h2 = self.parts.h2.poll_ready(cx)?;
        if open.is_ready() && h1.is_ready() && h2.is_ready() {
            Poll::Ready(Ok(()))
        } else {
            Poll::Pending
        }
    }

    fn call(&self, io: TcpStream) -> Self::Future {
        let parts = Rc::clone(&self.parts);
        // Each future is made inside the block: one made outside would be
        // held twice, as captured and as awaited.
        Box::pin(async move {
            let (io, speaks, peer) = parts.open.call(io).await?;
            match speaks {
                Speaks::Http1 => parts.h1.call((io, peer)).await,
                Speaks::Http2 => Box::pin(parts.h2.call((io, peer))).await,
            }
        })
    }
}
