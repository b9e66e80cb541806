//! Shared by the lab tests: start a lab or skip, and small socket tools.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use netlab::{Lab, LabConfig, SERVER_ADDR};
use socket2::{Domain, Protocol, Type};

/// Starts a lab, or returns `None` after printing why the test is skipped
/// (not root). With `WORKBENCH_REQUIRE_NETLAB=1` a missing privilege fails.
pub fn lab(spec: &str) -> Option<Lab> {
    lab_with(config(spec))
}

pub fn config(spec: &str) -> LabConfig {
    let mut config = LabConfig::new(spec.parse().expect("test link specs are valid"));
    config.seed = 12345;
    config
}

pub fn lab_with(config: LabConfig) -> Option<Lab> {
    supported().then(|| Lab::with_config(config).expect("the lab starts"))
}

/// Whether labs can be built here; if not, prints `SKIPPED: <why>` (or
/// fails, with `WORKBENCH_REQUIRE_NETLAB=1`).
pub fn supported() -> bool {
    match netlab::check_support() {
        Ok(()) => true,
        Err(e) if required() => {
            panic!("WORKBENCH_REQUIRE_NETLAB=1 but the link emulator cannot run: {e}")
        }
        Err(e) => {
            // Straight to stderr: the harness captures `eprintln!` of passing tests.
            let _ = writeln!(std::io::stderr(), "SKIPPED: {e}");
            false
        }
    }
}

pub fn required() -> bool {
    std::env::var("WORKBENCH_REQUIRE_NETLAB").as_deref() == Ok("1")
}

/// A listener on the server address inside the server namespace.
pub fn server_listener(lab: &Lab) -> TcpListener {
    lab.server()
        .sockets()
        .tcp_listener(&SocketAddr::new(SERVER_ADDR.into(), 0))
        .expect("listen in the server namespace")
}

/// Connects from the client namespace; returns the stream and the time the
/// handshake took.
pub fn connect(lab: &Lab, to: SocketAddr) -> (TcpStream, Duration) {
    let socket = lab
        .client()
        .sockets()
        .socket(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))
        .expect("socket in the client namespace");
    let started = Instant::now();
    socket
        .connect_timeout(&to.into(), Duration::from_secs(10))
        .expect("connect over the link");
    let took = started.elapsed();
    let stream: TcpStream = socket.into();
    stream.set_nodelay(true).expect("nodelay");
    (stream, took)
}

/// A UDP socket on each side: (client's, server's), with long read timeouts
/// and a receive buffer large enough that a burst is never dropped by the
/// receiving socket itself.
pub fn udp_pair(lab: &Lab) -> (UdpSocket, UdpSocket) {
    let client = lab
        .client()
        .sockets()
        .udp(&SocketAddr::new(lab.client_addrs()[0].into(), 0))
        .expect("client UDP socket");
    let server = lab
        .server()
        .sockets()
        .udp(&SocketAddr::new(SERVER_ADDR.into(), 0))
        .expect("server UDP socket");
    nix::sys::socket::setsockopt(&server, nix::sys::socket::sockopt::RcvBufForce, &(16 << 20))
        .expect("a 16 MiB receive buffer (root)");
    server
        .set_read_timeout(Some(Duration::from_millis(500)))
        .expect("read timeout");
    client
        .connect(server.local_addr().expect("bound"))
        .expect("UDP connect");
    (client, server)
}

/// Reads datagrams (their first 8 bytes as a number) until `quiet` passes
/// without one.
pub fn receive_numbers(socket: &UdpSocket, quiet: Duration) -> Vec<u64> {
    socket.set_read_timeout(Some(quiet)).expect("read timeout");
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    while let Ok(n) = socket.recv(&mut buf) {
        if n >= 8 {
            got.push(u64::from_be_bytes(buf[..8].try_into().expect("8 bytes")));
        }
    }
    got
}

/// Sends `count` datagrams carrying 0, 1, … spaced by `gap`.
pub fn send_numbers(socket: &UdpSocket, range: std::ops::Range<u64>, gap: Duration) {
    for i in range {
        let mut datagram = [0u8; 64];
        datagram[..8].copy_from_slice(&i.to_be_bytes());
        socket.send(&datagram).expect("UDP send");
        if !gap.is_zero() {
            thread::sleep(gap);
        }
    }
}

/// Sends `bytes` over a fresh connection and returns the goodput the
/// receiver saw (bits/s, from accept to end of stream) and the time taken.
pub fn bulk_transfer(lab: &Lab, bytes: usize) -> (f64, Duration) {
    let listener = server_listener(lab);
    let addr = listener.local_addr().expect("bound");
    let receiver = thread::spawn(move || {
        let (mut stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("read timeout");
        let started = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        let mut total = 0usize;
        loop {
            let n = stream.read(&mut buf).expect("read the transfer");
            if n == 0 {
                break;
            }
            total += n;
        }
        (total, started.elapsed())
    });
    let (mut stream, _) = connect(lab, addr);
    let chunk = vec![0x5au8; 64 * 1024];
    let mut left = bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n]).expect("write the transfer");
        left -= n;
    }
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("end the transfer");
    let (total, took) = receiver.join().expect("receiver thread");
    assert_eq!(total, bytes, "every byte arrives");
    (total as f64 * 8.0 / took.as_secs_f64(), took)
}

/// The names of the network interfaces in the calling thread's namespace.
pub fn interfaces() -> Vec<String> {
    let mut names: Vec<String> = nix::net::if_::if_nameindex()
        .expect("if_nameindex")
        .iter()
        .map(|i| i.name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
