//! [`NetnsSockets`]: sockets made inside a namespace for a process that
//! stays outside it.
//!
//! A socket belongs to the network namespace of the thread that created
//! it, for its whole life; `bind`, `connect` and `accept` then work from any
//! thread. So a helper thread that lives in the namespace creates bare
//! sockets on request and hands back their descriptors, and the caller
//! binds and connects them on its own runtime. The load generator keeps its
//! tokio runtime in the root namespace and still dials over the emulated
//! link; a test reaches the server's loopback without crossing the link.
//!
//! A request costs a round trip to the helper thread (microseconds: the
//! helper only calls `socket(2)`); [`NetnsSockets::sockets`] makes many in
//! one trip.

use std::io;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::sync::mpsc;

use socket2::{Domain, Protocol, Socket, Type};

use crate::netns::{Netns, NetnsThread};

/// The backlog of listeners made by [`NetnsSockets::tcp_listener`].
const LISTEN_BACKLOG: i32 = 4096;

struct Request {
    domain: Domain,
    ty: Type,
    protocol: Option<Protocol>,
    count: usize,
    reply: mpsc::SyncSender<io::Result<Vec<Socket>>>,
}

/// Makes sockets inside one namespace. Cheap to share (`&self` methods,
/// `Send + Sync`); dropping it ends the helper thread.
pub struct NetnsSockets {
    namespace: String,
    requests: Option<mpsc::Sender<Request>>,
    helper: Option<NetnsThread<()>>,
}

impl std::fmt::Debug for NetnsSockets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetnsSockets")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl NetnsSockets {
    /// Starts the helper thread inside `netns`.
    pub fn start(netns: &Netns) -> io::Result<NetnsSockets> {
        let (tx, rx) = mpsc::channel::<Request>();
        let helper = netns.spawn_thread(&format!("sockets {}", netns.name()), move || {
            // Ends when every sender is gone.
            for request in rx {
                let made = (0..request.count)
                    .map(|_| Socket::new(request.domain, request.ty, request.protocol))
                    .collect();
                let _ = request.reply.send(made);
            }
        })?;
        Ok(NetnsSockets {
            namespace: netns.name().to_string(),
            requests: Some(tx),
            helper: Some(helper),
        })
    }

    /// The namespace these sockets belong to.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// One socket (close-on-exec, blocking), as `socket(domain, ty, protocol)`.
    pub fn socket(
        &self,
        domain: Domain,
        ty: Type,
        protocol: Option<Protocol>,
    ) -> io::Result<Socket> {
        let mut one = self.sockets(domain, ty, protocol, 1)?;
        one.pop()
            .ok_or_else(|| io::Error::other("the socket helper returned nothing"))
    }

    /// `count` sockets in one round trip.
    pub fn sockets(
        &self,
        domain: Domain,
        ty: Type,
        protocol: Option<Protocol>,
        count: usize,
    ) -> io::Result<Vec<Socket>> {
        let gone = || {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!(
                    "the socket helper of namespace {} has stopped",
                    self.namespace
                ),
            )
        };
        let (reply, answer) = mpsc::sync_channel(1);
        let request = Request {
            domain,
            ty,
            protocol,
            count,
            reply,
        };
        self.requests
            .as_ref()
            .ok_or_else(gone)?
            .send(request)
            .map_err(|_| gone())?;
        answer.recv().map_err(|_| gone())?
    }

    /// An unconnected TCP socket for `addr`'s family, non-blocking, ready
    /// for tokio: bind it to a source address if you like, then `connect`
    /// it on your runtime.
    pub fn tokio_tcp(&self, addr: &SocketAddr) -> io::Result<tokio::net::TcpSocket> {
        let socket = self.socket(
            Domain::for_address(*addr),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        socket.set_nonblocking(true)?;
        Ok(tokio::net::TcpSocket::from_std_stream(socket.into()))
    }

    /// A TCP listener bound to `addr` inside the namespace (blocking).
    pub fn tcp_listener(&self, addr: &SocketAddr) -> io::Result<TcpListener> {
        let socket = self.socket(
            Domain::for_address(*addr),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        socket.set_reuse_address(true)?;
        socket.bind(&(*addr).into())?;
        socket.listen(LISTEN_BACKLOG)?;
        Ok(socket.into())
    }

    /// A UDP socket bound to `addr` inside the namespace (blocking).
    pub fn udp(&self, addr: &SocketAddr) -> io::Result<UdpSocket> {
        let socket = self.socket(Domain::for_address(*addr), Type::DGRAM, Some(Protocol::UDP))?;
        socket.bind(&(*addr).into())?;
        Ok(socket.into())
    }
}

impl Drop for NetnsSockets {
    fn drop(&mut self) {
        self.requests.take();
        if let Some(helper) = self.helper.take() {
            if helper.join().is_err() {
                tracing::error!(namespace = %self.namespace, "the socket helper thread panicked");
            }
        }
    }
}
